"""A weight-sharing supernet of a family's space (single-path one-shot: Guo et al., "Single
Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020).

One module holds every layer any network of the space has, by node path, at the widest size any
network gives it. Each training step runs networks drawn at random (seeded: one drawn
uniformly, or with fair sampling one per option of each point) with the layers they use, their
first channels where a network is narrower (as `--init-from` slices wider weights), so the
shared trainer and recipe train it as any module. A network of the space is
then evaluated with the supernet's weights in seconds, after its BatchNorm statistics are
recalibrated on a few training batches, and `--init-from super.pt` starts a network from them.

Layers are shared by node path, layer class, kernel size and the blocks whose calls made the
node: two networks share a layer where the same calls put the same layer at the same path, so
each option of a choice has its own layers (NAS-Bench-201's 1x1 and 3x3 convolutions on one
edge have their own filters and their own BatchNorm, as in the paper), while a width choice
or a choice elsewhere in the network leaves them shared.
"""
from __future__ import annotations

import random
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.func import functional_call

from ..errors import NetdslError
from ..graph import is_number
from ..language import Bound, Family
from ..language.choices import ChoicePoint, at_defaults, drawn_at_random
from ..module.network import Network, build_module, module_name

if TYPE_CHECKING:
    import netdsl_runtime as runtime

CACHED_NETWORKS = 64  # networks whose structure is kept between steps
MAX_EXPLORED = 2000   # bindings spent finding every layer of a space whose points nest
RECALIBRATION_BATCHES = 8


def layer_key(path: str, module: nn.Module, makers: tuple[str, ...]) -> str:
    """The supernet's name for the layer at node `path`: the path, the layer's class and
    kernel size, and the blocks whose calls made it (`makers`, from `Bound.makers`, the
    primitive last): `cell1/n1/bn#BatchNorm@cell>nor_conv_3x3>relu_conv_bn`, what two networks
    must agree on to share it."""
    weight = getattr(module, "weight", None)
    kernel = "x".join(map(str, weight.shape[2:])) if isinstance(weight, torch.Tensor) else ""
    return f"{path}#{type(module).__name__}{kernel}@{'>'.join(makers[:-1])}"


class Supernet(nn.Module):
    """Every layer of `family`'s networks bound with `values` for inputs of `input_shape`.
    Training draws networks at random (seeded by `seed`) for each forward pass, as `sampling`
    says: "uniform", one network, each point's value uniformly, as binding meets it (Guo et
    al.); "fair", as many networks as the largest point has options, each point's options
    dealt to them in a new random order, each network running its share of the batch, so
    that every option of every point trains on the same number of images every step
    (FairNAS's strict fairness, Chu et al., ICCV 2021, within one batch rather than by
    accumulating gradients). Otherwise the forward pass runs `active`, the network at the
    defaults, bound once."""

    def __init__(self, family: Family, values: dict[str, Any], input_shape: tuple[int, ...],
                 seed: int = 0, sampling: str = "uniform"):
        super().__init__()
        self.family, self.values, self.input_shape = family, dict(values), tuple(input_shape)
        if sampling not in ("uniform", "fair"):
            raise ValueError(f"sampling is uniform or fair, not {sampling!r}")
        self.sampling = sampling
        self._fair_points = _fair_points(family, self.values, self.input_shape) \
            if sampling == "fair" else ()
        self.layers = nn.ModuleDict()
        self._networks: OrderedDict[str, tuple[Network, list]] = OrderedDict()
        self._rng = random.Random(seed)
        self.drawn: set[str] = set()  # fingerprints of the networks trained
        widest: dict[str, tuple[str, Any, tuple]] = {}  # key -> (path, op, its tensors' shapes)
        for bound in _networks_with_every_layer(family, self.values, self.input_shape):
            with torch.device("meta"):
                network = bound.module()
            makers = bound.makers()
            for path, module in network.named_nodes():
                if callable(getattr(module, "initialise_from_images", None)):
                    raise NetdslError(f"supernet: node '{path}' is set from the data "
                                      "(whiten), which a supernet cannot share")
                shapes = tuple(tuple(t.shape) for t in module.state_dict().values())
                key = layer_key(path, module, makers[path])
                if key in widest and not (_larger(shapes, widest[key][2])
                                          or _larger(widest[key][2], shapes)
                                          or shapes == widest[key][2]):
                    raise NetdslError(f"supernet: node '{path}' is widest in one dimension in "
                                      f"one network and in another in another ({shapes} and "
                                      f"{widest[key][2]}); no one layer holds both")
                if key not in widest or _larger(shapes, widest[key][2]):
                    widest[key] = (path, bound.graph[path][0], shapes)
        self._widest = widest
        self.active = family.bind(self.values, input_shape=self.input_shape)

    def value_count(self) -> int:
        """Values in the layers' tensors at their widest, before they are made."""
        return sum(torch.Size(shape).numel() for _, _, shapes in self._widest.values()
                   for shape in shapes)

    def allocate(self, seed: int) -> None:
        """Make the layers, each initialised as its network initialises it, from `seed`."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            for key in sorted(self._widest):
                path, op, _ = self._widest[key]
                self.layers[key] = build_module(path, op)

    # ---- the networks ----------------------------------------------------------------------

    def bind(self, choices: dict[str, Any] | None = None) -> Bound:
        """The network of `choices` (point name -> value; the rest at their defaults), or with
        None one drawn at random."""
        if choices is None:
            return self.family.bind(self.values, input_shape=self.input_shape,
                                    chooser=drawn_at_random(self._rng))
        return self.family.bind({**self.values, **choices}, input_shape=self.input_shape)

    def network(self, bound: Bound) -> nn.Module:
        """`bound` (a network of this supernet's family and values) as a module running on the
        supernet's weights."""
        return _Inherited(self, bound)

    def networks_per_step(self) -> int:
        return max((len(p.values()) for p in self._fair_points), default=1)

    def dealt(self) -> list[Bound]:
        """Fair sampling's networks for one step: each point's options in a new random order,
        the i-th network taking each point's i-th option (a point with fewer options starts
        its order again; with every point fixed by the values, the one network they make)."""
        orders = [(p.name, self._rng.sample(p.values(), len(p.values())))
                  for p in self._fair_points]
        count = max((len(order) for _, order in orders), default=1)
        return [self.bind({name: order[i % len(order)] for name, order in orders})
                for i in range(count)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.run(self.active, x, False)
        networks = [self.bind()] if self.sampling == "uniform" else self.dealt()
        self.drawn.update(bound.fingerprint for bound in networks)
        return torch.cat([self.run(bound, part, True)
                          for bound, part in zip(networks, x.tensor_split(len(networks)))])

    def run(self, bound: Bound, x: torch.Tensor, training: bool) -> torch.Tensor:
        """`bound`'s network on `x` with the supernet's layers, in training mode or not
        (BatchNorm on the batch's statistics and updating the held ones, or on those)."""
        network, tensors = self._structure(bound)
        network.train(training)
        return functional_call(network, {name: getattr(self.layers[key], attr)[index]
                                         for name, key, attr, index in tensors}, (x,))

    def _structure(self, bound: Bound) -> tuple[Network, list]:
        """`bound`'s module on the meta device (no weights of its own) and, for each of its
        tensors, the layer and slice of the supernet's that stands in: cached."""
        cached = self._networks.get(bound.fingerprint)
        if cached is not None:
            self._networks.move_to_end(bound.fingerprint)
            return cached
        with torch.device("meta"):
            network = bound.module()
        makers = bound.makers()
        tensors = []
        for path, module in network.named_nodes():
            key = layer_key(path, module, makers[path])
            if key not in self.layers:
                raise NetdslError(f"supernet: the network's node '{path}' ({key}) is not in "
                                  "the supernet: the network is outside its space")
            for attr, tensor in module.state_dict().items():
                held = getattr(self.layers[key], attr)
                if held.dim() != tensor.dim() or any(h < t for h, t in zip(held.shape,
                                                                           tensor.shape)):
                    raise NetdslError(f"supernet: node '{path}' needs {attr} of "
                                      f"{tuple(tensor.shape)}, the supernet holds "
                                      f"{tuple(held.shape)}: the network is outside its space")
                tensors.append((f"{module_name(path)}.{attr}", key, attr,
                                tuple(slice(0, s) for s in tensor.shape)))
        self._networks[bound.fingerprint] = network, tensors
        if len(self._networks) > CACHED_NETWORKS:
            self._networks.popitem(last=False)
        return network, tensors

    def path_of(self, name: str) -> str:
        """The node path of a parameter or buffer name:
        `layers.cell1/n1/conv#Conv2d3x3@cell>nor_conv_3x3>relu_conv_bn.weight` ->
        `cell1/n1/conv/weight`, for the trainer's learning rates by path."""
        key, _, attr = name.removeprefix("layers.").rpartition(".")
        return f"{key.partition('#')[0]}/{attr.replace('.', '/')}"

    def accuracy(self, bound: Bound, data: "runtime.DeviceData", recipe: "runtime.Recipe",
                 batches: int = RECALIBRATION_BATCHES) -> float:
        """The accuracy on `data`'s evaluation images of the network `bound` with the
        supernet's weights, its BatchNorm statistics first recalibrated: reset, then the mean over
        `batches` batches of training images (not augmented)."""
        import netdsl_runtime as runtime

        network = self.network(bound)
        structure, tensors = self._structure(bound)
        norms = [m for m in structure.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        with torch.no_grad():
            for _, key, attr, index in tensors:
                held = getattr(self.layers[key], attr)
                if attr in ("running_mean", "num_batches_tracked"):
                    held[index].zero_()
                elif attr == "running_var":
                    held[index].fill_(1)
            momenta = [m.momentum for m in norms]
            for m in norms:
                m.momentum = None  # a cumulative mean over the batches
            network.train()
            try:
                for start in range(0, min(batches * recipe.batch_size, data.train_size),
                                   recipe.batch_size):
                    network(data.normalise(data.train_x[start:start + recipe.batch_size]))
            finally:
                for m, momentum in zip(norms, momenta):
                    m.momentum = momentum
        _, accuracy = runtime.validate(network, data, recipe, None)
        return accuracy


class _Inherited(nn.Module):
    """One network of a supernet, running on the supernet's weights."""

    def __init__(self, supernet: Supernet, bound: Bound):
        super().__init__()
        self.supernet, self.bound = [supernet], bound  # a list: not a child module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet[0].run(self.bound, x, self.training)


def _fair_points(family: Family, values: dict[str, Any], input_shape: tuple[int, ...]
                 ) -> tuple[ChoicePoint, ...]:
    """The choice points fair sampling deals options of: those `values` leave free, each with
    a list of options and met in every network, else a NetdslError saying which is not."""
    space = family.space(values, input_shape=input_shape)
    return tuple(point for point in family.listed_points(space, values, "--sampling fair")
                 if point.name not in values)


def _larger(shapes: tuple, than: tuple) -> bool:
    """Whether every tensor of a layer is at least as large as the other's, one larger."""
    return len(shapes) == len(than) and shapes != than and all(
        all(a >= b for a, b in zip(s, t)) for s, t in zip(shapes, than))


def _networks_with_every_layer(family: Family, values: dict[str, Any],
                               input_shape: tuple[int, ...]):
    """Networks of the space that between them have every layer at its widest: the defaults,
    then each value of each point with the others at their defaults (with the choices that
    make a nested point appear); then the same with every number chosen at its largest, so an
    option meets the widest layers too; up to MAX_EXPLORED bindings in all."""
    seen: set[str] = set()
    bases: set[str] = set()
    bound_count = 0
    for chooser in (at_defaults, _largest):
        base = family.bind(values, input_shape=input_shape, chooser=chooser)
        if base.fingerprint in bases:  # no number is above its default: nothing more to find
            continue
        bases.add(base.fingerprint)
        if base.fingerprint not in seen:
            seen.add(base.fingerprint)
            yield base
        queue: list[tuple[dict[str, Any], Bound]] = [({}, base)]
        while queue and bound_count < MAX_EXPLORED:
            picks, bound = queue.pop(0)
            for name, point in bound.points.items():
                if name in picks or name in values or point.size is None:  # values: fixed
                    continue
                for value in point.values():  # a range's made one by one: stop at the budget
                    if bound_count >= MAX_EXPLORED:
                        break
                    if value == bound.choices.get(name):
                        continue
                    more = {**picks, name: value}
                    other = family.bind({**values, **more}, input_shape=input_shape,
                                        chooser=chooser)
                    bound_count += 1
                    if other.fingerprint in seen:
                        continue
                    seen.add(other.fingerprint)
                    yield other
                    if set(other.points) != set(bound.points):  # it makes other points appear
                        queue.append((more, other))


def _largest(point: ChoicePoint) -> Any:
    """A chooser: a number at its largest, anything else at its default."""
    if point.size is None:
        return point.high
    if not point.options:  # a range's values rise
        return point.values()[-1]
    numbers = [v for v in point.options if is_number(v)]
    return max(numbers) if len(numbers) == point.size else point.default
