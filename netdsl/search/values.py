"""A search's values: NNI's form -> the network's bindings and the recipe's keys, checked
against the family before any training; the hashes that tell networks and spaces apart; a
space's grid, size and listing; and `fit_point`, the one call any search code needs (NNI, Ray
Tune, a hand-written evolution): a family (or DSL text) + values -> a fitted network, on data
already on the device."""
from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Callable, Sequence

from ..errors import NetdslError
from ..train import Fitted, bind_to_data, fit
from ..graph import Shape, fits
from ..language import Bound, Family, load
from ..language.records import plain
from ..train.settings import RECIPE_FIELDS, apply, is_recipe_key, key_kind, key_value, search_keys
from .space import Space, distribution_of, distributions, grid, keys, size, whole_valued
from .storage import check_same_space


# ---- values -> network and recipe ------------------------------------------------------------

def split_values(values: dict[str, Any], family: Family) -> tuple[dict, dict]:
    """Values in NNI's form -> (network bindings, recipe keys). A key the family declares
    binds the network; a recipe key (see netdsl.train.settings) sets the trainer; a nested choice
    {"_name": ..., keys...} binds its keys (and its `_name`, if the family declares the
    choice's own key), and so does a key that may name one of its choice points (any key, in a
    family with choices: binding says which it does not). Any other key is an error."""
    bindings, changes = {}, {}
    for key, value in values.items():
        if isinstance(value, dict) and "_name" in value:
            inner = {k: v for k, v in value.items() if k != "_name"}
            if key in family.parameters:
                inner[key] = value["_name"]
            more_bindings, more_changes = split_values(inner, family)
            bindings.update(more_bindings)
            changes.update(more_changes)
        elif key in family.parameters:
            bindings[key] = value
        elif is_recipe_key(key):
            changes[key] = value
        elif family.choice_points:
            bindings[key] = value
        else:
            raise NetdslError(_neither(f"'{key}'", family))
    return bindings, changes


def check_space_fits(space: Space, family: Family) -> None:
    """Before any training: every key must bind the network or the trainer, each choice must
    offer values of the kind the key takes, and keys of whole numbers (channels, depth,
    epochs) must not draw fractions."""
    for key, spec in keys(space).items():
        point = family.choice_points.get(key)
        if key not in family.parameters and point is None and not is_recipe_key(key):
            raise NetdslError(_neither(f"search space key '{key}'", family))
        parameter = family.parameters.get(key)
        if spec["_type"] == "choice":
            for option in spec["_value"]:
                _check_option(key, option, family)
            continue
        if point is not None and point.options:
            raise NetdslError(f"search space key '{key}' takes one of its options "
                              f"({point.describe_options()}); {spec['_type']} draws numbers: "
                              "use choice")
        if (parameter.kind in ("switch", "op") if parameter else key_kind(key) in (bool, str)):
            raise NetdslError(f"search space key '{key}' takes one of a fixed set of values; "
                              f"{spec['_type']} draws numbers: use choice")
        whole = parameter.kind == "whole" if parameter else key_kind(key) is int
        if whole and not whole_valued(spec):
            raise NetdslError(f"search space key '{key}' takes whole numbers, but {spec['_type']} "
                              f"{spec['_value']} draws fractions; use choice, randint or a "
                              "quniform with whole bounds and q")


def _check_option(key: str, option: Any, family: Family) -> None:
    """A choice's option must be a value the parameter, choice point or setting can take."""
    parameter, point = family.parameters.get(key), family.choice_points.get(key)
    if point is not None:
        try:
            point.check(option)
        except NetdslError as e:
            raise NetdslError(f"search space key '{key}': {e.message}") from None
        return
    if parameter is None:
        key_value(key, option)  # raises, naming the key and the field's rule
        return
    if parameter.kind == "op":
        if option not in family.callables:
            raise NetdslError(f"search space key '{key}' takes blocks and primitives by name, "
                              f"but its choice offers {option!r}")
        return
    if not fits(option, parameter.kind):
        want = {"switch": "true or false", "whole": "whole numbers",
                "number": "numbers"}[parameter.kind]
        raise NetdslError(f"search space key '{key}' takes {want}, but its choice offers "
                          f"{option!r}")


def _neither(what: str, family: Family) -> str:
    return (f"{what} is neither a parameter of {family.name} "
            f"({', '.join(family.parameters) or 'none'}) nor a trainer setting "
            f"({', '.join(search_keys())})")


def fingerprint(bound: Bound, recipe) -> str:
    """Same checked network and same hyperparameters -> same hash, however they were written.
    Settings that only change how fast a trial runs (precision, compiling) are left out;
    `recipe` None (a table search, whose values depend on the network alone): all are."""
    return _hash({"network": bound.fingerprint, "recipe": _trained_settings(recipe)})


def setting_of(family: Family, base: dict[str, Any], recipe, space: Space) -> str:
    """A hash of what one run of a search draws its points in: the text, --set, the recipe
    from the flags (None for a table search) and --space. Its trials are told apart from an
    earlier run's under another, which drew from another space."""
    return _hash(plain({"text": family.text, "set": base, "recipe": _trained_settings(recipe),
                        "space": space}))


def _trained_settings(recipe) -> dict[str, Any] | None:
    """The recipe's settings less those that only change how fast it trains."""
    if recipe is None:
        return None
    return {name: value for name, value in recipe.to_dict().items()
            if not RECIPE_FIELDS[name].metadata["speed_only"]}


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def fit_point(network: Family | str, data, recipe, values: dict[str, Any] | None = None, *,
             optional: frozenset = frozenset(), log: Callable[[str], None] | None = None,
             should_stop: Callable[[Any], bool] | None = None,
             init: dict[str, Any] | None = None, evaluate_each_epoch: bool = True) -> Fitted:
    """Bind `values` (network parameters and recipe keys, NNI's form) into a family (or DSL
    text) and `recipe`, and fit it on `data` (a runtime.DeviceData, loaded once by the
    caller). `optional`: the recipe's entries that apply only where the network has what
    they name (a preset's, see `netdsl.train.fit`). `init`: path-keyed weights of an earlier or
    wider network to start from. `evaluate_each_epoch` False: only the result is evaluated
    (`should_stop` sees no epoch before it). Raises NetdslError for an invalid network or
    value; a loss that stops being finite gives status "diverged"."""
    family = network if isinstance(network, Family) else load(network)
    bindings, changes = split_values(values or {}, family)
    recipe = apply(recipe, changes)
    return fit(bind_to_data(family, data, bindings), data, recipe, optional=optional,
               init=init, log=log, should_stop=should_stop,
               evaluate_each_epoch=evaluate_each_epoch)


LISTED_NETWORKS = 100_000  # listed and shuffled up to this many; drawn at random past it


def _grid_of(space: Space, chosen, base: dict[str, Any], name: str,
             met_at_defaults: Callable[[], dict[str, Any]]) -> dict[str, list]:
    """Every value of each key of `space` and each choice point of the text (`chosen`) that
    `base` does not bind: the grid. A grid needs the same points in every network; where the
    text's are not, it names one that the defaults (`met_at_defaults()`: their points) do
    not meet."""
    if not chosen.static:
        met = met_at_defaults()
        hidden = next((p.name for p in chosen.points if p.name not in met), None)
        raise NetdslError("grid search needs a fixed, finite set of choices; " + (
            f"{name}'s choice '{hidden}' is met only for some values of other choices"
            if hidden is not None else f"some values of one of {name}'s choices change "
            "which others are met, or their options"))
    values = grid(space) if space else {}
    for point in chosen.points:
        if point.name in space or point.name in base:
            continue
        if point.size is None:
            raise NetdslError(f"grid search needs a fixed, finite set of choices; {name}'s "
                              f"choice '{point.name}' offers real numbers")
        values[point.name] = point.listed()
    return values


def space_or_none(family: Family, base: dict[str, Any]):
    """The text's space with `base` bound, every option checked for CIFAR-sized images; None
    when one does not bind at that size (the data's images decide, once loaded)."""
    try:
        return family.space(base)
    except NetdslError:
        return None


def check_space(tuner: str, space: Space, chosen, family: Family, values: dict[str, Any],
                 shape: Shape, stored) -> dict[str, list] | None:
    """Before any trial: the grid a grid search walks (None for another tuner), refusing a
    space it cannot cover; and that the `stored` search (None: a new one) goes on over the
    space it began with (see `check_same_space`). `chosen`: the text's space with `values`
    bound, for images of `shape`."""
    grid_values = _grid_of(space, chosen, values, family.name,
                           lambda: family.bind(values, input_shape=shape).points
                           ) if tuner == "grid" else None
    if stored is not None:
        grid_mode = grid_values is not None
        drawn = distributions(space, grid_mode)
        points = {point.name: point for point in chosen.points if point.name not in values}

        def drawn_now(key: str):  # --space binds what it names, the text draws the rest
            if key in drawn:
                return drawn[key]
            return distribution_of(points[key], grid_mode) if key in points else None
        check_same_space(stored, drawn_now)
    return grid_values


def size_of(space: Space, chosen, base: dict[str, Any]) -> int | None:
    """How many different points (networks and recipes) the search can draw, at most: the
    text's networks times the values --space draws; None when endless or not known (a key of
    --space binds a choice point of a text whose points depend on each other)."""
    drawn = keys(space)
    free = [point.size for point in chosen.points
            if point.name not in base and point.name not in drawn]
    bounds = [*([chosen.count] if chosen.count is not None and
                not any(point.name in drawn for point in chosen.points) else []),
              *([math.prod(free)] if chosen.static and None not in free else [])]
    text, nni = min(bounds, default=None), size(space)
    return None if text is None or nni is None else text * nni


def listing_of(space: Space, chosen, base: dict[str, Any], grid_mode: bool
             ) -> dict[str, Sequence] | None:
    """`Search.listing`: the values the tuner draws each free choice point of the text from
    (`distribution_of`), where they list every network of the space; else None."""
    from optuna.distributions import CategoricalDistribution

    if space or not chosen.static:
        return None
    listing = {}
    for point in chosen.points:
        if point.name in base:
            continue
        if point.size is None or point.size > LISTED_NETWORKS:
            return None
        by_place = not isinstance(distribution_of(point, grid_mode), CategoricalDistribution)
        listing[point.name] = (range(point.size) if point.options and by_place
                               else point.listed())
    return listing
