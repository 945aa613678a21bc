"""The syntax tree -> DSL text: how a bound network writes itself out.

The text is printed from the statements, not patched from the source: one statement a line,
block bodies indented, expressions with only the parentheses they need. Comments and layout
are not kept. Printing is exact: parsing the printed text gives the same statements, so the
same network, and printing those again gives the same text.
"""
from __future__ import annotations

from typing import Any

from .syntax import Arg, Binary, Block, Call, Const, Expr, Item, Name, Param, Unary

INDENT = "    "
# Binding strength: a sum holds products, a product holds unary operations, these hold atoms.
_SUM, _PRODUCT, _UNARY, _ATOM = range(4)
_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT}


def to_text(statements: list, values: dict[str, Any] | None = None) -> str:
    """`statements` as DSL text; a `param` named in `values` is printed with that value as its
    default, so the text stands alone with its bindings in it."""
    values = values or {}
    return "\n".join(line for stmt in statements for line in _statement(stmt, values)) + "\n"


def literal(value: Any) -> str:
    """A bound value as DSL text. Floats print as Python's repr, which reads back exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # int(): a numpy integer prints without its type's name
    return repr(float(value))


def _statement(stmt: Param | Block | Item, values: dict[str, Any]) -> list[str]:
    if isinstance(stmt, Param):
        value = literal(values[stmt.name]) if stmt.name in values else expression(stmt.expr)
        return [f"param {stmt.name} = {value}"]
    if isinstance(stmt, Block):
        formals = ", ".join(f.name if f.default is None else f"{f.name}={expression(f.default)}"
                            for f in stmt.formals)
        body = [INDENT + line for inner in stmt.body for line in _statement(inner, values)]
        return [f"block {stmt.name}({formals}) {{", *body, "}"]
    return [_item(stmt)]


def _item(item: Item) -> str:
    text = f"{item.label}: " if item.label is not None else ""
    text += _call(item.call)
    if item.repeat is not None:
        text += f" * {_operand(item.repeat, _UNARY)}"
    if item.condition is not None:
        text += f" if {expression(item.condition)}"
    if item.inputs is not None:
        text += " <- " + ", ".join(item.inputs)
    return text


def _call(call: Call) -> str:
    if not call.args:
        return call.name
    return f"{call.name}({', '.join(_arg(arg) for arg in call.args)})"


def _arg(arg: Arg) -> str:
    return expression(arg.expr) if arg.name is None else f"{arg.name}={expression(arg.expr)}"


def expression(expr: Expr) -> str:
    if isinstance(expr, Const):
        return literal(expr.value)
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, Unary):
        operator = "not " if expr.op == "not" else "-"
        return operator + _operand(expr.operand, _UNARY)
    level = _LEVEL[expr.op]
    # Left-associative: a right operand of the same strength needs parentheses, a left one not.
    return (f"{_operand(expr.left, level)} {expr.op} "
            f"{_operand(expr.right, level + 1)}")


def _operand(expr: Expr, least: int) -> str:
    """`expr` in parentheses unless it binds at least as strongly as `least`."""
    text = expression(expr)
    return text if _strength(expr) >= least else f"({text})"


def _strength(expr: Expr) -> int:
    if isinstance(expr, Binary):
        return _LEVEL[expr.op]
    if isinstance(expr, Unary) or (isinstance(expr, Const) and not isinstance(expr.value, bool)
                                   and expr.value < 0):
        return _UNARY
    return _ATOM
