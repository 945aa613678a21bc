"""Navigation by what each written name refers to (the binder's scoping, `language.names`): go
to definition (into the prelude or primitives.py for what is built in), references, rename and
the document's symbols (blocks with their contents)."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from ..errors import NetdslError, text_lines
from ..language.choices import SPACES
from ..language.expand import prelude
from ..language.names import TOP, Occurrence, Symbol, declared_here, occurrences
from ..language.places import WORD, block_extent, expression_end, item_end
from ..language.syntax import PRELUDE, Block, keywords
from .analysis import Analysis, analyse, items_of, names_in, occurrence_at, written


def references(analysis: Analysis, symbol: Symbol) -> list[Occurrence]:
    """Where the text names `symbol`, its declaration included."""
    return [o for o in names_in(analysis) if o.symbol == symbol]


def declaration(analysis: Analysis, symbol: Symbol) -> Occurrence | None:
    """Where the text declares `symbol`; None when it does not (a primitive, the prelude's)."""
    return next((o for o in references(analysis, symbol) if o.declares), None)


@dataclass(frozen=True)
class Outlined:
    """An entry of a text's outline: what it declares, over its whole statement."""

    name: str
    kind: str                # "param", "block", "formal" or "label"
    start: tuple[int, int]   # 0-based (line, character)s
    end: tuple[int, int]
    name_start: tuple[int, int]
    children: tuple[Outlined, ...] = ()  # a block's parameters and labels


def outline(analysis: Analysis) -> list[Outlined]:
    """What the text declares, in its order: parameters, blocks (from `block` to `}`, with
    their parameters and the labels of their bodies inside) and the labels (a stage's name
    too) of its top level; a label over its item's call and repeat."""
    lines = text_lines(analysis.text)
    statements = written(analysis)
    items = {item.label_pos or item.call.pos: item for item in items_of(statements)}
    blocks = {s.name: s for s in statements if isinstance(s, Block)}
    declared = [o for o in names_in(analysis) if o.declares]

    def entry(o: Occurrence) -> Outlined:
        name, kind = o.symbol.name, o.symbol.kind
        at = (o.line - 1, o.column - 1)
        start, end = at, (at[0], at[1] + len(name))
        children: tuple[Outlined, ...] = ()
        if kind == "param":
            start = (at[0], lines[at[0]].rfind("param", 0, at[1]))
            end = expression_end(lines, *end)
        elif kind == "block" and name in blocks:
            start, end = block_extent(lines, blocks[name])
            children = tuple(entry(c) for c in declared if c.symbol.scope == name)
        elif kind == "label" and (o.line, o.column) in items:
            end = item_end(lines, items[(o.line, o.column)])
        return Outlined(name, kind, start, end, at, children)

    return [entry(o) for o in declared if o.symbol.scope == TOP]


def builtin_declaration(symbol: Symbol) -> tuple[str, str, int, int] | None:
    """Where a symbol built into netdsl is declared, as (file, its text, 0-based line,
    character): a block of the prelude, or its label or parameter, in the installed prelude
    file; a primitive, at its record in netdsl/graph/primitives.py. None for any other."""
    if symbol.kind == "primitive":
        path, text = _primitive_records()
        record = f'Primitive("{symbol.name}"'
        return next(((path, text, row, line.index(record) + len('Primitive("'))
                     for row, line in enumerate(text_lines(text)) if record in line), None)
    declared = _prelude_declarations().get(symbol)
    if declared is None:
        return None
    prelude_file = resources.files("netdsl.grammars").joinpath(PRELUDE)
    return (str(prelude_file), prelude()["stage"].source.text, declared.line - 1,
            declared.column - 1)


@functools.lru_cache(maxsize=None)
def _prelude_declarations() -> dict[Symbol, Occurrence]:
    """Where the prelude declares each of its blocks, labels and block parameters."""
    blocks = prelude()
    return {o.symbol: o for o in occurrences(list(blocks.values()), blocks) if o.declares}


@functools.lru_cache(maxsize=None)
def _primitive_records() -> tuple[str, str]:
    """netdsl/graph/primitives.py, installed: its path and text."""
    from ..graph import primitives

    with open(primitives.__file__, encoding="utf-8") as f:
        return primitives.__file__, f.read()


def rename_target(analysis: Analysis, line: int, character: int) -> Occurrence:
    """The name at 0-based `line`, `character`, if the text may rename it; NetdslError saying
    why not otherwise."""
    occurrence = occurrence_at(analysis, line, character)
    if occurrence is None:
        raise NetdslError("no parameter, block or label here to rename")
    symbol = occurrence.symbol
    if not declared_here(symbol):
        what = ("a primitive" if symbol.kind == "primitive"
                else "built into netdsl (grammars/prelude.net)")
        raise NetdslError(f"'{symbol.name}' is {what}; it cannot be renamed in this file")
    return occurrence


def renamed(analysis: Analysis, target: Occurrence, new_name: str) -> list[Occurrence]:
    """The occurrences to rewrite to rename `target`'s symbol to `new_name`, once it is clear
    that the renamed text means the same: every other name still refers to what it did, and a
    text without errors has none after. NetdslError saying why not otherwise."""
    symbol = target.symbol
    if not re.fullmatch(WORD, new_name) or new_name in keywords():
        raise NetdslError(f"'{new_name}' is not a name (a letter or _, then letters, digits, _; "
                          "not a keyword)")
    places = references(analysis, symbol)
    if new_name == symbol.name:
        return []
    called = next((o for o in places if o.called), None)
    if new_name in SPACES and called is not None:
        raise NetdslError(f"'{new_name}' is the language's own call: {new_name}(...) writes a "
                          f"choice, so '{symbol.name}', called at line {called.line}, cannot "
                          "take its name")
    text = renamed_text(analysis.text, places, symbol.name, new_name)
    after = analyse(text, analysis.name)
    if not analysis.errors and after.errors:
        raise NetdslError(f"renaming '{symbol.name}' to '{new_name}' would break the file: "
                          f"{after.errors[0].message}")
    expected = _renamed_names(names_in(analysis), places, symbol, new_name)
    if names_in(after) != expected:
        raise NetdslError(f"'{new_name}' is taken: renaming '{symbol.name}' to it would change "
                          "what another name refers to")
    return places


def renamed_text(text: str, places: list[Occurrence], old: str, new: str) -> str:
    """`text` with the name `old` at each of `places` written `new` (its lines ended by \n)."""
    lines = text_lines(text)
    for place in sorted(places, key=lambda o: (o.line, -o.column)):  # right to left in a line
        row, at = place.line - 1, place.column - 1
        lines[row] = lines[row][:at] + new + lines[row][at + len(old):]
    return "\n".join(lines)


def _renamed_names(names: list[Occurrence], places: list[Occurrence], symbol: Symbol,
                   new_name: str) -> list[Occurrence]:
    """`names` as they are after renaming `symbol` at `places`: moved along their lines, and
    the symbol (and, for a block, what its body declares) renamed."""
    shift = len(new_name) - len(symbol.name)

    def moved(o: Occurrence) -> Occurrence:
        before = sum(1 for p in places if p.line == o.line and p.column < o.column)
        name = new_name if o.symbol == symbol else o.symbol.name
        scope = new_name if symbol.kind == "block" and o.symbol.scope == symbol.name \
            else o.symbol.scope
        return Occurrence(Symbol(o.symbol.kind, name, scope), o.line,
                          o.column + shift * before, o.declares, o.called)

    return [moved(o) for o in names]
