"""Loading an export: outputs reproduced exactly, mismatched weights named, and only
allowed model classes built (issue 16). hlt-core writes exports; ``write_export`` here
writes the same files, as documented in hlt_models.export, for the reader to be tested alone."""

import json
from importlib.metadata import EntryPoint

import pytest
import torch
from safetensors.torch import save_file

from hlt_models import (
    MLP,
    ExportMismatchError,
    ExportTargetError,
    Hyena,
    Transformer,
    load_exported,
)
from hlt_models import export as export_module

TOY = """
import torch

class Toy(torch.nn.Module):
    def __init__(self, width):
        super().__init__()
        self.layer = torch.nn.Linear(width, width)

def not_a_model(width):
    raise AssertionError("called")
"""


def write_export(model, folder, target, kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()},
        str(folder / "model.safetensors"),
    )
    spec = {"target": target, "kwargs": kwargs, "out_features": model.out_features}
    (folder / "model.json").write_text(json.dumps(spec))
    return folder


def crafted(folder, target, **kwargs):
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"target": target, "kwargs": kwargs}))
    return folder


@pytest.mark.parametrize(
    "target",
    ["os.system", "subprocess.call", "builtins.exec", "hlt_models.export.load_exported", "x"],
)
def test_a_crafted_export_runs_nothing_and_names_the_target(tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    folder = crafted(tmp_path / "e", target, command="touch pwned")
    with pytest.raises(ExportTargetError, match=f"export target '{target}' is refused"):
        load_exported(folder)
    assert not (tmp_path / "pwned").exists()


def test_hlt_models_classes_load_by_either_name(tmp_path):
    kwargs = {"input_dim": 3, "hidden_dim": 4, "num_layers": 1}
    model = MLP(**kwargs)
    for target in ("hlt_models.MLP", "hlt_models.mlp.MLP"):
        write_export(model, tmp_path / target, target, kwargs)
        assert isinstance(load_exported(tmp_path / target), MLP)


def test_classes_registered_by_entry_point_load_and_nothing_else_of_theirs(tmp_path, monkeypatch):
    (tmp_path / "toy_models.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    registered = [
        EntryPoint(name="toy", value="toy_models:Toy", group="hlt.models"),
        EntryPoint(name="bad", value="toy_models:not_a_model", group="hlt.models"),
    ]
    monkeypatch.setattr(export_module, "entry_points", lambda group: registered)
    weights = {"layer.weight": torch.zeros(2, 2), "layer.bias": torch.zeros(2)}
    folder = crafted(tmp_path / "toy", "toy_models.Toy", width=2)
    save_file(weights, str(folder / "model.safetensors"))
    assert type(load_exported(folder)).__name__ == "Toy"
    with pytest.raises(ExportTargetError, match="'toy_models.not_a_model' is registered but"):
        load_exported(crafted(tmp_path / "bad", "toy_models.not_a_model", width=2))
    with pytest.raises(ExportTargetError, match="'toy_models.torch' is refused"):
        load_exported(crafted(tmp_path / "other", "toy_models.torch"))


def test_export_round_trip_reproduces_outputs_exactly(tmp_path):
    torch.manual_seed(0)
    kwargs = {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 12}
    model = Hyena(**kwargs).eval()
    write_export(model, tmp_path, "hlt_models.Hyena", kwargs)
    loaded = load_exported(tmp_path)
    tokens = torch.randint(9, (2, 12))
    with torch.no_grad():
        assert torch.equal(model(tokens), loaded(tokens))
    assert not loaded.training


def test_export_into_the_wrong_architecture_names_the_keys(tmp_path):
    model = Transformer(vocab_size=9, dim=16, depth=2, max_len=12)
    # the config claims one block of width 16 and a longer position table
    write_export(
        model,
        tmp_path,
        "hlt_models.Transformer",
        {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 20},
    )
    with pytest.raises(ExportMismatchError) as info:
        load_exported(tmp_path)
    message = str(info.value)
    assert 'Unexpected key(s) in state_dict: "blocks.1.' in message
    assert "size mismatch for positional.table.weight" in message


def test_export_missing_keys_are_named(tmp_path):
    # set-up shaped like the test above by design: each test writes its own mismatched export
    model = Hyena(vocab_size=9, dim=16, depth=1, max_len=12)
    write_export(
        model,
        tmp_path,
        "hlt_models.Transformer",
        {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 12},
    )
    with pytest.raises(
        ExportMismatchError, match=r"Missing key\(s\) .*blocks\.0\.mixer\.qkv\.weight"
    ):
        load_exported(tmp_path)
