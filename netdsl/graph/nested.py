"""Page's graph form, and what can be read off it without torch.

A network is a nested dict (David Page's cifar10-fast): keys name nodes, a dict value is a group
of nodes, any other value is a leaf, either an `Op` or `(Op, [inputs])`. An input is a path
relative to the leaf's group (`'in'`, `'res2/relu'`, `'../prep/relu'`) or -1 for the node
before it. A leaf without inputs takes `[-1]`. The first node is `'input': (None, [])`.

`flatten` resolves that to a `Graph`: a mapping from absolute path (`layer1/residual/add`) to
`(Op, [absolute input paths])`, in execution order, with each node's readers.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Iterator

from ..errors import NetdslError
from .primitives import Op, Shape, flop_count, output_shape, primitive_of, weight_count

SEP = "/"
INPUT = "input"
# Names joined by SEP, none of them empty, "." or "..".
_NAME_PATH = re.compile(r"(?!\.\.?(?:/|$))[^/]+(?:/(?!\.\.?(?:/|$))[^/]+)*")

Nested = dict[str, Any]


class Graph(Mapping):
    """A flattened network: absolute path -> (leaf, [absolute input paths]), a leaf being an
    `Op`, or None for the input. Made once from any mapping of nodes (or pairs), which it
    checks, and never changed after (torch.fx's invariant): the nodes are in execution order,
    each after its inputs, the input first and the output last, the written order kept where
    it allows; `readers` holds each node's readers. `shapes`, every node's output shape per
    image for `input_shape`, is known once the graph is `shaped` (a bound network's is), a
    ShapedGraph; until then both are None."""

    def __init__(self, nodes: Mapping | Iterable = (), /):
        nodes = dict(nodes)
        self._wire(nodes, _check_wiring(nodes))

    @classmethod
    def wired(cls, nodes: dict[str, tuple[Any, list[str]]], source: str) -> Graph:
        """A Graph of `nodes` that their maker has already found wired as a network (binding
        resolved every input to a node; `source` is the one input): not checked again, only
        ordered (a cycle is still an error)."""
        graph = object.__new__(cls)
        graph._wire(nodes, source)
        return graph

    def _wire(self, nodes: dict[str, tuple[Any, list[str]]], source: str) -> None:
        order = _execution_order(nodes)
        order.remove(source)  # the input has no inputs: first is always in order
        self._nodes = {path: (nodes[path][0], list(nodes[path][1]))
                       for path in (source, *order)}
        self.readers = readers(self._nodes)
        self.input_shape: Shape | None = None
        self.shapes: dict[str, Shape] | None = None

    def __getitem__(self, path: str) -> tuple[Any, list[str]]:
        return self._nodes[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def items(self):  # the dict's own views: Mapping's would look each node up again
        return self._nodes.items()

    def keys(self):
        return self._nodes.keys()

    def values(self):
        return self._nodes.values()

    def __repr__(self) -> str:
        return f"Graph({self._nodes!r})"

    @property
    def output(self) -> str:
        """The path of the node the network returns: the last one run."""
        return next(reversed(self._nodes))

    def with_leaves(self, leaves: dict[str, Any], input_shape: Sequence[int],
                    shapes: dict[str, Shape]) -> ShapedGraph:
        """The same wiring (order and readers kept, not found again) with each node's leaf
        replaced by `leaves[path]`, shaped for `input_shape`."""
        graph = object.__new__(ShapedGraph)
        graph._nodes = {path: (leaves[path], inputs) for path, (_, inputs) in self.items()}
        graph.readers, graph.input_shape, graph.shapes = self.readers, tuple(input_shape), shapes
        return graph


class ShapedGraph(Graph):
    """A Graph whose nodes' output shapes per image are known, for `input_shape`: what `shaped`
    and `with_leaves` give, a bound network's graph."""

    input_shape: Shape
    shapes: dict[str, Shape]


def _check_wiring(nodes: dict) -> str:
    """The input node's path, once `nodes` is found to be wired as a network: each node
    `(leaf, [input paths])` named by a path, each input a node, a name not both a node and a
    group, exactly one node with leaf None (the input), taking no inputs."""
    groups: dict[str, str] = {}  # each group a node is in -> that node
    for path, node in nodes.items():
        if not isinstance(path, str) or not _NAME_PATH.fullmatch(path):
            raise NetdslError(f"node {path!r}: a node's name is a path of names joined by "
                              f"'{SEP}'")
        if not (isinstance(node, (tuple, list)) and len(node) == 2
                and isinstance(node[1], (list, tuple))):
            raise NetdslError(f"node '{path}': expected (Op or None, [input paths]), got "
                              f"{node!r:.80}")
        for source in node[1]:
            if not isinstance(source, str):
                raise NetdslError(f"node '{path}': expected (Op or None, [input paths]), got "
                                  f"{node!r:.80}")
            if source not in nodes:
                raise NetdslError(f"node '{path}' uses '{source}', which is not in the network")
        group = path
        while SEP in group:
            group = group.rpartition(SEP)[0]
            groups.setdefault(group, path)
    for group in groups.keys() & nodes.keys():
        raise NetdslError(f"'{group}' is a node and also the group of '{groups[group]}'; a "
                          "name is one or the other")
    sources = [path for path, (leaf, _) in nodes.items() if leaf is None]
    if len(sources) != 1:
        raise NetdslError(f"a network has one input node (op None); this one has "
                          f"{len(sources)}{': ' + ', '.join(sources) if sources else ''}")
    if nodes[sources[0]][1]:
        raise NetdslError(f"the input node '{sources[0]}' takes no inputs")
    return sources[0]


def path_iter(nested: Nested, prefix: tuple[str, ...] = ()
              ) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf with its path, depth first, in dict order."""
    for name, value in nested.items():
        if isinstance(value, dict):
            yield from path_iter(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def pipeline(nested: Nested) -> list[tuple[str, tuple[Any, list]]]:
    """The leaves in order as `(path, (op, relative_inputs))`: the seed's "operations". A leaf
    is as `nested` holds it: an Op (None: the input), or before the shapes are checked the
    language's pending primitive."""
    return [(SEP.join(path), leaf if isinstance(leaf, tuple) else (leaf, [-1]))
            for path, leaf in path_iter(nested)]


def normpath(path: str) -> str:
    """Resolve `..` in a `/`-separated path; an error if it climbs above the top."""
    parts: list[str] = []
    for part in path.split(SEP):
        if part == "..":
            if not parts:
                raise NetdslError(f"path '{path}' climbs above the network")
            parts.pop()
        else:
            parts.append(part)
    return SEP.join(parts)


def relative(target: str, scope: str) -> str:
    """`target`'s path as an input written in group `scope` ("": the top), `..` climbing out
    of it: `normpath`'s inverse (`relative("prep/relu", "layer1")` is `../prep/relu`)."""
    here = scope.split(SEP) if scope else []
    there = target.split(SEP)
    common = 0
    while common < min(len(here), len(there) - 1) and here[common] == there[common]:
        common += 1
    return SEP.join([".."] * (len(here) - common) + there[common:])


def resolve(path: str, rel: str | int, order: list[str], index: int) -> str:
    """The absolute path of input `rel` of the node `path`, `index`-th in `order`."""
    if isinstance(rel, int) and not isinstance(rel, bool):
        if not 0 <= index + rel < len(order):
            raise NetdslError(f"node '{path}': input {rel} is before the first node")
        return order[index + rel]
    if not isinstance(rel, str):
        raise NetdslError(f"node '{path}': an input must be a path or a negative index, "
                          f"got {rel!r}")
    return normpath(SEP.join((path, "..", rel)))


class InputError(NetdslError):
    """An input of the `index`-th leaf that climbs above the network (`climbs`) or names no
    node."""

    def __init__(self, message: str, index: int, climbs: bool):
        super().__init__(message)
        self.index, self.climbs = index, climbs


def resolved_leaves(flat: list[tuple[str, tuple[Any, list]]]
                    ) -> Iterator[tuple[str, Any, list[str]]]:
    """Each leaf of `pipeline`'s listing as (path, leaf, absolute input paths), in written
    order. An input that names a group stands for the group's output, its last node written
    (so `<- n1` reads a block's output whatever the block made); one that is neither raises
    InputError for its leaf."""
    order = [path for path, _ in flat]
    known = set(order)
    outputs: dict[str, str] = {}  # group -> its last node, in written order; found if asked
    for index, (path, (leaf, inputs)) in enumerate(flat):
        try:
            absolute = [resolve(path, rel, order, index) for rel in inputs]
        except NetdslError as e:
            raise InputError(e.message, index, climbs=True) from None
        if not known.issuperset(absolute):
            if not outputs:
                outputs = _group_outputs(order)
            absolute = [source if source in known else outputs.get(source, source)
                        for source in absolute]
        missing = [source for source in absolute if source not in known]
        if missing:
            raise InputError(f"'{path}' uses '{missing[0]}', which is not in the network",
                             index, climbs=False)
        yield path, leaf, absolute


def prefix_tree(paths: Iterable[str]) -> dict[str, list[str]]:
    """The groups of the node paths `paths` as a tree rooted at "" (the top): each group's
    path -> its children's paths (its groups and its nodes), each in the order `paths` first
    reaches it. A node is in no key."""
    tree: dict[str, list[str]] = {"": []}
    for path in paths:
        parts = path.split(SEP)
        for depth in range(1, len(parts)):
            group = SEP.join(parts[:depth])
            if group not in tree:
                tree[group] = []
                tree[SEP.join(parts[:depth - 1])].append(group)
        tree[SEP.join(parts[:-1])].append(path)
    return tree


def _group_outputs(order: list[str]) -> dict[str, str]:
    outputs = {}
    for path in order:
        group = path
        while SEP in group:
            group = group.rpartition(SEP)[0]
            outputs[group] = path
    return outputs


def flatten(nested: Nested) -> Graph:
    """Page's `build_graph`: the nested form with every input made an absolute path, in
    execution order (as every Graph netdsl makes)."""
    return Graph((path, (op, inputs)) for path, op, inputs in resolved_leaves(pipeline(nested)))


def _execution_order(graph: Mapping[str, tuple[Any, list[str]]]) -> list[str]:
    """The nodes sorted so each comes after its inputs, keeping the written order where it
    allows. A cycle is an error that lists it."""
    seen: set[str] = set()
    for path, (_, inputs) in graph.items():
        if not seen.issuperset(inputs):
            break
        seen.add(path)
    else:
        return list(graph)  # the common case: written in order already
    done: set[str] = set()
    order: list[str] = []
    for start in graph:
        stack = [(start, iter(graph[start][1]))]  # each node on the way, its inputs not yet seen
        on_stack = [start]
        while stack:
            path, unseen = stack[-1]
            for source in unseen:
                if source in done:
                    continue
                if source in on_stack:
                    loop = on_stack[on_stack.index(source):] + [source]
                    raise NetdslError("cycle: " + " -> ".join(reversed(loop)))
                stack.append((source, iter(graph[source][1])))
                on_stack.append(source)
                break
            else:
                stack.pop()
                on_stack.pop()
                if path not in done:
                    done.add(path)
                    order.append(path)
    return order


def readers(graph: Mapping[str, tuple[Any, list[str]]]) -> dict[str, list[str]]:
    """Each node's readers (the nodes that take it as an input), in the graph's order: what
    running the graph frees after the last one, and what decides whether a layer may work in
    place."""
    out: dict[str, list[str]] = {path: [] for path in graph}
    for path, (_, inputs) in graph.items():
        for source in inputs:
            out[source].append(path)
    return out


# Arguments that state what a layer's input gives: (argument, what of the input's shape[0]).
INPUT_SIZES = {"in_channels": "channels", "num_features": "channels", "in_features": "features"}
# Arguments that are sizes or counts, each a whole number >= 1.
_COUNTS = ("out_channels", "out_features", "kernel_size", "stride", "dilation", "groups")


def shapes(graph: Mapping, input_shape: Any) -> dict[str, Shape]:
    """Output shape of every node, per image, for inputs of `input_shape`: `shaped(...).shapes`."""
    return shaped(graph, input_shape).shapes


def shaped(graph: Mapping, input_shape: Any) -> ShapedGraph:
    """`graph` (made a Graph if it is not one) with every node's output shape per image for
    inputs of `input_shape`; a Graph already shaped for it is returned as it is. A graph
    written by hand that is no network is a NetdslError naming the node: wiring that is not a
    network (see Graph), a leaf that is not an Op, an unknown op, the wrong number of inputs,
    arguments that do not fit what reaches the node; and an `input_shape` that is not
    (channels, height, width)."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in input_shape)):
        raise NetdslError(f"input_shape must be (channels, height, width), three whole numbers "
                          f">= 1, got {input_shape!r}")
    graph = graph if isinstance(graph, Graph) else Graph(graph)
    if isinstance(graph, ShapedGraph) and graph.input_shape == tuple(input_shape):
        return graph
    out: dict[str, Shape] = {}
    for path, (op, sources) in graph.items():
        if op is None:
            out[path] = tuple(input_shape)
            continue
        if not isinstance(op, Op):
            raise NetdslError(f"node '{path}': expected (Op or None, [input paths]), got "
                              f"{graph[path]!r:.80}")
        primitive = primitive_of(op)
        least, most = primitive.inputs
        if len(sources) < least or most is not None and len(sources) > most:
            wanted = str(least) if least == most else f"{least} or more"
            raise NetdslError(f"node '{path}': {op.type} takes {wanted} inputs, got "
                              f"{len(sources)}")
        given = [out[source] for source in sources]
        for argument in _COUNTS:
            value = op.kwargs.get(argument)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                          and value >= 1):
                raise NetdslError(f"node '{path}': {op.type}'s {argument} must be a whole "
                                  f"number >= 1, got {value!r}")
        for argument, what in INPUT_SIZES.items():
            size = op.kwargs.get(argument)
            if size is not None and given and size != given[0][0]:
                raise NetdslError(f"node '{path}': {op.type} takes {size} input {what}, but "
                                  f"'{sources[0]}' gives {given[0][0]}")
        try:
            out[path] = output_shape(op, given)
        except NetdslError as e:
            raise NetdslError(f"node '{path}': {e.message}") from None
        except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError) as e:
            raise NetdslError(f"node '{path}': the arguments of {op.type} do not fit its "
                              f"inputs ({type(e).__name__}: {e})") from None
        if min(out[path], default=0) < 1:
            raise NetdslError(f"node '{path}': {op.type} would give outputs of shape "
                              f"{'x'.join(map(str, out[path]))}")
    return graph.with_leaves({path: op for path, (op, _) in graph.items()}, input_shape, out)


def costs(graph: ShapedGraph) -> dict[str, tuple[int, int]]:
    """(weights, frozen ones too; forward FLOPs per image) of every node of a shaped graph."""
    out_shapes = graph.shapes
    return {path: (0, 0) if op is None else
            (weight_count(op), flop_count(op, out_shapes[path], [out_shapes[i] for i in inputs]))
            for path, (op, inputs) in graph.items()}
