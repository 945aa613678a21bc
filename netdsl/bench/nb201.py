"""NAS-Bench-201's architecture strings and models/nb201.net, both ways.

An architecture string lists each node's inputs, node by node, as `op~i` (the op on the edge
from node i): `|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|
nor_conv_3x3~2|`. In models/nb201.net those six ops are the parameters e1_0, e2_0, e2_1, e3_0,
e3_1 and e3_2 (edge e<j>_<i> into node j from node i).
"""
from __future__ import annotations

from importlib import resources
from typing import Any

from ..errors import NetdslError
from ..language import Bound, Family, load

OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")
NODES = 3  # nodes after the cell's input; node j takes one edge from each earlier node
EDGES = tuple(f"e{j}_{i}" for j in range(1, NODES + 1) for i in range(j))


def family() -> Family:
    """models/nb201.net, parsed (as installed: the package netdsl.models)."""
    path = resources.files("netdsl.models").joinpath("nb201.net")
    return load(path.read_text(encoding="utf-8"), source="models/nb201.net")


def edges(arch: str) -> dict[str, str]:
    """The six edges' ops of an architecture string; an error names the column of what is
    wrong (an unknown op, a node with the wrong number of edges, an edge from a later node)."""
    if not isinstance(arch, str):
        raise NetdslError(f"an NB201 architecture is a string, got {type(arch).__name__}")
    out: dict[str, str] = {}
    nodes = arch.split("+")
    if len(nodes) != NODES:
        raise NetdslError(f"NB201 architecture {arch!r}: {len(nodes)} nodes separated by '+', "
                          f"expected {NODES}")
    column = 0
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise NetdslError(f"NB201 architecture, column {column + 1}: node {j} is "
                              f"{node!r}; expected |op~i|...|")
        parts = node[1:-1].split("|")
        if len(parts) != j:
            raise NetdslError(f"NB201 architecture, column {column + 1}: node {j} has "
                              f"{len(parts)} edges, expected {j} (one from each earlier node)")
        offset = column + 1
        for part in parts:
            op, tilde, source = part.partition("~")
            if op not in OPS:
                raise NetdslError(f"NB201 architecture, column {offset + 1}: unknown op "
                                  f"{op!r} (ops: {', '.join(OPS)})")
            if not (tilde and source.isascii() and source.isdigit()) or int(source) >= j:
                raise NetdslError(f"NB201 architecture, column {offset + 1}: {part!r} must "
                                  f"come from an earlier node, ~0 to ~{j - 1}")
            edge = f"e{j}_{int(source)}"  # ~00 is ~0
            if edge in out:
                raise NetdslError(f"NB201 architecture, column {offset + 1}: node {j} takes "
                                  f"node {int(source)} twice")
            out[edge] = op
            offset += len(part) + 1
        column += len(node) + 1
    return {edge: out[edge] for edge in EDGES}




def to_text(arch: str, **values: Any) -> str:
    """DSL text of the architecture (models/nb201.net bound with its ops; `values` binds C,
    N or classes too): a standalone network with no choice left."""
    return family().bind({**edges(arch), **values}).text


def from_bound(bound: Bound) -> str:
    """The architecture string of a network bound from models/nb201.net."""
    missing = [edge for edge in EDGES if edge not in bound.parameters]
    if missing:
        raise NetdslError(f"{bound.family.name} is not NAS-Bench-201's space: it has no "
                          f"parameter {missing[0]}")
    return arch({edge: str(bound.parameters[edge]) for edge in EDGES})


def arch(ops: dict[str, str]) -> str:
    """The architecture string of the six edges' ops (`edges` read backwards)."""
    return "+".join("|" + "|".join(f"{ops[f'e{j}_{i}']}~{i}" for i in range(j)) + "|"
                    for j in range(1, NODES + 1))
