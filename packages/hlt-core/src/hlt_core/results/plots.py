"""Pictures of a run and of a sweep, drawn from what was logged (matplotlib, optional).

Drawing is a convenience: without matplotlib (the ``hlt-core[plots]`` extra) or without
a metrics log it is skipped with a log line, never failing a run that trained.
"""

from __future__ import annotations

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


SPLITS = ("train", "val")


def curve_panels(history: Sequence[Mapping[str, float]]) -> dict[str, dict[str, list]]:
    """``{panel: {split: [(step, value), ...]}}``: losses in one panel, then one panel per
    task metric (``acc``, ``f1``, ``ppl``...), each with its train and val series."""
    panels: dict[str, dict[str, list]] = {}
    for row in history:
        for key, value in row.items():
            split, _, name = key.partition("/")
            if split not in SPLITS or not name:
                continue
            panel = "loss" if name == "loss" else name
            panels.setdefault(panel, {}).setdefault(split, []).append((row["step"], value))
    return dict(sorted(panels.items(), key=lambda item: (item[0] != "loss", item[0])))


def spans_orders(series: Mapping[str, list]) -> bool:
    """Whether values are all positive and span two or more orders of magnitude (one
    large first loss flattens a linear axis)."""
    values = [value for points in series.values() for _, value in points]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 100


def learning_curve(history: Sequence[Mapping[str, float]], out: Path) -> Path | None:
    """Losses and the task's metrics per split against steps, one panel each, from the
    run's own metric history (``hlt_core.training.callbacks.MetricHistory``)."""
    panels = curve_panels(history)
    plt = _pyplot()
    if plt is None or not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items(), strict=True):
        for split, points in series.items():
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, marker="o" if len(points) < 30 else None, label=split)
        if spans_orders(series):
            ax.set_yscale("log")
        ax.set_title(panel)
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def best_job(
    rows: Sequence[Mapping[str, object]], metric: str, direction: str | None
) -> object | None:
    """The job with the best ``metric``: the lowest for ``direction="min"``, the highest for
    ``"max"`` (``hlt_core.jobs.sweeps.metric_direction``); none when the direction is unknown.
    Only jobs of the sweep's own recipe compete."""
    if direction not in ("min", "max"):
        return None
    scores = {}
    for row in rows:
        value = row.get(metric)
        if row.get("recipe", "same") != "same":
            continue
        if isinstance(value, int | float) and not math.isnan(value):
            scores[row["job"]] = float(value)
    if not scores:
        return None
    return (min if direction == "min" else max)(scores, key=scores.__getitem__)


def value_limits(values: Sequence[float]) -> tuple[float, float] | None:
    """Axis limits around the finite ``values`` with a margin of a tenth of their range
    (of their size when all are equal): 0.30 against 0.35 fills the axis, not a sliver
    of bars that start at 0."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    margin = 0.1 * (high - low) or 0.05 * abs(high) or 0.05
    return low - margin, high + margin


def compare_runs(
    rows: Sequence[Mapping[str, object]],
    metric: str,
    out: Path,
    labels: Sequence[str] | None = None,
    direction: str | None = None,
) -> Path | None:
    """One point per job of ``metric``, jobs named by ``labels`` (their swept values; the
    job numbers by default), the best in orange, failed jobs marked at the axis' start."""
    plt = _pyplot()
    if plt is None or not rows:
        return None
    names = list(labels) if labels is not None else [str(row.get("job")) for row in rows]
    best = best_job(rows, metric, direction)
    values = []
    for row in rows:
        value = row.get(metric)
        values.append(float(value) if isinstance(value, int | float) else math.nan)
    limits = value_limits(values) or (0.0, 1.0)
    positions = list(range(len(rows)))[::-1]  # the first job on top
    width = 5 + 0.08 * max(len(name) for name in names)  # inches: room for the labels
    fig, ax = plt.subplots(figsize=(width, 1.2 + 0.35 * len(rows)))
    for row, y, value in zip(rows, positions, values, strict=True):
        if math.isnan(value):
            ax.annotate("failed", (limits[0], y), va="center", color="tab:red")
        else:
            color = "tab:orange" if row.get("job") == best else "tab:blue"
            ax.plot([limits[0], value], [y, y], color=color, alpha=0.4)
            ax.plot([value], [y], "o", color=color)
    ax.set_xlim(*limits)
    ax.set_yticks(positions, names)
    ax.set_xlabel(metric)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{metric} per job (best: job {best})")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
