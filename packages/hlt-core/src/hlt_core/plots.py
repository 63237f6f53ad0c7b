"""Pictures of a run and of a sweep, drawn from what was logged (matplotlib, optional).

Drawing is a convenience: without matplotlib (the ``hlt-core[plots]`` extra) or without
a metrics log it is skipped with a log line, never failing a run that trained.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib not installed (pip install 'hlt-core[plots]'): no PNG drawn")
        return None
    return plt


def read_metrics_csv(path: Path) -> dict[str, list[tuple[int, float]]]:
    """Lightning's CSV log as ``{metric: [(step, value), ...]}`` (empty cells skipped)."""
    series: dict[str, list[tuple[int, float]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                series.setdefault(key, []).append((step, float(value)))
    return series


def learning_curve(metrics_csv: Path, out: Path) -> Path | None:
    """Loss curves (train per step and per epoch, val per epoch) from the CSV log."""
    if not metrics_csv.is_file():
        log.info("no %s: no learning curve drawn", metrics_csv)
        return None
    series = read_metrics_csv(metrics_csv)
    losses = {k: v for k, v in series.items() if k.endswith("loss") and not k.startswith("test")}
    plt = _pyplot()
    if plt is None or not losses:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, points in sorted(losses.items()):
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def compare_runs(rows: Sequence[Mapping[str, object]], metric: str, out: Path) -> Path | None:
    """A bar per job of ``metric`` (failed jobs shown as empty bars)."""
    plt = _pyplot()
    if plt is None or not rows:
        return None
    labels = [str(row.get("job")) for row in rows]
    values = []
    for row in rows:
        value = row.get(metric)
        values.append(float(value) if isinstance(value, int | float) else math.nan)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(rows) + 2), 4))
    ax.bar(labels, [0 if math.isnan(v) else v for v in values], color="tab:blue")
    for label, value in zip(labels, values, strict=True):
        if math.isnan(value):
            ax.annotate("failed", (label, 0), ha="center", va="bottom", color="tab:red")
    ax.set_xlabel("job")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per job")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
