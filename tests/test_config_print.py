"""``--cfg job|all --resolve`` prints every shipped config resolved, before any data is
built: what the data fills shows as ``<from data>``; and data a script must write first
names that script when it is missing."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from helpers import EXPERIMENTS, compose_run, trainer
from hlt_core.composing.data_facts import FROM_DATA
from hlt_core.errors import UserError
from hlt_core.run import run
from hlt_trainer.app import from_data_argv


@pytest.mark.parametrize("experiment", [None, *EXPERIMENTS])
def test_every_shipped_config_resolves_with_the_data_facts_as_placeholders(experiment, run_dir):
    chosen = [f"experiment={experiment}"] if experiment else []
    argv = ["app", *chosen, "--cfg", "job", "--resolve"]
    extra = from_data_argv(argv)[len(argv) :]
    assert extra, "every shipped config reads some data.dims"
    cfg = compose_run([*chosen, *extra], run_dir)
    OmegaConf.resolve(cfg)  # raised InterpolationKeyError on data.dims before
    read = [value for group in ("model", "task") for value in cfg[group].values()]
    assert FROM_DATA in read


def test_a_config_printed_unresolved_or_for_hydra_is_left_as_it_was():
    for argv in (["app", "--cfg", "job"], ["app", "--cfg", "hydra", "--resolve"], ["app"]):
        assert from_data_argv(argv) == argv


@pytest.mark.cli
def test_the_resolved_config_prints_without_a_traceback():
    done = trainer("--cfg", "job", "--resolve")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"input_dim: {FROM_DATA}" in done.stdout


def test_missing_data_that_a_script_writes_names_the_script(tmp_path, run_dir):
    missing = tmp_path / "pretrain.fa"
    cfg = compose_run(["experiment=families_pretrain", f"data.path={missing}"], run_dir)
    with pytest.raises(UserError, match=r"no such file or folder; write it with: uv run "
                       r"scripts/prepare_families\.py --out data/families$"):  # fmt: skip
        run(cfg)
    assert not run_dir.exists()
