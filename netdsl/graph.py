"""Page's graph form, and what can be read off it without torch.

A network is a nested dict (David Page's cifar10-fast): keys name nodes, a dict value is a group
of nodes, any other value is a leaf, either an `Op` or `(Op, [inputs])`. An input is a path
relative to the leaf's group (`'in'`, `'res2/relu'`, `'../prep/relu'`) or -1 for the node
before it. A leaf without inputs takes `[-1]`. The first node is `'input': (None, [])`.

`flatten` resolves that to a `Graph`: an ordered dict from absolute path (`layer1/residual/add`)
to `(Op, [absolute input paths])`, in execution order.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Iterator

from .errors import NetdslError
from .ops import Op, Shape, flop_count, format_shape, output_shape, parameter_count

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


# ---- listings --------------------------------------------------------------------------------

def operations(nested: Nested) -> str:
    """The seed's "operations" listing: one `(path, (op, inputs))` per line."""
    return "[" + ",\n ".join(repr(entry) for entry in pipeline(nested)) + "]"


def to_json(graph: Graph) -> str:
    """The graph as JSON: `[{"name", "op", "args", "inputs"}]`, args under torch's names."""
    return json.dumps([{"name": path,
                        "op": None if op is None else op.type,
                        "args": {} if op is None else op.kwargs,
                        "inputs": inputs} for path, (op, inputs) in graph.items()], indent=1)


def summary(graph: Graph, input_shape: Shape) -> str:
    """A table of each node's output shape, parameters and FLOPs per image, with a subtotal for
    each top-level group (stage) and the total for the network."""
    out_shapes = shapes(graph, input_shape)
    cost = {path: (0, 0) if op is None else
            (parameter_count(op), flop_count(op, out_shapes[path], len(inputs)))
            for path, (op, inputs) in graph.items()}
    rows = [("node", "op", "output", "params", "FLOPs")]
    for top, paths in itertools.groupby(graph, key=lambda path: path.split(SEP)[0]):
        paths = list(paths)
        for path in paths:
            op = graph[path][0]
            rows.append((path, "-" if op is None else op.type, format_shape(out_shapes[path]),
                         f"{cost[path][0]:,}", f"{cost[path][1]:,}"))
        if top not in graph:  # a group of nodes, not a single top-level node
            rows.append((f"{top} (total)", "", "", f"{sum(cost[p][0] for p in paths):,}",
                         f"{sum(cost[p][1] for p in paths):,}"))
            rows.append(("", "", "", "", ""))
    rows.append(("total", "", "", f"{sum(c[0] for c in cost.values()):,}",
                 f"{sum(c[1] for c in cost.values()):,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  "
             f"{r[3]:>{widths[3]}}  {r[4]:>{widths[4]}}".rstrip() for r in rows]
    lines.append("FLOPs per image, forward pass; a multiply-add counts as 2.")
    return "\n".join(lines)
