"""TaskModule with hlt_core.testing's stand-ins for a model and a task: core knows only
their contracts."""

import functools
import math

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from hlt_core.contracts import INPUTS, TARGETS
from hlt_core.errors import UserError
from hlt_core.testing import StandInData, StandInModel, StandInTask
from hlt_core.training.loggers import CSVLogger
from hlt_core.training.module import NonFiniteLossError, TaskModule
from hlt_core.training.schedulers import warmup_cosine


def quiet_trainer(**options) -> L.Trainer:
    """A Trainer with no checkpoints, progress bar or model summary."""
    return L.Trainer(
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, **options
    )


def batches(n=8):
    return StandInData(input_dim=2, batch_size=16, batches=n).splits["train"]


def module(**kwargs):
    return TaskModule(
        StandInModel(input_dim=2, out_features=4),
        StandInTask(),
        optimizer=functools.partial(torch.optim.Adam, lr=0.05),
        **kwargs,
    )


def test_trains_logs_per_split_metrics_and_lowers_the_loss():
    L.seed_everything(0)
    trainer = quiet_trainer(
        max_epochs=6,
        logger=False,
    )
    m = module()
    data = DataLoader(batches(), batch_size=None)
    with torch.no_grad():
        first = torch.stack([m.task.loss(m(b[INPUTS]), b) for b in batches()]).mean()
    trainer.fit(m, data, data)
    metrics = trainer.callback_metrics
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} <= set(metrics)
    assert metrics["val/loss"] < 0.5 * first


def test_scheduler_dict_is_built_around_the_optimizer():
    m = module(
        scheduler={
            "scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1),
            "interval": "step",
        }
    )
    configured = m.configure_optimizers()
    assert isinstance(configured["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert configured["lr_scheduler"]["scheduler"].optimizer is configured["optimizer"]
    assert configured["lr_scheduler"]["interval"] == "step"


def test_run_config_travels_in_checkpoints():
    checkpoint = {}
    module(config={"name": "x"}).on_save_checkpoint(checkpoint)
    assert checkpoint["hlt_config"] == {"name": "x"}


def test_a_crafted_train_epoch_state_in_a_checkpoint_is_refused_naming_its_key():
    for crafted in ({"epoch": 0, "loss_sum": "x", "loss_count": 1}, ["epoch"], {"epoch": 0}):
        with pytest.raises(UserError, match="checkpoint key hlt_train_epoch"):
            module().on_load_checkpoint({"hlt_train_epoch": crafted})


def test_model_without_stated_width_is_refused():
    with pytest.raises(TypeError, match="out_features"):
        TaskModule(nn.ReLU(), StandInTask(), optimizer=torch.optim.SGD)


def test_warmup_cosine_steps_every_optimizer_step():
    """Warm-up over 4 steps, cosine to a tenth at 12: the curve the optimizer saw."""
    m = module(
        scheduler={
            "scheduler": functools.partial(
                warmup_cosine, warmup_steps=4, total_steps=12, min_ratio=0.1
            ),
            "interval": "step",
        }
    )
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = quiet_trainer(
        max_steps=14,
        logger=False,
        callbacks=[Record()],
    )
    trainer.fit(m, DataLoader(batches(), batch_size=None))  # 8 batches an epoch
    expected = [0.05 * f for f in (0.25, 0.5, 0.75, 1.0)]
    expected += [0.05 * (0.1 + 0.45 * (1 + math.cos(math.pi * s / 8))) for s in range(9)]
    expected += [0.005]
    assert seen == pytest.approx(expected)


def test_warmup_cosine_needs_a_step_count():
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    with pytest.raises(UserError, match=r"total_steps=-1: .* set trainer.max_steps"):
        warmup_cosine(optimizer, warmup_steps=10, total_steps=-1)


class CountingSaves:
    """A logger mixin counting the logger's writes to its file."""

    saves = 0

    def save(self) -> None:
        self.saves += 1
        super().save()


class CountingCSVLogger(CountingSaves, L.pytorch.loggers.CSVLogger):
    """Lightning's CSV logger, counting its writes."""


class CountingRunCSVLogger(CountingSaves, CSVLogger):
    """hlt's CSV logger, counting its writes."""


def logged_loss_steps(logger, every: int, steps: int, tmp_path) -> list[int]:
    """Train ``module()`` one epoch of ``steps`` batches logging every ``every`` steps; the
    steps whose loss reached metrics.csv."""
    trainer = quiet_trainer(
        max_epochs=1,
        log_every_n_steps=every,
        logger=logger,
    )
    trainer.fit(module(), DataLoader(batches(steps), batch_size=None))
    rows = [row.split(",") for row in (tmp_path / "csv" / "metrics.csv").read_text().split()]
    column, step = rows[0].index("train/loss_step"), rows[0].index("step")
    return [int(r[step]) for r in rows[1:] if r[column]]


@pytest.mark.parametrize(("seconds", "module_saves"), [(0.0, 4), (1e9, 1)])
def test_step_losses_reach_the_file_written_at_most_every_few_seconds(
    tmp_path, monkeypatch, seconds, module_saves
):
    monkeypatch.setattr("hlt_core.training.module.SAVE_LOGS_SECONDS", seconds)
    logger = CountingCSVLogger(tmp_path, name="csv", version="")
    # 8 batches: steps 1, 3, 5, 7 log their loss
    assert logged_loss_steps(logger, 2, 8, tmp_path) == [1, 3, 5, 7]
    # Lightning saves 3 times itself (at the start, after the epoch's metrics and at the end)
    assert logger.saves == module_saves + 3


def test_the_csv_file_is_written_when_the_run_saves_not_every_100_steps(tmp_path, monkeypatch):
    monkeypatch.setattr("hlt_core.training.module.SAVE_LOGS_SECONDS", 1e9)
    logger = CountingRunCSVLogger(tmp_path, name="csv", version="")
    assert logged_loss_steps(logger, 10, 120, tmp_path) == [*range(9, 120, 10)]
    # the module's first logging step and Lightning's three: none at steps 99 and 199
    assert logger.saves == 1 + 3


class ScriptedLoss(StandInTask):
    """A training loss of the given values, one a batch."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.losses = iter(losses)

    def loss(self, outputs, batch):
        return outputs.sum() * 0 + next(self.losses)


def test_a_non_finite_loss_stops_naming_its_step_and_huge_finite_ones_do_not():
    # 3e38 x 16 rows, three times, would overflow a float32 sum: the first check (after
    # step 2) goes on, the second finds step 4's Inf
    task = ScriptedLoss([3e38, 3e38, 3e38, 1.0, math.inf, 1.0, 1.0, 1.0])
    m = TaskModule(StandInModel(2, 4), task, functools.partial(torch.optim.SGD, lr=0.0))
    trainer = quiet_trainer(
        max_epochs=1,
        log_every_n_steps=3,
        logger=False,  # the check does not depend on logging
    )
    stop = r"^training loss is inf at step 4 \(epoch 0, batch 4\); run stopped$"
    with pytest.raises(NonFiniteLossError, match=stop):
        trainer.fit(m, DataLoader(batches(), batch_size=None))
    assert trainer.global_step == 6  # stopped at the logging step after it


def test_losses_are_checked_after_a_bounded_number_of_steps_when_logging_is_rare(monkeypatch):
    monkeypatch.setattr("hlt_core.training.module.UNCHECKED_LOSSES", 3)
    task = ScriptedLoss([1.0, math.nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    m = TaskModule(StandInModel(2, 4), task, functools.partial(torch.optim.SGD, lr=0.0))
    trainer = quiet_trainer(
        max_epochs=1,
        log_every_n_steps=1000,  # no logging step in the epoch
        logger=False,
    )
    with pytest.raises(NonFiniteLossError, match=r"is nan at step 1 \(epoch 0, batch 1\)"):
        trainer.fit(m, DataLoader(batches(), batch_size=None))
    assert trainer.global_step == 2  # found at the third step's check, not the epoch's end


class KeptLosses(L.Callback):
    """What the module keeps for its loss check, seen at each batch end."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, bool, bool]] = []  # (kept, any needs grad, any has a graph)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        kept = [loss for loss, *_ in pl_module._epoch.unchecked]
        graphs = any(x.grad_fn is not None for x in kept)
        self.seen.append((len(kept), any(x.requires_grad for x in kept), graphs))


def test_the_losses_kept_for_the_check_hold_no_graph():
    # a kept loss with its graph would keep the step's activations alive until the check
    seen = KeptLosses()
    m = TaskModule(StandInModel(2, 4), StandInTask(), functools.partial(torch.optim.SGD, lr=0.1))
    quiet_trainer(max_epochs=1, log_every_n_steps=4, logger=False, callbacks=[seen]).fit(
        m, DataLoader(batches(), batch_size=None)
    )
    # seen before the module's own batch end, which checks them every 4th step
    assert seen.seen == [(n, False, False) for n in (1, 2, 3, 4)] * 2


def test_the_epoch_loss_is_the_mean_over_examples_of_batches_of_any_size():
    sizes, losses = [16, 16, 16, 5], [1.0, 2.0, 3.0, 4.0]
    data = [{INPUTS: torch.randn(n, 2), TARGETS: torch.randint(0, 2, (n,))} for n in sizes]
    frozen = functools.partial(torch.optim.SGD, lr=0.0)
    m = TaskModule(StandInModel(2, 4), ScriptedLoss(losses), frozen)
    trainer = quiet_trainer(
        max_epochs=1,
        log_every_n_steps=2,  # checked after steps 1 (sizes 16, 16) and 3 (16, 5)
        logger=False,
    )
    trainer.fit(m, DataLoader(data, batch_size=None))
    expected = sum(n * loss for n, loss in zip(sizes, losses, strict=True)) / sum(sizes)
    assert trainer.callback_metrics["train/loss"].item() == pytest.approx(expected, rel=1e-6)
