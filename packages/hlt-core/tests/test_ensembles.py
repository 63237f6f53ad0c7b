"""A model that returns ensemble members (``EnsembleModel``): each member learns from its
own loss, everything else reads the members combined by the task, and a padded
sequence's mask reaches every member (stand-ins only)."""

import functools

import pytest
import torch
from torch import nn

from hlt_core.contracts import INPUTS, MASK, TARGETS
from hlt_core.errors import UserError
from hlt_core.testing import StandInData, StandInTask
from hlt_core.training.ensembles import MemberDecoder
from hlt_core.training.module import TaskModule


class Members(nn.Module):
    """Three members of four features each, from one linear layer."""

    members = 3
    out_features = 4

    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, self.members * self.out_features)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.layer(inputs)).unflatten(-1, (self.members, self.out_features))


class MeanProbabilities(nn.Module):
    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.softmax(dim=-1).mean(dim=1).log()


class EnsembleTask(StandInTask):
    def member_combiner(self) -> nn.Module:
        return MeanProbabilities()


def ensemble_module(task=None) -> TaskModule:
    torch.manual_seed(0)
    return TaskModule(
        Members(), task or EnsembleTask(), optimizer=functools.partial(torch.optim.SGD, lr=0.1)
    )


def test_each_member_learns_from_its_own_loss_and_the_rest_reads_the_ensemble():
    module = ensemble_module()
    assert isinstance(module.decoder, MemberDecoder)
    batch = StandInData(input_dim=2, batch_size=8).splits["train"][0]
    features = module.model(batch[INPUTS])
    member_logits = torch.stack(
        [module.decoder.decoder(features[:, i]) for i in range(3)], dim=1
    )  # the task's one decoder on each member
    own_losses = [module.task.loss(member_logits[:, i], batch) for i in range(3)]
    loss = module.training_step(batch, 0)
    torch.testing.assert_close(loss, torch.stack(own_losses).mean())
    ensemble_logits = member_logits.softmax(dim=-1).mean(dim=1).log()
    assert not torch.allclose(loss, module.task.loss(ensemble_logits, batch))
    with torch.no_grad():
        torch.testing.assert_close(module(batch[INPUTS]), ensemble_logits)
        torch.testing.assert_close(
            module.predict_step(batch, 0), member_logits.softmax(dim=-1).mean(dim=1)
        )


def test_training_moves_every_member_and_the_shared_decoder():
    module = ensemble_module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    optimizer = module.configure_optimizers()
    batch = StandInData(input_dim=2, batch_size=8).splits["train"][0]
    module.training_step(batch, 0).backward()
    optimizer.step()
    changed = {k for k, v in module.state_dict().items() if not torch.equal(v, before[k])}
    assert {"model.layer.weight", "decoder.decoder.weight"} <= changed


def test_a_task_that_cannot_combine_members_is_one_line_naming_both():
    with pytest.raises(UserError, match=r"Members returns 3 ensemble members.*StandInTask"):
        ensemble_module(StandInTask())


class SequenceMembers(Members):
    """Three members of four features at every position of ``(batch, length, 2)`` inputs."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        features = torch.tanh(self.layer(inputs)).unflatten(-1, (self.members, -1))
        return features.transpose(1, 2)  # (batch, members, length, features)


class MaskedMeanPool(nn.Module):
    """The mean over the real positions (``mask`` True), then a linear layer: a pooling
    decoder of a sequence classification task."""

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        weights = torch.ones(features.shape[:2]) if mask is None else mask.float()
        pooled = (features * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
        return self.linear(pooled)


class PooledTask(EnsembleTask):
    def build_decoder(self, in_features: int) -> nn.Module:
        return MaskedMeanPool(in_features, self.num_classes)


def test_an_ensemble_on_padded_sequences_never_reads_the_padding():
    """Training (each member's own loss) and evaluation (the combined members) give the
    pooling decoder the batch's mask for every member, as for a single model: changing
    the padded positions changes nothing."""
    torch.manual_seed(0)
    module = TaskModule(SequenceMembers(), PooledTask(), optimizer=None)
    mask = torch.arange(6)[None, :] < torch.tensor([[6], [2], [4], [1]])
    batch = {INPUTS: torch.randn(4, 6, 2), TARGETS: torch.tensor([0, 1, 1, 0]), MASK: mask}
    padded = {**batch, INPUTS: batch[INPUTS].masked_fill(~mask[..., None], 1e3)}
    features = module.model(batch[INPUTS])
    own = [module.task.loss(module.decoder.decoder(features[:, i], mask=mask), batch)
           for i in range(3)]  # fmt: skip
    loss = module.training_step(batch, 0)
    torch.testing.assert_close(loss, torch.stack(own).mean())
    torch.testing.assert_close(module.training_step(padded, 0), loss)
    with torch.no_grad():
        outputs = module(batch[INPUTS], mask)
        torch.testing.assert_close(module(padded[INPUTS], mask), outputs)
        torch.testing.assert_close(module.predict_step(padded, 0), outputs.softmax(dim=-1))
