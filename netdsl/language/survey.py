"""A family's space surveyed: every option of every choice point bound and so checked, the
points that some options make appear found, and the networks counted.

    space = survey(bind, fixed)   # bind(picks) -> Bound: `picks` by point name, the rest at
    space.count, space.distinct   # their defaults; `fixed`, the points values bound: no choice

Each value of a point is bound with every other point at its default (a probe). A binding
costs time in proportion to the network, so the survey never binds once per value of a range
of 10**9 (past CHECKED_AT_MOST values, fewer in a large network, it binds a sample of each
point, and says which), nor once per option
per instance of a choice repeated in a block: alike instances are bound once for all of them
(`_Survey.transferred`). The count is of distinct networks (by fingerprint) when the survey
can tell, else of combinations of options (see `_Survey.space`).
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import NetdslError
from ..graph import SEP
from .choices import INPUTS_MARK, ChoicePoint, ChoiceSpace

CHECKED_AT_MOST = 256  # values of a point bound: a quarter at each end (every residue of a
                       # step up to 64 there), the rest evenly spaced between
CHECKED_AT_LEAST = 32  # however large the network
PROBED_NODES = 200000  # nodes bound probing one point (a few seconds): fewer values past 781
MAX_EXPANSIONS = 5000       # bindings spent walking the combinations of a space
MAX_WALKED_NODES = 1000000  # nodes bound walking them (some seconds): a large network's
                            # walk stops sooner


Node = tuple  # (op, input paths, shape)
Changes = dict[str, "Node | None"]  # see _changes


@dataclass
class _Outcome:
    """What the probes of one point showed: which values were bound, in words (`sample`;
    None: every value), how many distinct `networks` they and the default make, the
    `changes` of each that
    changed the network (the first made by `mover`), the points they made appear (`met`)
    and whether any changed which points are met (`moved`). `local`: every value changed
    nothing outside the point's own nodes (an item's or inputs' subtree), which `reads`
    (outside nodes its nodes read under some value) lets an alike instance take as its own."""
    sample: str | None
    networks: int = 1
    changes: list[Changes] = field(default_factory=list)
    met: dict[str, ChoicePoint] = field(default_factory=dict)
    moved: bool = False
    mover: Any = None
    local: bool = False
    reads: set[str] = field(default_factory=set)

    @property
    def region(self) -> set[str]:
        """The nodes some value changed."""
        return set().union(*self.changes)


def survey(bind: Callable[[dict[str, Any]], Any], fixed: frozenset[str]) -> ChoiceSpace:
    """The space of a family whose `bind(picks)` binds the values `picks` by point name (the
    rest at their defaults) and returns the Bound, or raises."""
    return _Survey(bind, fixed).space()


class _Survey:
    """One survey: the defaults bound once (`base`, its `nodes`), the points free to choose,
    each item's or inputs' point's nodes (`subtrees`), the instances probed so far by class."""

    def __init__(self, bind: Callable[[dict[str, Any]], Any], fixed: frozenset[str]):
        self.bind, self.fixed = bind, fixed
        self.base = bind({})
        self.nodes = _nodes(self.base)
        self.free = {name: p for name, p in self.base.points.items() if name not in fixed}
        roots = {root for p in self.free.values() if (root := _root(p)) is not None}
        self.subtrees = _subtrees(self.nodes, roots)
        self.classes: dict[tuple, tuple[ChoicePoint, _Outcome]] = {}

    def space(self) -> ChoiceSpace:
        outcomes = {name: self.transferred(point) or self.probed(point)
                    for name, point in self.free.items()}
        seen = dict(self.free)
        for outcome in outcomes.values():
            for name, point in outcome.met.items():
                seen.setdefault(name, point)
        static = not any(o.moved for o in outcomes.values())
        sampled = tuple((name, o.sample) for name, o in outcomes.items() if o.sample)
        fixed = tuple(name for name in self.base.points if name in self.fixed)
        space = functools.partial(ChoiceSpace, tuple(seen.values()), static=static, sampled=sampled,
                                  fixed=fixed)
        sizes = [point.size for point in seen.values()]
        if None in sizes:
            return space(None, True)
        if static and not sampled and self.factorizes(outcomes):
            return space(math.prod(o.networks for o in outcomes.values()), True, distinct=True)
        combinations = math.prod(sizes)
        walked = self.walk(seen) if not static or (
            combinations <= MAX_EXPANSIONS
            and combinations * len(self.nodes) <= MAX_WALKED_NODES) else None
        if walked is not None:  # every combination bound: every value too
            return space(walked, True, distinct=True, sampled=())
        return space(math.prod(p.size for p in seen.values()), static)

    def probed(self, point: ChoicePoint) -> _Outcome:
        """The outcome of binding each value of `point` (a sample of a large one)."""
        budget = max(CHECKED_AT_LEAST, min(CHECKED_AT_MOST, PROBED_NODES // len(self.nodes)))
        values, sample = _checked_values(point, budget)
        root, complete = _root(point), sample is None
        outcome = _Outcome(sample, local=root is not None)
        networks = {self.base.fingerprint}
        for value in values:
            if value == point.default:
                continue
            bound = self.bind({point.name: value})
            nodes = _nodes(bound)
            changes = _changes(self.nodes, nodes)
            if changes and complete:
                networks.add(bound.fingerprint)
                outcome.changes.append(changes)
                outcome.mover = value if outcome.mover is None else outcome.mover
            met = {n: p for n, p in bound.points.items() if n not in self.fixed}
            if met != self.free:  # a point --set fixes is no choice, met or not
                outcome.moved = True
                outcome.met.update((n, p) for n, p in met.items() if n not in self.free)
            if root is not None:
                outcome.local &= _inside(changes, root) and _inside(
                    bound.points.keys() ^ self.base.points.keys(), root)
                outcome.reads |= _outside_reads(nodes, root)
        outcome.networks = len(networks)
        key = self.key(point)
        if outcome.local and key is not None:
            self.classes.setdefault(key, (point, outcome))
        return outcome

    def key(self, point: ChoicePoint) -> tuple | None:
        """What makes two instances of an item's or inputs' choice alike: the same calls met
        them (so the same options, made alike), with the same nodes around them at the
        defaults (each node of theirs, its op, shape, and the shapes it reads from outside)."""
        root = _root(point)
        if root is None or not point.where:
            return None
        nodes = []
        for path in self.subtrees.get(root, ()):
            op, inputs, shape = self.nodes[path]
            nodes.append((path[len(root):], op, shape, tuple(
                source[len(root):] if _under(source, root) else ("^", self.nodes[source][2])
                for source in inputs)))
        return point.where, point.kind, point.options, tuple(nodes)

    def transferred(self, point: ChoicePoint) -> _Outcome | None:
        """The outcome of an instance alike one already probed (see `key`), whose every value
        changed only its own nodes: the same, moved to this instance's paths, when whatever
        the probed one read outside its nodes has its counterpart here (an input alike, or
        the node at the same place in this instance's group)."""
        key = self.key(point)
        if key not in self.classes:
            return None
        probed, outcome = self.classes[key]
        there, here = _root(probed), _root(point)
        assert there is not None and here is not None  # a point with a key has a root
        entries = {source for path in self.subtrees.get(there, ())
                   for source in self.nodes[path][1] if not _under(source, there)}
        group, to = there.rpartition(SEP)[0], here.rpartition(SEP)[0]
        for source in outcome.reads:
            shape = self.nodes[source][2]
            if source in entries and all(self.nodes[e][2] == shape for e in entries):
                continue
            counterpart = _moved(source, group, to)
            if counterpart not in self.nodes or \
                    self.nodes[counterpart][0::2] != self.nodes[source][0::2]:
                return None

        def move(path: str) -> str:  # the same place here: in the subtree, else in the group
            return here + path[len(there):] if _under(path, there) else \
                _moved(path, group, to) or path

        return dataclasses.replace(
            outcome, changes=[{move(p): node and (node[0], tuple(map(move, node[1])), node[2])
                               for p, node in changes.items()} for changes in outcome.changes],
            met={move(n): dataclasses.replace(p, name=move(n)) for n, p in outcome.met.items()},
            reads=set())

    def factorizes(self, outcomes: dict[str, _Outcome]) -> bool:
        """Whether the networks are the product of each point's distinct ones: true when each
        point's networks differ in nodes that no other point changes (its witnesses), and
        these keep what the point made whatever the others choose. Then a network says what
        each point chose, up to the values that make the same network, and each choice is
        one of the point's networks. Each probe shows one point alone; one binding of every
        point moved at once shows the witnesses kept and nothing changed that no point
        changed alone (a node of two points, as `conv(a + b)`'s, is no witness: a walk)."""
        regions = {name: o.region for name, o in outcomes.items()}
        owners = collections.Counter(path for region in regions.values() for path in region)
        witnesses = {name: {p for p in region if owners[p] == 1}
                     for name, region in regions.items()}
        for name, outcome in outcomes.items():
            told = {frozenset((p, n) for p, n in changes.items() if p in witnesses[name])
                    for changes in outcome.changes}
            if len(told | {frozenset()}) != outcome.networks:
                return False
        moved = {name: o for name, o in outcomes.items() if o.mover is not None}
        if len(moved) < 2:
            return True
        try:
            joint = _changes(self.nodes, _nodes(self.bind(
                {name: o.mover for name, o in moved.items()})))
        except NetdslError:  # each fits alone, not all together: a walk says where
            return False
        return joint.keys() == set().union(*(o.changes[0] for o in moved.values())) and all(
            self.kept(path, joint) == self.kept(path, outcome.changes[0])
            for name, outcome in moved.items() for path in witnesses[name])

    def kept(self, path: str, changes: Changes) -> Any:
        """What `changes` make of node `path`: the same, gone, or its op and shape (and its
        inputs where only they changed: an inputs' choice)."""
        if path not in changes:
            return "same"
        node, was = changes[path], self.nodes.get(path)
        if node is None or was is None or (was[0], was[2]) != (node[0], node[2]):
            return node and (node[0], node[2])
        return node

    def walk(self, seen: dict[str, ChoicePoint]) -> int | None:
        """The distinct networks of every combination, walked point by point as binding meets
        them (adding to `seen`); None past MAX_EXPANSIONS bindings or MAX_WALKED_NODES."""
        fingerprints: set[str] = set()
        stack: list[dict[str, Any]] = [{}]  # the picks of each binding still to walk
        expansions = nodes = 0
        while stack:
            picks = stack.pop()
            bound = self.bind(picks)
            expansions, nodes = expansions + 1, nodes + len(bound.graph)
            for name, point in bound.points.items():
                if name not in self.fixed:
                    seen.setdefault(name, point)
            open_point = next((point for name, point in bound.points.items()
                               if name not in picks and name not in self.fixed), None)
            if open_point is None:
                fingerprints.add(bound.fingerprint)
            elif open_point.size is None or \
                    open_point.size + len(stack) + expansions > MAX_EXPANSIONS:
                return None
            else:
                stack.extend({**picks, open_point.name: value}
                             for value in reversed(open_point.values()))
            if stack and (expansions >= MAX_EXPANSIONS or nodes >= MAX_WALKED_NODES):
                return None
        return len(fingerprints)


def _checked_values(point: ChoicePoint, budget: int) -> tuple[list, str | None]:
    """Which values of `point` a survey binds: all of them (and None) up to `budget`, else a
    sample of about `budget` (and which, in words)."""
    if point.size is None:
        first, last = point.low, point.high
        assert first is not None and last is not None  # a range of real numbers has both ends
        low, high = (math.log(first), math.log(last)) if point.log else (first, last)
        spaced = [low + (high - low) * i / (budget - 1) for i in range(budget)]
        if point.log:  # exp(log(0.1)) is 0.10000000000000002: past the end, so clamped
            spaced = [min(max(math.exp(v), first), last) for v in spaced]
        return (spaced,
                f"{budget} of its real numbers, evenly spaced from one end to the other")
    values, size = point.values(), point.size
    if size <= budget:
        return list(values), None
    ends, spread = budget // 4, budget - 2 * (budget // 4)
    between = (ends + round(i * (size - 2 * ends - 1) / (spread - 1)) for i in range(spread))
    places = sorted({*range(ends), *range(size - ends, size), *between})
    return [values[i] for i in places], (
        f"{len(places):,} of its {size:,} values (the first {ends}, the last {ends}, {spread} "
        "evenly spaced between)")


def _nodes(bound: Any) -> dict[str, Node]:
    shapes = bound.graph.shapes
    return {path: (op, tuple(inputs), shapes[path]) for path, (op, inputs) in bound.graph.items()}


def _changes(base: dict[str, Node], other: dict[str, Node]) -> dict[str, Node | None]:
    """The nodes `other` has otherwise than `base`, path -> its node there (None: not there):
    another op or shape, or there in one only; or other inputs, unless only to read a node
    remade under another name (`n1/bn` -> `n1/zero`: the group n1's output, remade)."""
    made: dict[str, Node | None] = {
        path: node for path, node in other.items()
        if (was := base.get(path)) is None or was[0] != node[0] or was[2] != node[2]}
    made.update((path, None) for path in base if path not in other)
    changed = dict(made)
    for path, node in other.items():
        if path in made:
            continue
        was = base[path]  # a node of `other` not in `made` is in `base` too
        if was[1] != node[1] and not (len(was[1]) == len(node[1]) and all(
                a == b or (a in made and b in made) for a, b in zip(was[1], node[1]))):
            changed[path] = node
    return changed


def _root(point: ChoicePoint) -> str | None:
    """The path of the nodes an item's or inputs' point makes or wires; None for a parameter."""
    return point.name.removesuffix(INPUTS_MARK) if point.kind in ("item", "inputs") else None


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + SEP)


def _inside(paths, root: str) -> bool:
    return all(_under(path.removesuffix(INPUTS_MARK), root) for path in paths)


def _subtrees(nodes: dict[str, Node], roots: set[str]) -> dict[str, list[str]]:
    """Each root's nodes (the root and the paths under it), in execution order."""
    found: dict[str, list[str]] = {}
    for path in nodes:
        prefix = path
        while True:
            if prefix in roots:
                found.setdefault(prefix, []).append(path)
            if SEP not in prefix:
                break
            prefix = prefix.rpartition(SEP)[0]
    return found


def _outside_reads(nodes: dict[str, Node], root: str) -> set[str]:
    return {source for path, (_, inputs, _) in nodes.items() if _under(path, root)
            for source in inputs if not _under(source, root)}


def _moved(path: str, group: str, to: str) -> str | None:
    """`path` in `group` ("" for the top) as the same place in group `to`; None when it is not
    in `group`."""
    if group == to:
        return path
    if not group or not path.startswith(group + SEP):
        return None
    rest = path[len(group) + 1:]
    return f"{to}{SEP}{rest}" if to else rest
