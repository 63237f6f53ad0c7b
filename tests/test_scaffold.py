"""`hlt new`: generated packages are usable at once, tested end to end in a copy of the
repository so the real checkout is never touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from build_tools import copy_pyprojects, uv
from check_versions import violations
from helpers import REPO
from hlt_trainer.scaffold import KINDS, ScaffoldError, new_package


def copy_repository(target: Path) -> Path:
    """The checkout as git sees it (tracked and untracked, not ignored), as on disk."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for relative in filter(None, listed):
        source = REPO / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    return target


def uv_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "HYDRA_FULL_ERROR")
    }
    done = subprocess.run(
        [uv(), "run", *args], cwd=root, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"uv run {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.cli
def test_new_model_task_and_data_train_together_and_pass_their_tests(tmp_path):
    root = copy_repository(tmp_path / "repo")
    for kind, name in [("model", "toynet"), ("task", "toytask"), ("data", "toydata")]:
        assert "created packages/hlt-" in uv_run(root, "hlt", "new", kind, name).stdout
    run_dir = tmp_path / "run"
    uv_run(
        root,
        "apps/trainer",
        "model=toynet",
        "task=toytask",
        "data=toydata",
        "trainer.max_epochs=1",
        "print_config=false",
        f"hydra.run.dir={run_dir}",
    )
    results = json.loads((run_dir / "results.json").read_text())
    assert "test/acc" in results
    # the package registers its class, so hlt-models rebuilds it from the run's export
    load = f"import hlt_models; print(type(hlt_models.load_exported('{run_dir}/export')).__name__)"
    assert uv_run(root, "python", "-c", load).stdout.strip() == "ToynetModel"
    tested = uv_run(
        root,
        "pytest",
        "-p",
        "no:cacheprovider",
        "packages/hlt-toynet",
        "packages/hlt-toytask",
        "packages/hlt-toydata",
    )
    assert "3 passed" in tested.stdout
    # unchanged, the new packages pass the lint and types sessions' checks
    new = ["packages/hlt-toynet", "packages/hlt-toytask", "packages/hlt-toydata"]
    uv_run(root, "ruff", "check", *new)
    uv_run(root, "ruff", "format", "--check", *new)
    assert "packages/hlt-toynet/src" in (root / "pyproject.toml").read_text()
    uv_run(root, "mypy")


def test_bad_names_and_clashes_are_refused_and_leave_nothing(tmp_path):
    root = tmp_path
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["hlt-core"]\n\n[tool.uv.sources]\n'
        '\n[tool.mypy]\nfiles = ["src"]\nmypy_path = ["src"]\n'
    )
    (root / "configs" / "model").mkdir(parents=True)
    (root / "configs" / "model" / "taken.yaml").write_text("{}\n")
    with pytest.raises(ScaffoldError, match="'My-Net' is not valid"):
        new_package(root, "model", "My-Net")
    with pytest.raises(ScaffoldError, match="model=taken exists already"):
        new_package(root, "model", "taken")
    with pytest.raises(ScaffoldError, match="kind 'loss' is unknown"):
        new_package(root, "loss", "x")
    assert not (root / "packages").exists()
    new_package(root, "model", "fresh")
    package = (root / "packages" / "hlt-fresh" / "pyproject.toml").read_text()
    assert '[project.entry-points."hlt.models"]\nfresh = "hlt_fresh:FreshModel"' in package
    text = (root / "pyproject.toml").read_text()
    assert 'dependencies = ["hlt-core", "hlt-fresh"]' in text
    assert "hlt-fresh = { workspace = true }" in text
    assert 'files = ["src", "packages/hlt-fresh/src"]' in text
    assert 'mypy_path = ["src", "packages/hlt-fresh/src"]' in text
    with pytest.raises(ScaffoldError, match="exists already"):
        new_package(root, "model", "fresh")


def test_new_packages_require_the_current_versions_of_hlt_packages(tmp_path):
    root = copy_pyprojects(tmp_path)
    for kind in KINDS:
        new_package(root, kind, f"fresh_{kind}")
    assert "hlt-data>=0." in (root / "packages/hlt-fresh-data/pyproject.toml").read_text()
    assert "hlt-tasks>=0." in (root / "packages/hlt-fresh-task/pyproject.toml").read_text()
    assert violations(root) == []
