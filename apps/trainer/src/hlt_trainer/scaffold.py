"""`hlt new {model,task,data} NAME`: a new workspace package holding one component.

Writes ``packages/hlt-NAME/`` (pyproject with its ``hlt.configs`` entry point, ``src/``,
a config, a working minimal component and its test) and adds the package to the root
project's dependencies, so `uv run apps/trainer GROUP=NAME` picks it up at once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

from hlt_trainer import templates

KINDS = {"model": "model", "task": "task", "data": "data"}  # kind -> config group
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(Exception):
    """A bad name or a clash with something that exists; the message names it."""


def class_name(name: str, kind: str) -> str:
    suffix = {"model": "Model", "task": "Task", "data": "Sampler"}[kind]
    return "".join(part.capitalize() for part in name.split("_")) + suffix


def existing_options(root: Path, group: str) -> set[str]:
    """Options of ``group`` already shipped by the workspace's packages and configs."""
    folders = [root / "configs" / group, *root.glob(f"packages/*/src/*/configs/{group}")]
    return {path.stem for folder in folders for path in folder.glob("*.yaml")}


def hlt_requirement(name: str) -> str:
    """``name`` with the range its installed version is compatible with: the same minor
    before 1.0 (``hlt-data>=0.3,<0.4``), the same major after (``>=1.2,<2``), so that a
    new package never pins a version the workspace has left."""
    major, minor = (int(part) for part in version(name).split(".")[:2])
    if major == 0:
        return f"{name}>=0.{minor},<0.{minor + 1}"
    return f"{name}>={major}.{minor},<{major + 1}"


def append_to_list(text: str, key: str, item: str, where: Path) -> str:
    """``text`` with ``"item"`` appended to the first top-level TOML list ``key = [...]``."""
    found = re.search(rf"^{key} = \[(.*?)\]", text, flags=re.M | re.S)
    if found is None:
        raise ScaffoldError(f"{where}: no list {key!r}")
    inner = found.group(1).rstrip().rstrip(",")
    return text[: found.start(1)] + f'{inner}, "{item}"' + text[found.end(1) :]


def add_to_root_project(root: Path, package: str) -> None:
    """Make the root project depend on ``package`` as a workspace member, and put its
    sources under mypy (the `types` session) like every other package's."""
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    sources = re.search(r"^\[tool\.uv\.sources\]\n", text, flags=re.M)
    if sources is None:
        raise ScaffoldError(f"{pyproject}: no [tool.uv.sources]")
    text = text[: sources.end()] + f"{package} = {{ workspace = true }}\n" + text[sources.end() :]
    text = append_to_list(text, "dependencies", package, pyproject)
    if re.search(r"^\[tool\.mypy\]", text, flags=re.M):
        for key in ("files", "mypy_path"):
            text = append_to_list(text, key, f"packages/{package}/src", pyproject)
    pyproject.write_text(text)


def new_package(root: Path, kind: str, name: str) -> Path:
    """Write the package and register it; returns its folder."""
    if kind not in KINDS:
        raise ScaffoldError(f"kind {kind!r} is unknown; choose one of {sorted(KINDS)}")
    if not NAME.match(name):
        raise ScaffoldError(
            f"name {name!r} is not valid: use lower case letters, digits and _ (e.g. my_net)"
        )
    group = KINDS[kind]
    package, module = f"hlt-{name.replace('_', '-')}", f"hlt_{name}"
    folder = root / "packages" / package
    if folder.exists():
        raise ScaffoldError(f"{folder} exists already")
    if name in existing_options(root, group):
        raise ScaffoldError(f"{group}={name} exists already; pick another name")
    values = {
        "name": name,
        "package": package,
        "module": module,
        "cls": class_name(name, kind),
        "kind": kind,
        "group": group,
        "dependencies": ", ".join(
            f'"{requirement}"'
            for requirement in [
                *templates.DEPENDENCIES[kind],
                *map(hlt_requirement, templates.HLT_DEPENDENCIES[kind]),
            ]
        ),
    }
    entry_point = templates.MODEL_ENTRY_POINT.format(**values) if kind == "model" else ""
    values["model_entry_point"] = entry_point
    files = {
        "pyproject.toml": templates.PYPROJECT,
        "README.md": templates.README,
        "CHANGELOG.md": templates.CHANGELOG,
        f"src/{module}/__init__.py": templates.CODE[kind],
        f"src/{module}/py.typed": "",
        f"src/{module}/configs/__init__.py": "",
        f"src/{module}/configs/{group}/{name}.yaml": templates.CONFIG[kind],
        f"tests/test_{name}.py": templates.TEST[kind],
    }
    try:
        for relative, template in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values))
        add_to_root_project(root, package)
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def lock(root: Path) -> None:
    """Refresh uv.lock so that the next `uv run` installs the new package."""
    uv = shutil.which("uv")
    if uv is not None:
        subprocess.run([uv, "lock", "--quiet"], cwd=root, check=True)
