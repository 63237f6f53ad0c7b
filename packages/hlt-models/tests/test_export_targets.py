"""An export names its model class; hlt-models builds only classes it allows (issue 16)."""

import json
from importlib.metadata import EntryPoint

import pytest
import torch

from hlt_models import MLP, ExportTargetError, load_exported, save_exported
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


def crafted(folder, target, **kwargs):
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"target": target, "kwargs": kwargs}))
    return folder


@pytest.mark.parametrize(
    "target",
    ["os.system", "subprocess.call", "builtins.exec", "hlt_models.export.save_exported", "x"],
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
        save_exported(model, tmp_path / target, target, kwargs)
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
    export_module.save_file(weights, str(folder / "model.safetensors"))
    assert type(load_exported(folder)).__name__ == "Toy"
    with pytest.raises(ExportTargetError, match="'toy_models.not_a_model' is registered but"):
        load_exported(crafted(tmp_path / "bad", "toy_models.not_a_model", width=2))
    with pytest.raises(ExportTargetError, match="'toy_models.torch' is refused"):
        load_exported(crafted(tmp_path / "other", "toy_models.torch"))
