"""Pretrain, then fine-tune: ``model.init_from=<run folder or export>`` loads the model's
weights (not the decoder, not the optimizer), says so, and refuses a model that differs."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from safetensors.torch import load_file, save_file

from helpers import QUICK, compose_run
from hlt_core.composing.data_facts import build_datamodule, fill_dims
from hlt_core.composing.init_from import init_from, split_model_config
from hlt_core.errors import UserError
from hlt_core.run import run
from prepare_families import write_families

MODEL = ["model=transformer", "model.dim=32", "model.depth=2"]
# one step that changes nothing (lr 0): last.ckpt then holds the weights a run starts from
NO_STEPS = [
    "trainer.max_steps=1",
    "optimizer.lr=0",
    "test=false",
    "trainer.enable_progress_bar=false",
]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> tuple[Path, Path]:
    """A quick language model on unlabelled FASTA: (data folder, run folder)."""
    data = tmp_path_factory.mktemp("families")
    write_families(data, pretrain=200, finetune=100)
    run_dir = data / "pretrain"
    run(
        compose_run(
            [
                "data=fasta",
                f"data.path={data / 'pretrain.fa'}",
                "task=language_model",
                *MODEL,
                *QUICK,
            ],
            run_dir,
        )
    )
    return data, run_dir


def finetune_config(data: Path, run_dir: Path, *overrides: str):
    return compose_run(
        [
            "data=fasta",
            f"data.path={data / 'finetune.fa'}",
            "task=classification",
            *MODEL,
            *overrides,
        ],
        run_dir,
    )


def model_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    return {k: v for k, v in state.items() if k.startswith(("model.", "decoder."))}


def test_init_from_loads_the_model_and_leaves_the_decoder_fresh(pretrained, tmp_path, caplog):
    data, source = pretrained
    exported = load_file(str(source / "export" / "model.safetensors"))
    caplog.set_level(logging.INFO, logger="hlt_core.run")
    tuned, scratch = tmp_path / "tuned", tmp_path / "scratch"
    run(finetune_config(data, tuned, f"model.init_from={source}", *NO_STEPS))
    run(finetune_config(data, scratch, *NO_STEPS))
    assert f"loaded {len(exported)} tensors" in caplog.text
    assert "the decoder and the optimizer start fresh" in caplog.text

    start, fresh = (
        model_weights(tuned / "checkpoints/last.ckpt"),
        model_weights(scratch / "checkpoints/last.ckpt"),
    )
    for key, value in exported.items():  # the model: the pretrained weights, every one
        assert torch.equal(start[f"model.{key}"], value), key
    decoder = [k for k in start if k.startswith("decoder.")]
    assert decoder and all(torch.equal(start[k], fresh[k]) for k in decoder)  # as from scratch
    assert not torch.equal(
        start["model.embedding.embed.weight"], fresh["model.embedding.embed.weight"]
    )


def test_an_export_folder_and_a_run_folder_load_the_same(pretrained):
    data, source = pretrained
    cfg = finetune_config(data, source.parent / "unused")
    fill_dims(cfg, build_datamodule(cfg.data))
    config, _ = split_model_config(cfg.model)
    from_run, from_export = instantiate(config), instantiate(config)
    init_from(from_run, str(source), config)
    init_from(from_export, str(source / "export"), config)
    for a, b in zip(from_run.state_dict().values(), from_export.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.alphabet=ACGTNR"], r"was trained with vocab_size=\d+, but model\.vocab_size=\d+"),
        (["model=hyena"], "holds a hlt_models.Transformer, but the model is hlt_models.Hyena"),
        (["model.depth=3"], r"missing from the saved weights: blocks\.2"),
        (["model.dim=16"], r"shape \(saved vs model\): .*\(\d+, 32\) vs \(\d+, 16\)"),
    ],
)
def test_a_different_model_or_vocabulary_is_one_line(pretrained, tmp_path, overrides, message):
    data, source = pretrained
    cfg = finetune_config(
        data, tmp_path / "run", f"model.init_from={source}", *overrides, *NO_STEPS
    )
    with pytest.raises(UserError, match=message) as error:
        run(cfg)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before training


def test_a_path_that_is_not_an_export_is_named(pretrained, tmp_path):
    data, _ = pretrained
    cfg = finetune_config(data, tmp_path / "run", f"model.init_from={tmp_path}", *NO_STEPS)
    with pytest.raises(UserError, match=f"model.init_from={tmp_path} is neither an export"):
        run(cfg)


def truncated(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def retyped(path: Path) -> None:
    """The same tensors stored as float16: a file that is not what the model holds."""
    save_file({k: v.half() for k, v in load_file(str(path)).items()}, str(path))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda e: (e / "model.json").write_text("{not json"), r"model\.json is not readable JSON"),
        (lambda e: (e / "model.json").write_text('{"target": "hlt_models.Transformer"}'),
         r"model\.json is not an export's model\.json \(an object with 'target' and 'kwargs'\)"),
        (lambda e: truncated(e / "model.safetensors"),
         r"model\.safetensors is not a readable safetensors file"),
        (lambda e: (e / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}"),
         r"model\.safetensors is not a readable safetensors file"),
        (lambda e: retyped(e / "model.safetensors"),
         r"dtype \(saved vs model\): .* torch\.float16 vs torch\.float32"),
    ],
    ids=["bad-json", "no-kwargs", "truncated", "bad-header", "wrong-dtype"],
)  # fmt: skip
def test_a_damaged_export_is_one_line_before_training(pretrained, tmp_path, damage, message):
    data, source = pretrained
    export = Path(shutil.copytree(source / "export", tmp_path / "export"))
    damage(export)
    cfg = finetune_config(data, tmp_path / "run", f"model.init_from={export}", *NO_STEPS)
    with pytest.raises(UserError, match=message) as error:
        run(cfg)
    assert "\n" not in str(error.value) and f"model.init_from={export}" in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()
