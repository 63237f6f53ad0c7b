"""The predictor export: torch.export first, TorchScript for a model it cannot capture;
read back only through the archive check."""

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from hlt_core.errors import UserError
from hlt_core.results.predictor import Predictor, save_predictor
from hlt_core.results.predictor_archive import load_predictor_archive


class DataDependent(nn.Module):
    """Branches on a value: torch.export refuses, tracing records the branch taken."""

    out_features = 2

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if bool(inputs.sum() > 0):
            return inputs * 2
        return inputs


def test_a_model_torch_export_cannot_capture_falls_back_to_torchscript(tmp_path):
    predictor = Predictor(DataDependent(), nn.Identity(), nn.Identity(), [1.0, 1.0], [2.0, 2.0])
    example = (torch.ones(2, 2) * 5,)
    spec = save_predictor(predictor, example, tmp_path)
    assert spec["format"] == "torchscript" and spec["file"] == "predictor.ts"
    assert spec["why"]  # says what torch.export refused
    loaded = torch.jit.load(tmp_path / spec["file"])
    inputs = torch.tensor([[3.0, 5.0]])
    assert torch.equal(loaded(inputs), predictor(inputs))  # normalised, then doubled


def test_a_plain_model_exports_with_a_dynamic_batch(tmp_path):
    predictor = Predictor(nn.Linear(3, 2), nn.Identity(), nn.Softmax(-1), [0.0] * 3, [1.0] * 3)
    spec = save_predictor(predictor, (torch.randn(2, 3),), tmp_path)
    assert spec == {"file": "predictor.pt2", "format": "torch.export", "dynamic": ["batch"]}
    loaded = torch.export.load(tmp_path / "predictor.pt2").module()
    inputs = torch.randn(5, 3)
    assert torch.equal(loaded(inputs), predictor.eval()(inputs))


class Marker:
    """Once unpickled, creates the file ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_checked_archive_loads_the_same_predictor_and_a_pickled_weight_is_refused(tmp_path):
    predictor = Predictor(nn.Linear(3, 2), nn.Identity(), nn.Softmax(-1), [0.0] * 3, [1.0] * 3)
    save_predictor(predictor, (torch.randn(2, 3),), tmp_path)
    archive = tmp_path / "predictor.pt2"
    inputs = torch.randn(4, 3)
    assert torch.equal(load_predictor_archive(archive)(inputs), predictor.eval()(inputs))

    with zipfile.ZipFile(archive) as source:
        entries = {info.filename: source.read(info) for info in source.infolist()}
    marker, payload = tmp_path / "marker", io.BytesIO()
    torch.save(Marker(tmp_path / "marker"), payload)
    with zipfile.ZipFile(archive, "w") as crafted:
        for name, data in entries.items():
            if name.endswith("model_weights_config.json"):
                config = json.loads(data)
                for meta in config["config"].values():
                    meta["use_pickle"] = True
                data = json.dumps(config).encode()
            elif name.endswith("data/weights/weight_0"):
                data = payload.getvalue()
            crafted.writestr(name, data)
    with pytest.raises(UserError, match=r"predictor\.pt2: refused, '.*' is stored as a pickle"):
        load_predictor_archive(archive)
    assert not marker.exists()
