"""Files written by an earlier release still load: a checkpoint and an export of hlt
0.3.0 (tests/fixtures/release_0_3_0), whose data facts sit under the old checkpoint key."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from helpers import compose_run
from hlt_core.composing.init_from import init_from
from hlt_core.run import run
from hlt_core.training.module import checkpoint_data_facts
from hlt_models import MLP

OLD = Path(__file__).parent / "fixtures" / "release_0_3_0"
OVERRIDES = [
    "data=table",
    f"data.path={OLD / 'table.csv'}",
    "data.target=label",
    "data.features=[a,b]",
    "data.batch_size=8",
    "model.hidden_dim=4",
    "model.num_layers=1",
    "logger=none",
    "callbacks.model_summary=null",
    "trainer.enable_progress_bar=false",
    "print_config=false",
]


def test_an_old_checkpoint_carries_the_data_facts_its_export_wrote():
    checkpoint = torch.load(OLD / "last.ckpt", weights_only=True)
    assert "hlt_data" in checkpoint and "hlt_data_facts" not in checkpoint
    facts = checkpoint_data_facts(checkpoint)
    assert facts == json.loads((OLD / "export" / "data.json").read_text())
    assert facts is not None and facts["labels"] == ["neg", "pos"]


def test_an_old_checkpoint_evaluates_to_the_numbers_it_was_trained_to(tmp_path, run_dir):
    out = tmp_path / "predictions.csv"
    evaluate = ["train=false", f"ckpt_path={OLD / 'last.ckpt'}", "predict=true"]
    cfg = compose_run([*OVERRIDES, *evaluate, f"predictions={out}"], run_dir)
    metrics = run(cfg)
    assert metrics["test/acc"] == torch.tensor(5 / 6).item()  # as 0.3.0 reported it
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    assert header[:2] == ["file", "row"] and header[-3:] == ["prediction", "neg", "pos"]


def test_an_old_export_starts_a_model():
    spec = json.loads((OLD / "export" / "model.json").read_text())
    model = MLP(**spec["kwargs"])
    config = {"_target_": spec["target"], **spec["kwargs"]}
    assert "loaded 4 tensors" in init_from(model, str(OLD / "export"), config)
