"""Graph -> graphviz drawing."""
from __future__ import annotations

import os
from pathlib import Path

import graphviz

from ..errors import NetdslError
from ..files import write_atomically
from ..graph import OPS, SEP, Graph

_INPUT_COLOUR = "#ffffff"
_OTHER_COLOUR = "#bc80bd"  # an op no primitive makes (a hand-built graph)

FORMATS = ("svg", "png", "pdf", "dot")


def _text(value: str) -> str:
    """`value` as literal label text: backslashes in DOT labels are escapes (\\n, \\l, \\N...)."""
    return graphviz.escape(value)


def draw_graph(graph: Graph, show_identity: bool = False) -> graphviz.Digraph:
    """A drawing of `graph`: nodes filled by op type (legend included), the module's repr as
    tooltip, one cluster per path prefix, edges from the inputs. Identity nodes are bypassed
    unless `show_identity`."""
    hidden = set() if show_identity else {p for p, (op, _) in graph.items()
                                          if op is not None and op.type == "Identity"}

    def source_of(path: str) -> str:
        while path in hidden:
            path = graph[path][1][0]
        return path

    ids = {path: f"n{i}" for i, path in enumerate(graph)}
    dot = graphviz.Digraph("network", graph_attr={"rankdir": "LR", "fontname": "Helvetica"},
                           node_attr={"shape": "box", "style": "filled,rounded",
                                      "fontname": "Helvetica", "fontsize": "11"})

    # A tree of clusters: prefix -> (sub-prefixes, node paths), drawn depth first.
    children: dict[str, list[str]] = {"": []}
    members: dict[str, list[str]] = {"": []}
    for path in graph:
        if path in hidden:
            continue
        parts = path.split(SEP)
        for depth in range(1, len(parts)):
            prefix, parent = SEP.join(parts[:depth]), SEP.join(parts[:depth - 1])
            if prefix not in children:
                children[prefix], members[prefix] = [], []
                children[parent].append(prefix)
        members[SEP.join(parts[:-1])].append(path)

    used: list[str] = []

    def fill(target: graphviz.Digraph, prefix: str) -> None:
        for path in members[prefix]:
            op = graph[path][0]
            kind = "input" if op is None else op.type
            if kind not in used:
                used.append(kind)
            name = path.rsplit(SEP, 1)[-1]
            label = _text(name) if op is None else _text(name) + "\\n" + _text(kind)
            target.node(ids[path], label=label,
                        tooltip=_text(path + ": " + ("the network's input" if op is None else repr(op))),
                        fillcolor=_colour(kind))
        for sub in children[prefix]:
            cluster = graphviz.Digraph(f"cluster_{ids_of_prefix[sub]}",
                                       graph_attr={"label": _text(sub.rsplit(SEP, 1)[-1]),
                                                   "tooltip": _text(sub), "style": "rounded",
                                                   "color": "#999999"})
            fill(cluster, sub)
            target.subgraph(cluster)

    ids_of_prefix = {prefix: i for i, prefix in enumerate(children)}
    fill(dot, "")
    for path, (_, inputs) in graph.items():
        if path in hidden:
            continue
        for source in inputs:
            dot.edge(ids[source_of(source)], ids[path])

    legend = graphviz.Digraph("cluster_legend", graph_attr={"label": "legend", "color": "#999999"})
    for i, kind in enumerate(used):
        legend.node(f"legend{i}", label=_text(kind), fillcolor=_colour(kind))
    dot.subgraph(legend)
    return dot


def _colour(kind: str) -> str:
    if kind == "input":
        return _INPUT_COLOUR
    return OPS[kind].colour if kind in OPS else _OTHER_COLOUR


def write_drawing(dot: graphviz.Digraph, output: str | os.PathLike[str]) -> Path:
    """Write `dot` to `output`; the format is the file's suffix (.svg, .png, .pdf, .dot).
    The file appears whole or not at all."""
    path = Path(output)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise NetdslError(f"cannot write '{path}': the suffix must be one of "
                          + ", ".join("." + f for f in FORMATS))
    if fmt == "dot":
        data = dot.source.encode("utf-8")
    else:
        try:
            data = dot.pipe(format=fmt)
        except graphviz.ExecutableNotFound:
            raise NetdslError(
                f"drawing {path.name} needs graphviz's 'dot' program, which is not on PATH. "
                "Install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install "
                "graphviz; conda: conda install graphviz), or write a .dot file instead.") from None
        except graphviz.CalledProcessError as e:
            raise NetdslError(f"graphviz could not draw {path.name}: {e.stderr!r}") from None
    return write_atomically(path, data)
