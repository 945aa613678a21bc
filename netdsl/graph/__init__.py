"""The graph: primitive records (shape, cost, printout, colour), Page's nested form, flattening,
execution order and listings. No torch, no parser."""
from .compare import Change, diff
from .listings import from_json, operations, summary, to_json
from .nested import (INPUT, SEP, Graph, Nested, costs, execution_order, flatten, path_iter,
                     pipeline, resolve, shapes)
from .primitives import OPS, PRIMITIVES, REQUIRED, Op, Primitive, Shape, format_shape, whole

__all__ = ["INPUT", "OPS", "PRIMITIVES", "REQUIRED", "SEP", "Change", "Graph", "Nested", "Op",
           "Primitive", "Shape", "costs", "diff", "execution_order", "flatten", "format_shape", "from_json",
           "operations",
           "path_iter", "pipeline", "resolve", "shapes", "summary", "to_json", "whole"]
