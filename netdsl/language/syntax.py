"""DSL text -> a small syntax tree, with lark.

`parse_statements` gives the statements of a text as plain records: `Param`, `Block` and `Item`
(a call with its label, repeat, condition and inputs), expressions as `Const`, `Name`, `Unary`
and `Binary`. Each keeps its (line, column) for error messages. The printer
(`printer.py`) writes the same records back as text; the expander (`expand.py`) evaluates them.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import cast

import lark

from ..errors import Location, NetdslError, text_lines
from ..graph import REQUIRED

PRELUDE = "prelude.net"  # the built-in blocks, written in the DSL (grammars/prelude.net)
MAX_TEXT = 1_000_000     # characters: a network past this is a mistake, refused before parsing
MAX_NUMBER = 2 ** 62     # the largest number the language computes with
LONE_CR = re.compile(r"\r(?!\n)")


@dataclass(frozen=True)
class Source:
    """A text and where it came from (a file's path, `<-e>`, `<string>`), for locations."""

    name: str
    text: str

    def at(self, pos: tuple[int, int]) -> Location:
        return Location(self.name, self.text, pos[0], pos[1])


# ---- syntax -------------------------------------------------------------------------------------

class Expr:
    __slots__ = ("pos",)
    pos: tuple[int, int]  # (line, column)


class Const(Expr):
    __slots__ = ("value",)

    def __init__(self, value, pos):
        self.value, self.pos = value, pos


class Name(Expr):
    __slots__ = ("name",)

    def __init__(self, name, pos):
        self.name, self.pos = name, pos


class Unary(Expr):
    __slots__ = ("op", "operand")

    def __init__(self, op, operand, pos):
        self.op, self.operand, self.pos = op, operand, pos


class Binary(Expr):
    __slots__ = ("op", "left", "right")

    def __init__(self, op, left, right):
        self.op, self.left, self.right, self.pos = op, left, right, left.pos


@dataclass
class Arg:
    name: str | None  # None: positional
    expr: Expr
    pos: tuple[int, int]


@dataclass
class Call:
    name: str
    args: list[Arg]
    pos: tuple[int, int]


class CallValue(Expr):
    """A call written where a value goes: an option of a choice (`conv_bn(c, ks=5)`), or the
    space a parameter is drawn from (`choice(32, 64)`, `range(16, 128, step=16)`)."""

    __slots__ = ("call",)

    def __init__(self, call: Call):
        self.call, self.pos = call, call.pos


@dataclass
class InputChoice:
    """`<- choice(a, b, c, k=2)`: the node reads `k` (1 unless given) of the paths."""
    refs: list[str]
    k: Expr | None
    pos: tuple[int, int]


@dataclass
class Item:
    label: str | None
    label_pos: tuple[int, int] | None
    call: Call
    repeat: Expr | None
    condition: Expr | None
    inputs: list[str] | InputChoice | None
    inputs_pos: tuple[int, int] | None
    # (line, column) of each path written after `<-`, in order: where an editor renames a label
    ref_positions: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Param:
    name: str
    expr: Expr
    pos: tuple[int, int]


@dataclass
class Formal:
    name: str
    default: Expr | None
    pos: tuple[int, int]


@dataclass
class Block:
    name: str
    formals: list[Formal]
    body: list
    pos: tuple[int, int]
    source: Source = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self):
        self.params = tuple((f.name, REQUIRED if f.default is None else f.default)
                            for f in self.formals)
        self.constant_defaults = {f.name: f.default.value for f in self.formals
                                  if isinstance(f.default, Const)}
        self.switches = frozenset(name for name, value in self.constant_defaults.items()
                                  if isinstance(value, bool))
        # Defaults that are expressions of the file's parameters: evaluated at each binding.
        self.computed_defaults = [f for f in self.formals if f.default is not None
                                  and f.name not in self.constant_defaults]


class _NumberTooLarge(Exception):
    """A number literal past MAX_NUMBER, at (line, column)."""

    def __init__(self, pos: tuple[int, int]):
        self.pos = pos


class _Misplaced(Exception):
    """Text the grammar takes but the language does not, at (line, column)."""

    def __init__(self, message: str, pos: tuple[int, int]):
        self.message, self.pos = message, pos


def _pos(token) -> tuple[int, int]:
    return (token.line, token.column)


class _Syntax(lark.Transformer):
    """Builds the syntax tree while lark parses (LALR with an inline transformer)."""

    def start(self, children):
        return [c for c in children if c is not None]

    def param_def(self, c):
        return Param(str(c[1]), c[2], _pos(c[1]))

    def block_def(self, c):
        formals = [x for x in c[2:] if isinstance(x, Formal)]
        body = [x for x in c[2:] if x is not None and not isinstance(x, Formal)]
        return Block(str(c[1]), formals, body, _pos(c[1]))

    def formal(self, c):
        return Formal(str(c[0]), c[1], _pos(c[0]))

    def item(self, c):
        label, call, repeat, condition, inputs = c
        refs, where, ref_positions = (None, None, []) if inputs is None else inputs
        return Item(None if label is None else str(label), None if label is None else _pos(label),
                     call, repeat, condition, refs, where, ref_positions)

    def call(self, c):
        return Call(str(c[0]), [a for a in c[1:] if a is not None], _pos(c[0]))

    def positional(self, c):
        return Arg(None, c[0], c[0].pos)

    def call_value(self, c):
        return CallValue(Call(str(c[0]), [a for a in c[1:] if a is not None], _pos(c[0])))

    def keyword(self, c):
        return Arg(str(c[0]), c[1], _pos(c[0]))

    def repeat(self, c):
        return c[0]

    def condition(self, c):
        return c[1]

    def inputs(self, c):
        return [str(t) for t in c[1:]], _pos(c[0]), [_pos(t) for t in c[1:]]

    def input_choice(self, c):
        name, refs, k = c[1], [t for t in c[2:] if isinstance(t, lark.Token)], None
        if str(name) != "choice":
            raise _Misplaced(f"'<- {name}(...)': the only call after '<-' is choice(...)",
                             _pos(name))
        if refs and isinstance(c[-1], Expr):  # `k=...`: its name is the last path read
            keyword, k = refs.pop(), c[-1]
            if str(keyword) != "k":
                raise _Misplaced(f"choice of inputs takes k=..., not {keyword}=...",
                                 _pos(keyword))
        return (InputChoice([str(t) for t in refs], k, _pos(name)), _pos(c[0]),
                [_pos(t) for t in refs])

    def number(self, c):
        text = str(c[0])
        # Past 2**62 arithmetic on ints gets slow and floats inexact; past 4,300 digits Python
        # refuses to convert the text at all.
        if text.isdigit() and len(text) > 19 or not abs(float(text)) <= MAX_NUMBER:
            raise _NumberTooLarge(_pos(c[0]))
        value = int(text) if text.isdigit() else float(text)
        return Const(value, _pos(c[0]))

    def true(self, c):
        return Const(True, _pos(c[0]))

    def false(self, c):
        return Const(False, _pos(c[0]))

    def name(self, c):
        return Name(str(c[0]), _pos(c[0]))

    def neg(self, c):
        return Unary("-", c[0], c[0].pos)

    def not_(self, c):
        return Unary("not", c[1], _pos(c[0]))

    def add(self, c):
        return Binary("+", *c)

    def sub(self, c):
        return Binary("-", *c)

    def mul(self, c):
        return Binary("*", *c)

    def div(self, c):
        return Binary("/", *c)

    def floordiv(self, c):
        return Binary("//", *c)


class _ParenNewlines:
    """Post-lexer: line breaks inside parentheses are not separators."""

    always_accept = ("_NEWLINE",)

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type == "_LPAR":
                depth += 1
            elif token.type == "_RPAR":
                depth = max(depth - 1, 0)
            elif token.type == "_NEWLINE" and depth:
                continue
            yield token


def grammar_file(name: str) -> str:
    return resources.files("netdsl.grammars").joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def _parser() -> lark.Lark:
    return lark.Lark(grammar_file("netdsl.lark"), parser="lalr", lexer="contextual",
                     postlex=_ParenNewlines(), transformer=_Syntax(), maybe_placeholders=True)


@functools.lru_cache(maxsize=None)
def keywords() -> frozenset[str]:
    """The words the grammar keeps for itself (param, block, if, not, true, false): no name."""
    return frozenset(t.pattern.value for t in _parser().terminals
                     if t.pattern.type == "str" and t.pattern.value.isidentifier())


_PLAIN_TERMINALS = {"NAME": "a name", "NUMBER": "a number", "REF": "a node path",
                    "_NEWLINE": "a line break", "$END": "the end of the text"}


def _describe_terminal(name: str) -> str:
    if name in _PLAIN_TERMINALS:
        return _PLAIN_TERMINALS[name]
    pattern = _parser().get_terminal(name).pattern
    return f"'{pattern.value}'"


def parse_statements(source: Source) -> list:
    """The statements of `source`: Param, Block and Item records. Raises NetdslError at the
    line and column of a syntax error."""
    if len(source.text) > MAX_TEXT:
        raise NetdslError(f"{source.name}: the text has {len(source.text):,} characters; a "
                          f"network is at most {MAX_TEXT:,}")
    try:
        # A lone \r ends a line for an editor; the grammar's line break is \n or \r\n, and
        # lark counts lines at \n. Made \n, it ends the same line for both, and every offset,
        # line and column stays the text's.
        # The inline transformer makes the tree as lark parses: the result is start()'s list,
        # not the lark.Tree that parse() is typed to return.
        return cast(list, _parser().parse(LONE_CR.sub("\n", source.text)))
    except _NumberTooLarge as e:
        raise NetdslError("number too large", source.at(e.pos)) from None
    except _Misplaced as e:
        raise NetdslError(e.message, source.at(e.pos)) from None
    except lark.UnexpectedCharacters as e:
        at = e.pos_in_stream  # an offset into the text; lark types it optional
        char = source.text[at] if at is not None and at < len(source.text) else ""
        raise NetdslError(f"unexpected character {char!r}", source.at((e.line, e.column))) from None
    except lark.UnexpectedToken as e:
        token = e.token
        if token.type == "$END":
            found = "the end of the text"
        elif token.type == "_NEWLINE":
            found = "a line break"
        else:
            found = f"'{token}'"
        names = set(e.expected)
        if "_RPAR" in names:  # inside parentheses, where line breaks are dropped
            names.discard("_NEWLINE")
        expected = sorted({_describe_terminal(t) for t in names})
        hint = ", ".join(expected) if len(expected) <= 8 else ", ".join(expected[:8]) + ", ..."
        line, column = _end(source) if token.type == "$END" else (token.line, token.column)
        message = f"unexpected {found}" if found.startswith("'") else f"{found} came too early"
        raise NetdslError(f"{message}; expected {hint}", source.at((line, column))) from None
    except lark.UnexpectedInput as e:  # pragma: no cover -- other lark errors carry a position
        raise NetdslError("cannot parse this text", source.at((e.line, e.column))) from None


def _end(source: Source) -> tuple[int, int]:
    """Just after the last character that is not white space."""
    lines = text_lines(source.text.rstrip())
    return (len(lines), len(lines[-1]) + 1)
