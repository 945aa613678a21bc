"""Page's graph form, and what can be read off it without torch.

A network is a nested dict (David Page's cifar10-fast): keys name nodes, a dict value is a group
of nodes, any other value is a leaf, either an `Op` or `(Op, [inputs])`. An input is a path
relative to the leaf's group (`'in'`, `'res2/relu'`, `'../prep/relu'`) or -1 for the node
before it. A leaf without inputs takes `[-1]`. The first node is `'input': (None, [])`.

`flatten` resolves that to a `Graph`: an ordered dict from absolute path (`layer1/residual/add`)
to `(Op, [absolute input paths])`, in execution order.
"""
from __future__ import annotations

from typing import Any, Iterator

from ..errors import NetdslError
from .primitives import Op, Shape, flop_count, output_shape, parameter_count, primitive_of

SEP = "/"
INPUT = "input"

Nested = dict[str, Any]


class Graph(dict):
    """A flattened network: absolute path -> (Op, [absolute input paths]). The graphs netdsl
    makes (binding a family, `flatten`) are in execution order: each node after its inputs,
    the input first, the output last, the written order kept where it allows. Its own type,
    so that callers taking "any network" can tell it from the nested form."""


def path_iter(nested: Nested, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf with its path, depth first, in dict order."""
    for name, value in nested.items():
        if isinstance(value, dict):
            yield from path_iter(value, (*prefix, name))
        else:
            yield (*prefix, name), value


def pipeline(nested: Nested) -> list[tuple[str, tuple[Op | None, list]]]:
    """The leaves in order as `(path, (op, relative_inputs))`: the seed's "operations"."""
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


def resolve(path: str, rel: str | int, order: list[str], index: int) -> str:
    """The absolute path of input `rel` of the node `path`, `index`-th in `order`."""
    if isinstance(rel, int) and not isinstance(rel, bool):
        if not 0 <= index + rel < len(order):
            raise NetdslError(f"node '{path}': input {rel} is before the first node")
        return order[index + rel]
    if not isinstance(rel, str):
        raise NetdslError(f"node '{path}': an input must be a path or a negative index, got {rel!r}")
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
    order; an input that is not a node raises InputError for its leaf."""
    order = [path for path, _ in flat]
    known = set(order)
    for index, (path, (leaf, inputs)) in enumerate(flat):
        try:
            absolute = [resolve(path, rel, order, index) for rel in inputs]
        except NetdslError as e:
            raise InputError(e.message, index, climbs=True) from None
        missing = [source for source in absolute if source not in known]
        if missing:
            raise InputError(f"'{path}' uses '{missing[0]}', which is not in the network",
                             index, climbs=False)
        yield path, leaf, absolute


def flatten(nested: Nested) -> Graph:
    """Page's `build_graph`: the nested form with every input made an absolute path, in
    execution order (as every Graph netdsl makes)."""
    written = {path: (op, inputs) for path, op, inputs in resolved_leaves(pipeline(nested))}
    return Graph((path, written[path]) for path in execution_order(written))


def execution_order(graph: Graph) -> list[str]:
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
        stack = [(start, iter(graph[start][1]))]
        on_stack = [start]
        while stack:
            path, inputs = stack[-1]
            for source in inputs:
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


def readers(graph: dict[str, tuple[Any, list[str]]]) -> dict[str, list[str]]:
    """Each node's readers (the nodes that take it as an input), in the graph's order: what
    running the graph frees after the last one, and what decides whether a layer may work in
    place."""
    out: dict[str, list[str]] = {path: [] for path in graph}
    for path, (_, inputs) in graph.items():
        for source in inputs:
            out[source].append(path)
    return out


# Arguments that state what a layer's input gives: (argument, what of the input's shape[0]).
_INPUT_SIZES = {"in_channels": "channels", "num_features": "channels", "in_features": "features"}
# Arguments that are sizes or counts, each a whole number >= 1.
_COUNTS = ("out_channels", "out_features", "kernel_size", "stride", "dilation", "groups")


def shapes(graph: Graph, input_shape: Any) -> dict[str, Shape]:
    """Output shape of every node, per image, for inputs of `input_shape`, in execution order
    (a node may be written before its inputs). A graph written by hand that is no network is
    a NetdslError naming the node: a node that is not `(Op or None, [input paths])`, an input
    that is not a node, not exactly one input node, a name that is both a node and a group, a
    cycle, an unknown op, the wrong number of inputs, arguments that do not fit what reaches
    the node; and an `input_shape` that is not (channels, height, width)."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3 and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in input_shape)):
        raise NetdslError(f"input_shape must be (channels, height, width), three whole numbers "
                          f">= 1, got {input_shape!r}")
    for path, node in graph.items():
        if not isinstance(path, str) or any(part in ("", ".", "..") for part in path.split(SEP)):
            raise NetdslError(f"node {path!r}: a node's name is a path of names joined by "
                              f"'{SEP}'")
        if not (isinstance(node, (tuple, list)) and len(node) == 2
                and (node[0] is None or isinstance(node[0], Op))
                and isinstance(node[1], (list, tuple))
                and all(isinstance(source, str) for source in node[1])):
            raise NetdslError(f"node '{path}': expected (Op or None, [input paths]), got "
                              f"{node!r:.80}")
        for source in node[1]:
            if source not in graph:
                raise NetdslError(f"node '{path}' uses '{source}', which is not in the network")
        parts = path.split(SEP)
        for depth in range(1, len(parts)):
            if SEP.join(parts[:depth]) in graph:
                raise NetdslError(f"'{SEP.join(parts[:depth])}' is a node and also the group of "
                                  f"'{path}'; a name is one or the other")
    inputs = [path for path, (op, _) in graph.items() if op is None]
    if len(inputs) != 1:
        raise NetdslError(f"a network has one input node (op None); this one has "
                          f"{len(inputs)}{': ' + ', '.join(inputs) if inputs else ''}")
    if graph[inputs[0]][1]:
        raise NetdslError(f"the input node '{inputs[0]}' takes no inputs")
    out: dict[str, Shape] = {}
    for path in execution_order(graph):
        op, sources = graph[path]
        if op is None:
            out[path] = tuple(input_shape)
            continue
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
        for argument, what in _INPUT_SIZES.items():
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
    return out


def costs(graph: Graph, out_shapes: dict[str, Shape]) -> dict[str, tuple[int, int]]:
    """(parameters, frozen ones too; forward FLOPs per image) of every node, given its shapes."""
    return {path: (0, 0) if op is None else
            (parameter_count(op), flop_count(op, out_shapes[path], [out_shapes[i] for i in inputs]))
            for path, (op, inputs) in graph.items()}
