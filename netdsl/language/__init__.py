"""The language: text -> syntax tree (syntax.py) -> evaluated and expanded (evaluate.py,
expand.py) -> checked against shapes (check.py) -> a `Bound` network (family.py); and back
to text (printer.py). Imports the graph's primitive records; never torch."""
from .family import DEFAULT_INPUT_SHAPE, Bound, Family, Parameter, PathOrText, load, read_text
from .printer import print_statements

__all__ = ["DEFAULT_INPUT_SHAPE", "Bound", "Family", "Parameter", "PathOrText", "load",
           "print_statements", "read_text"]
