"""A family's own search space: the choices written in its text, one record per choice point.

    param width = choice(32, 48, 64)                 # a value      (point `width`)
    param lr = logrange(0.01, 1)                     # a range      (point `lr`)
    param e1 = choice(conv_bn, identity)             # an op, shared wherever `e1(c)` is called
    mix: choice(conv_bn(c), conv_bn(c, ks=5), zero)  # an item      (point: its path, `mix`)
    sum: add <- choice(a, b, c, k=2)                 # its inputs   (point: `sum<-`)

Binding a family meets its choice points as it expands, in order, and asks a chooser for each:
by default the value bound by name, else the point's default (the first option unless
`default=` says otherwise). A search's chooser asks its sampler instead, so a choice inside a
block is one point per instance, and a point that only some options reach is met only then.
"""
from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import NetdslError
from ..graph import fits, is_number, kind_of

SPACES = ("choice", "range", "logrange")  # the calls that write a space, not a layer
INPUTS_MARK = "<-"  # an input choice's point is named by its node's path and this


@dataclass(frozen=True)
class Callee:
    """A parameter's value that names a block or primitive: `param e1 = conv_bn` makes an item
    `e1(c)` a call of conv_bn."""
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class ChoicePoint:
    """One choice: `name` (a parameter, a node's path, or a path and `<-`), `kind` ("value",
    "op", "item", "inputs": one of `options`; "whole", "real": a number in [low, high], by
    `step` from low when given, log-uniform when `log`), and the `default`."""
    name: str
    kind: str
    options: tuple = ()
    default: Any = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def size(self) -> int | None:
        """How many values it offers; None for a range of real numbers."""
        if self.options:
            return len(self.options)
        if self.kind == "whole" or self.step is not None:
            # 1e-9: (0.5 - 0.1) / 0.1 is 3.9999999999999996, yet 0.5 is on the step
            return math.floor((self.high - self.low) / (self.step or 1) + 1e-9) + 1
        return None

    def values(self) -> list:
        """Every value it offers, in order (a finite point only)."""
        if self.options:
            return list(self.options)
        step = self.step or 1
        return [_tidy(self.low + i * step) for i in range(self.size)]

    def check(self, value: Any) -> Any:
        """`value` as this point takes it (an option's label, an op's name, a number in the
        range); a NetdslError naming the point and what it offers, else."""
        if self.kind == "op" and isinstance(value, (str, Callee)):
            value = str(value)
        if self.kind == "inputs" and isinstance(value, (list, tuple)):
            value = ",".join(value)
        if self.options:
            for option in self.options:  # true is no 1, but 64.0 (a search's draw) is 64
                if option == value and isinstance(option, bool) == isinstance(value, bool):
                    return option
            if self.kind in ("item", "inputs") and fits(value, "whole") and \
                    0 <= value < len(self.options):
                return self.options[int(value)]  # an option by its place, from 0
            raise NetdslError(f"choice '{self.name}' takes one of {self.describe_options()}, "
                              f"got {value!r}")
        if not is_number(value) or not math.isfinite(value) or not (
                self.low <= value <= self.high):
            raise NetdslError(f"choice '{self.name}' takes a number from {self.low:g} to "
                              f"{self.high:g}, got {value!r}")
        if self.kind == "whole" and not fits(value, "whole"):
            raise NetdslError(f"choice '{self.name}' takes whole numbers, got {value!r}")
        if self.step is not None and not _on_step(value, self.low, self.step):
            raise NetdslError(f"choice '{self.name}' takes {self.low:g}, {self.low + self.step:g}, "
                              f"... (steps of {self.step:g}), got {value!r}")
        return int(value) if self.kind == "whole" else float(value)

    def describe_options(self) -> str:
        if self.options:
            return ", ".join(_show(o) for o in self.options)
        how = "log-uniform " if self.log else ""
        step = f" in steps of {self.step:g}" if self.step is not None else ""
        what = "whole numbers" if self.kind == "whole" else "numbers"
        return f"{how}{what} from {self.low:g} to {self.high:g}{step}"

    def nni(self) -> dict:
        """This point in NNI's search-space JSON."""
        if self.options:
            return {"_type": "choice", "_value": list(self.options)}
        if self.step is not None or self.kind == "whole":
            if self.log:
                return {"_type": "qloguniform", "_value": [self.low, self.high, 1]}
            if (self.step or 1) == 1 and self.kind == "whole":
                return {"_type": "randint", "_value": [self.low, self.high + 1]}
            if not _on_step(self.low, 0, self.step):  # NNI's q steps from 0, ours from low
                return {"_type": "choice", "_value": self.values()}
            return {"_type": "quniform", "_value": [self.low, self.high, self.step]}
        return {"_type": "loguniform" if self.log else "uniform", "_value": [self.low, self.high]}


def _tidy(value: float) -> float | int:
    """A step's value without float noise (0.1 * 3 is 0.30000000000000004)."""
    return value if isinstance(value, int) else round(value, 12)


def _on_step(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return abs(steps - round(steps)) < 1e-9


def _show(option: Any) -> str:
    if isinstance(option, bool):
        return "true" if option else "false"
    return str(option)


Chooser = Callable[[ChoicePoint], Any]


def at_defaults(point: ChoicePoint) -> Any:
    """The chooser of a plain binding: every point at its default."""
    return point.default


def drawn_at_random(rng: random.Random) -> Chooser:
    """A chooser drawing each point uniformly from `rng`: one of its options, a value of its
    range (on its step), or a real number (log-uniform for a logrange)."""
    def choose(point: ChoicePoint) -> Any:
        if point.size is not None:
            return rng.choice(point.values())
        if point.log:
            return math.exp(rng.uniform(math.log(point.low), math.log(point.high)))
        return rng.uniform(point.low, point.high)
    return choose


def space_point(name: str, kind: str, args: list, keywords: dict, where: str) -> ChoicePoint:
    """The point a `param` declares with `choice(...)`, `range(...)` or `logrange(...)`:
    `args` are its evaluated options or bounds (a Callee for a block or primitive), `keywords`
    its `default=` and `step=`. `where` names it in errors."""
    unknown = set(keywords) - ({"default"} | ({"step"} if kind == "range" else set()))
    if unknown:
        raise NetdslError(f"{where}: {kind}(...) takes no '{sorted(unknown)[0]}='")
    if kind == "choice":
        if not args:
            raise NetdslError(f"{where}: choice(...) needs at least one option")
        ops = [isinstance(a, Callee) for a in args]
        if any(ops) and not all(ops):
            raise NetdslError(f"{where}: a choice's options are all values or all blocks and "
                              f"primitives, not both: {', '.join(_show(a) for a in args)}")
        kinds = {kind_of(a) for a in args if not isinstance(a, Callee)}
        if len(kinds - {"whole", "number"}) and len(kinds) > 1:
            raise NetdslError(f"{where}: a choice's options are of one kind (numbers, or true "
                              f"and false), got {', '.join(_show(a) for a in args)}")
        options = tuple(str(a) if isinstance(a, Callee) else a for a in args)
        if len(set(map(repr, options))) != len(options):
            raise NetdslError(f"{where}: an option is listed twice: "
                              f"{', '.join(_show(o) for o in options)}")
        point = ChoicePoint(name, "op" if all(ops) else "value", options, options[0])
    else:
        if len(args) != 2 or not all(is_number(a) and math.isfinite(a) for a in args):
            raise NetdslError(f"{where}: {kind}(low, high) takes two numbers")
        low, high = args
        step = keywords.get("step")
        if low >= high:
            raise NetdslError(f"{where}: {kind}({_show(low)}, {_show(high)}) is empty: low must "
                              "be below high")
        if step is not None and not (is_number(step) and step > 0):
            raise NetdslError(f"{where}: step must be a number above 0, got {step!r}")
        if kind == "logrange" and low <= 0:
            raise NetdslError(f"{where}: logrange needs a low above 0, got {_show(low)}")
        whole = all(fits(v, "whole") for v in (low, high, step if step is not None else 1))
        point = ChoicePoint(name, "whole" if whole else "real", (), low,
                            int(low) if whole else float(low), int(high) if whole else float(high),
                            None if step is None else (int(step) if whole else float(step)),
                            kind == "logrange")
    if "default" in keywords:
        try:
            value = point.check(keywords["default"])
        except NetdslError as e:
            raise NetdslError(f"{where}: default: {e.message}") from None
        point = ChoicePoint(point.name, point.kind, point.options, value, point.low, point.high,
                            point.step, point.log)
    return point


def options_point(name: str, kind: str, labels: list[str], default: int) -> ChoicePoint:
    """An item's or inputs' point: one of `labels` (the options as written), the `default`-th
    (from 0) unless chosen otherwise."""
    return ChoicePoint(name, kind, tuple(labels), labels[default])


def input_combinations(refs: list[str], k: int) -> list[str]:
    """The options of `<- choice(refs..., k=k)`: each k of the paths, in the order written,
    joined by commas."""
    return [",".join(c) for c in itertools.combinations(refs, k)]


@dataclass(frozen=True)
class Space:
    """What a family's choices describe: its points (as met at the defaults, then as other
    options reach more), how many networks (None: a range of real numbers makes it endless),
    and whether that count is `exact` (else an upper bound)."""
    points: tuple[ChoicePoint, ...]
    count: int | None
    exact: bool
    static: bool  # the same points whatever is chosen: a grid can cover it


PROBES = 32          # values of one point tried to see whether it changes the other points
MAX_EXPANSIONS = 5000  # bindings spent counting a space whose points depend on each other


def explore(points_of: Callable[[dict[str, Any]], dict[str, ChoicePoint]]) -> Space:
    """The space of a family whose binding with values `picks` (by point name, the rest at
    their defaults) meets the points `points_of(picks)` returns, or raises. A point's value is
    tried alone (up to PROBES of them); if no value changes which points are met, the space is
    static and its size the product of the points' sizes. Otherwise every combination is
    walked, point by point as they are met, up to MAX_EXPANSIONS bindings; past that the
    count is an upper bound (the product over every point seen)."""
    base = points_of({})
    seen = dict(base)
    static = True
    for point in base.values():
        if point.size is None:
            continue
        values = point.values()
        if len(values) > PROBES:  # the ends and evenly spaced values between
            values = [values[round(i * (len(values) - 1) / (PROBES - 1))] for i in range(PROBES)]
        for value in values:
            if value == point.default:
                continue
            met = points_of({point.name: value})
            if met != base:
                static = False
                for name, other in met.items():
                    seen.setdefault(name, other)
    sizes = [point.size for point in seen.values()]
    if None in sizes:
        return Space(tuple(seen.values()), None, True, static)
    if static:
        return Space(tuple(seen.values()), math.prod(sizes), True, True)
    leaves, expansions, stack = 0, 0, [{}]
    while stack and expansions < MAX_EXPANSIONS:
        picks = stack.pop()
        met = points_of(picks)
        expansions += 1
        for name, point in met.items():
            seen.setdefault(name, point)
        open_point = next((point for name, point in met.items() if name not in picks), None)
        if open_point is None:
            leaves += 1
        else:
            stack.extend({**picks, open_point.name: value}
                         for value in reversed(open_point.values()))
    if stack:
        return Space(tuple(seen.values()), math.prod(p.size for p in seen.values()), False,
                     False)
    return Space(tuple(seen.values()), leaves, True, False)
