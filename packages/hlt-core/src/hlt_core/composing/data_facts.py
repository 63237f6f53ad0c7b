"""Data facts flow one way: the built datamodule states what the data is, and the run
writes it into ``cfg.data.dims`` before the model and task are built, so that their
configs read ``${data.dims.input_dim}`` instead of a number typed by hand.

The filled config is what checkpoints and exports store, so a checkpoint evaluated or
exported later sees the values training saw.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationKeyError, MissingMandatoryValue

from hlt_core.contracts import DataModule
from hlt_core.errors import UserError
from hlt_core.hydra_compat import instantiate

FILLED = "dims"  # the key of cfg.data that the run fills; never a datamodule argument
FROM_DATA = "<from data>"  # a filled value, shown where the data has not been built


def unstated_dims(cfg: DictConfig) -> list[str]:
    """The ``data.dims`` keys the config reads but does not state: the run fills them from
    the built data, so a config printed before (``--cfg job --resolve``) shows them as
    ``FROM_DATA``."""
    read = re.findall(r"\bdata\.dims\.(\w+)", OmegaConf.to_yaml(cfg))  # unresolved
    stated = cfg.data.get(FILLED) or {}
    return [key for key in dict.fromkeys(read) if key not in stated]


def check_data_made(cfg: DictConfig) -> None:
    """Data that a script writes (``data_made_by``, set by the experiments that need it)
    names that script when its ``data.path`` is missing."""
    path, made_by = cfg.data.get("path"), cfg.get("data_made_by")
    if made_by and path and not Path(path).exists():
        raise UserError(f"data.path={path}: no such file or folder; write it with: {made_by}")


def build_datamodule(data: DictConfig) -> DataModule:
    """Instantiate ``cfg.data`` (without ``dims``, which a saved config holds filled); it
    must keep hlt's data promises (``hlt_core.contracts.DataModule``)."""
    try:
        node = OmegaConf.to_container(data, resolve=True, throw_on_missing=True)
    except MissingMandatoryValue as error:
        raise UserError(f"{error.full_key} is required: set {error.full_key}=<value>") from None
    assert isinstance(node, dict)
    node.pop(FILLED, None)
    datamodule = instantiate(node)
    if not isinstance(datamodule, DataModule):
        raise UserError(
            f"data {type(datamodule).__name__} does not state what hlt reads of a datamodule "
            "(hlt_core.contracts.DataModule: dims, data_facts, row_ids, true_targets, "
            "example_batch); subclass hlt_data.KeyedDataModule"
        )
    return datamodule


def fill_dims(cfg: DictConfig, datamodule: DataModule) -> dict[str, Any]:
    """Set ``cfg.data.dims`` from ``datamodule.dims``; returns the values filled."""
    dims = datamodule.dims
    if not isinstance(dims, Mapping):
        raise UserError(
            f"data {type(datamodule).__name__} states no `dims` mapping; models and tasks "
            "read their data sizes from it"
        )
    filled = dict(dims)
    with open_dict(cfg):
        cfg.data[FILLED] = filled
    return filled


def check_filled(cfg: DictConfig, groups: tuple[str, ...] = ("model", "task")) -> None:
    """Every ``${data.dims.*}`` the model and task read must be one the data stated."""
    stated = sorted(cfg.data.get(FILLED) or {})
    for group in groups:
        try:
            OmegaConf.to_container(cfg[group], resolve=True)
        except InterpolationKeyError as error:
            found = re.search(r"Interpolation key '([^']+)'", str(error))
            key = found.group(1) if found else "a key"
            raise UserError(
                f"{error.full_key} reads {key}, which data={cfg.data.get('_target_')} "
                f"does not state (it states {', '.join(stated) or 'nothing'}); set "
                f"{error.full_key}=<value>"
            ) from None
