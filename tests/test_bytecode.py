"""A fresh machine compiles the workspace's bytecode once, at sync (issue 24): where
PYTHONDONTWRITEBYTECODE=1 is set (containers, clusters, CI machines) Python would
otherwise compile every module again on every start."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import tomllib

from helpers import REPO


def test_the_workspace_asks_uv_to_compile_bytecode():
    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]
    assert settings["compile-bytecode"] is True


def _install_six(venv: Path, cwd: Path) -> list[Path]:
    """Install one small wheel (from uv's cache, no network) into ``venv`` with uv run in
    ``cwd``, so that the settings of the project there apply; its ``.pyc`` files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_COMPILE")}
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([uv, "venv", "-q", str(venv)], check=True, env=env, cwd=cwd)
    subprocess.run(
        [uv, "pip", "install", "-q", "--offline", "--no-deps", "--reinstall",
         "--python", str(python), "six"],
        check=True, env=env, cwd=cwd,
    )  # fmt: skip
    return list(venv.rglob("six*.pyc"))


def test_an_install_with_the_workspace_settings_leaves_pyc_files(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert _install_six(tmp_path / "venv", outside) == []  # uv's own default: lazy
    assert _install_six(tmp_path / "venv", REPO)  # the workspace's: compiled at install
