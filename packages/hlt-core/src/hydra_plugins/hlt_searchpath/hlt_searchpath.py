"""Hydra SearchPathPlugin: appends every ``hlt.configs`` entry point to the search path."""

import warnings

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from hlt_core.discovery import discover


class HltSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        sources, missing = discover()
        for source in sources:
            search_path.append(provider=source.name, path=f"file://{source.path}")
        for broken in missing:
            warnings.warn(f"hlt.configs entry point {broken} names no package", stacklevel=1)
