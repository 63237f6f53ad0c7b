"""Fail when a built wheel requires an hlt-* package without a version range (uv writes
no range for workspace sources, so each pyproject must state one).

    uv run python scripts/check_wheels.py DIST_DIR
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from workspace import report


def unpinned(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(metadata).decode().splitlines()
    requirements = [
        Requirement(line.split(":", 1)[1]) for line in lines if line.startswith("Requires-Dist:")
    ]
    return [str(r) for r in requirements if r.name.startswith("hlt-") and not r.specifier]


def configless(wheel: Path) -> list[str]:
    """``hlt.configs`` entry points whose package holds no YAML file in the wheel."""
    entry_points = configparser.ConfigParser(delimiters=("=",))  # the file is INI
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for name in names:
            if name.endswith(".dist-info/entry_points.txt"):
                entry_points.read_string(archive.read(name).decode())
    if not entry_points.has_section("hlt.configs"):
        return []
    folders = [v.strip().replace(".", "/") + "/" for v in entry_points["hlt.configs"].values()]
    return [
        folder
        for folder in folders
        if not any(n.startswith(folder) and n.endswith(".yaml") for n in names)
    ]


def main() -> int:
    wheels = sorted(Path(sys.argv[1]).glob("*.whl"))
    if not wheels:
        return report([f"no wheels in {sys.argv[1]}"], "")
    problems = [
        f"{wheel.name} requires {req} without a version range"
        for wheel in wheels
        for req in unpinned(wheel)
    ] + [
        f"{wheel.name} ships no config files under {folder} (ignored by a .gitignore?)"
        for wheel in wheels
        for folder in configless(wheel)
    ]
    return report(
        problems, f"{len(wheels)} wheels: every hlt-* requirement carries a version range"
    )


if __name__ == "__main__":
    sys.exit(main())
