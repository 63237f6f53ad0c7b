"""The cross-package version check: passes on the repository, fails on a bad range."""

from __future__ import annotations

import shutil
from pathlib import Path

from check_versions import violations
from helpers import REPO


def test_repository_versions_are_consistent():
    assert violations(REPO) == []


def copy_members(tmp_path: Path) -> Path:
    for pyproject in [*REPO.glob("packages/*/pyproject.toml"), *REPO.glob("apps/*/pyproject.toml")]:
        target = tmp_path / pyproject.relative_to(REPO)
        target.parent.mkdir(parents=True)
        shutil.copy(pyproject, target)
    return tmp_path


def test_version_outside_the_required_range_is_named(tmp_path):
    root = copy_members(tmp_path)
    pyproject = root / "packages" / "hlt-models" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert violations(root) == [
        "hlt-trainer requires hlt-models<0.2,>=0.1 but hlt-models is at 0.2.0"
    ]


def test_requirement_without_a_range_is_named(tmp_path):
    root = copy_members(tmp_path)
    pyproject = root / "apps" / "trainer" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"hlt-tasks>=0.1,<0.2"', '"hlt-tasks"'))
    assert violations(root) == ["hlt-trainer requires hlt-tasks without a version range"]
