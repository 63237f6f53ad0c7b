import pytest
from hydra.errors import InstantiationException

from hlt_core.hydra_compat import instantiate


def test_a_components_own_error_comes_wrapped_on_every_hydra():
    """run_or_exit reports InstantiationException as the user's config error (exit 2);
    Hydra 1.4 would raise the ValueError bare and the run would end in a traceback."""
    with pytest.raises(InstantiationException, match="builtins.int") as caught:
        instantiate({"_target_": "builtins.int", "_args_": ["abc"]})
    assert isinstance(caught.value.__cause__, ValueError)


def test_a_bad_target_is_still_hydras_own_error():
    with pytest.raises(InstantiationException, match="no_such_module"):
        instantiate({"_target_": "no_such_module.Thing"})


def test_hydra_copies_its_config_repository_without_the_config_store():
    """Each config lookup deep-copies Hydra's repository; with the store shared, a copy
    reads the one ConfigStore and finds a config stored after it was made."""
    from hydra._internal.config_repository import CachingConfigRepository, ConfigRepository
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra.core.config_store import ConfigStore

    from hlt_core.hydra_compat import share_config_store

    share_config_store()
    search_path = ConfigSearchPathImpl()
    search_path.append("schema", "structured://")
    copied = CachingConfigRepository(ConfigRepository(search_path))
    (source,) = copied.get_sources()
    assert source.store is ConfigStore.instance()
    ConfigStore.instance().store(name="stored_after_the_copy", node={"x": 1})
    loaded = copied.load_config("stored_after_the_copy")
    assert loaded is not None and loaded.config == {"x": 1}
