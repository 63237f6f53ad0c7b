"""The steady-state training step makes no host-device synchronisation.

On CPU there is no device to wait for, so we count the operations that *would* block the
host on a GPU: ``aten._local_scalar_dense`` (``.item()``, ``bool(tensor)``, ``int(...)``),
ops whose output size depends on the data (``nonzero``, ``unique``, ``masked_select``),
and the Python-level ``Tensor.item/tolist/cpu/numpy``. Each is attributed to the training
batch during which it happened. Syncs are allowed only on logging steps (every
``log_every_n_steps``, where Lightning reads values for the logger and the progress bar)
and on the last batch of an epoch. The optimizer's ``state["step"]`` counter is a host
tensor by design in torch (so reading it is no device sync): calls from ``torch/optim``
are not counted.
"""

from __future__ import annotations

import functools
import traceback

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from hlt_core.contracts import INPUTS, TARGETS
from hlt_core.training.callbacks import run_callbacks
from hlt_core.training.module import TaskModule
from hlt_core.training.performance import ProgressBar

aten = torch.ops.aten
SYNC_OPS = {
    aten._local_scalar_dense.default,
    aten.nonzero.default,
    aten.masked_select.default,
    aten.item.default,
}
SYNC_PREFIXES = ("aten::_unique", "aten::unique")


_PLUMBING = (
    "torch/utils/_python_dispatch",
    "torch/_ops",
    "torch/_tensor",
    "torch/_compile",
    "torch/_dynamo",
    "functools",
)


def _from_optimizer() -> bool:
    """Whether the code that asked for the value (the innermost frame outside this file
    and torch's dispatch plumbing) is torch's optimizer reading its step counter."""
    for frame in reversed(traceback.extract_stack()[:-1]):
        if frame.filename == __file__ or any(p in frame.filename for p in _PLUMBING):
            continue
        return "torch/optim/" in frame.filename
    return False


class SyncCounter(TorchDispatchMode, L.Callback):
    """Counts host syncs per training batch (a dispatch mode and a Lightning callback)."""

    def __init__(self) -> None:
        super().__init__()
        self.batch: int | None = None
        self.counts: dict[int, int] = {}
        self.where: dict[int, list[str]] = {}

    def record(self, what: str) -> None:
        if self.batch is None or _from_optimizer():
            return
        self.counts[self.batch] = self.counts.get(self.batch, 0) + 1
        self.where.setdefault(self.batch, []).append(what)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SYNC_OPS or str(func._schema.name).startswith(SYNC_PREFIXES):
            self.record(str(func))
        return func(*args, **(kwargs or {}))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch = batch_idx

    def on_train_epoch_end(self, trainer, pl_module):
        self.batch = None


def patch_host_reads(monkeypatch, counter: SyncCounter) -> None:
    for name in ("item", "tolist", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        @functools.wraps(original)
        def wrapper(self, *args, _original=original, _name=name, **kwargs):
            counter.record(f"Tensor.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapper)


# stand-ins shaped like test_module.py's by design, with their own widths, loss and metrics
class Features(nn.Module):
    out_features = 8

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.GELU())

    def forward(self, inputs):
        return self.net(inputs)


class ClassifyTask:
    """A task like hlt-tasks' classification: torchmetrics with argument validation on."""

    def build_decoder(self, in_features):
        return nn.Linear(in_features, 3)

    def loss(self, outputs, batch):
        return nn.functional.cross_entropy(outputs, batch[TARGETS])

    def metrics(self, prefix):
        return MetricCollection(
            {"acc": MulticlassAccuracy(3), "f1": MulticlassF1Score(3)}, prefix=prefix
        )

    def metric_inputs(self, outputs, batch):
        return outputs, batch[TARGETS]

    def predict(self, outputs):
        return outputs.argmax(-1)

    def output_transform(self):
        return nn.Softmax(dim=-1)


class SyncingTask(ClassifyTask):
    """A task whose loss reads a value on the host: the counter must see it."""

    def loss(self, outputs, batch):
        loss = super().loss(outputs, batch)
        if loss.item() < 0:  # a host sync
            raise AssertionError
        return loss


def batches(n: int):
    gen = torch.Generator().manual_seed(0)
    return [
        {
            INPUTS: torch.randn(8, 4, generator=gen),
            TARGETS: torch.randint(0, 3, (8,), generator=gen),
        }
        for _ in range(n)
    ]


def train_and_count(monkeypatch, tmp_path, task, num_batches=40, every=10, epochs=2):
    counter = SyncCounter()
    patch_host_reads(monkeypatch, counter)
    module = TaskModule(Features(), task, optimizer=functools.partial(torch.optim.AdamW, lr=0.01))
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        log_every_n_steps=every,
        default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        # what `run` adds to every run, and the default checkpointing and progress bar
        callbacks=[
            counter,
            ProgressBar(refresh_rate=every),
            ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", save_last=True),
            run_callbacks(tmp_path),
        ],
        enable_model_summary=False,
        limit_val_batches=2,
    )
    data = DataLoader(batches(num_batches), batch_size=None)
    with counter:
        trainer.fit(module, data, data)
    return counter, trainer


def allowed(batch_idx: int, num_batches: int, every: int) -> bool:
    """Logging steps and the last batch of the epoch (epochs are a multiple of ``every``)."""
    return (batch_idx + 1) % every == 0 or batch_idx == num_batches - 1


def test_steady_state_training_steps_make_no_host_sync(monkeypatch, tmp_path):
    counter, trainer = train_and_count(monkeypatch, tmp_path, ClassifyTask())
    unexpected = {b: counter.where[b] for b in counter.counts if not allowed(b, 40, 10)}
    assert unexpected == {}
    # logging still happens: the train metrics and the loss reach the logger
    assert {"train/loss", "train/acc", "train/f1", "val/loss", "val/acc"} <= set(
        trainer.callback_metrics
    )
    assert trainer.global_step == 80


def test_the_counter_sees_a_sync_in_the_step(monkeypatch, tmp_path):
    counter, _ = train_and_count(monkeypatch, tmp_path, SyncingTask(), epochs=1)
    assert all(counter.counts.get(b, 0) >= 1 for b in range(40))
    assert any("_local_scalar_dense" in w or "item" in w for w in counter.where[3])
