"""The package boundaries of DESIGN.md, checked: imports, declared dependencies, and a
models wheel that works with torch alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from build_tools import REPO, build_wheel, run, uv

PACKAGES = [
    "packages/hlt-core",
    "packages/hlt-data",
    "packages/hlt-models",
    "packages/hlt-tasks",
    "apps/trainer",
]


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([lint_imports], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_dependencies_match_imports(package):
    done = subprocess.run(
        [sys.executable, "-m", "deptry", "."],
        capture_output=True,
        text=True,
        cwd=REPO / package,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_models_wheel_works_with_torch_and_nothing_else_of_the_stack(tmp_path):
    import torch

    wheel = build_wheel(REPO / "packages" / "hlt-models", tmp_path / "dist")
    venv = tmp_path / "venv"
    run(uv(), "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    torch_version = torch.__version__.split("+")[0]
    run(uv(), "pip", "install", "--quiet", "--python", python, f"torch=={torch_version}", wheel)
    script = (
        "import importlib.util, torch, hlt_models\n"
        "m = hlt_models.MLP(input_dim=3)\n"
        "assert m(torch.zeros(2, 3)).shape == (2, m.out_features)\n"
        "for name in ('lightning', 'hydra', 'omegaconf', 'torchmetrics', 'hlt_core',\n"
        "             'hlt_data', 'hlt_tasks'):\n"
        "    assert importlib.util.find_spec(name) is None, name\n"
        "print('ok')\n"
    )
    assert run(python, "-c", script).stdout.strip() == "ok"
