"""The graph: primitive records (shape, cost, printout, colour), Page's nested form, flattening,
execution order and listings. No torch, no parser."""
from .listings import operations, summary, to_json
from .nested import (INPUT, SEP, Graph, Nested, costs, execution_order, flatten, path_iter,
                     pipeline, resolve, shapes)
from .primitives import OPS, PRIMITIVES, REQUIRED, Op, Primitive, Shape, format_shape, whole

__all__ = ["INPUT", "OPS", "PRIMITIVES", "REQUIRED", "SEP", "Graph", "Nested", "Op", "Primitive",
           "Shape", "costs", "execution_order", "flatten", "format_shape", "operations",
           "path_iter", "pipeline", "resolve", "shapes", "summary", "to_json", "whole"]
