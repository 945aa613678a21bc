"""Where things are written in a text and what each written call made: what an editor shows at
a place (hover, inlay hints, the outline, completion of paths) without binding again.

`made` reads the frames a binding records (`Family.frames`: each node's chain of calls) against
the syntax tree. Each call written in the text gets the nodes it made, one `Run` for each time
it ran (a block's body runs once per call of the block, a repeated item once per count); each
block gets the groups its body ran in, which the paths written there (`<- res2/relu`) are
relative to. The other functions find where a call, an item or a block ends and which block's
body a place is in, from the text alone where they can, so that a text being typed has them.
Lines are 0-based and columns count characters, unless a name says 1-based.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..graph import SEP
from .syntax import Block, CallValue, Item, Name

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A block's header and its `{`, in text without comments: the block's name and formals.
HEADER = re.compile(r"\bblock\s+([A-Za-z_][A-Za-z0-9_]*)\s*\((.*?)\)\s*\{", re.DOTALL)
# What ends an expression written after an item's call (`* N`): the next arrow, condition,
# comment or line break outside parentheses.
EXPRESSION_END = re.compile(r"->|<-|#|\bif\b")


@dataclass(frozen=True)
class Run:
    """What one run of a written call made."""

    group: str              # the group it ran in, which its paths are relative to ("": top)
    name: str               # its node, the group its label made, or else its last node
    paths: tuple[str, ...]  # its nodes, in execution order


@dataclass(frozen=True)
class Made:
    """What one binding made, by where it is written in its family's text."""

    calls: dict[tuple[int, int], list[Run]]  # a call's 1-based (line, column) -> its runs
    bodies: dict[str, list[str]]  # a block's name -> the group each run of its body was in


def made(bound) -> Made:
    """Each call written in the text of `bound`'s family, with what each of its runs made (a
    prelude block's calls are their callers' runs); each block, with its bodies' groups."""
    family = bound.family
    items = {(id(source), item.call.pos): item for source, item in _items(family)}
    runs: dict[tuple[int, int], dict[tuple[str, str | None], list[str]]] = {}
    bodies: dict[str, dict[str, None]] = {}
    for path, frame in family.frames({**bound.values, **bound.choices}).items():
        parts = path.split(SEP)
        depth = 0  # how many parts of `path` the calls so far have named
        for level, (source, pos, callee) in enumerate(frame):
            group, own = SEP.join(parts[:depth]), path
            if level < len(frame) - 1:  # a block's call
                item = items.get((id(source), pos))
                own = None
                if item is None or item.label is not None or (  # no item: a choice's option
                        callee == "stage" and item.call.name != "stage"):  # a stage's name
                    depth += 1
                    own = SEP.join(parts[:depth])
                bodies.setdefault(callee, {})[SEP.join(parts[:depth])] = None
            if source is family.source:
                runs.setdefault(pos, {}).setdefault((group, own), []).append(path)
    order = {path: i for i, path in enumerate(bound.graph)}
    calls: dict[tuple[int, int], list[Run]] = {}
    for pos, by_run in runs.items():
        calls[pos] = []
        for (group, own), paths in by_run.items():
            paths.sort(key=order.__getitem__)
            calls[pos].append(Run(group, own or paths[-1], tuple(paths)))
    return Made(calls, {name: list(groups) for name, groups in bodies.items()})


def _items(family) -> list[tuple[object, Item]]:
    """Each item of the family's text and of the blocks it sees, with the text it is in."""
    out = [(family.source, s) for s in family.statements if isinstance(s, Item)]
    for block in family.blocks.values():
        out += [(block.source, s) for s in block.body if isinstance(s, Item)]
    return out


def call_positions(item: Item) -> list[tuple[int, int]]:
    """Where the calls an item may make are written, 1-based: its call's, and each option's
    of an item's choice (`mix: choice(conv_bn(c), identity)`)."""
    if item.call.name != "choice":
        return [item.call.pos]
    return [item.call.pos] + [arg.expr.pos for arg in item.call.args if arg.name is None
                              and isinstance(arg.expr, (CallValue, Name))]


def call_end(lines: list[str], line: int, column: int) -> tuple[int, int]:
    """The place just after the call whose name starts at 1-based `line`, `column`: after its
    name, or after the parenthesis that closes its arguments (which may span lines; a `#`
    comment inside is skipped)."""
    row, at = line - 1, column - 1
    name = WORD.match(lines[row], at)
    at = name.end() if name else at
    rest = lines[row][at:]
    if not rest.lstrip().startswith("("):
        return row, at
    return _closed(lines, row, at + len(rest) - len(rest.lstrip()))


def _closed(lines: list[str], row: int, at: int) -> tuple[int, int]:
    """Just after the parenthesis that closes the one at `row`, `at` (the end of the text if
    none does); a `#` comment inside is skipped."""
    depth = 0
    while row < len(lines):
        text_line = lines[row]
        while at < len(text_line):
            char = text_line[at]
            if char == "#":
                break
            depth += {"(": 1, ")": -1}.get(char, 0)
            at += 1
            if depth == 0:
                return row, at
        row, at = row + 1, 0
    return len(lines) - 1, len(lines[-1])


def item_end(lines: list[str], item: Item) -> tuple[int, int]:
    """The place just after an item's call and its repeat (`cell(C) * N`), before what follows
    it: a condition, its inputs, an arrow or a comment."""
    row, at = call_end(lines, *item.call.pos)
    if item.repeat is None:
        return row, at
    star = lines[row].index("*", at) + 1
    return expression_end(lines, row, star)


def expression_end(lines: list[str], row: int, at: int) -> tuple[int, int]:
    """Just after the expression that starts at `row`, `at`: it ends at EXPRESSION_END or the
    end of its line, outside parentheses (which may span lines)."""
    end = (row, at)
    while at < len(lines[row]):
        if lines[row][at] == "(":
            row, at = _closed(lines, row, at)
            end = (row, at)
            continue
        stop = EXPRESSION_END.match(lines[row], at)
        if stop or lines[row][at] == ")":
            break
        at += 1
        if not lines[row][at - 1].isspace():
            end = (row, at)
    return end


def block_extent(lines: list[str], block: Block) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where a block's definition starts (its `block`) and ends (just after its `}`)."""
    row, column = block.pos[0] - 1, block.pos[1] - 1
    start = (row, lines[row].rfind("block", 0, column))
    depth, at = 0, lines[row].index("(", column)
    while row < len(lines):
        code = lines[row].split("#")[0]
        while at < len(code):
            if code[at] in "{}":
                depth += 1 if code[at] == "{" else -1
                if depth == 0:
                    return start, (row, at + 1)
            at += 1
        row, at = row + 1, 0
    return start, (len(lines) - 1, len(lines[-1]))


def enclosing_block(lines: list[str], line: int, character: int
                    ) -> tuple[str, list[tuple[str, str | None]]] | None:
    """The block whose body the place is in, by the text alone (it need not parse): its name
    and its formals, each with its default as written (None: none); None at the top level."""
    before = [text.split("#")[0] for text in lines[:line]]
    if 0 <= line < len(lines):
        before.append(lines[line][:character].split("#")[0])
    code = "\n".join(before)
    header = None
    for header in HEADER.finditer(code):
        pass
    if header is None:
        return None
    body = code[header.end():]
    if body.count("}") >= body.count("{") + 1:  # its `}` is written before the place
        return None
    formals = []
    for written in filter(str.strip, header.group(2).split(",")):
        name, _, default = written.partition("=")
        formals.append((name.strip(), default.strip() or None))
    return header.group(1), formals
