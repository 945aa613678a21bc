"""A supernet's file (`netdsl supernet -o super.pt`): what it holds, checked whole when read,
and a supernet or one network's weights taken from it."""
from __future__ import annotations

from typing import Any

import torch

from ..errors import NetdslError
from ..language import Bound, Family
from ..language.choices import LISTED_AT_MOST, ChoicePoint
from ..module.network import Network
from .network import Supernet, layer_key

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


def saved_form(supernet: Supernet, weights: bool = True) -> dict[str, Any]:
    """What `netdsl supernet -o` saves: the family, its values, each choice point's options
    (what a supernet is checked against when loaded) and, with `weights`, the layers."""
    points = supernet.family.space(supernet.values, input_shape=supernet.input_shape).points
    return {"format": FORMAT, "family": supernet.family.text, "values": supernet.values,
            "input_shape": list(supernet.input_shape),
            "default": supernet.active.fingerprint,  # the network at the defaults
            "points": {p.name: _offered(p) for p in points},
            **({"layers": {name: t.detach().cpu() for name, t in supernet.state_dict().items()}}
               if weights else {})}


def _offered(point: ChoicePoint) -> list:
    """What a point offers, as a supernet's file records it: its values (in words past
    LISTED_AT_MOST of them), or a range of real numbers' bounds."""
    if point.size is None:
        return [point.low, point.high]
    if point.size > LISTED_AT_MOST:
        return [point.describe_options()]
    return [str(v) for v in point.values()]


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
    description = saved_form(supernet, weights=False)
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
