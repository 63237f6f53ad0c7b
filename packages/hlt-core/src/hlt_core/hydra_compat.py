"""What differs between Hydra 1.3 and Hydra 1.4 (release candidate), in one place, so hlt
behaves the same on both. Imports neither torch nor Lightning."""

from __future__ import annotations

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
    """Have Hydra 1.3's structured-config source read the one ConfigStore at each use, as
    Hydra 1.4's does (facebookresearch/hydra#2928), instead of keeping a reference to it.

    Hydra deep-copies its config repository for every lookup: each composition, and each
    group and option ``--help`` lists (about 110 for hlt's groups). On Hydra 1.3 that
    reference makes each copy include the whole ConfigStore (Hydra's own schema, the
    plugins' configs, hlt's run schema): most of ``--help``'s time. Nothing writes to the
    copies' store, so reading the live one changes no result. A no-op on Hydra 1.4."""
    if not HYDRA_1_3:
        return
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # its one scan runs each plugin module again, redefining the class
    from hydra._internal.core_plugins.structured_config_source import StructuredConfigSource

    def live(source: StructuredConfigSource) -> ConfigStore:
        return ConfigStore.instance()

    def ignore(source: StructuredConfigSource, store: ConfigStore) -> None:
        """``__init__`` sets the reference; there is nothing to keep."""

    cast(Any, StructuredConfigSource).store = property(live, ignore)
