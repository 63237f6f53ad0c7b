"""Find the Hydra config folders that installed packages declare (``hlt.configs``).

Each entry point's value names a package holding config group folders, for example
``hlt_models.configs``. We locate it with ``importlib.util.find_spec`` on the top-level
package, which finds but does not execute it, so discovery never imports torch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "hlt.configs"


@dataclass(frozen=True)
class ConfigSource:
    name: str  # the entry point's name, shown as the provider in `--info searchpath`
    module: str  # the entry point's value, e.g. "hlt_models.configs"
    path: Path  # the folder holding the config groups


def locate_package_dir(module: str) -> Path | None:
    """The folder of ``module`` (dotted), found without importing it; None if absent."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location).joinpath(*rest)
        if candidate.is_dir():
            return candidate
    return None


def discover() -> tuple[list[ConfigSource], list[str]]:
    """Every installed ``hlt.configs`` entry point whose folder exists (sorted by name),
    and those naming a package that cannot be found (``name = value``), from one read of
    the entry points: each read scans every installed distribution's metadata."""
    sources, missing = [], []
    for ep in entry_points(group=GROUP):
        path = locate_package_dir(ep.value)
        if path is None:
            missing.append(f"{ep.name} = {ep.value}")
        else:
            sources.append(ConfigSource(ep.name, ep.value, path))
    return sorted(sources, key=lambda source: source.name), sorted(missing)


def config_sources() -> list[ConfigSource]:
    """Every installed ``hlt.configs`` entry point whose folder exists, sorted by name."""
    return discover()[0]
