"""A run resumed from a mid-epoch checkpoint sees exactly the batches of an
uninterrupted run (Lightning restores the loader and the datamodule state)."""

from functools import partial

import lightning as L
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hlt_data import (
    FileDataModule,
    GaussianClusters,
    GenomeDataModule,
    GlobFiles,
    NpyReader,
    SimulatedDataModule,
    TableDataModule,
    table_cache,
)
from hlt_data.batch import INPUTS, TARGETS


class Recorder(L.LightningModule):
    """Records a fingerprint of every training batch it sees."""

    def __init__(self, estimate_steps: bool) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.estimate_steps = estimate_steps
        self.seen: list[float] = []

    def training_step(self, batch, batch_idx):
        inputs = batch[INPUTS].float().flatten(1)  # tokens too: (B, L) -> floats
        weights = torch.linspace(1, 2, inputs.shape[1])  # a window and its mirror differ
        self.seen.append(round(float((inputs * weights).sum()), 4))
        return self.layer(inputs[:, :3]).mean()

    def configure_optimizers(self):
        if self.estimate_steps:  # drops Lightning's loader state; the datamodule keeps it
            assert self.trainer.estimated_stepping_batches > 0
        return torch.optim.SGD(self.parameters(), lr=0.01)


class StopAt(L.Callback):
    def __init__(self, step: int, path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True


def _fit(datamodule, estimate_steps, ckpt_path=None, callbacks=()):
    module = Recorder(estimate_steps)
    # the quiet CPU Trainer of tests/test_data_integration.py too: test trees share no code
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    return module.seen


def _simulated(num_workers):
    return SimulatedDataModule(
        GaussianClusters(input_dim=3, num_classes=2),
        batch_size=4,
        train_batches=6,
        val_batches=1,
        test_batches=1,
        seed=3,
        num_workers=num_workers,
    )


def _files(root, num_workers):
    return FileDataModule(
        GlobFiles(root, "inputs.npy"),
        NpyReader(),
        batch_size=4,
        seed=3,
        split_fractions={"train": 0.6, "val": 0.2, "test": 0.2},
        num_workers=num_workers,
    )


def _genome(root, num_workers):
    """24 training windows of 20 bases (6 batches of 4), reverse-complemented and shifted
    at random: the augmentation too must come back the same on resume."""
    path = root / "genome.fa"
    if not path.exists():
        rng = np.random.default_rng(0)
        bases = {
            name: "".join(rng.choice(list("ACGTN"), n))
            for name, n in (("a", 480), ("b", 60), ("c", 60))
        }
        path.write_text("".join(f">{name}\n{seq}\n" for name, seq in bases.items()))
    return GenomeDataModule(
        path,
        seq_len=20,
        val_chroms=["b"],
        test_chroms=["c"],
        batch_size=4,
        seed=3,
        rc_aug=True,
        shift=5,
        num_workers=num_workers,
    )


def _table(root, num_workers):
    """A 3,000-row Parquet table of 6 row groups read through its cache (encoded 500 rows
    at a time), 1,800 training rows: 6 batches of 300, read from disk batch by batch."""
    path = root / "table.parquet"
    if not path.exists():
        rng = np.random.default_rng(0)
        columns = {f"x{i}": rng.normal(size=3000) for i in range(3)}
        columns["colour"] = rng.choice(["red", "green", "blue"], 3000)
        columns["label"] = rng.choice(["a", "b"], 3000)
        pq.write_table(pa.table(columns), path, row_group_size=500)
    return TableDataModule(
        path,
        "label",
        cache=True,
        batch_size=300,
        seed=3,
        split_fractions={"train": 0.6, "val": 0.2, "test": 0.2},
        num_workers=num_workers,
    )


@pytest.mark.parametrize(
    ("kind", "num_workers", "estimate_steps"),
    [
        ("simulated", 0, False),
        ("simulated", 2, True),
        ("files", 0, True),
        ("files", 2, False),  # chunks of 3 batches: position 2 is inside the first
        ("genome", 0, True),
        ("genome", 2, False),
        ("table", 0, True),
        ("table", 2, False),
    ],
)
def test_resume_mid_epoch_sees_the_uninterrupted_batches(
    tmp_path, npy_pair, monkeypatch, kind, num_workers, estimate_steps
):
    monkeypatch.setattr(table_cache, "BATCH_ROWS", 500)
    root = npy_pair[0]

    makers = {
        "simulated": _simulated,
        "files": partial(_files, root),
        "genome": partial(_genome, tmp_path),
        "table": partial(_table, tmp_path),
    }

    def make():
        return makers[kind](num_workers)

    whole = _fit(make(), estimate_steps)
    assert len(whole) == 12 and len(set(whole)) == 12  # 2 epochs x 6, all different
    ckpt = tmp_path / "mid.ckpt"
    first = _fit(make(), estimate_steps, callbacks=[StopAt(8, ckpt)])  # epoch 1, batch 2
    assert first == whole[:8]
    state = torch.load(ckpt, weights_only=False)
    assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "position": 2}
    ]
    rest = _fit(make(), estimate_steps, ckpt_path=ckpt)
    assert rest == whole[8:]


def test_resume_from_an_epoch_end_starts_the_next_epoch(tmp_path, npy_pair):
    whole = _fit(_simulated(0), False)
    ckpt = tmp_path / "end.ckpt"
    _fit(_simulated(0), False, callbacks=[StopAt(6, ckpt)])
    assert _fit(_simulated(0), False, ckpt_path=ckpt) == whole[6:]


def test_files_training_order_is_a_new_permutation_each_epoch(npy_pair):
    dm = _files(npy_pair[0], 0)
    loader = dm.train_dataloader()
    epochs = []
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        epochs.append(torch.cat([b[TARGETS] for b in loader]))
    assert not torch.equal(epochs[0], epochs[1])
    assert sorted(epochs[0].tolist()) == sorted(epochs[1].tolist())
    assert np.isclose(len(epochs[0]), 24)
