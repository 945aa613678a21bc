"""A weight-sharing supernet of a family's space (single-path one-shot: Guo et al., "Single
Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020).

One module holds every layer any network of the space has, by node path, at the widest size any
network gives it. Each training step runs one network drawn uniformly at random (seeded) with
the layers it uses, their first channels where it is narrower (as `--init-from` slices wider
weights), so the shared trainer and recipe train it as any module. A network of the space is
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

from .errors import NetdslError
from .language import Bound, Family
from .graph import is_number
from .language.choices import LISTED_AT_MOST, ChoicePoint, at_defaults, drawn_at_random
from .module.network import Network, build_module, module_name

if TYPE_CHECKING:
    import runtime

FORMAT = "netdsl-supernet-2"  # the `format` entry of a saved supernet (2: keys name makers)
# The other entries of a saved supernet (`Supernet.to_file`): entry -> (its type, the type of
# each item it holds or None, what it is). A dict's keys are text.
SAVED_ENTRIES = {
    "family": (str, None, "the family's text"),
    "values": (dict, None, "the values it was bound with"),
    "input_shape": (list, int, "the input's shape"),
    "default": (str, None, "the default network's fingerprint"),
    "points": (dict, list, "each choice point's options"),
    "layers": (dict, torch.Tensor, "the layers' tensors by name"),
}
CACHED_NETWORKS = 64  # networks whose structure is kept between steps
MAX_EXPLORED = 2000   # bindings spent finding every layer of a space whose points nest
RECALIBRATION_BATCHES = 8
BYTES_PER_VALUE = 4   # fp32 weights; in training also a gradient, momentum and an average


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
    Training draws one network per forward pass (seeded by `seed`); otherwise the forward pass
    runs `active`, the network at the defaults, bound once."""

    def __init__(self, family: Family, values: dict[str, Any], input_shape: tuple[int, ...],
                 seed: int = 0):
        super().__init__()
        self.family, self.values, self.input_shape = family, dict(values), tuple(input_shape)
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

    def weight_bytes(self) -> int:
        """Bytes of the layers' tensors at their widest, before they are made."""
        return BYTES_PER_VALUE * sum(torch.Size(shape).numel() for _, _, shapes in
                                     self._widest.values() for shape in shapes)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bound = self.bind() if self.training else self.active
        if self.training:
            self.drawn.add(bound.fingerprint)
        return self.run(bound, x, self.training)

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

    # ---- saving and loading ----------------------------------------------------------------

    def to_file(self, weights: bool = True) -> dict[str, Any]:
        """What `netdsl supernet -o` saves: the family, its values, each choice point's options
        (what a supernet is checked against when loaded) and, with `weights`, the layers."""
        points = self.family.space(self.values, input_shape=self.input_shape).points
        return {"format": FORMAT, "family": self.family.text, "values": self.values,
                "input_shape": list(self.input_shape),
                "default": self.active.fingerprint,  # the network at the defaults
                "points": {p.name: _offered(p) for p in points},
                **({"layers": {name: t.detach().cpu() for name, t in self.state_dict().items()}}
                   if weights else {})}


class _Inherited(nn.Module):
    """One network of a supernet, running on the supernet's weights."""

    def __init__(self, supernet: Supernet, bound: Bound):
        super().__init__()
        self.supernet, self.bound = [supernet], bound  # a list: not a child module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet[0].run(self.bound, x, self.training)


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
        queue = [({}, base)]
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


def _offered(point: ChoicePoint) -> list:
    """What a point offers, as a supernet's file records it: its values (in words past
    LISTED_AT_MOST of them), or a range of real numbers' bounds."""
    if point.size is None:
        return [point.low, point.high]
    if point.size > LISTED_AT_MOST:
        return [point.describe_options()]
    return [str(v) for v in point.values()]


def _largest(point: ChoicePoint) -> Any:
    """A chooser: a number at its largest, anything else at its default."""
    if point.size is None:
        return point.high
    if not point.options:  # a range's values rise
        return point.values()[-1]
    numbers = [v for v in point.options if is_number(v)]
    return max(numbers) if len(numbers) == point.size else point.default


def check_memory(supernet: Supernet, device) -> None:
    """Refuse, before allocating, a supernet whose layers cannot train in `device`'s memory."""
    import runtime

    free = runtime.free_memory(device)
    need = 4 * supernet.weight_bytes()  # weights, gradients, momentum, a moving average
    if free is not None and need > free:
        raise NetdslError(f"supernet: its layers need about {need / 2 ** 30:,.1f} GiB to train, "
                          f"more than the {free / 2 ** 30:,.1f} GiB free on {device}; bind "
                          "smaller values (--set)")


def recalibrated_accuracy(supernet: Supernet, bound: Bound, data: "runtime.DeviceData",
                          recipe: "runtime.Recipe",
                          batches: int = RECALIBRATION_BATCHES) -> float:
    """The accuracy on `data`'s evaluation images of the network `bound` with the
    supernet's weights, its BatchNorm statistics first recalibrated: reset, then the mean over
    `batches` batches of training images (not augmented)."""
    import runtime

    network = supernet.network(bound)
    structure, tensors = supernet._structure(bound)
    norms = [m for m in structure.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for _, key, attr, index in tensors:
            held = getattr(supernet.layers[key], attr)
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


def check_saved(saved: dict[str, Any], path: str) -> dict[str, Any]:
    """`saved`, the contents of a supernet file at `path`, once every entry is there with
    its type (`SAVED_ENTRIES`): else a NetdslError naming the file and the first bad entry."""
    damaged = f"{path}: a damaged supernet file:"
    for entry, (kind, item_kind, what) in SAVED_ENTRIES.items():
        value = saved.get(entry)
        if not isinstance(value, kind):
            found = (f"of type {type(value).__name__}, not {kind.__name__}" if entry in saved
                     else "missing")
            raise NetdslError(f"{damaged} its '{entry}' ({what}) is {found}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict) and not isinstance(key, str):
                raise NetdslError(f"{damaged} its '{entry}' ({what}) has the key {key!r}, "
                                  "not text")
            if item_kind is not None and not isinstance(item, item_kind):
                raise NetdslError(f"{damaged} its '{entry}' ({what}) holds {key!r} of type "
                                  f"{type(item).__name__}, not {item_kind.__name__}")
    return saved


def load_supernet(saved: dict[str, Any], family: Family, values: dict[str, Any],
                  input_shape: tuple[int, ...], where: str) -> Supernet:
    """The supernet saved as `saved` (read from `where`), for `family` bound with `values`:
    refused, naming the first difference, when it was trained for another family or space."""
    supernet = Supernet(family, values, input_shape)
    description = supernet.to_file(weights=False)
    here, here_default = description["points"], description["default"]
    there = saved.get("points", {})
    for name in [*here, *there]:
        if here.get(name) != there.get(name):
            raise NetdslError(f"{where}: a supernet of another space: choice point '{name}' "
                              f"offers {there.get(name) or 'nothing'} there, "
                              f"{here.get(name) or 'nothing'} here")
    for name in sorted(set(saved.get("values", {})) | set(supernet.values)):
        if saved["values"].get(name) != supernet.values.get(name):
            raise NetdslError(f"{where}: a supernet of {name}={saved['values'].get(name)}, "
                              f"not {supernet.values.get(name)}")
    if saved.get("default") != here_default:
        raise NetdslError(f"{where}: a supernet of another family: its default network is "
                          f"not {family.name}'s")
    supernet.allocate(0)
    try:
        supernet.load_state_dict(saved["layers"])
    except RuntimeError as e:
        raise NetdslError(f"{where}: its layers do not fit {family.name}'s: "
                          f"{str(e).splitlines()[0]}") from None
    return supernet


def read_supernet(path: str, family: Family, values: dict[str, Any],
                  input_shape: tuple[int, ...]) -> Supernet:
    """The supernet `netdsl supernet` saved at `path`, checked against `family` (see
    `load_supernet`)."""
    from .fit import load_weights

    saved = load_weights(path)
    if saved.get("format") != FORMAT:
        raise NetdslError(f"--supernet {path}: not a supernet saved by netdsl supernet (a "
                          "network's weights?)")
    return load_supernet(saved, family, values, input_shape, path)


def weights_for(saved: dict[str, Any], bound: Bound, model: Network) -> dict[str, torch.Tensor]:
    """The path-keyed weights (as `--save-weights` writes them) that a saved supernet holds for
    `model`'s layers (the module of `bound`), to start it from them (`transfer_weights` slices
    wider ones)."""
    makers = bound.makers()
    weights = {}
    for path, module in model.named_nodes():
        key = layer_key(path, module, makers[path])
        for attr in module.state_dict():
            tensor = saved["layers"].get(f"layers.{key}.{attr}")
            if tensor is not None:
                weights[f"{path}/{attr.replace('.', '/')}"] = tensor
    return weights


def supernet_command(args, family: Family) -> int:
    """`netdsl supernet FILE --dataset D -o super.pt`: train the family's supernet with the
    shared trainer and recipe, one network drawn per step, and save it."""
    import io
    from pathlib import Path

    import runtime

    from .errors import EXIT_DIVERGED, EXIT_INTERRUPTED
    from .files import check_writable, write_atomically
    from .fit import (applicable_recipe, data_from, device_from, evaluates_each_epoch,
                      with_classes)
    from .settings import recipe_from_args

    recipe, optional = recipe_from_args(args)
    device = device_from(args)
    if args.init_from:
        raise NetdslError("bad option: netdsl supernet trains from its own initial weights; "
                          "--init-from starts a network from a supernet (netdsl run)")
    if not family.choice_points:
        raise NetdslError(f"supernet: {family.name} declares no choice(...) to share weights "
                          "between")
    check_writable(Path(args.output), "-o")
    data = data_from(args, device, recipe.seed)
    supernet = Supernet(family, with_classes(family, data, dict(args.set)), data.image_shape,
                        seed=recipe.seed)
    check_memory(supernet, device)
    supernet.allocate(recipe.seed)
    recipe = applicable_recipe(supernet, recipe, optional, print)
    print(f"supernet of {family.name}: {len(supernet.layers)} layers, "
          f"{sum(p.numel() for p in supernet.parameters()):,} weights; each step trains one "
          "network drawn at random (the table's valid acc: the default network's, its "
          "BatchNorm statistics those of the networks drawn)")
    try:
        result = runtime.train(supernet, data, recipe,
                               evaluate_each_epoch=evaluates_each_epoch(args, wanted=True))
    except (ValueError, runtime.OutOfMemory) as e:
        raise NetdslError(str(e)) from None
    if result.status != "finished":
        print(f"netdsl: {result.message}; {args.output} not written")
        return {"diverged": EXIT_DIVERGED, "interrupted": EXIT_INTERRUPTED}[result.status]
    supernet.eval()
    accuracy = recalibrated_accuracy(supernet, supernet.active, data, recipe)
    print(f"{len(supernet.drawn):,} different networks trained; the default network with the "
          f"supernet's weights, BatchNorm recalibrated: valid acc {accuracy:.4f}")
    buffer = io.BytesIO()
    torch.save(supernet.to_file(), buffer)
    write_atomically(Path(args.output), buffer.getvalue())
    print(f"wrote {args.output}")
    return 0
