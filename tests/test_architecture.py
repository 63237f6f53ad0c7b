"""The package boundaries of docs/architecture.md, checked: imports and declared
dependencies. (The models wheel working with torch alone is shown by tests/test_export.py.)

The packages are the workspace members (scripts/workspace.py). The import-linter
contracts are static TOML, so they cannot read that list: they stay the one place that
states the rules, and a test here fails when a member is missing from them."""

from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import torch

from build_tools import REPO
from workspace import load_toml, members

MEMBERS = [str(member.relative_to(REPO)) for member in members(REPO)]


def module_name(member: str) -> str:
    return load_toml(REPO / member / "pyproject.toml")["project"]["name"].replace("-", "_")


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([lint_imports], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("package", MEMBERS)
def test_declared_dependencies_match_imports(package):
    done = subprocess.run(
        [sys.executable, "-m", "deptry", "."],
        capture_output=True,
        text=True,
        cwd=REPO / package,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_member_is_bound_by_the_import_contracts():
    """Each member is a root package, and each library is forbidden to import every other
    member (DESIGN: the packages import nothing from each other; nothing imports an app)."""
    linter = load_toml(REPO / "pyproject.toml")["tool"]["importlinter"]
    modules = {member: module_name(member) for member in MEMBERS}
    assert set(modules.values()) <= set(linter["root_packages"])
    forbidden = {
        (source, target)
        for contract in linter["contracts"]
        if contract["type"] == "forbidden"
        for source in contract["source_modules"]
        for target in contract["forbidden_modules"]
    }
    libraries = [modules[m] for m in MEMBERS if m.startswith("packages/")]
    missing = [
        pair
        for pair in itertools.permutations(modules.values(), 2)
        if pair[0] in libraries and pair not in forbidden
    ]
    assert missing == [], f"add to [tool.importlinter] contracts: {missing}"


def resolved(alias: Any) -> Any:
    """``alias`` with its string parts evaluated: hlt-core names torch's types as strings,
    so that the config-only commands import no torch."""
    args = tuple(
        eval(arg, {"torch": torch}) if isinstance(arg, str) else arg for arg in get_args(alias)
    )
    return get_origin(alias)[args]


def test_the_batch_type_restated_by_tasks_and_core_is_the_data_s():
    """hlt_data.batch owns the batch type; the packages that may not import it restate it
    read-only, with the same key and value types."""
    from hlt_core import contracts
    from hlt_data import batch
    from hlt_tasks import base
    from hlt_tasks.base import Batch as TaskBatch

    assert get_origin(batch.Batch) is dict
    assert resolved(contracts.Batch) == TaskBatch == Mapping[get_args(batch.Batch)]
    assert get_args(batch.Batch) == (str, torch.Tensor)
    for key in ("INPUTS", "TARGETS", "MASK"):
        assert getattr(contracts, key) == getattr(base, key) == getattr(batch, key)


def names_something(dotted: str) -> bool:
    """A module, or an attribute of one (``hlt_core.run.run_or_exit``)."""
    try:
        if importlib.util.find_spec(dotted) is not None:
            return True
    except ModuleNotFoundError:
        pass
    module, _, attribute = dotted.rpartition(".")
    return bool(module) and hasattr(importlib.import_module(module), attribute)


def test_docs_architecture_lists_hlt_core_s_layers_as_the_contract_does():
    """The table of hlt-core's layers in docs/architecture.md: each row's first cell names
    the modules of one layer of the import-linter contract, in the contract's order."""
    linter = load_toml(REPO / "pyproject.toml")["tool"]["importlinter"]
    (contract,) = [c for c in linter["contracts"] if c["type"] == "layers"]
    layers = [
        sorted(f"{container}.{name.strip()}" for name in re.split(r"[|:]", layer))
        for container in contract["containers"]
        for layer in contract["layers"]
    ]
    page = (REPO / "docs" / "architecture.md").read_text()
    section = page.split("## Inside hlt-core")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    assert [sorted(re.findall(r"`(hlt_core\.\w+)`", row)) for row in rows] == layers


def test_the_modules_and_files_docs_architecture_names_exist():
    page = (REPO / "docs" / "architecture.md").read_text()
    modules = set(re.findall(r"`(hlt_\w+(?:\.\w+)*)", page))
    files = set(re.findall(r"`((?:configs|scripts|tests)/[\w/.-]+|noxfile\.py)`", page))
    assert "hlt_core.run" in modules and "configs/paths/default.yaml" in files
    missing = [m for m in sorted(modules) if not names_something(m)]
    missing += [f for f in sorted(files) if not (REPO / f).is_file()]
    assert missing == []
