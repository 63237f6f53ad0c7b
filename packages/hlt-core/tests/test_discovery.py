import pkgutil
import subprocess
import sys
from importlib.metadata import distribution

from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

import hydra_plugins
from hlt_core.discovery import config_sources, locate_package_dir
from hydra_plugins.hlt_searchpath.hlt_searchpath import HltSearchPathPlugin


def test_finds_its_own_configs_by_entry_point():
    sources = {source.name: source for source in config_sources()}
    core = sources["hlt-core"]
    assert core.module == "hlt_core.configs"
    assert (core.path / "optimizer" / "adamw.yaml").is_file()


def test_missing_package_is_none():
    assert locate_package_dir("no_such_package_xyz.configs") is None
    assert locate_package_dir("hlt_core.no_such_folder") is None


def test_discovery_and_schemas_import_neither_torch_nor_lightning():
    script = (
        "import sys, hlt_core.discovery, hlt_core.schemas\n"
        "hlt_core.discovery.config_sources()\n"
        "hlt_core.schemas.register_schemas()\n"
        "heavy = [m for m in ('torch', 'lightning') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_searchpath_plugin_is_declared_where_both_hydra_versions_look():
    """Hydra 1.3 scans the hydra_plugins namespace package; Hydra 1.4 also loads the
    ``hydra.plugins`` entry points, its only way in import-hook editable installs."""
    scanned = {
        name for _, name, _ in pkgutil.walk_packages(hydra_plugins.__path__, "hydra_plugins.")
    }
    assert HltSearchPathPlugin.__module__ in scanned
    # by module and name: Hydra 1.3's scan executes the module again, so once a run has
    # scanned, the class an entry point loads is a second object of the same class
    declared = distribution("hlt-core").entry_points.select(group="hydra.plugins")
    loaded = [entry.load() for entry in declared]
    assert [(cls.__module__, cls.__qualname__) for cls in loaded] == [
        (HltSearchPathPlugin.__module__, HltSearchPathPlugin.__qualname__)
    ]
    found = Plugins.instance().discover(SearchPathPlugin)
    assert "HltSearchPathPlugin" in [plugin.__name__ for plugin in found]
