"""What follows the optimizer steps: an exponential moving average of the weights (evaluated
in their place) and lookahead (the weights pulled toward a slow copy)."""
from __future__ import annotations


import torch
from torch import nn

from .recipe import Recipe


class NoAverage:
    """The weights evaluated are the model's own (the compiled one, when compiled)."""

    def __init__(self, step_model: nn.Module):
        self.evaluated = step_model

    def update(self, model: nn.Module) -> None:
        pass

    def keep(self, model: nn.Module) -> None:
        pass


class MovingAverage:
    """A moving average of the weights and BatchNorm statistics, decay `decay` per step: what
    is evaluated, and what the model holds at the end."""

    def __init__(self, model: nn.Module, decay: float):
        self.average = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay),
            use_buffers=True)
        self.evaluated = self.average.module

    def update(self, model: nn.Module) -> None:
        self.average.update_parameters(model)

    def keep(self, model: nn.Module) -> None:
        _copy(model.state_dict().values(), self.average.module.state_dict().values())


@torch.no_grad()
def _copy(targets, sources) -> None:
    """Each tensor of `targets` set to its counterpart in `sources`, in place."""
    for target, source in zip(targets, sources):
        target.copy_(source)


class NoLookahead:
    def after_step(self, step: int) -> None:
        pass

    def after_epoch(self) -> None:
        pass


class Lookahead:
    """airbench's lookahead: from epoch `lookahead_from`, every `lookahead_every` steps, the
    weights and BatchNorm statistics are pulled into a moving average with decay
    lookahead^every * (step/total)^3 and copied back; after each epoch the model takes the
    average."""

    def __init__(self, model: nn.Module, recipe: Recipe, steps_per_epoch: int, total_steps: int):
        # The live tensors themselves: copying into them changes the model.
        self.live = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.average: list[torch.Tensor] | None = None  # made at the first update
        self.every, self.total_steps = recipe.lookahead_every, total_steps
        self.base = recipe.lookahead ** recipe.lookahead_every
        self.first_step = recipe.lookahead_from * steps_per_epoch

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if step % self.every or step <= self.first_step:
            return
        if self.average is None:
            self.average = [t.clone() for t in self.live]
        decay = self.base * (step / self.total_steps) ** 3
        for average, tensor in zip(self.average, self.live):
            average.lerp_(tensor, 1 - decay)
            tensor.copy_(average)

    def after_epoch(self) -> None:
        if self.average is not None:
            _copy(self.live, self.average)
