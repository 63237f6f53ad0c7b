"""What differs between Hydra 1.3 and Hydra 1.4 (release candidate), in one place, so hlt
behaves the same on both. Imports neither torch nor Lightning."""

from __future__ import annotations

import copy
from typing import Any, cast

import hydra
import hydra.utils
from hydra.errors import InstantiationException

HYDRA_1_3 = hydra.__version__.startswith("1.3.")

# Keyword arguments for hydra.main and the compose API's initialize_config_dir. Hydra 1.3
# needs version_base="1.3" (without it, it falls back to Hydra 1.1's defaults); Hydra 1.4
# deprecates the argument and always behaves as 1.3 did.
VERSION_BASE: dict[str, str] = {"version_base": "1.3"} if HYDRA_1_3 else {}

# Keyword arguments for the app's hydra.main. Hydra 1.4 checks each config-chosen _target_
# against an execution whitelist and warns without one (an error from Hydra 1.5). Until hlt
# picks a whitelist, it instantiates whatever configs and overrides name, as on Hydra 1.3.
HYDRA_MAIN: dict[str, Any] = (
    VERSION_BASE
    if HYDRA_1_3
    else {"execution_whitelist": hydra.utils.UNSAFE_DISABLE_EXECUTION_CHECKS}  # type: ignore[attr-defined]
)


def instantiate(config: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that fails as Hydra 1.3 does: an error raised by the
    component itself comes wrapped in ``InstantiationException``, which the run reports as
    the user's config error (one line, exit 2). Hydra 1.4 raises the component's error bare."""
    try:
        return hydra.utils.instantiate(config, **kwargs)
    except InstantiationException:
        raise
    except Exception as error:
        target = config.get("_target_") if hasattr(config, "get") else None
        raise InstantiationException(f"Error in call to target '{target}':\n{error!r}") from error


def share_config_store() -> None:
    """Have copies of Hydra 1.3's structured-config source share the one ConfigStore, as
    Hydra 1.4's source does by reading ``ConfigStore.instance()`` at each use
    (facebookresearch/hydra#2928).

    Hydra deep-copies its config repository for every lookup: each composition, and each
    group and option ``--help`` lists (about 110 for hlt's groups). On Hydra 1.3 the
    source keeps a reference to the ConfigStore, so each copy copied the whole store
    (Hydra's own schema, the plugins' configs, hlt's run schema): most of ``--help``'s
    time. Nothing writes to a copy's store, so sharing the live one changes no result; a
    pickled source (a joblib job's) still carries its store. A no-op on Hydra 1.4."""
    if not HYDRA_1_3:
        return
    from hydra.core.plugins import Plugins

    Plugins.instance()  # its one scan runs each plugin module again, redefining the class
    from hydra._internal.core_plugins.structured_config_source import StructuredConfigSource

    def shallow(source: StructuredConfigSource, memo: dict[int, Any]) -> StructuredConfigSource:
        return copy.copy(source)  # its provider and path are strings; the store is shared

    cast(Any, StructuredConfigSource).__deepcopy__ = shallow
