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
from .primitives import Op, Shape, flop_count, output_shape, parameter_count

SEP = "/"
INPUT = "input"

Nested = dict[str, Any]


class Graph(dict):
    """A flattened network: absolute path -> (Op, [absolute input paths]), in written order.
    Its own type, so that callers taking "any network" can tell it from the nested form."""


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


def flatten(nested: Nested) -> Graph:
    """Page's `build_graph`: the nested form with every input made an absolute path."""
    flat = pipeline(nested)
    order = [path for path, _ in flat]
    graph = Graph()
    for index, (path, (op, inputs)) in enumerate(flat):
        graph[path] = (op, [resolve(path, rel, order, index) for rel in inputs])
    for path, (_, inputs) in graph.items():
        for source in inputs:
            if source not in graph:
                raise NetdslError(f"node '{path}' uses '{source}', which is not in the network")
    return graph


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


def shapes(graph: Graph, input_shape: Shape) -> dict[str, Shape]:
    """Output shape of every node, per image, for inputs of `input_shape`."""
    out: dict[str, Shape] = {}
    for path, (op, inputs) in graph.items():
        out[path] = tuple(input_shape) if op is None else output_shape(op, [out[i] for i in inputs])
    return out


def costs(graph: Graph, out_shapes: dict[str, Shape]) -> dict[str, tuple[int, int]]:
    """(trainable parameters, forward FLOPs per image) of every node, given its shapes."""
    return {path: (0, 0) if op is None else
            (parameter_count(op), flop_count(op, out_shapes[path], [out_shapes[i] for i in inputs]))
            for path, (op, inputs) in graph.items()}
