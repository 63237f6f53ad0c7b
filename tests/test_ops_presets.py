"""Scale-out trainer presets: what can run on a CPU runs; the rest builds what it names."""

from __future__ import annotations

import signal

from hydra.utils import instantiate
from lightning.pytorch.plugins.environments import SLURMEnvironment

from helpers import QUICK, compose_run
from hlt_core.run import run


def test_mixed_precision_preset_trains(run_dir):
    cfg = compose_run([*QUICK, "trainer=mixed", "trainer.accelerator=cpu"], run_dir)
    assert cfg.trainer.precision == "bf16-mixed"
    assert "test/loss" in run(cfg)


def test_slurm_preset_requeues_through_lightnings_slurm_environment(run_dir):
    cfg = compose_run(["trainer=slurm_multinode"], run_dir)
    (plugin,) = instantiate(cfg.trainer.plugins)
    assert isinstance(plugin, SLURMEnvironment)
    assert plugin.auto_requeue
    assert plugin.requeue_signal == signal.SIGUSR2
    assert (cfg.trainer.num_nodes, cfg.trainer.strategy) == (2, "ddp")


def test_fsdp_preset_names_the_fsdp_strategy(run_dir):
    cfg = compose_run(["trainer=fsdp"], run_dir)
    strategy = cfg.trainer.strategy
    target = strategy if isinstance(strategy, str) else strategy["_target_"]
    assert "fsdp" in target.lower()
