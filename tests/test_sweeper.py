"""hlt's Optuna sweeper in-process, driving the small app of ``sweep_app.py`` (no torch):
a stored study is data that cannot inject overrides, failed trials are told once and the
search goes on, and an interrupt at any moment resumes to exactly the planned jobs."""

from __future__ import annotations

import csv
import json
import sys
from importlib import import_module
from pathlib import Path

import optuna
import pytest
from hydra.core.global_hydra import GlobalHydra
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

import sweep_app
from hlt_core.jobs.sweeps import summarize
from hydra_plugins.hlt_optuna_sweeper.hlt_optuna_sweeper import JOB, job_folder, search_space

FIXED = ["epochs=3"]  # the command's own override that every job must get


def sweep(monkeypatch, sweep_dir: Path, *overrides: str) -> object:
    """Run ``sweep_app.py -m *overrides`` in this process; its exit status."""
    monkeypatch.setenv("SWEEP_APP_DIR", str(sweep_dir))
    monkeypatch.setattr(sys, "argv", ["sweep_app.py", "-m", *overrides])
    GlobalHydra.instance().clear()
    try:
        sweep_app.main()
    except SystemExit as stop:
        return stop.code
    finally:
        GlobalHydra.instance().clear()
    return 0


def study_of(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="app", storage=f"sqlite:///{sweep_dir}/optuna.db")


def ran(sweep_dir: Path, folder: int) -> dict:
    return json.loads((sweep_dir / str(folder) / "job.json").read_text())


def test_the_search_space_is_the_sweeps_and_the_command_wins():
    space, fixed = search_space(
        {"lr": "tag(log, interval(1e-4, 1e-1))", "width": "choice(16, 32)", "seed": "1"},
        ["width=choice(64,128)", "epochs=3", "+extra=x"],
    )
    assert space == {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "width": CategoricalDistribution([64, 128]),
    }
    assert fixed == ["seed=1", "epochs=3", "+extra=x"]


def crafted_study(sweep_dir: Path) -> optuna.Study:
    """A study as a crafted ``optuna.db`` holds it: one trial left running, with values
    the search could have drawn."""
    sweep_dir.mkdir()
    study = optuna.create_study(study_name="app", storage=f"sqlite:///{sweep_dir}/optuna.db")
    study.ask({"lr": FloatDistribution(0.001, 0.1), "width": CategoricalDistribution([16, 32, 64])})
    return study


def payload(tmp_path: Path) -> list[str]:
    """The overrides of issue 27: open a file for writing, copy another one elsewhere."""
    return [
        "+callbacks.a._target_=builtins.open",
        f"+callbacks.a.file={tmp_path / 'victim.txt'}",
        "+callbacks.a.mode=w",
        "+callbacks.b._target_=shutil.copyfile",
        f"+callbacks.b.src={tmp_path / 'victim.txt'}",
        f"+callbacks.b.dst={tmp_path / 'copied.txt'}",
    ]


@pytest.mark.parametrize("stored", ["as user attributes", "in the recorded job"])
def test_a_crafted_study_is_refused_naming_the_trial_and_writes_nothing(
    tmp_path, monkeypatch, capsys, stored
):
    sweep_dir = tmp_path / "sweep"
    victim = tmp_path / "victim.txt"
    victim.write_text("kept")
    overrides = payload(tmp_path)
    study = crafted_study(sweep_dir)
    trial = study.trials[0]
    if stored == "as user attributes":  # what hydra-optuna-sweeper replayed
        attrs = dict(o.split("=", 1) for o in overrides)
    else:  # its sampled values are valid: only the added overrides are foreign
        job = [f"{k}={v}" for k, v in trial.params.items()]
        attrs = {JOB: {"overrides": [*job, *FIXED, *overrides], "worker": "x:1"}}
    for key, value in attrs.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)

    assert sweep(monkeypatch, sweep_dir, *FIXED) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: study app in sqlite:///{sweep_dir}/optuna.db: trial 0: ")
    assert "+callbacks." in error
    assert victim.read_text() == "kept" and not (tmp_path / "copied.txt").exists()
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["optuna.db"]  # no job ran
    assert study_of(sweep_dir).trials[0].state == TrialState.RUNNING  # left as it was


def test_a_stored_value_outside_the_search_space_is_refused(tmp_path, monkeypatch, capsys):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    study = optuna.create_study(study_name="app", storage=f"sqlite:///{sweep_dir}/optuna.db")
    # a value the search cannot draw, under a distribution that admits it
    study.ask(
        {"lr": FloatDistribution(0.001, 0.1), "width": CategoricalDistribution(["${oc.env:HOME}"])}
    )
    assert sweep(monkeypatch, sweep_dir, *FIXED) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "trial 0: has width='${oc.env:HOME}', outside this search space" in error


def test_a_resume_with_another_recipe_is_refused(tmp_path, monkeypatch, capsys):
    sweep_dir = tmp_path / "sweep"
    assert sweep(monkeypatch, sweep_dir, "epochs=3", "hydra.sweeper.n_trials=1") == 0
    assert sweep(monkeypatch, sweep_dir, "epochs=4", "hydra.sweeper.n_trials=2") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "trial 0: its stored job holds 'epochs=3', which this command does not" in error
    assert len(study_of(sweep_dir).trials) == 1  # nothing ran with the other recipe


@pytest.mark.parametrize(("failing", "states"), [("all", "FFF"), ("1", "CFC")])
def test_failed_trials_are_told_once_and_the_search_goes_on(
    tmp_path, monkeypatch, capsys, failing, states
):
    sweep_dir = tmp_path / "sweep"
    monkeypatch.setenv("SWEEP_APP_FAIL", failing)
    summary = "+hydra.callbacks.summary._target_=hlt_core.jobs.sweeps.SweepSummary"
    assert sweep(monkeypatch, sweep_dir, *FIXED, "hydra.sweeper.n_trials=3", summary) == 3
    trials = study_of(sweep_dir).trials
    assert "".join(t.state.name[0] for t in trials) == states  # 3 trials, each told once
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    assert all("the job returned nan" in trials[n].user_attrs["hlt.failed"] for n in failed)
    jobs = ", ".join(map(str, failed))
    assert f"error: {len(failed)} of 3 jobs failed (jobs {jobs})" in capsys.readouterr().err


class Interrupt:
    """Raise KeyboardInterrupt from the ``call``-th call of ``owner.name``, once."""

    def __init__(self, monkeypatch, owner: object, name: str, call: int, after: bool) -> None:
        self.original, self.calls, self.call, self.after = getattr(owner, name), 0, call, after
        monkeypatch.setattr(owner, name, self)

    def __get__(self, instance, owner=None):
        return self if instance is None else lambda *a, **k: self(instance, *a, **k)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.call and not self.after:
            raise KeyboardInterrupt
        result = self.original(*args, **kwargs)
        if self.calls == self.call:
            raise KeyboardInterrupt
        return result


MOMENTS = {
    # asked: the trial exists, nothing of its job is recorded
    "asked": lambda mp: Interrupt(mp, optuna.Study, "ask", 2, after=True),
    # built: its job is being recorded
    "built": lambda mp: Interrupt(mp, optuna.Trial, "set_user_attr", 2, after=False),
    # launched: Hydra is building the job's config and folder
    "launched": lambda mp: Interrupt(
        mp, import_module("hydra._internal.core_plugins.basic_launcher"), "run_job", 2, after=False
    ),
    # trained: inside the job (the app's own Ctrl+C)
    "trained": lambda mp: mp.setenv("SWEEP_APP_STOP", "1"),
    # told: the job ended, the study is being told
    "told": lambda mp: Interrupt(mp, optuna.Study, "tell", 2, after=False),
}


@pytest.mark.parametrize("moment", MOMENTS)
def test_an_interrupted_search_resumes_to_exactly_the_planned_jobs(tmp_path, monkeypatch, moment):
    sweep_dir = tmp_path / "sweep"
    command = [*FIXED, "hydra.sweeper.n_trials=3"]
    with monkeypatch.context() as patched:
        MOMENTS[moment](patched)
        with pytest.raises(KeyboardInterrupt):
            sweep(monkeypatch, sweep_dir, *command)
    assert sweep(monkeypatch, sweep_dir, *command) == 0

    trials = study_of(sweep_dir).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    folders = sorted(p.name for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())
    assert folders == sorted(str(job_folder(t)) for t in complete)  # one folder per trial
    for trial in complete:
        planned = trial.user_attrs[JOB]["overrides"]
        job = ran(sweep_dir, job_folder(trial))
        assert sorted(job["overrides"]) == sorted(planned)  # what ran is what was planned
        assert job["config"]["epochs"] == 3  # the command's fixed override, every time
        assert job["config"]["lr"] == trial.params["lr"]
        assert job["config"]["width"] == trial.params["width"]


def test_the_best_job_is_one_of_the_sweeps_own_recipe(tmp_path):
    jobs = {  # job 2 trained 10 epochs, not the sweep's 3: the lowest loss, never the best
        "0": (["lr=0.01", "width=16", "epochs=3"], 0.30),
        "1": (["lr=0.02", "width=32", "epochs=3"], 0.25),
        "2": (["lr=0.01", "width=16"], 0.10),  # epochs left at the default
    }
    for job, (overrides, loss) in jobs.items():
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(json.dumps(overrides))
        record = {"status": "ok", "val/loss": loss, "overrides": " ".join(overrides)}
        (tmp_path / job / "results.json").write_text(json.dumps(record))
    rows = summarize(tmp_path, "val/loss", "min", (["epochs=3"], {"lr", "width"}))
    assert [(r["job"], r["recipe"], r["best"]) for r in rows] == [
        ("0", "same", ""), ("1", "same", "★"), ("2", "other", "")
    ]  # fmt: skip
    with (tmp_path / "summary.csv").open() as handle:
        assert [r["recipe"] for r in csv.DictReader(handle)] == ["same", "same", "other"]
