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

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, NoReturn, cast, overload

from ..errors import NetdslError
from ..graph import fits, is_number, kind_of

SPACES = ("choice", "range", "logrange")  # the calls that write a space, not a layer
INPUTS_MARK = "<-"  # an input choice's point is named by its node's path and this
MIXED_KINDS = ("op", "item", "inputs")  # the points whose options a binding can mix


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
    options: tuple | Combinations = ()  # an inputs choice's: its Combinations, never listed
    default: Any = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    # The calls that met it, outermost first, as (source, line and column): the same for every
    # instance of a choice in a repeated block, which a survey of the space binds once.
    where: tuple = field(default=(), compare=False, repr=False)

    @property
    def size(self) -> int | None:
        """How many values it offers; None for a range of real numbers."""
        if self.options:
            return self.options.size if isinstance(self.options, Combinations) \
                else len(self.options)
        if self.kind == "whole" or self.step is not None:
            # in the decimals written: (0.5 - 0.1) / 0.1 is 4, not 3.9999999999999996
            low, high = self._bounds()
            return math.floor((_written(high) - _written(low))
                              / _written(self.step or 1)) + 1
        return None

    def _bounds(self) -> tuple[float, float]:
        """`low` and `high` of a range: space_point gives both to every point without
        options, and none to one with them."""
        low, high = self.low, self.high
        assert low is not None and high is not None, f"choice '{self.name}' is no range"
        return low, high

    def values(self) -> Sequence:
        """Every value it offers, in order (a finite point only), as a sequence that makes each
        from its index when asked: a range of 10**9 values is never a list."""
        if self.options:
            return self.options
        # A finite point only, as said: `size` is None just for a real range without a step,
        # whose values no sequence holds (a caller asks `size` first, as listed() does).
        return Steps(self._bounds()[0], self.step or 1, cast(int, self.size))

    def check(self, value: Any) -> Any:
        """`value` as this point takes it (an option's label, an op's name, a number in the
        range); a NetdslError naming the point and what it offers, else."""
        if self.kind == "op" and isinstance(value, (str, Callee)):
            value = str(value)
        if self.kind == "inputs" and isinstance(value, (list, tuple)):
            value = ",".join(value)
        if self.options:
            if isinstance(self.options, Combinations):
                if isinstance(value, str) and value in self.options:
                    return value
            else:
                for option in self.options:  # true is no 1, but 64.0 (a search's draw) is 64
                    if option == value and isinstance(option, bool) == isinstance(value, bool):
                        return option
            if self.kind in ("item", "inputs") and fits(value, "whole") and \
                    0 <= value < self.size:
                return self.options[int(value)]  # an option by its place, from 0
            raise NetdslError(f"choice '{self.name}' takes one of {self.describe_options()}, "
                              f"got {value!r}")
        if not is_number(value) or not math.isfinite(value) or not (
                self.low <= value <= self.high):
            raise NetdslError(f"choice '{self.name}' takes a number from {self.low:g} to "
                              f"{self.high:g}, got {value!r}")
        if self.kind == "whole" and not fits(value, "whole"):
            raise NetdslError(f"choice '{self.name}' takes whole numbers, got {value!r}")
        if self.step is None:
            return int(value) if self.kind == "whole" else float(value)
        low = self._bounds()[0]
        place = round((value - low) / self.step)
        if not (_on_step(value, low, self.step) and place < self.size):
            raise NetdslError(f"choice '{self.name}' takes {low:g}, {low + self.step:g}, "
                              f"... (steps of {self.step:g}), got {value!r}")
        # The step's own value, not `value`: a tuner's 0.30000000000000004 is the 0.3 that a
        # table, a --set or the listed values hold, one key for one network.
        return self.values()[place]

    def listed(self) -> list:
        """Every value it offers, as a list, for what needs them all (NNI's choice, a grid):
        a NetdslError past LISTED_AT_MOST values."""
        if self.size is None or self.size > LISTED_AT_MOST:
            many = "real numbers" if self.size is None else f"{self.size:,} values"
            raise NetdslError(f"choice '{self.name}' offers {many}, more than a list of its "
                              f"values may hold ({LISTED_AT_MOST:,})")
        return list(self.values())

    def describe_options(self) -> str:
        if isinstance(self.options, Combinations):
            return self.options.describe()
        if self.options:
            return ", ".join(_show(o) for o in self.options)
        how = "log-uniform " if self.log else ""
        step = f" in steps of {self.step:g}" if self.step is not None else ""
        what = "whole numbers" if self.kind == "whole" else "numbers"
        return f"{how}{what} from {self.low:g} to {self.high:g}{step}"

    def nni(self) -> dict:
        """This point in NNI's search-space JSON."""
        if self.options:
            size = cast(int, self.size)  # a count of options: None is a real range's only
            if size > LISTED_AT_MOST:  # an option by its place, which binding takes too
                return {"_type": "randint", "_value": [0, size]}
            return {"_type": "choice", "_value": list(self.options)}
        if self.step is not None or self.kind == "whole":
            low, high = self._bounds()
            if self.log:
                return {"_type": "qloguniform", "_value": [low, high, 1]}
            if (self.step or 1) == 1 and self.kind == "whole":
                return {"_type": "randint", "_value": [low, high + 1]}
            step = self.step
            assert step is not None  # a whole range without one took randint just above
            if not _on_step(low, 0, step):  # NNI's q steps from 0, ours from low
                return {"_type": "choice", "_value": self.listed()}
            return {"_type": "quniform", "_value": [low, high, step]}
        return {"_type": "loguniform" if self.log else "uniform", "_value": [self.low, self.high]}


class Steps(Sequence):
    """The values of a range: `low`, `low + step`, ... (`size` of them), each made from its
    index when asked. A real range's are worked in the decimals written, exactly, then made
    the nearest float: 0.1 + 2 * 0.1 is 0.3, the float a user writing 0.3 gets, not the
    0.30000000000000004 of float arithmetic."""

    def __init__(self, low: float, step: float, size: int):
        self.low, self.step, self.size = low, step, size
        self._exact = _written(low), _written(step)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> float | int: ...

    @overload
    def __getitem__(self, index: slice) -> NoReturn: ...

    def __getitem__(self, index: int | slice) -> float | int:
        if isinstance(index, slice):  # a slice of 10**9 values would be a list of them
            raise TypeError("a range's values are taken one at a time, not sliced")
        place = _place(index, self.size)
        if isinstance(self.low, int) and isinstance(self.step, int):
            return self.low + place * self.step
        low, step = self._exact
        return float(low + place * step)  # one rounding, to the nearest float

    def __contains__(self, value: object) -> bool:
        # isinstance narrows `value` for mypy; is_number refuses true and false besides
        return isinstance(value, (int, float)) and is_number(value) and \
            self.low <= value <= self[-1] and _on_step(value, self.low, self.step)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Steps) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple:
        return self.low, self.step, self.size

    def __repr__(self) -> str:
        return f"Steps({self.low!r}, {self.step!r}, {self.size})"


class Combinations(Sequence):
    """The options of `<- choice(refs..., k=k)`: each k of the paths, in the order written,
    joined by commas, in itertools.combinations' order. There are math.comb(len(refs), k) of
    them (40 paths, k=20: 1.4e11): each is made from its index, and found by its label, on
    demand, never listed."""

    def __init__(self, refs: Sequence[str], k: int):
        self.refs, self.k = tuple(refs), k
        self.size = math.comb(len(self.refs), k)

    def __len__(self) -> int:
        return self.size  # an OverflowError past sys.maxsize, as range's: `size` holds it all

    def __bool__(self) -> bool:
        return self.size > 0

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> NoReturn: ...

    def __getitem__(self, index: int | slice) -> str:
        if isinstance(index, slice):  # 1.4e11 labels: each is made from its index, none listed
            raise TypeError("combinations are taken one at a time, not sliced")
        index, n = _place(index, self.size), len(self.refs)
        chosen: list[int] = []  # the place in `refs` of each slot's ref, so far
        for slot in range(self.k):  # the ref in each slot, skipping the blocks of smaller ones
            ref = chosen[-1] + 1 if chosen else 0
            while index >= (block := math.comb(n - ref - 1, self.k - slot - 1)):
                index -= block
                ref += 1
            chosen.append(ref)
        return ",".join(self.refs[ref] for ref in chosen)

    def index(self, label: object, *_: Any) -> int:
        """The place of `label` (`"a,c"`); a ValueError when it is no option."""
        places = {ref: i for i, ref in enumerate(self.refs)}
        chosen = [places.get(ref, -1) for ref in label.split(",")] \
            if isinstance(label, str) else []
        if len(chosen) != self.k or min(chosen, default=-1) < 0 or chosen != sorted(set(chosen)):
            raise ValueError(f"{label!r} is not {self.k} of {', '.join(self.refs)} in order")
        n, index, ref = len(self.refs), 0, 0
        for slot, wanted in enumerate(chosen):
            index += sum(math.comb(n - r - 1, self.k - slot - 1) for r in range(ref, wanted))
            ref = wanted + 1
        return index

    def __contains__(self, label: object) -> bool:
        try:
            self.index(label)
        except ValueError:
            return False
        return True

    def __iter__(self):
        return (self[i] for i in range(self.size))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Combinations) and (self.refs, self.k) == (other.refs, other.k)

    def __hash__(self) -> int:
        return hash((self.refs, self.k))

    def describe(self) -> str:
        if self.size <= DESCRIBED_AT_MOST:
            return ", ".join(self)
        return f"any {self.k} of {', '.join(self.refs)} ({self.size:,} ways)"

    def __repr__(self) -> str:
        return f"Combinations({self.refs!r}, {self.k})"


LISTED_AT_MOST = 10_000  # values of a point that NNI's JSON or a grid may list
DESCRIBED_AT_MOST = 20   # inputs' options a message lists one by one


def _place(index: int, size: int) -> int:
    """`index` of a sequence of `size` (from the end when negative), or an IndexError."""
    place = index + size if index < 0 else index
    if not 0 <= place < size:
        raise IndexError(f"index {index} of {size:,} values")
    return place


def _written(number: float) -> Fraction:
    """`number` as the decimal it prints as, exactly: the shortest that reads back as it, so
    the 0.1 written, not the binary 0.1000000000000000055511151231257827 it is held as
    (Optuna reads a step's bounds so too, by str)."""
    return Fraction(repr(number))


def _on_step(value: float, low: float, step: float) -> bool:
    steps = (value - low) / step
    return abs(steps - round(steps)) < 1e-9


def _show(option: Any) -> str:
    if isinstance(option, bool):
        return "true" if option else "false"
    return str(option)


class Mixed:
    """What a chooser answers for a point whose options are all to be computed and mixed
    (differentiable search): binding expands every option of an op, item or inputs choice
    and joins their outputs in one `mix` node weighted by the point's probabilities."""

    def __repr__(self) -> str:
        return "MIXED"


MIXED = Mixed()


@dataclass(frozen=True)
class MixedCallee:
    """A parameter's value where its op choice is mixed: a call of it calls every option."""
    point: ChoicePoint


Chooser = Callable[[ChoicePoint], Any]


def at_defaults(point: ChoicePoint) -> Any:
    """The chooser of a plain binding: every point at its default."""
    return point.default


def mixing(point: ChoicePoint) -> Any:
    """The chooser of a differentiable search: every point mixed (binding refuses a number's
    point, which no mixture of outputs can search)."""
    return MIXED


def drawn_at_random(rng: random.Random) -> Chooser:
    """A chooser drawing each point uniformly from `rng`: one of its options, a value of its
    range (on its step), or a real number (log-uniform for a logrange)."""
    def choose(point: ChoicePoint) -> Any:
        if point.size is not None:  # as rng.choice draws, without a list
            return point.values()[rng.randrange(point.size)]
        low, high = point._bounds()  # no size: a range of real numbers
        if point.log:
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        return rng.uniform(low, high)
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


def options_point(name: str, kind: str, labels: Sequence[str], default: int,
                  where: tuple = ()) -> ChoicePoint:
    """An item's or inputs' point: one of `labels` (the options as written: a list, or the
    Combinations of an inputs' choice), the `default`-th (from 0) unless chosen otherwise;
    `where`, the calls that met it (see ChoicePoint)."""
    options = labels if isinstance(labels, Combinations) else tuple(labels)
    return ChoicePoint(name, kind, options, options[default], where=where)


@dataclass(frozen=True)
class ChoiceSpace:
    """What a family's choices describe: its points (as met at the defaults, then as other
    options reach more; none that `fixed` names), and how many networks: `count` (None: a
    range of real numbers makes it endless), of `distinct` networks or else of combinations of
    options, `exact` or else an upper bound. `static`: the same points whatever is chosen (a
    grid can cover it). `sampled`: each point only some values of which were bound (checked),
    with which, in words. `fixed`: the points the values bound fixed."""
    points: tuple[ChoicePoint, ...]
    count: int | None
    exact: bool
    static: bool
    distinct: bool = False
    sampled: tuple[tuple[str, str], ...] = ()
    fixed: tuple[str, ...] = ()

    def counted(self) -> str:
        """`15,625 networks`, `at most 2,000 combinations`, `endless (...)`."""
        if self.count is None:
            return "endless (a range of real numbers)"
        what = "network" if self.distinct else "combination"
        return (f"{'' if self.exact else 'at most '}{_count(self.count)} "
                f"{what}{'s' * (self.count != 1)}")

    def checked(self) -> str:
        """What binding the options checked, in words."""
        if not self.sampled:
            return "every option fits"
        return ("every value bound fits, but not every value was bound: "
                + "; ".join(f"{name}: {words}" for name, words in self.sampled))


def _count(number: int) -> str:
    """`15,625`; past 15 digits, their first three and the power of ten (`9.33e698`: a
    choice in a block repeated 1,000 times, whose every digit says nothing)."""
    digits = str(number)
    if len(digits) <= 15:
        return f"{number:,}"
    return f"about {digits[0]}.{digits[1:3]}e{len(digits) - 1}"
