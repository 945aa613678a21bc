"""Graph -> graphviz drawing."""
from __future__ import annotations

import os
from pathlib import Path

import graphviz

from ..errors import NetdslError
from ..files import write_atomically
from ..graph import OPS, SEP, Graph, format_shape
from ..graph.nested import prefix_tree

_INPUT_COLOUR = "#ffffff"
_OTHER_COLOUR = "#bc80bd"  # an op no primitive makes (a hand-built graph)
_COLLAPSED_COLOUR = "#eeeeee"  # a path prefix drawn as one box (--depth)

FORMATS = ("svg", "png", "pdf", "dot")


def _text(value: str) -> str:
    """`value` as literal label text: backslashes in DOT labels are escapes (\\n, \\l, \\N...)."""
    return graphviz.escape(value)


RANKDIRS = ("TB", "LR")
DIFF_COLOURS = {"added": "#1a9850", "removed": "#d73027", "changed": "#fc8d59",
                "chosen": "#4575b4"}  # chosen: made by an item's or inputs' choice


def draw_graph(graph: Graph, *, shapes: dict[str, tuple[int, ...]] | None = None,
               costs: dict[str, tuple[int, int]] | None = None, show_identity: bool = False,
               depth: int | None = None, rankdir: str = "TB",
               marks: dict[str, str] | None = None, name: str = "network",
               edge_labels: dict[tuple[str, str], str] | None = None) -> graphviz.Digraph:
    """A drawing of `graph`: nodes filled by op type, one cluster per path prefix, edges from
    the inputs, the module's repr as tooltip, and a one-row legend of the op types present.
    `shapes` (path -> output shape) labels each edge with the tensor it carries; `depth`
    collapses everything below that many path parts into one box per prefix, labelled with
    its parameters and FLOPs from `costs`; `marks` (path -> added/removed/changed/chosen) outlines
    nodes in the diff's colours; `edge_labels` ((source, reader) -> text) labels those edges,
    after their shapes. Identity nodes are bypassed unless `show_identity`."""
    if rankdir not in RANKDIRS:
        raise NetdslError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if depth is not None and depth < 1:
        raise NetdslError(f"depth must be at least 1, got {depth}")
    hidden = set() if show_identity else {p for p, (op, _) in graph.items()
                                          if op is not None and op.type == "Identity"}
    boxes = _boxes(graph, hidden, depth)
    ids = {box: f"{name}_{i}" for i, box in enumerate(boxes)}
    dot = graphviz.Digraph(name, graph_attr={"rankdir": rankdir, "fontname": "Helvetica",
                                             "nodesep": "0.25", "ranksep": "0.3"},
                           node_attr={"shape": "box", "style": "filled,rounded",
                                      "fontname": "Helvetica", "fontsize": "11",
                                      "height": "0.3"},
                           edge_attr={"fontname": "Helvetica", "fontsize": "9",
                                      "arrowsize": "0.6"})
    _draw_boxes(dot, graph, boxes, ids, name, costs, marks or {})
    _draw_edges(dot, graph, hidden, depth, ids, shapes, edge_labels or {})
    # The legend's op types in the order they first appear in the graph.
    _draw_legend(dot, name, dict.fromkeys(_kind(graph, box, nodes)
                                          for box, nodes in boxes.items()))
    return dot


def _box_of(path: str, depth: int | None) -> str:
    """The box a node is drawn in: itself, or its prefix `depth` parts deep."""
    parts = path.split(SEP)
    return SEP.join(parts[:depth]) if depth is not None and len(parts) > depth else path


def _boxes(graph: Graph, hidden: set[str], depth: int | None) -> dict[str, list[str]]:
    """box -> the nodes drawn in it, in graph order; the `hidden` nodes are in none."""
    boxes: dict[str, list[str]] = {}
    for path in graph:
        if path not in hidden:
            boxes.setdefault(_box_of(path, depth), []).append(path)
    return boxes


def _kind(graph: Graph, box: str, nodes: list[str]) -> str:
    """What a box is, which picks its fill and its legend entry: its node's op type, the
    input, or a collapsed prefix of several `nodes`."""
    if nodes != [box]:
        return "collapsed"
    op = graph[box][0]
    return "input" if op is None else op.type


def _cluster_tree(boxes: dict[str, list[str]]) -> tuple[dict[str, list[str]],
                                                       dict[str, list[str]]]:
    """The path prefixes as a tree of clusters, rooted at "": (prefix -> its sub-prefixes,
    prefix -> the boxes directly in it), each in the order the boxes come."""
    tree = prefix_tree(boxes)
    return ({prefix: [c for c in kids if c in tree] for prefix, kids in tree.items()},
            {prefix: [c for c in kids if c not in tree] for prefix, kids in tree.items()})


def _draw_boxes(dot: graphviz.Digraph, graph: Graph, boxes: dict[str, list[str]],
                ids: dict[str, str], name: str, costs: dict[str, tuple[int, int]] | None,
                marks: dict[str, str]) -> None:
    """Every box into `dot`, each inside the clusters of its path's prefixes, depth first."""
    children, members = _cluster_tree(boxes)
    cluster_ids = {prefix: i for i, prefix in enumerate(children)}

    def fill(target: graphviz.Digraph, prefix: str) -> None:
        for box in members[prefix]:
            _draw_box(target, graph, box, boxes[box], ids[box], costs, marks)
        for sub in children[prefix]:
            cluster = graphviz.Digraph(f"cluster_{name}_{cluster_ids[sub]}",
                                       graph_attr={"label": _text(sub.rsplit(SEP, 1)[-1]),
                                                   "tooltip": _text(sub), "style": "rounded",
                                                   "color": "#999999", "fontsize": "10"})
            fill(cluster, sub)
            target.subgraph(cluster)

    fill(dot, "")


def _draw_box(target: graphviz.Digraph, graph: Graph, box: str, nodes: list[str], node_id: str,
              costs: dict[str, tuple[int, int]] | None, marks: dict[str, str]) -> None:
    """One box as a node of `target`: a node of its own labelled with its op type, or a
    collapsed prefix with its weights and FLOPs (`costs`) or its count of `nodes`; filled by
    its kind, outlined in the colour of its own or its first node's mark."""
    kind, short = _kind(graph, box, nodes), box.rsplit(SEP, 1)[-1]
    if nodes == [box]:  # one node of its own
        op = graph[box][0]
        label = _text(short) if op is None else _text(short) + "\\n" + _text(kind)
        tooltip = box + ": " + ("the network's input" if op is None else repr(op))
    else:  # a collapsed prefix
        if costs:
            weights = sum(costs[p][0] for p in nodes)
            flops = sum(costs[p][1] for p in nodes)
            label = _text(short) + f"\\n{weights:,} weights\\n{_si(flops)}FLOP"
        else:
            label = _text(short) + f"\\n{len(nodes)} nodes"
        tooltip = f"{box}: {len(nodes)} nodes"
    attributes = {"fillcolor": _colour(kind)}
    mark = marks.get(box) or next((marks[p] for p in nodes if p in marks), None)
    if mark:
        attributes.update(color=DIFF_COLOURS[mark], penwidth="3")
    target.node(node_id, label=label, tooltip=_text(tooltip), **attributes)


def _draw_edges(dot: graphviz.Digraph, graph: Graph, hidden: set[str], depth: int | None,
                ids: dict[str, str], shapes: dict[str, tuple[int, ...]] | None,
                edge_labels: dict[tuple[str, str], str]) -> None:
    """One edge for each box that feeds another (none inside a box), from the node a hidden
    one passes on; labelled with the shape of the tensor it carries, given `shapes`, and the
    edge's own label."""
    drawn = set()
    for path, (_, inputs) in graph.items():
        if path in hidden:
            continue
        for written in inputs:
            source = written
            while source in hidden:  # an identity passes on its one input
                source = graph[source][1][0]
            edge = _box_of(source, depth), _box_of(path, depth)
            if edge[0] == edge[1] or edge in drawn:
                continue
            drawn.add(edge)
            words = [format_shape(shapes[source])] if shapes else []
            words += [edge_labels[written, path]] if (written, path) in edge_labels else []
            label = {"label": " " + " ".join(words)} if words else {}
            dot.edge(ids[edge[0]], ids[edge[1]], **label)


def _draw_legend(dot: graphviz.Digraph, name: str, kinds) -> None:
    """The legend: one row of the `kinds` present, not a column as tall as the network."""
    cells = "".join(f'<td bgcolor="{_colour(kind)}" style="rounded">{graphviz.escape(kind)}</td>'
                    for kind in kinds)
    dot.node(f"{name}_legend", shape="plaintext", style="", fontsize="9",
             label=f'<<table border="0" cellspacing="3" cellpadding="3"><tr>{cells}</tr></table>>')


def draw_diff(first, second, changes, rankdir: str = "TB") -> graphviz.Digraph:
    """Two bound networks side by side, each in a box named after its file, with the nodes
    `changes` (netdsl.graph.diff) names outlined: removed in the first, added in the second,
    changed in both."""
    dot = graphviz.Digraph("diff", graph_attr={"rankdir": rankdir, "fontname": "Helvetica"})
    for side, bound, shown in (("a", first, ("removed", "changed")),
                               ("b", second, ("added", "changed"))):
        marks = {c.path: c.kind for c in changes if c.kind in shown}
        drawing = bound.draw(rankdir=rankdir, marks=marks, name=f"cluster_{side}")
        drawing.attr(label=_text(bound.family.name), color="#666666", style="rounded")
        dot.subgraph(drawing)
    return dot


def _si(value: int) -> str:
    """236.6 M for 236,635,642: FLOPs at a glance."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} "


def _colour(kind: str) -> str:
    if kind == "input":
        return _INPUT_COLOUR
    if kind == "collapsed":
        return _COLLAPSED_COLOUR
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
