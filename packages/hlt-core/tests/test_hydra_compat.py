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
