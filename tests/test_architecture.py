"""The package boundaries of DESIGN.md, checked: imports and declared dependencies.
(The models wheel working with torch alone is shown by tests/test_export.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from build_tools import REPO

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
