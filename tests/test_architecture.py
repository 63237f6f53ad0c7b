"""The package boundaries of docs/architecture.md, checked: imports and declared
dependencies. (The models wheel working with torch alone is shown by tests/test_export.py.)

The packages are the workspace members (scripts/workspace.py). The import-linter
contracts are static TOML, so they cannot read that list: they stay the one place that
states the rules, and a test here fails when a member is missing from them."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from build_tools import REPO
from workspace import load_toml, members

MEMBERS = [str(member.relative_to(REPO)) for member in members(REPO)]


def module_name(member: str) -> str:
    return load_toml(REPO / member / "pyproject.toml")["project"]["name"].replace("-", "_")


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([lint_imports], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("package", MEMBERS)
def test_declared_dependencies_match_imports(package):
    done = subprocess.run(
        [sys.executable, "-m", "deptry", "."],
        capture_output=True,
        text=True,
        cwd=REPO / package,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_member_is_bound_by_the_import_contracts():
    """Each member is a root package, and each library is forbidden to import every other
    member (DESIGN: the packages import nothing from each other; nothing imports an app)."""
    linter = load_toml(REPO / "pyproject.toml")["tool"]["importlinter"]
    modules = {member: module_name(member) for member in MEMBERS}
    assert set(modules.values()) <= set(linter["root_packages"])
    forbidden = {
        (source, target)
        for contract in linter["contracts"]
        for source in contract["source_modules"]
        for target in contract["forbidden_modules"]
    }
    libraries = [modules[m] for m in MEMBERS if m.startswith("packages/")]
    missing = [
        pair
        for pair in itertools.permutations(modules.values(), 2)
        if pair[0] in libraries and pair not in forbidden
    ]
    assert missing == [], f"add to [tool.importlinter] contracts: {missing}"
