"""Listings of a graph: the seed's operations, JSON (and back), and the summary table."""
from __future__ import annotations

import itertools
import json

from ..errors import NetdslError
from .nested import SEP, Graph, Nested, ShapedGraph, pipeline
from .primitives import Op, format_shape


def operations(nested: Nested) -> str:
    """The seed's "operations" listing: one `(path, (op, inputs))` per line."""
    return "[" + ",\n ".join(repr(entry) for entry in pipeline(nested)) + "]"


def to_records(graph: Graph) -> list[dict]:
    """The graph as `[{"name", "op", "args", "inputs"}]`, args under torch's names: what
    `to_json` writes, for JSON of another shape (a fingerprint) without a parse back."""
    return [{"name": path, "op": None if op is None else op.type,
             "args": {} if op is None else op.kwargs, "inputs": inputs}
            for path, (op, inputs) in graph.items()]


def to_json(graph: Graph) -> str:
    """The graph as JSON: `[{"name", "op", "args", "inputs"}]`, args under torch's names."""
    return json.dumps(to_records(graph), indent=1)


def from_json(records: str | list) -> Graph:
    """The graph `to_json` wrote (the JSON text or its parsed list); errors name the record."""
    if isinstance(records, str):
        try:
            records = json.loads(records)
        except ValueError as e:
            raise NetdslError(f"not JSON: {e}") from None
    if not isinstance(records, list):
        raise NetdslError("a graph's JSON is a list of {name, op, args, inputs} records")
    nodes: dict[str, tuple] = {}
    for index, record in enumerate(records):
        try:
            name, op, args, inputs = (record[k] for k in ("name", "op", "args", "inputs"))
            if not (isinstance(name, str) and isinstance(args, dict) and isinstance(inputs, list)
                    and all(isinstance(i, str) for i in inputs)):
                raise TypeError
        except (KeyError, TypeError):
            raise NetdslError(f"record {index} is not {{name, op, args, inputs}}: "
                              f"{json.dumps(record)[:80]}") from None
        if name in nodes:
            raise NetdslError(f"record {index} names '{name}', as an earlier record does; a "
                              "name is one node")
        nodes[name] = (None if op is None else Op(op, tuple(args.items())), list(inputs))
    return Graph(nodes)


def summary(graph: ShapedGraph, cost: dict[str, tuple[int, int]]) -> str:
    """A table of each node's output shape, parameters and FLOPs per image (a shaped graph and
    its `costs`), with a subtotal for each top-level group (stage) and the total for the network."""
    rows = [("node", "op", "output", "weights", "FLOPs")]
    for top, group in itertools.groupby(graph, key=lambda path: path.split(SEP)[0]):
        paths = list(group)
        for path in paths:
            op = graph[path][0]
            rows.append((path, "-" if op is None else op.type, format_shape(graph.shapes[path]),
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
