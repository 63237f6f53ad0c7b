import sys

import pytest
import torch

from hlt_models import ExportMismatchError, Hyena, Mamba, Transformer, load_exported, save_exported
from hlt_models.mamba import INSTALL_HINT


def test_export_round_trip_reproduces_outputs_exactly(tmp_path):
    torch.manual_seed(0)
    kwargs = {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 12}
    model = Hyena(**kwargs).eval()
    save_exported(model, tmp_path, "hlt_models.Hyena", kwargs)
    loaded = load_exported(tmp_path)
    tokens = torch.randint(9, (2, 12))
    with torch.no_grad():
        assert torch.equal(model(tokens), loaded(tokens))
    assert not loaded.training


def test_export_into_the_wrong_architecture_names_the_keys(tmp_path):
    model = Transformer(vocab_size=9, dim=16, depth=2, max_len=12)
    # the config claims one block of width 16 and a longer position table
    save_exported(
        model,
        tmp_path,
        "hlt_models.Transformer",
        {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 20},
    )
    with pytest.raises(ExportMismatchError) as info:
        load_exported(tmp_path)
    message = str(info.value)
    assert "unexpected keys: blocks.1." in message
    assert "positional.table.weight (12, 16) vs model (20, 16)" in message


def test_export_missing_keys_are_named(tmp_path):
    model = Hyena(vocab_size=9, dim=16, depth=1, max_len=12)
    save_exported(
        model,
        tmp_path,
        "hlt_models.Transformer",
        {"vocab_size": 9, "dim": 16, "depth": 1, "max_len": 12},
    )
    with pytest.raises(ExportMismatchError, match=r"missing keys: .*blocks\.0\.mixer\.qkv\.weight"):
        load_exported(tmp_path)


def test_mamba_without_mamba_ssm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # as if it were not installed
    with pytest.raises(ImportError) as info:
        Mamba(vocab_size=5, dim=16, depth=1)
    assert str(info.value) == INSTALL_HINT
    assert "pip install mamba-ssm" in INSTALL_HINT
