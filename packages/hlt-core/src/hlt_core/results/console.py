"""Terminal output: the resolved config as a tree, one handler for every log line, and
the block that ends a run."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

FIRST = ("data", "model", "task", "optimizer", "scheduler", "trainer")


def print_config_tree(cfg: DictConfig, order: Sequence[str] = FIRST) -> None:
    """One branch per top-level key, components first, each as resolved YAML."""
    tree = rich.tree.Tree("config", style="bold")
    keys = [k for k in order if k in cfg] + [k for k in cfg if k not in order]
    for key in keys:
        branch = tree.add(str(key), style="bold cyan")
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=True) if OmegaConf.is_config(value) else repr(value)
        # word_wrap: a value wider than the console (a pipe is 80 columns) wraps, never cut
        branch.add(rich.syntax.Syntax(text.rstrip(), "yaml", theme="ansi_dark", word_wrap=True))
    rich.print(tree)


# Messages that only add noise to every run: a product tip, and a note that the summary
# callback we configure replaces Lightning's default one.
NOISE = ("💡 Tip:", "Skipping setting a default `ModelSummary`")


def _not_noise(record: logging.LogRecord) -> bool:
    return not any(part in record.getMessage() for part in NOISE)


def route_lightning_logging() -> None:
    """Lightning's messages through the root handlers (Hydra's console and app.log) only.

    Lightning gives its loggers their own stderr handler when imported before logging is
    configured, which printed each message twice; it also warns about a deprecated pytree
    API inside its own code and, under mixed precision, that its model summary counts
    32-bit weights (which they are): nothing a user can act on.
    """
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        route_library_logging(name)
        logger = logging.getLogger(name)
        if _not_noise not in logger.filters:
            logger.addFilter(_not_noise)
    for handler in logging.getLogger().handlers:
        if _not_noise not in handler.filters:
            handler.addFilter(_not_noise)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # mixed precision keeps the weights in float32, so the summary's 32-bit size is right
    warnings.filterwarnings(
        "ignore", message=r"Precision (bf16|16)-mixed is not supported by the model summary"
    )


def route_library_logging(name: str) -> None:
    """The messages of library logger ``name`` through the root handlers (the console and
    app.log) only, as every other line. Lightning, Optuna and MLflow each give theirs a
    handler of its own when imported: Lightning's printed each message twice, Optuna's
    wrote ANSI colours into pipes and log files, MLflow's put notes such as the creation
    of its database tables on stderr. Call after the library is imported."""
    logger = logging.getLogger(name)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True


def report_end(log: logging.Logger, record: Mapping[str, Any], paths: Mapping[str, Any]) -> None:
    """The block that ends every run, through logging so that app.log holds it too:
    status, run folder, the key metrics, the epochs early stopping saved, and where the
    outputs are."""
    metrics = {k: v for k, v in record.items() if k.startswith(("val/", "test/"))}
    lines = [f"status: {record.get('status')}", f"run folder: {record.get('run_dir')}"]
    lines += [f"{key}: {value:.4g}" for key, value in sorted(metrics.items()) if value is not None]
    if "epochs_saved" in record:
        lines.append(
            f"early stopping: stopped after {record['stopped_early_epochs']} epochs, "
            f"{record['epochs_saved']} saved (callbacks.early_stopping=null trains them all)"
        )
    lines += [f"{name}: {path}" for name, path in paths.items() if path]
    log.info("run finished\n  " + "\n  ".join(lines))
