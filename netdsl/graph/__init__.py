"""The graph: primitive records (shape, cost, printout, colour), Page's nested form, flattening,
execution order and listings. No torch, no parser."""
from .compare import Change, diff
from .listings import from_json, operations, summary, to_json
from .nested import (INPUT, SEP, Graph, Nested, ShapedGraph, costs, flatten, path_iter,
                     pipeline, resolve, shaped, shapes)
from .primitives import (MIX, OPS, PRIMITIVES, REQUIRED, Op, Primitive, Shape, fits,
                         format_shape, is_number, kind_of, whole)

__all__ = ["INPUT", "MIX", "OPS", "PRIMITIVES", "REQUIRED", "SEP", "Change", "Graph", "Nested",
           "Op", "Primitive", "Shape", "ShapedGraph", "costs", "diff", "fits", "flatten",
           "format_shape", "from_json", "is_number", "kind_of", "operations", "path_iter",
           "pipeline", "resolve", "shaped", "shapes", "summary", "to_json", "whole"]
