"""Building wheels and throwaway environments for packaging tests, with uv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from workspace import members

REPO = Path(__file__).resolve().parents[1]


def copy_pyprojects(target: Path) -> Path:
    """The root's and every workspace member's pyproject.toml, at their places in ``target``
    (enough for the version check and for ``hlt new``)."""
    for folder in [REPO, *members(REPO)]:
        pyproject = target / (folder / "pyproject.toml").relative_to(REPO)
        pyproject.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folder / "pyproject.toml", pyproject)
    return target


def uv() -> str:
    """The uv binary: the one running us (``uv run`` sets ``UV``), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise RuntimeError("these tests build wheels with uv; install it with `pip install uv`")
    return found


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return done


def build_wheel(project: Path, out: Path) -> Path:
    """Build ``project``'s wheel into ``out`` and return its path."""
    run(uv(), "build", "--wheel", "--quiet", "--out-dir", out, project)
    (wheel,) = out.glob("*.whl")
    return wheel
