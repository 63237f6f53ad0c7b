"""The test matrix. `uv run nox` runs the default sessions (what CI runs);
`uv run nox -l` lists them all; `uv run nox -s NAME` runs one.

Every session installs from the committed `uv.lock` with `uv sync --frozen` into its
own venv, so what is tested is exactly what is locked.
"""

from __future__ import annotations

import glob
import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

DEFAULT_PYTHON = "3.11"
PACKAGES = ["hlt-core", "hlt-data", "hlt-models", "hlt-tasks"]

# pyenv's interpreters are not on PATH unless selected; make them findable by uv.
os.environ["PATH"] = os.pathsep.join(
    [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin"))), os.environ["PATH"]]
)

nox.options.sessions = ["lint", "architecture", "workspace", "package"]


def sync(session: nox.Session, *args: str) -> None:
    """Install from uv.lock into this session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        f"--python={session.virtualenv.location}",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def architecture(session: nox.Session) -> None:
    """Package boundaries (import-linter) and declared dependencies (deptry)."""
    sync(session)
    session.run("lint-imports")
    for package in [*(f"packages/{p}" for p in PACKAGES), "apps/trainer"]:
        with session.chdir(package):
            session.run("deptry", ".")


@nox.session(python=DEFAULT_PYTHON)
def workspace(session: nox.Session) -> None:
    """Every test: packages, the trainer app and the integration tests."""
    sync(session)
    session.run("pytest", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def package(session: nox.Session, package: str) -> None:
    """One package's tests in a venv holding only that package's dependencies."""
    sync(session, "--package", package)
    session.run("pytest", f"packages/{package}/tests", "-p", "no:cacheprovider", *session.posargs)
