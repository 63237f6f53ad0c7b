"""The workspace's members: the one list of hlt's packages.

uv owns it (the root pyproject's ``[tool.uv.workspace] members`` globs); the version
check, the architecture tests and the noxfile read it here or from the same table, so a
package made by ``hlt new`` is checked with no list to edit.
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


def report(problems: list[str], clean: str) -> int:
    """The report of every check script: one ``error:`` line per problem on stderr, else
    ``clean`` on stdout; returns the exit status (1 with problems)."""
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not problems:
        print(clean)
    return 1 if problems else 0


def load_toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def members(root: Path) -> list[Path]:
    """The folder of every workspace member (one holding a pyproject.toml), sorted."""
    patterns = load_toml(root / "pyproject.toml")["tool"]["uv"]["workspace"]["members"]
    found = {path for pattern in patterns for path in root.glob(pattern)}
    return sorted(path for path in found if (path / "pyproject.toml").is_file())


def member_projects(root: Path) -> dict[str, dict]:
    """name -> [project] table of every workspace member."""
    projects = {}
    for folder in members(root):
        project = load_toml(folder / "pyproject.toml")["project"]
        projects[project["name"]] = project
    return projects
