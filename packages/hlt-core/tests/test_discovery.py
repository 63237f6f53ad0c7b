import subprocess
import sys

from hlt_core.discovery import config_sources, locate_package_dir


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
