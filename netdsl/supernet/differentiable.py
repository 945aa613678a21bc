"""Differentiable search over a family's choices: one network computing every option of every
op, item and inputs choice (binding with the `mixing` chooser: each option's nodes in their own
group, joined by a `mix` node), whose mixes weigh the options by architecture weights that
train by gradient beside the network's weights (runtime's bilevel loop).

    darts  softmax of the weights (Liu et al., "DARTS: Differentiable Architecture Search",
           ICLR 2019); the same mixture in evaluation.
    gdas   one option per point per step, drawn by Gumbel-softmax with the straight-through
           estimator, temperature annealed 10 -> 0.1 (Dong & Yang, "Searching for a Robust
           Neural Architecture in Four GPU Hours", CVPR 2019); only the paths drawn run.
    beta-darts  darts's softmax, its architecture's loss plus beta-decay: lambda times the
           mean over points of the logsumexp of the weights, lambda rising linearly from 0 to
           50 over the search (Ye et al., "beta-DARTS: Beta-Decay Regularization for
           Differentiable Architecture Search", CVPR 2022; the authors' code,
           optimizers/darts/architect.py, `_backward_step`). It keeps the weights from
           growing apart, the road to the parameter-free cells DARTS collapses to.
    drnas  mixing weights drawn from a Dirichlet whose concentration is elu(weights) + 1,
           by its reparameterised sample, and a KL term (scale 1e-3) to the flat Dirichlet
           (Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021, as NASLib's
           DrNASOptimizer implements it); evaluation uses the Dirichlet's mean.

A point's probabilities are over its options in `netdsl space`'s order; an inputs choice's
over its combinations (`a,b`, `a,c`, ...), each of its K inputs a mix of the refs weighed by
the combinations that put them there. The network found takes each point's most probable
option.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Dirichlet, kl_divergence

from ..errors import NetdslError
from ..language import Bound, Family
from ..language.choices import MIXED, ChoicePoint, mixing
from ..module.layers import Mix
from ..module.network import Network
from . import METHODS

TEMPERATURE = (10.0, 0.1)  # GDAS's Gumbel-softmax temperature, first epoch to last
DRNAS_KL_SCALE = 1e-3
BETA_DECAY = 50.0  # beta-DARTS's lambda at the search's end (its code: 50 * epoch / 100)
INITIAL_SCALE = 1e-3  # architecture weights start as this times a standard normal (DARTS)


class Architecture(nn.Module):
    """The architecture weights of `points`, one vector per point (an entry per option), and
    how `method` turns them into mixing weights: the interface runtime's bilevel loop trains
    (`parameters`, `anneal`, `regulariser`, `probabilities`)."""

    def __init__(self, points: list[ChoicePoint], method: str, seed: int = 0):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method is one of {', '.join(METHODS)}, not {method!r}")
        self.points, self.method = list(points), method
        generator = torch.Generator().manual_seed(seed)
        self.weights = nn.ParameterList(
            nn.Parameter(INITIAL_SCALE * torch.randn(len(point.values()), generator=generator))
            for point in self.points)
        self.temperature = TEMPERATURE[0]
        self.fraction = 0.0  # of the search done, as the last `anneal` said
        self.gumbel = torch.Generator().manual_seed(seed + 1)  # GDAS's draws, on the CPU

    def anneal(self, fraction: float) -> None:
        """Set the schedule `fraction` (0 to 1) of the way through the search: GDAS's
        temperature falls linearly from 10 to 0.1, as its authors' code does per epoch;
        beta-DARTS's lambda rises from 0 to 50."""
        self.fraction = fraction
        high, low = TEMPERATURE
        self.temperature = high - (high - low) * fraction

    def mixing_weights(self, training: bool) -> list[torch.Tensor]:
        """Each point's weights for one forward pass, one per option."""
        if self.method in ("darts", "beta-darts"):
            return [w.softmax(0) for w in self.weights]
        if self.method == "drnas":
            concentrations = [F.elu(w) + 1 for w in self.weights]
            if not training:
                return [c / c.sum() for c in concentrations]
            return [Dirichlet(c).rsample() for c in concentrations]
        if not training:
            return [F.one_hot(w.argmax(), len(w)).to(w.dtype) for w in self.weights]
        drawn = []
        for w in self.weights:
            gumbel = -torch.empty(len(w)).exponential_(generator=self.gumbel).log()
            soft = ((w.log_softmax(0) + gumbel.to(w.device)) / self.temperature).softmax(0)
            hard = F.one_hot(soft.argmax(), len(w)).to(soft.dtype)
            drawn.append(hard - soft.detach() + soft)  # one-hot in value, soft's gradient
        return drawn

    def regulariser(self) -> torch.Tensor:
        """What the architecture's loss adds: beta-DARTS's beta-decay, DrNAS's KL to the
        flat Dirichlet, else 0."""
        if self.method == "beta-darts":
            return BETA_DECAY * self.fraction * torch.stack(
                [w.logsumexp(0) for w in self.weights]).mean()
        if self.method != "drnas":
            return torch.zeros((), device=self.weights[0].device)
        return DRNAS_KL_SCALE * torch.stack([
            kl_divergence(Dirichlet(F.elu(w) + 1), Dirichlet(torch.ones_like(w)))
            for w in self.weights]).sum()

    def probabilities(self) -> dict[str, list[float]]:
        """Each point's probability of each option (summing to 1): the softmax of its
        weights, or for DrNAS the Dirichlet's mean."""
        with torch.no_grad():
            if self.method == "drnas":
                values = [F.elu(w) + 1 for w in self.weights]
                values = [v / v.sum() for v in values]
            else:
                values = [w.softmax(0) for w in self.weights]
        return {point.name: [float(p) for p in v] for point, v in zip(self.points, values)}

    def found(self) -> dict[str, Any]:
        """Each point's most probable option, as binding (and `--set`) takes it."""
        return {point.name: point.values()[max(range(len(p)), key=p.__getitem__)]
                for point, p in zip(self.points, self.probabilities().values())}


class MixedSupernet(nn.Module):
    """`family`'s network with every op, item and inputs choice mixed, bound with `values`
    (which must fix every number's choice) for inputs of `input_shape`, its weights seeded by
    `seed`, and its `architecture` (held outside the module's children: the weight optimizers
    never see it). Each forward pass asks the architecture for mixing weights; GDAS's
    one-hot ones run only the paths they pick."""

    def __init__(self, family: Family, values: dict[str, Any], input_shape: tuple[int, ...],
                 method: str, seed: int = 0):
        super().__init__()
        self.bound: Bound = family.bind(values, input_shape=input_shape, chooser=mixing)
        points = [self.bound.points[name] for name, chosen in self.bound.choices.items()
                  if chosen is MIXED]
        if not points:
            raise NetdslError(f"{family.name}: no op, item or inputs choice is left to search")
        self.network: Network = self.bound.module(seed)
        self.architecture = [Architecture(points, method, seed)]  # a list: not a child
        order = {point.name: i for i, point in enumerate(points)}
        self._mixes = [(order[m.point], m) for m in self.network.modules() if isinstance(m, Mix)]
        # For GDAS's paths: each node's inputs by position, and which inputs each mix weighs.
        self._sources = [()] + [sources for _, sources, _ in self.network._steps]
        self._mix_at = {k: (order[module.point], module)
                        for k, (module, _, _) in enumerate(self.network._steps, 1)
                        if isinstance(module, Mix)}

    @property
    def points(self) -> list[ChoicePoint]:
        return self.architecture[0].points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        architecture = self.architecture[0]
        weights = architecture.mixing_weights(self.training)
        for index, mix in self._mixes:
            mix.probabilities = weights[index].to(x.device)
        one_path = architecture.method == "gdas" and self.training
        return self.network.run(x, self._needed(weights) if one_path else None)

    def _needed(self, weights: list[torch.Tensor]) -> list[bool]:
        """Which nodes the paths drawn (`weights`, one-hot per point) read: from the output
        back, through each mix only the inputs its point's weights keep."""
        needed = [False] * len(self._sources)
        needed[-1] = True
        for k in range(len(self._sources) - 1, 0, -1):
            if not needed[k]:
                continue
            mix = self._mix_at.get(k)
            kept = None if mix is None else (
                mix[1].weighs @ weights[mix[0]].detach().to(mix[1].weighs.device)) > 0
            for i, source in enumerate(self._sources[k]):
                if kept is None or kept[i]:
                    needed[source] = True
        return needed

    def path_of(self, name: str) -> str:
        """A parameter's node path (`network.cell1_n1_nor_conv_3x3_conv.weight` ->
        `cell1/n1/nor_conv_3x3/conv/weight`), for the trainer's groups by path."""
        return self.network.path_of(name.removeprefix("network."))
