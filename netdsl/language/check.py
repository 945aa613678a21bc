"""Pending leaves -> Ops: the expanded network checked against the shapes that reach each node.

The pending leaves are wired into a Graph once (execution order, readers); each primitive, in
that order, checks its arguments against its inputs' shapes and gives its Op. The Graph of Ops
keeps that wiring and every node's shape: nothing downstream computes them again.
"""
from __future__ import annotations

from typing import Any

from ..errors import NetdslError
from ..graph import INPUT, OPS, SEP, Graph, Nested, Op, Shape, ShapedGraph, format_shape, pipeline
from ..graph.nested import InputError, normpath, relative, resolved_leaves
from .evaluate import error_at


def resolve_ops(nested: Nested, input_shape: Shape) -> tuple[Nested, ShapedGraph]:
    """`nested` with every pending leaf replaced by its Op, and its graph, shaped."""
    flat = pipeline(nested)
    pending: dict[str, tuple[Any, list[str]]] = {}
    try:
        for path, leaf, inputs in resolved_leaves(flat):
            pending[path] = (leaf, inputs)
    except InputError as e:  # located at the `<-` that wrote the input
        leaf = flat[e.index][1][0]
        if e.climbs:
            raise error_at(f"an input in '{', '.join(leaf.written_inputs)}' climbs above the "
                           "network", leaf.inputs_frame) from None
        raise error_at(e.message, leaf.inputs_frame or leaf.frame) from None
    try:
        wiring = Graph.wired(pending, INPUT)
    except NetdslError as e:  # the one wiring error text can make, a cycle: at its first node
        first = e.message.removeprefix("cycle: ").split(" -> ")[0]
        raise error_at(e.message, pending[first][0].frame) from None

    shapes: dict[str, Shape] = {}
    ops: dict[str, Op | None] = {}
    for path, (leaf, inputs) in wiring.items():
        if leaf is None:
            shapes[path], ops[path] = tuple(input_shape), None
            continue
        primitive = leaf.primitive
        low, high = primitive.inputs
        if len(inputs) < low or (high is not None and len(inputs) > high):
            want = f"{low}" if low == high else f"at least {low}"
            raise error_at(f"{primitive.name} takes {want} input{'s' if low > 1 else ''}, "
                           f"got {len(inputs)}", leaf.inputs_frame or leaf.frame)
        in_shapes = [shapes[i] for i in inputs]
        source_op = ops.get(inputs[0])
        exclusive = (len(inputs) == 1 and len(wiring.readers[inputs[0]]) == 1
                     and source_op is not None and OPS[source_op.type].overwritable)
        try:
            op = primitive.infer(leaf.args, in_shapes, exclusive)
            shape = primitive.shape(op.kwargs, in_shapes)
        except NetdslError as e:
            raise error_at(e.message, leaf.frame) from None
        if min(shape) < 1:
            raise error_at(f"{primitive.name} would give an empty output ({format_shape(shape)})",
                           leaf.frame)
        shapes[path], ops[path] = shape, op
    graph = wiring.with_leaves(ops, input_shape, shapes)
    return _replace_leaves(nested, ops, graph), graph


def _replace_leaves(nested: Nested, ops: dict[str, Op | None], graph: Graph,
                    prefix: str = "") -> Nested:
    """`nested` with each leaf its Op; an input that named a group names the group's output
    node instead, so that the nested form is Page's, whose build_graph knows no groups."""
    out: Nested = {}
    group = prefix.removesuffix(SEP)
    for name, value in nested.items():
        path = prefix + name
        if isinstance(value, dict):
            out[name] = _replace_leaves(value, ops, graph, path + SEP)
        elif isinstance(value, tuple):
            out[name] = (ops[path], [ref if prefix + ref == source or (
                "." in ref and normpath(prefix + ref) == source) else relative(source, group)
                for ref, source in zip(value[1], graph[path][1])])
        else:
            out[name] = ops[path]
    return out

