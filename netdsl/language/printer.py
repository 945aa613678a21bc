"""The syntax tree -> DSL text: how a bound network writes itself out.

The text is printed from the statements, not patched from the source: one statement a line,
block bodies indented, expressions with only the parentheses they need. Comments and layout
are not kept. Printing is exact: parsing the printed text gives the same statements, so the
same network, and printing those again gives the same text.
"""
from __future__ import annotations

from typing import Any

from ..errors import text_lines
from .choices import Callee
from .syntax import (Arg, Binary, Block, Call, CallValue, Const, Expr, InputChoice, Item, Name,
                     Param, Unary)

INDENT = "    "
LINE_LENGTH = 100  # `fmt` keeps a chain written on one line together up to this many columns
CONTINUATION = "  -> "  # `fmt`'s start of a line that continues a chain
# Binding strength: a sum holds products, a product holds unary operations, these hold atoms.
_SUM, _PRODUCT, _UNARY, _ATOM = range(4)
_LEVEL = {"+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "//": _PRODUCT}


def print_statements(statements: list, values: dict[str, Any] | None = None) -> str:
    """`statements` as DSL text; a `param` named in `values` is printed with that value as its
    default, so the text stands alone with its bindings in it."""
    values = values or {}
    return "\n".join(line for stmt in statements for line in _statement(stmt, values)) + "\n"


def literal(value: Any) -> str:
    """A bound value as DSL text. Floats print as Python's repr, which reads back exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Callee):
        return value.name
    if isinstance(value, int):
        return str(int(value))  # int(): a numpy integer prints without its type's name
    return repr(float(value))


def block_header(block: Block) -> str:
    """`block NAME(FORMALS)`, each formal with its default as written: the one way a block's
    parameters are printed (fmt, the printer, an editor's hover)."""
    formals = ", ".join(f.name if f.default is None else f"{f.name}={expression(f.default)}"
                        for f in block.formals)
    return f"block {block.name}({formals})"


def _statement(stmt: Param | Block | Item, values: dict[str, Any]) -> list[str]:
    if isinstance(stmt, Param):
        value = literal(values[stmt.name]) if stmt.name in values else expression(stmt.expr)
        return [f"param {stmt.name} = {value}"]
    if isinstance(stmt, Block):
        body = [INDENT + line for inner in stmt.body for line in _statement(inner, values)]
        return [f"{block_header(stmt)} {{", *body, "}"]
    return [_item(stmt)]


def _item(item: Item) -> str:
    text = f"{item.label}: " if item.label is not None else ""
    text += call_text(item.call)
    if item.repeat is not None:
        text += f" * {_operand(item.repeat, _UNARY)}"
    if item.condition is not None:
        text += f" if {expression(item.condition)}"
    if isinstance(item.inputs, InputChoice):
        k = "" if item.inputs.k is None else f", k={expression(item.inputs.k)}"
        text += f" <- choice({', '.join(item.inputs.refs)}{k})"
    elif item.inputs is not None:
        text += " <- " + ", ".join(item.inputs)
    return text


def call_text(call: Call) -> str:
    """A call as DSL text: `conv_bn(c, ks=5)`, `zero`."""
    return written_call(call.name, [_arg(arg) for arg in call.args])


def written_call(name: str, arguments: list[str]) -> str:
    """A call of `name` whose arguments are written `arguments` (`c`, `ks=5`):
    `conv_bn(c, ks=5)`, or the bare name when there are none (`zero`)."""
    return f"{name}({', '.join(arguments)})" if arguments else name


def _arg(arg: Arg) -> str:
    return expression(arg.expr) if arg.name is None else f"{arg.name}={expression(arg.expr)}"


def expression(expr: Expr) -> str:
    if isinstance(expr, Const):
        return literal(expr.value)
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, CallValue):
        return call_text(expr.call)
    if isinstance(expr, Unary):
        operator = "not " if expr.op == "not" else "-"
        return operator + _operand(expr.operand, _UNARY)
    assert isinstance(expr, Binary), expr  # the one kind of expression left
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


def format_text(statements: list, text: str) -> str:
    """`text` (whose statements are `statements`) printed canonically, as `print_statements`
    prints it, except that items chained with `->` on one line stay on one line while it fits in
    LINE_LENGTH columns, and a line that starts with `->` keeps its arrow (`CONTINUATION`).
    Its comments are kept: a comment on a line of its own before the statement that follows
    it (a comment inside a block after its last statement moves below the block), one at the
    end of a line after the last statement that starts on that line; and one blank line where
    the text had blank lines between statements. Formatting formatted text changes nothing."""
    lines = text_lines(text)
    own: dict[int, str] = {}  # source line -> comment
    trailing: dict[int, str] = {}
    for number, line in enumerate(lines, 1):
        column = line.find("#")  # '#' means nothing else in the language
        if column >= 0:
            (trailing if line[:column].strip() else own)[number] = line[column:].rstrip()
    printed: list[tuple[int, str, str]] = []  # (source line, indent, text) of each line out

    def emit(stmt, indent: str) -> None:
        start = _start_line(stmt)
        if isinstance(stmt, Block):
            printed.append((start, indent, f"{block_header(stmt)} {{"))
            for inner in stmt.body:
                emit(inner, indent + INDENT)
            printed.append((-1, indent, "}"))
        elif (isinstance(stmt, Item) and printed and printed[-1][0] == start
              and printed[-1][1] == indent and not printed[-1][2].endswith("{")
              and len(indent + printed[-1][2]) + 4 + len(_item(stmt)) <= LINE_LENGTH):
            # A chain written on one line stays on one line while it fits.
            printed[-1] = (start, indent, printed[-1][2] + " -> " + _item(stmt))
        elif isinstance(stmt, Item) and lines[start - 1].lstrip().startswith("->"):
            # A chain continued on a line of its own keeps its arrow in front.
            printed.append((start, indent, CONTINUATION + _item(stmt)))
        else:
            printed.append((start, indent, _statement(stmt, {})[0]))

    for stmt in statements:
        emit(stmt, "")
    # Trailing comments: on the last line out that starts at or before the comment's line.
    suffix: dict[int, list[str]] = {}
    for number, comment in trailing.items():
        index = max((i for i, (start, _, _) in enumerate(printed) if 0 < start <= number),
                    default=None)
        if index is None:
            own[number] = comment
        else:
            suffix.setdefault(index, []).append(comment)
    out: list[str] = []
    pending = sorted(own.items())
    last_source = 0
    for index, (start, indent, line) in enumerate(printed):
        if start > 0:
            while pending and pending[0][0] < start:
                number, comment = pending.pop(0)
                _blank_before(out, lines, number, last_source)
                out.append(indent + comment)
                last_source = number
            _blank_before(out, lines, start, last_source)
            last_source = max(last_source, start)
        out.append(indent + line + "".join("  " + c for c in suffix.get(index, [])))
    for number, comment in pending:
        _blank_before(out, lines, number, last_source)
        out.append(comment)
        last_source = number
    return "\n".join(out) + "\n"


def _start_line(stmt) -> int:
    if isinstance(stmt, Item):
        return (stmt.label_pos or stmt.call.pos)[0]
    return stmt.pos[0]


def _blank_before(out: list[str], lines: list[str], number: int, after: int) -> None:
    """One blank line before source line `number` where the source has one just before it
    (and something was printed already)."""
    if out and out[-1] and number - 2 >= after and not lines[number - 2].strip():
        out.append("")
