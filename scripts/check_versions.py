"""Fail when an hlt package requires another hlt package without a version range, or with
a range that the other package's current version falls outside.

    uv run python scripts/check_versions.py [ROOT]
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from workspace import member_projects, report


def violations(root: Path) -> list[str]:
    projects = member_projects(root)
    problems = []
    for name, project in projects.items():
        for line in project.get("dependencies", []):
            requirement = Requirement(line)
            if requirement.name not in projects:
                continue
            if not requirement.specifier:
                problems.append(f"{name} requires {requirement.name} without a version range")
                continue
            version = Version(projects[requirement.name]["version"])
            if version not in requirement.specifier:
                problems.append(
                    f"{name} requires {requirement.name}{requirement.specifier} but "
                    f"{requirement.name} is at {version}"
                )
    return problems


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    clean = f"versions consistent across {len(member_projects(root))} packages"
    return report(violations(root), clean)


if __name__ == "__main__":
    sys.exit(main())
