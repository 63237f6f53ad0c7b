"""The cross-package version check: passes on the repository, fails on a bad range."""

from __future__ import annotations

import re
from pathlib import Path

from build_tools import copy_pyprojects
from check_versions import violations
from helpers import REPO


def test_repository_versions_are_consistent():
    assert violations(REPO) == []


def test_version_outside_the_required_range_is_named(tmp_path):
    root = copy_pyprojects(tmp_path)
    pyproject = root / "packages" / "hlt-models" / "pyproject.toml"
    pyproject.write_text(re.sub(r'version = "[^"]*"', 'version = "9.0.0"', pyproject.read_text()))
    (message,) = violations(root)
    assert re.fullmatch(r"hlt-trainer requires hlt-models\S+ but hlt-models is at 9\.0\.0", message)


def test_requirement_without_a_range_is_named(tmp_path):
    root = copy_pyprojects(tmp_path)
    pyproject = root / "apps" / "trainer" / "pyproject.toml"
    pyproject.write_text(re.sub(r'"hlt-tasks>=[^"]*"', '"hlt-tasks"', pyproject.read_text()))
    assert violations(root) == ["hlt-trainer requires hlt-tasks without a version range"]


def fake_wheel(path: Path, files: dict[str, str]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def test_wheel_checks_name_unranged_requirements_and_missing_configs(tmp_path):
    from check_wheels import configless, unpinned

    wheel = fake_wheel(
        tmp_path / "hlt_x-0.1.0-py3-none-any.whl",
        {
            "hlt_x-0.1.0.dist-info/METADATA": "Name: hlt-x\nRequires-Dist: hlt-core\n"
            "Requires-Dist: hlt-data>=0.2,<0.3\nRequires-Dist: torch\n",
            "hlt_x-0.1.0.dist-info/entry_points.txt": "[hlt.configs]\nhlt-x = hlt_x.configs\n",
            "hlt_x/configs/__init__.py": "",
        },
    )
    assert unpinned(wheel) == ["hlt-core"]
    assert configless(wheel) == ["hlt_x/configs/"]


def test_every_check_script_reports_one_error_line_each_or_a_summary(capsys):
    from workspace import report

    assert report(["a is wrong", "b is wrong"], "all good") == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "error: a is wrong\nerror: b is wrong\n")
    assert report([], "all good") == 0
    assert capsys.readouterr().out == "all good\n"
