"""Every experiment composes and trains; bad input fails naming what is bad."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ValidationError

from helpers import EXPERIMENTS, QUICK, REPO, compose_run
from hlt_core.errors import UserError
from hlt_core.run import run, run_or_exit
from prepare_digits import write_digits
from prepare_families import write_families
from prepare_genome import write_genome


def test_there_are_experiments_to_check():
    assert "clusters_mlp" in EXPERIMENTS


def data_overrides(experiment: str, tmp_path: Path) -> list[str]:
    """Experiments on real files get those files written first."""
    if experiment.startswith("digits"):
        write_digits(tmp_path / "digits")
        return [f"data.path={tmp_path / 'digits'}"]
    if experiment.startswith("families"):
        write_families(tmp_path, pretrain=100, finetune=100)
        stage = experiment.removeprefix("families_")
        return [f"data.path={tmp_path / stage}.fa"]
    if experiment.startswith("genome"):
        write_genome(tmp_path, length=20_000, windows=300)
        if experiment == "genome_finetune":
            return [f"data.path={tmp_path / 'finetune.fa'}"]
        # QUICK's 3 training batches end before the experiment's first validation
        return [f"data.path={tmp_path / 'genome.fa'}", "trainer.val_check_interval=2"]
    return []


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_trains_a_step_and_writes_its_run_folder(experiment, run_dir, tmp_path):
    extra = data_overrides(experiment, tmp_path)
    cfg = compose_run([f"experiment={experiment}", *QUICK, *extra], run_dir)
    metrics = run(cfg)
    assert any(key.startswith("test/") for key in metrics)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["name"] == cfg.name
    assert all(not isinstance(value, (dict, list)) for value in results.values())
    assert (run_dir / "csv" / "metrics.csv").is_file()


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_under_fast_dev_run(experiment, run_dir, tmp_path):
    extra = data_overrides(experiment, tmp_path)
    cfg = compose_run([f"experiment={experiment}", "debug=fast_dev_run", "print_config=false",
                       "trainer.enable_progress_bar=false", *extra], run_dir)  # fmt: skip
    metrics = run(cfg)
    assert any(key.startswith("test/") for key in metrics)
    assert json.loads((run_dir / "results.json").read_text())["global_step"] == 1


def test_last_checkpoint_is_written_when_max_steps_stops_mid_epoch(run_dir):
    cfg = compose_run(
        [
            "trainer.max_steps=7",
            "print_config=false",
            "test=false",
            "trainer.enable_progress_bar=false",
        ],
        run_dir,
    )
    run(cfg)
    import torch

    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 7
    assert last["hlt_config"]["name"] == "clusters_mlp_classification"  # what ran


def test_every_checkpoint_goes_to_paths_checkpoint_dir(run_dir, tmp_path):
    """ModelCheckpoint and hlt's own saves (here the one after fit) share one folder;
    a ModelCheckpoint pointed elsewhere is refused before training."""
    quick = [*QUICK, "test=false"]
    folder = tmp_path / "ckpts"
    run(compose_run([*quick, f"paths.checkpoint_dir={folder}"], run_dir))
    assert (folder / "last.ckpt").is_file()
    assert list(folder.glob("best-*.ckpt"))
    assert not (run_dir / "checkpoints").exists()
    other = tmp_path / "other"
    cfg = compose_run([*quick, f"callbacks.model_checkpoint.dirpath={folder}"], other)
    with pytest.raises(UserError, match="set paths.checkpoint_dir instead"):
        run(cfg)
    assert not (other / "checkpoints").exists()


def test_wrong_type_fails_at_compose_naming_the_key(run_dir):
    with pytest.raises(ConfigCompositionException) as info:
        compose_run(["trainer.max_epochs=abc"], run_dir)
    assert isinstance(info.value.__cause__, ValidationError)
    assert "full_key: trainer.max_epochs" in str(info.value.__cause__)


def test_unknown_key_fails_naming_it(run_dir):
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose_run(["no_such_key=1"], run_dir)


def test_unknown_key_inside_a_component_fails_naming_it(run_dir):
    with pytest.raises(ConfigCompositionException, match="model.no_such_key"):
        compose_run(["model.no_such_key=1"], run_dir)


def test_unknown_option_lists_the_available_ones(run_dir):
    with pytest.raises(MissingConfigException, match=r"model/nosuch") as info:
        compose_run(["model=nosuch"], run_dir)
    assert "mlp" in str(info.value)


@pytest.mark.parametrize("problem", ["missing", "unreadable"])
def test_bad_checkpoint_path_exits_naming_the_path(problem, run_dir, tmp_path, capsys):
    ckpt = tmp_path / "model.ckpt"
    if problem == "unreadable":
        ckpt.mkdir()  # a folder where a file should be: cannot be read as a checkpoint
    cfg = compose_run([f"ckpt_path={ckpt}", *QUICK], run_dir)
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(cfg)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"ckpt_path={ckpt}" in err
    assert "Traceback" not in err
    assert not (run_dir / "checkpoints").exists()


def readme_commands() -> list[list[str]]:
    """The overrides of every trainer command of the README's reproduction sections:
    the experiments of the synthetic-tasks table and the pretrain/fine-tune commands."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Synthetic tasks") : text.index("## Your own data")]
    table = [
        ["experiment=" + name, "trainer.enable_progress_bar=false"]
        for name in re.findall(r"^\|[^|]+\|[^|]+\|[^|]+\| `(\w+)` \|", section, re.MULTILINE)
    ]
    commands = [
        line.split("#")[0].split()[3:]
        for line in section.splitlines()
        if line.startswith("uv run apps/trainer ")
    ]
    return table + commands


def test_the_readme_reproduction_commands_compose(run_dir):
    commands = readme_commands()
    assert len(commands) == 11  # 8 table rows, pretrain, fine-tune, from scratch
    for overrides in commands:
        init_from = [o for o in overrides if o.startswith("model.init_from=")]
        cfg = compose_run([o for o in overrides if o.split("=")[0] != "hydra.run.dir"], run_dir)
        assert cfg.model.init_from == (init_from[0].split("=", 1)[1] if init_from else None)
        assert cfg.name == overrides[0].removeprefix("experiment=")
