"""The test matrix.

`uv run nox` runs the default sessions: what CI runs (`.ci/run`), about 20 minutes on
2 cores. `uv run nox -l` lists every session; `uv run nox -s NAME` runs one;
`uv run nox -t matrix` runs each package's tests on Python 3.10 to 3.13 (the first run
downloads torch for each Python). Sessions install from the committed `uv.lock` with
`uv sync --frozen`, except `lowest`, which resolves each package's declared minimums.
`uv run nox -s hydra14` runs every test against the Hydra 1.4 release candidate.
"""

from __future__ import annotations

import glob
import os
import sys
import tempfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "scripts"))
from workspace import members  # noqa: E402  (scripts/ is not a package)

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

DEFAULT_PYTHON = "3.11"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# The workspace members as uv knows them (scripts/workspace.py, the one reader of that
# table); the libraries, tested alone, are the members under packages/.
MEMBERS = [member.relative_to(ROOT) for member in members(ROOT)]
PACKAGES = [member.name for member in MEMBERS if member.parent.name == "packages"]

# pyenv's interpreters are not on PATH unless selected; make them findable by uv.
os.environ["PATH"] = os.pathsep.join(
    [*sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin"))), os.environ["PATH"]]
)

nox.options.sessions = [
    "lint",
    "types",
    "architecture",
    "build",
    "workspace",
    f"package-{DEFAULT_PYTHON}",
]


def sync(session: nox.Session, *args: str) -> None:
    """Install from uv.lock into this session's venv."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        f"--python={session.virtualenv.location}",
        *args,
        # .pyc files are written at install by the workspace's `compile-bytecode` setting
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )


@nox.session(python=DEFAULT_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=DEFAULT_PYTHON)
def types(session: nox.Session) -> None:
    """mypy over every package and the app: zero errors."""
    sync(session)
    session.run("mypy")


@nox.session(python=DEFAULT_PYTHON)
def architecture(session: nox.Session) -> None:
    """Package boundaries (import-linter) and declared dependencies (deptry)."""
    sync(session)
    session.run("lint-imports")
    for member in MEMBERS:
        with session.chdir(member):
            session.run("deptry", ".")


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """Every wheel builds, installs alone in a clean venv and imports.

    Also checks that wheels pin their hlt-* requirements to ranges and that those ranges
    hold."""
    sync(session, "--only-group", "dev")
    session.run("python", "scripts/check_versions.py")
    with tempfile.TemporaryDirectory() as tmp:
        dist = Path(tmp, "dist")
        session.run("uv", "build", "--all-packages", "--wheel", "--out-dir", str(dist))
        session.run("python", "scripts/check_wheels.py", str(dist))
        for wheel in sorted(dist.glob("*.whl")):
            venv = Path(tmp, wheel.name.split("-")[0])
            session.run("uv", "venv", "--quiet", "--python", DEFAULT_PYTHON, str(venv))
            python = str(venv / "bin" / "python")
            # the wheel plus its dependencies; hlt-* from the other built wheels
            session.run(
                "uv",
                "pip",
                "install",
                "--quiet",
                "--python",
                python,
                "--find-links",
                str(dist),
                str(wheel),
            )
            module = wheel.name.split("-")[0]
            session.run(python, "-c", f"import {module}; print('{module} imports')")


@nox.session(python=DEFAULT_PYTHON)
def workspace(session: nox.Session) -> None:
    """Every test: packages, the trainer app and the integration tests."""
    sync(session)
    session.run("pytest", *session.posargs)


@nox.session(python=DEFAULT_PYTHON)
def integration(session: nox.Session) -> None:
    """The trainer end to end, as a user runs it: the default command in a fresh folder."""
    sync(session)
    session.run("pytest", "tests", "apps/trainer/tests", *session.posargs)


@nox.session(python=PYTHONS, tags=["matrix"])
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def package(session: nox.Session, package: str) -> None:
    """One package's tests in a venv holding only that package's dependencies.

    The package's line coverage is reported."""
    sync(session, "--package", package)
    cover = f"--cov={package.replace('-', '_')}"
    tests = f"packages/{package}/tests"
    session.run(
        "pytest", tests, "-p", "no:cacheprovider", cover, "--cov-report=term", *session.posargs
    )


@nox.session(python=PYTHONS, tags=["matrix"])
def sweep_plugins(session: nox.Session) -> None:
    """hlt's Optuna sweeper and the pinned launcher plugins run a sweep on this Python.

    The sweeper without torch: hlt-core and the app are installed without their deps."""
    project = nox.project.load_toml("apps/trainer/pyproject.toml")["project"]
    hydra_core = next(d for d in project["dependencies"] if d.startswith("hydra-core"))
    extras = project["optional-dependencies"]
    session.install(hydra_core, *extras["optuna"], *extras["joblib"], *extras["submitit"])
    session.install("--no-deps", "-e", "packages/hlt-core", "-e", "apps/trainer")
    app = "tests/sweep_plugins_app.py"
    with tempfile.TemporaryDirectory() as out:
        session.run(
            "python",
            app,
            "-m",
            "+x=interval(0,4)",
            "hydra/sweeper=hlt_optuna",
            "hydra.sweeper.n_trials=3",
            f"hydra.sweeper.storage=sqlite:///{out}/optuna.db",
            f"hydra.sweep.dir={out}/optuna",
        )
        session.run(
            "python", app, "-m", "+x=1,3", "hydra/launcher=joblib", f"hydra.sweep.dir={out}/joblib"
        )
        session.run(
            "python",
            app,
            "-m",
            "+x=1",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=5",
            f"hydra.sweep.dir={out}/submitit",
        )


@nox.session(python="3.13")
def hydra14(session: nox.Session) -> None:
    """Every test against hydra-core 1.4.0rc3.

    On the newest Python both Hydras support: the lock, then the release candidate over it
    (the override replaces hlt's `<1.4` pin). hlt's Optuna sweeper needs no
    hydra-optuna-sweeper; Optuna 4 comes from the lock."""
    sync(session)
    overrides = Path(session.create_tmp(), "hydra14-overrides.txt")
    overrides.write_text("hydra-core==1.4.0rc3\n")
    session.run_install(
        "uv",
        "pip",
        "install",
        f"--python={session.virtualenv.location}",
        f"--overrides={overrides}",
        "hydra-core",
        env={"UV_COMPILE_BYTECODE": "1"},
    )
    session.run(
        "python", "-c", "import hydra, optuna; print(hydra.__version__, optuna.__version__)"
    )
    session.run("pytest", *session.posargs)


@nox.session(python=DEFAULT_PYTHON, tags=["lowest"])
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def lowest(session: nox.Session, package: str) -> None:
    """One package's tests against the lowest versions its pyproject allows."""
    session.install("--resolution", "lowest-direct", "-e", f"packages/{package}", "pytest>=8")
    session.run("pytest", f"packages/{package}/tests", "-p", "no:cacheprovider", *session.posargs)
