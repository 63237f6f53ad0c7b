import warnings

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ValidationError

from hlt_core.schemas import RunConfig, register_schemas


def test_trainer_values_are_type_checked():
    cfg = OmegaConf.structured(RunConfig)
    cfg.trainer.max_epochs = "7"  # convertible strings are converted
    assert cfg.trainer.max_epochs == 7
    with pytest.raises(ValidationError, match="trainer.max_epochs"):
        cfg.trainer.max_epochs = "abc"


def test_unknown_keys_are_refused():
    cfg = OmegaConf.structured(RunConfig)
    with pytest.raises(ConfigAttributeError, match="no_such_key"):
        cfg.no_such_key = 1
    with pytest.raises(ConfigAttributeError, match="max_epoch"):
        cfg.trainer.max_epoch = 1


def test_trainer_schema_accepts_every_field_the_trainer_takes():
    import inspect

    from lightning.pytorch import Trainer

    accepted = set(inspect.signature(Trainer.__init__).parameters)
    fields = set(OmegaConf.structured(RunConfig).trainer) - {"_target_"}
    assert fields <= accepted, fields - accepted


def test_registering_the_schemas_again_warns_nothing():
    """The app and the compose helpers both register; Hydra 1.4 warns on a second store of
    a name and OmegaConf 2.4 on register_new_resolver."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_schemas()
        register_schemas()
