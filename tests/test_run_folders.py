"""Where a run writes: its folder is named after what ran, every process of a launch
agrees on it (srun's tasks compose the same one; Lightning's and torchrun's other ranks
join rank 0's, logging to rank_<N>.log), and the lock file goes with a clean end."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from helpers import CONFIG_DIR
from hlt_core.errors import UserError
from hlt_core.hydra_compat import VERSION_BASE
from hlt_core.jobs.ddp_jobs import JOB_VARIABLE, NAME_VARIABLE, process_rank, rank_argv
from hlt_core.schemas import register_schemas
from hlt_trainer.app import launch_argv


def run_folder(*overrides: str) -> str:
    register_schemas()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), **VERSION_BASE):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    GlobalHydra.instance().clear()
    return str(cfg.hydra.run.dir)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ((), "clusters_mlp_classification"),
        (("data=regression", "task=regression"), "regression_mlp_regression"),
        (("model=transformer", "data=induction_heads", "task=language_model"),
         "induction_heads_transformer_language_model"),
        (("experiment=recall_hyena",), "recall_hyena"),  # an experiment names its runs
    ],
)  # fmt: skip
def test_a_run_folder_is_named_after_what_ran(overrides, name):
    assert run_folder(*overrides).startswith(f"outputs/{name}/runs/")


def test_the_tasks_of_an_srun_step_compose_one_folder(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "8")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    folders = set()
    for task in ("0", "5"):
        monkeypatch.setenv("SLURM_PROCID", task)
        folders.add(run_folder())
    assert folders == {"outputs/clusters_mlp_classification/runs/slurm-4242.0"}


@pytest.mark.parametrize(
    ("environ", "rank"),
    [
        ({}, None),
        ({"LOCAL_RANK": "1"}, "1"),  # Lightning's launcher
        ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, "1.0"),
        ({"RANK": "0", "LOCAL_RANK": "0", "TORCHELASTIC_RUN_ID": "x"}, None),  # torchrun
        ({"RANK": "3", "LOCAL_RANK": "1", "GROUP_RANK": "1"}, "3"),
        ({"SLURM_NTASKS": "4", "SLURM_PROCID": "2"}, "2"),  # srun
        ({"SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, None),
    ],
)
def test_the_rank_of_a_process_is_read_from_its_launcher(environ, rank):
    assert process_rank(environ) == rank


def test_a_rank_started_by_lightning_joins_rank_0s_folder_and_logs_to_rank_n():
    argv = ["app", "seed=1", 'hydra.run.dir="/runs/x"', "hydra.job.name=train_ddp_process_1",
            "hydra.output_subdir=null"]  # fmt: skip
    assert rank_argv(argv, {"LOCAL_RANK": "1"}) == [
        "app", "seed=1", 'hydra.run.dir="/runs/x"', "hydra.output_subdir=null",
        "hydra.job.name=rank_1",
    ]  # fmt: skip
    assert rank_argv(argv, {"LOCAL_RANK": "0"}) is None
    job = {"LOCAL_RANK": "1", JOB_VARIABLE: "/sweep/3", NAME_VARIABLE: "clusters_mlp"}
    assert rank_argv(["app", "-m", "seed=1,2"], job) == [
        "app", "--config-path=/sweep/3/.hydra", "--config-name=config",
        "hydra.run.dir='/sweep/3'", "name='clusters_mlp'", "hydra.output_subdir=null",
        "hydra.job.name=rank_1",
    ]  # fmt: skip


def test_a_sweep_under_torchrun_or_srun_is_refused_in_one_line():
    for environ in ({"TORCHELASTIC_RUN_ID": "x", "RANK": "0"},
                    {"SLURM_NTASKS": "2", "SLURM_STEP_ID": "0", "SLURM_PROCID": "0"}):  # fmt: skip
        with pytest.raises(UserError, match="a sweep .-m. cannot be started by torchrun or srun"):
            launch_argv(["app", "-m", "seed=1,2"], environ)
    assert launch_argv(["app", "-m", "seed=1,2"], {}) == ["app", "-m", "seed=1,2"]
