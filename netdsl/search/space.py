"""Search spaces in NNI's search_space.json format, with NNI's semantics for every type,
sampled through an Optuna trial.

    {"peak_lr": {"_type": "loguniform", "_value": [6e-2, 6e-1]},
     "layer1":  {"_type": "choice", "_value": [28, 56, 84, 112]}}

Each type draws what NNI draws: `randint` [low, high) an integer; `quniform` [low, high, q]
clip(round(uniform(low, high) / q) * q, low, high); `qloguniform` likewise on a log scale;
`normal` [mu, sigma]; `qnormal` round(normal / q) * q; `lognormal` exp(normal);
`qlognormal` round(lognormal / q) * q. A `choice` whose options are objects with `_name` is a
nested choice: the option's other keys are sampled only when it is picked.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NetdslError
from ..graph import fits, is_number
from ..language.choices import LISTED_AT_MOST

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

Space = dict[str, dict[str, Any]]

_ARITY = {"choice": None, "randint": 2, "uniform": 2, "quniform": 3, "loguniform": 2,
          "qloguniform": 3, "normal": 2, "qnormal": 3, "lognormal": 2, "qlognormal": 3}
GRID_TYPES = ("choice", "randint", "quniform")  # the types a grid can enumerate, as in NNI
_EDGE = 1e-12  # normal types draw a probability in (0, 1): keep clear of the infinite tails


def load_space(path: str | Path) -> Space:
    try:
        space = json.loads(Path(path).read_text(encoding="utf-8-sig"))  # BOM: not JSON
    except OSError as e:
        raise NetdslError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise NetdslError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise NetdslError(f"{path}:{e.lineno}:{e.colno}: not JSON: {e.msg}") from None
    check_space(space, str(path))
    return space


def check_space(space: Any, where: str = "search space") -> None:
    """Raise NetdslError naming the first key with an unknown type, a wrong `_value` or an
    empty range."""
    if not isinstance(space, dict) or not space:
        raise NetdslError(f"{where}: expected a non-empty JSON object of parameters")
    for key, spec in space.items():
        _check_entry(key, spec, where)


def _check_entry(key: str, spec: Any, where: str) -> None:
    here = f"{where}: '{key}'"
    if not isinstance(spec, dict) or "_type" not in spec or "_value" not in spec:
        raise NetdslError(f"{here} needs {{\"_type\": ..., \"_value\": [...]}}")
    kind, value = spec["_type"], spec["_value"]
    if kind not in _ARITY:
        raise NetdslError(f"{here}: unknown _type '{kind}' (one of {', '.join(_ARITY)})")
    if not isinstance(value, list) or not value:
        raise NetdslError(f"{here}: _value must be a non-empty list")
    if kind == "choice":
        for option in value:
            if isinstance(option, dict):
                if not isinstance(option.get("_name"), (str, int, float, bool)):
                    raise NetdslError(f"{here}: a nested choice option needs a \"_name\"")
                for sub, sub_spec in option.items():
                    if sub != "_name":
                        _check_entry(sub, sub_spec, f"{where}: '{key}' option '{option['_name']}'")
            elif not isinstance(option, (str, int, float, bool)) and option is not None:
                raise NetdslError(f"{here}: choice options must be numbers, strings, true/false "
                                  "or objects with \"_name\"")
        return
    if len(value) != _ARITY[kind] or not all(
            is_number(v) and math.isfinite(v) for v in value):
        raise NetdslError(f"{here}: {kind} takes {_ARITY[kind]} finite numbers, got {value}")
    if kind in ("normal", "qnormal", "lognormal", "qlognormal"):
        if value[1] <= 0:
            raise NetdslError(f"{here}: sigma must be positive, got {value[1]}")
    elif value[0] >= value[1]:
        raise NetdslError(f"{here}: the range [{value[0]}, {value[1]}] is empty")
    if kind in ("loguniform", "qloguniform") and value[0] <= 0:
        raise NetdslError(f"{here}: {kind} needs a positive low, got {value[0]}")
    if kind in ("randint",) and not all(float(v).is_integer() for v in value):
        raise NetdslError(f"{here}: randint takes whole numbers, got {value}")
    if kind.startswith("q") and value[-1] <= 0:
        raise NetdslError(f"{here}: q must be positive, got {value[-1]}")


def keys(space: Space) -> dict[str, dict]:
    """Every key the space can bind, with its entry: nested choices' option keys included, the
    nested choices themselves not (they pick, and bind nothing by their own name)."""
    found: dict[str, dict] = {}
    for key, spec in space.items():
        options = [o for o in spec["_value"] if isinstance(o, dict)] if spec["_type"] == "choice" \
            else []
        if not options:
            found[key] = spec
        for option in options:
            found.update(keys({k: v for k, v in option.items() if k != "_name"}))
    return found


def whole_valued(spec: dict[str, Any]) -> bool:
    """Whether every value the entry can give is a whole number (channels, epochs...)."""
    kind, value = spec["_type"], spec["_value"]
    if kind == "choice":
        return all(fits(v, "whole") for v in value)
    if kind == "randint":
        return True
    if kind in ("quniform", "qloguniform"):
        return all(float(v).is_integer() for v in value)
    return kind in ("qnormal", "qlognormal") and float(value[2]).is_integer()


def grid(space: Space) -> dict[str, list]:
    """Every value of each key, for grid search (choice, randint and quniform only, as NNI)."""
    values = {}
    for key, spec in space.items():
        kind, value = spec["_type"], spec["_value"]
        if kind not in GRID_TYPES or (kind == "choice" and any(isinstance(v, dict) for v in value)):
            raise NetdslError(f"grid search takes choice (not nested), randint and quniform; "
                              f"'{key}' is {kind}")
        if kind == "choice":
            values[key] = list(value)
        elif kind == "randint":
            values[key] = list(range(int(value[0]), int(value[1])))
        else:
            low, high, q = value
            steps = range(math.ceil(low / q - 1e-9), math.floor(high / q + 1e-9) + 1)
            values[key] = sorted({min(max(round(k) * q, low), high) for k in steps})
    return values


def size(space: Space) -> int | None:
    """How many different values `sample` can give, at most (None: endless, a uniform or
    normal type). A q type counts the multiples of q in its range and the two ends it
    clips to."""
    total = 1
    for spec in space.values():
        kind, value = spec["_type"], spec["_value"]
        if kind == "choice":
            counts = [size(_inside(o)) if isinstance(o, dict) else 1 for o in value]
            finite = [c for c in counts if c is not None]
            count = sum(finite) if len(finite) == len(counts) else None
        elif kind == "randint":
            count = int(value[1]) - int(value[0])
        elif kind in ("quniform", "qloguniform"):
            low, high, q = value
            count = math.floor(high / q) - math.ceil(low / q) + 3
        else:
            count = None
        if count is None:
            return None
        total *= count
    return total


def sample(trial, space: Space, grid_mode: bool = False) -> dict[str, Any]:
    """One point of `space`, drawn through the Optuna `trial`, in the form NNI's
    get_next_parameter gives: {key: value}, a nested choice as {"_name": ..., its keys...}."""
    values: dict[str, Any] = {}
    for key, spec in space.items():
        kind, value = spec["_type"], spec["_value"]
        drawn = draw(trial, key, entry_distribution(key, spec, grid_mode))
        if grid_mode or kind == "randint":
            values[key] = drawn
        elif kind == "choice":
            option = value[_names(value).index(drawn)]
            values[key] = ({"_name": drawn, **sample(trial, _inside(option))}
                           if isinstance(option, dict) else drawn)
        elif kind in ("uniform", "quniform", "loguniform", "qloguniform"):
            values[key] = _quantise(drawn, value)
        else:  # normal family: a probability, through the inverse CDF
            x = statistics.NormalDist(value[0], value[1]).inv_cdf(drawn)
            if kind in ("lognormal", "qlognormal"):
                x = math.exp(min(x, 700.0))  # exp(710) overflows a float
            values[key] = round(x / value[2]) * value[2] if kind.startswith("q") else x
    return values


def entry_distribution(key: str, spec: dict[str, Any], grid_mode: bool = False
                       ) -> BaseDistribution:
    """The Optuna distribution `sample` draws a key of the space from: a choice's option (by
    its `_name` for a nested one), a whole number of randint's [low, high), a number of a
    uniform type (quantised after), a probability for the normal types (through the inverse
    CDF after); for a grid, one of the key's grid values."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    kind, value = spec["_type"], spec["_value"]
    if grid_mode:
        return CategoricalDistribution(grid({key: spec})[key])
    if kind == "choice":
        return CategoricalDistribution(_names(value))
    if kind == "randint":
        return IntDistribution(int(value[0]), int(value[1]) - 1)
    if kind in ("uniform", "quniform", "loguniform", "qloguniform"):
        return FloatDistribution(value[0], value[1], log=kind.endswith("loguniform"))
    return FloatDistribution(_EDGE, 1 - _EDGE)


def distributions(space: Space, grid_mode: bool = False) -> dict[str, BaseDistribution]:
    """What `sample` may draw each key of `space` from, nested choices' keys included."""
    found = {}
    for key, spec in space.items():
        found[key] = entry_distribution(key, spec, grid_mode)
        if spec["_type"] == "choice" and not grid_mode:
            for option in spec["_value"]:
                if isinstance(option, dict):
                    found.update(distributions(_inside(option)))
    return found


def _names(options: list) -> list:
    """A choice's options as drawn: a nested option by its `_name`."""
    return [o["_name"] if isinstance(o, dict) else o for o in options]


def _inside(option: dict[str, Any]) -> Space:
    """A nested choice's option: its own keys, less its name."""
    return {k: v for k, v in option.items() if k != "_name"}


def draw(trial, name: str, distribution: BaseDistribution) -> Any:
    """A value drawn through the Optuna `trial` under `name` from `distribution`."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high,
                                 step=distribution.step, log=distribution.log)
    assert isinstance(distribution, FloatDistribution)  # the one kind left: `distributions`
    return trial.suggest_float(name, distribution.low, distribution.high,
                               step=distribution.step, log=distribution.log)


def suggest(trial, point, grid_mode: bool = False) -> Any:
    """A value for a choice point of the network's own text (`language.choices`), drawn
    through the Optuna `trial` under the point's name (every value a category for a grid);
    a range's as the point lists it."""
    drawn = draw(trial, point.name, distribution_of(point, grid_mode))
    # Optuna's steps are low + k * step in floats (0.30000000000000004); the point's is 0.3
    return drawn if point.options else point.check(drawn)


def distribution_of(point, grid_mode: bool = False) -> BaseDistribution:
    """The Optuna distribution a choice point of the text is drawn from: one of its options,
    or a number of its range (whole, by its step; log-uniform for logrange); for a grid,
    one of its values. A prefilter's candidates are drawn from it too."""
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    if grid_mode or point.options and point.size <= LISTED_AT_MOST:
        return CategoricalDistribution(point.listed())
    if point.options:  # too many to list (any 20 of 40 inputs): an option by its place
        return IntDistribution(0, point.size - 1)
    # Up to the last step, not `high` (range(0, 1, step=0.3) ends at 0.9): Optuna warns at a
    # high off the step, then ends there too
    high = point.high if point.size is None else point.values()[-1]
    if point.kind == "whole":
        return IntDistribution(point.low, high, step=point.step or 1, log=point.log)
    return FloatDistribution(point.low, high, step=point.step, log=point.log)


def _quantise(x: float, value: list) -> float:
    """NNI's q types: clip(round(x / q) * q, low, high); plain types pass through."""
    if len(value) < 3:
        return x
    low, high, q = value
    return min(max(round(x / q) * q, low), high)
