"""The data configs compose with models and tasks through ${data.dims.*}, and the
digits experiment trains on files through the real datamodule (on a small slice)."""

from pathlib import Path

import lightning as L
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from hlt_core.composing.data_facts import build_datamodule, fill_dims
from hlt_core.composing.init_from import split_model_config
from hlt_core.hydra_compat import VERSION_BASE
from hlt_core.schemas import register_schemas
from hlt_core.training.module import TaskModule
from hlt_data.batch import INPUTS
from prepare_digits import write_digits

ROOT = Path(__file__).resolve().parents[1]


def _compose(overrides):
    register_schemas()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), **VERSION_BASE):
        return compose("train", overrides=overrides, return_hydra_config=False)


@pytest.mark.parametrize("data", ["associative_recall", "induction_heads"])
def test_sequence_configs_state_dims_for_models_and_tasks(data):
    cfg = _compose([f"data={data}", "data.sampler.vocab_size=12", "data.sampler.seq_len=33"])
    dm = build_datamodule(cfg.data)
    assert fill_dims(cfg, dm) == {"vocab_size": 12, "seq_len": 33, "num_classes": 12}
    assert cfg.task.num_classes == 12  # filled from the data, not typed
    assert next(iter(dm.train_dataloader()))[INPUTS].shape == (64, 33)


def test_digits_experiment_trains_on_files(tmp_path):
    write_digits(tmp_path / "digits")
    cfg = _compose(["experiment=digits_mlp", f"data.path={tmp_path / 'digits'}"])
    dm = build_datamodule(cfg.data)
    fill_dims(cfg, dm)
    assert cfg.model.input_dim == 64 and cfg.task.num_classes == 10
    model = instantiate(split_model_config(cfg.model)[0])
    module = TaskModule(model, instantiate(cfg.task), instantiate(cfg.optimizer))
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=10,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=dm)
    (result,) = trainer.test(module, datamodule=dm, verbose=False)
    assert result["test/acc"] > 0.8  # chance is 0.1; the full experiment reaches > 0.95


def test_a_wrong_data_path_fails_before_training_naming_the_path(tmp_path):
    cfg = _compose(["experiment=digits_mlp", f"data.path={tmp_path}"])
    with pytest.raises(Exception, match=r"data\.path=.*: the folder has no inputs\.npy files"):
        build_datamodule(cfg.data)
