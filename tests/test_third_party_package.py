"""The README's worked example: a package outside the workspace adds `model=toy`."""

from __future__ import annotations

import importlib
import json
import sys

from build_tools import build_wheel, run, uv
from helpers import QUICK, REPO, compose_run
from hlt_core.discovery import config_sources
from hlt_core.run import run as train


def test_an_installed_outside_package_trains_with_model_equals_its_name(tmp_path, run_dir):
    wheel = build_wheel(REPO / "examples" / "hlt-toy", tmp_path / "dist")
    site = tmp_path / "site"
    run(uv(), "pip", "install", "--quiet", "--no-deps", "--target", site, wheel)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        assert "hlt-toy" in [source.name for source in config_sources()]
        cfg = compose_run(["model=toy", *QUICK], run_dir)
        assert cfg.model._target_ == "hlt_toy.ToyModel"
        metrics = train(cfg)
        assert "test/acc" in metrics
        record = json.loads((run_dir / "results.json").read_text())
        assert record["version/hlt-toy"] == "0.1.0"  # found by discovery, not listed
        assert sys.modules["hlt_toy"].__file__.startswith(str(site))
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("hlt_toy", None)
        importlib.invalidate_caches()
    assert "hlt-toy" not in [source.name for source in config_sources()]
