"""Listings of a graph: the seed's operations, JSON, and the summary table."""
from __future__ import annotations

import itertools
import json

from .nested import SEP, Graph, Nested, pipeline
from .primitives import Shape, format_shape


def operations(nested: Nested) -> str:
    """The seed's "operations" listing: one `(path, (op, inputs))` per line."""
    return "[" + ",\n ".join(repr(entry) for entry in pipeline(nested)) + "]"


def to_json(graph: Graph) -> str:
    """The graph as JSON: `[{"name", "op", "args", "inputs"}]`, args under torch's names."""
    return json.dumps([{"name": path,
                        "op": None if op is None else op.type,
                        "args": {} if op is None else op.kwargs,
                        "inputs": inputs} for path, (op, inputs) in graph.items()], indent=1)


def summary(graph: Graph, out_shapes: dict[str, Shape], cost: dict[str, tuple[int, int]]) -> str:
    """A table of each node's output shape, parameters and FLOPs per image (from `shapes` and
    `costs`), with a subtotal for each top-level group (stage) and the total for the network."""
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
