"""The bilevel loop of a differentiable architecture search (DARTS's Algorithm 1, Liu et al.,
ICLR 2019), for any nn.Module whose forward pass reads an architecture held beside it: each
step one architecture step (Adam) on a batch of the held-out images, then one weight step, the
shared trainer's (`_Run.step`: its recipe, precision, groups and schedule), on a batch of the
trained ones.

The architecture is any nn.Module with three methods more: `anneal(fraction)` (its own
schedule, told how far the search is, 0 to 1, at each epoch's start), `regulariser()` (a
scalar its loss adds) and `probabilities()` (a mapping to lists of floats, recorded after each
epoch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .data import DeviceData
from .evaluation import validate
from .machine import now
from .recipe import Recipe
from .results import Epoch, table_header, table_row
from .trainer import _Run

FINITE_DIFFERENCE = 0.01  # DARTS's epsilon for the second-order step, over the gradient's norm


class Architecture(Protocol):
    """What the loop trains beside the model: its parameters, and three methods more."""

    def parameters(self) -> Iterator[nn.Parameter]: ...

    def anneal(self, fraction: float) -> None: ...

    def regulariser(self) -> torch.Tensor: ...

    def probabilities(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ArchitectureSteps:
    """How the architecture trains: Adam at `lr` with `betas` and `weight_decay` (DARTS's
    defaults), first order, or `second_order`: the gradient through one unrolled weight step."""
    lr: float = 3e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-3
    second_order: bool = False


@dataclass
class Searched:
    """What a search did: `status` (finished, diverged, interrupted), its epochs (the valid
    columns measured on the held-out images), the architecture's probabilities after each
    epoch, the seconds its steps took."""
    status: str
    epochs: list[Epoch] = field(default_factory=list)
    probabilities: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    seconds: float = 0.0


def search(model: nn.Module, architecture: Architecture, data: DeviceData, recipe: Recipe,
           steps: ArchitectureSteps = ArchitectureSteps(),
           log: Callable[[str], None] | None = print) -> Searched:
    """Train `model`'s weights on `data`'s training images and `architecture` on its
    evaluated ones (a held-out part of the training set), alternating a step of each, for
    `recipe`'s epochs. Ctrl-C ends it with status "interrupted", keeping the epochs done."""
    out = log or (lambda line: None)
    run = _Run(model, data, recipe)
    held_out = data.evaluated_as_training()
    optimizer = torch.optim.Adam(architecture.parameters(), lr=steps.lr, betas=steps.betas,
                                 weight_decay=steps.weight_decay)
    searched, step = Searched("finished"), 0
    epochs = math.ceil(run.total_steps / run.steps_per_epoch)
    out(f"{run.precision} ({run.why}); {run.steps_per_epoch} steps of {recipe.batch_size} per "
        f"epoch, each an architecture step on {held_out.train_size:,} held-out images and a "
        "weight step")
    out(table_header())
    try:
        for epoch in range(epochs):
            architecture.anneal(epoch / max(epochs - 1, 1))
            run.set_trained(epoch)
            start = now(data.device)
            # Summed on the device: reading them each step would stall a GPU.
            loss_sum = torch.zeros((), device=data.device)
            correct = torch.zeros((), device=data.device, dtype=torch.long)
            seen = 0
            architecture_batches = held_out.train_batches(
                recipe.batch_size, run.generator, translate=recipe.translate,
                cutout=recipe.cutout, flips=None)
            for x, y in data.train_batches(recipe.batch_size, run.generator,
                                           translate=recipe.translate, cutout=recipe.cutout,
                                           flips=run.flips(epoch)):
                if step == run.total_steps:
                    break
                held = next(architecture_batches, None)
                if held is None:  # a held-out part smaller than the trained one: again
                    architecture_batches = held_out.train_batches(
                        recipe.batch_size, run.generator, translate=recipe.translate,
                        cutout=recipe.cutout, flips=None)
                    held = next(architecture_batches)
                fraction = recipe.schedule(step / run.steps_per_epoch)
                model.train()
                if steps.second_order:
                    _unrolled_step(model, architecture, optimizer, (x, y), held,
                                   _weight_lr(run, fraction), run.dtype)
                else:
                    _architecture_step(model, architecture, optimizer, held, run.dtype)
                loss, logits = run.step(x, y, fraction)
                step += 1
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
            train_time = now(data.device) - start
            searched.seconds += train_time
            train_loss = loss_sum.item() / seen
            if not math.isfinite(train_loss):
                searched.status = "diverged"
                searched.message = (f"the training loss became {train_loss} in epoch "
                                    f"{epoch + 1}")
                break
            start = now(data.device)
            valid_loss, valid_acc = validate(model, data, recipe, run.dtype)
            valid_time = now(data.device) - start
            record = Epoch(epoch + 1, recipe.lr_at(step / run.steps_per_epoch), train_time,
                           train_loss, correct.item() / seen, valid_time, valid_loss, valid_acc,
                           train_time + valid_time)
            searched.epochs.append(record)
            searched.probabilities.append(architecture.probabilities())
            out(table_row(record))
    except KeyboardInterrupt:
        searched.status = "interrupted"
        searched.message = f"interrupted after {len(searched.epochs)} epochs"
    return searched


def _weight_lr(run: _Run, fraction: float) -> float:
    """The weight step's learning rate at `fraction` of the peak (the first group's): the
    unrolled step's xi, as DARTS takes its weight learning rate."""
    return run.optimizers[0].param_groups[0]["peak"] * fraction


def _loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor],
          dtype: torch.dtype | None, weights: dict[str, torch.Tensor] | None = None
          ) -> torch.Tensor:
    x, y = batch
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(x) if weights is None else functional_call(model, weights, (x,))
    return F.cross_entropy(logits.float(), y)


def _architecture_step(model: nn.Module, architecture: Architecture,
                       optimizer: torch.optim.Optimizer,
                       held: tuple[torch.Tensor, torch.Tensor],
                       dtype: torch.dtype | None) -> None:
    """First order: the architecture's gradient of the held-out loss at today's weights."""
    optimizer.zero_grad(set_to_none=True)
    loss = _loss(model, held, dtype) + architecture.regulariser()
    alphas = list(architecture.parameters())
    # A point the drawn paths cut off (GDAS: a zero op reads it) gets no gradient: none is 0.
    for alpha, grad in zip(alphas, torch.autograd.grad(loss, alphas, allow_unused=True)):
        alpha.grad = torch.zeros_like(alpha) if grad is None else grad
    optimizer.step()


def unrolled_gradients(model: nn.Module, architecture: Architecture,
                       trained: tuple[torch.Tensor, torch.Tensor],
                       held: tuple[torch.Tensor, torch.Tensor], xi: float,
                       dtype: torch.dtype | None = None,
                       epsilon: float = FINITE_DIFFERENCE) -> list[torch.Tensor]:
    """DARTS's second-order gradient of the held-out loss at the weights one step on,
    w' = w - xi * grad_w L_train(w, a): grad_a L_held(w', a) - xi * H grad_w' L_held(w', a),
    the Hessian-vector product by central differences at w +- eps * grad_w' L_held, eps being
    `epsilon` over that gradient's norm (eq. 7-8 of the paper)."""
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    weights = [dict(model.named_parameters())[name] for name in names]
    alphas = list(architecture.parameters())
    grads = torch.autograd.grad(_loss(model, trained, dtype), weights)
    stepped = {name: (w - xi * g).detach().requires_grad_()
               for name, w, g in zip(names, weights, grads)}
    held_loss = _loss(model, held, dtype, stepped) + architecture.regulariser()
    found = torch.autograd.grad(held_loss, [*alphas, *stepped.values()], allow_unused=True)
    alpha_grads = [torch.zeros_like(a) if g is None else g for a, g in zip(alphas, found)]
    vector = [torch.zeros_like(w) if g is None else g
              for w, g in zip(weights, found[len(alphas):])]
    eps = epsilon / torch.cat([v.flatten() for v in vector]).norm().clamp_min(1e-12)
    sides = []
    for sign in (1, -1):
        moved = {name: (w + sign * eps * v).detach()
                 for name, w, v in zip(names, weights, vector)}
        loss = _loss(model, trained, dtype, moved)
        sides.append(torch.autograd.grad(loss, alphas, allow_unused=True))
    return [g - xi * ((0 if p is None else p) - (0 if m is None else m)) / (2 * eps)
            for g, p, m in zip(alpha_grads, *sides)]


def _unrolled_step(model: nn.Module, architecture: Architecture, optimizer: torch.optim.Optimizer,
                   trained: tuple[torch.Tensor, torch.Tensor],
                   held: tuple[torch.Tensor, torch.Tensor], xi: float,
                   dtype: torch.dtype | None) -> None:
    optimizer.zero_grad(set_to_none=True)
    for alpha, grad in zip(architecture.parameters(),
                           unrolled_gradients(model, architecture, trained, held, xi, dtype)):
        alpha.grad = grad
    optimizer.step()
