"""Nothing lost, nothing run that should not be: atomic writes and a strict results.json
(issue 16)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from helpers import QUICK, compose_run
from hlt_core import atomic
from hlt_core.records import results_json
from hlt_core.run import run, write_results


def strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_run_saves_checkpoints_atomically_and_clears_a_killed_runs_temporaries(
    run_dir, monkeypatch
):
    stale = run_dir / "checkpoints" / ".last.ckpt.4242-0badc0de.partial"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a checkpoint")
    written: list[str] = []

    def recording(path):
        written.append(Path(path).name)
        return real(path)

    real = atomic.atomic_file
    monkeypatch.setattr(atomic, "atomic_file", recording)
    run(compose_run([*QUICK, "test=false"], run_dir))
    assert not stale.exists()
    assert "last.ckpt" in written and any(name.startswith("best-") for name in written)
    assert "results.json" in written
    assert not list(run_dir.rglob("*.partial"))


def test_results_json_is_strict_json_and_names_the_non_finite_values(tmp_path):
    write_results(tmp_path, {"val/loss": math.nan, "test/loss": -math.inf, "test/acc": 0.5})
    results = strict_json((tmp_path / "results.json").read_text())
    assert results["val/loss"] is None and results["test/loss"] is None
    assert results["test/acc"] == 0.5
    assert results["nonfinite"] == {"val/loss": "nan", "test/loss": "-inf"}
    assert "nonfinite" not in strict_json(results_json({"val/loss": 1.0}))
