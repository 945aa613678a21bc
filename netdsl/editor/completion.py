"""Completion: primitives, blocks, parameters, a block's own in its body; keyword arguments;
after `<-` the paths that resolve there (in a text that does not bind, those of the text less
the item being typed)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import NetdslError, text_lines
from ..graph import INPUT, PRIMITIVES, REQUIRED, SEP, format_shape
from ..graph.nested import normpath
from ..language import Family
from ..language.choices import SPACES
from ..language.expand import prelude
from ..language.places import enclosing_block
from ..language.printer import expression
from .analysis import Analysis, analyse
from .hover import signature


@dataclass(frozen=True)
class Completion:
    """Something that may be written at a place."""

    label: str
    kind: str    # "path", "keyword", "primitive", "block", "param" or "formal"
    detail: str
    start: int | None = None  # a path's: the column where what it replaces (typed) starts


# Where a new name is being written: nothing to offer.
DECLARING = re.compile(r"\b(param|block)\s+[A-Za-z0-9_]*$")


# What a space after which a name goes follows: an arrow, a separator, an operator, a keyword.
NAME_NEXT = re.compile(r"(->|<-|[,(:=*/+-]|\bif|\bnot)\s*$")


def completions(analysis: Analysis, line: int, character: int, last: Analysis | None = None,
                trigger: str | None = None) -> list[Completion]:
    """What may be written at 0-based `line`, `character`, from this text or, while it does
    not bind, from `last` (the last version that did): after `<-`, the paths from the group
    read there (while the text does not bind, the paths of the text less the item being
    typed, when that binds); inside a call's parentheses, its keyword arguments and the
    values; elsewhere, primitives and blocks with their signatures and the values: the
    parameters and, in a block's body, the block's own. Nothing in a comment or where a name
    is being declared, and when typing `trigger` (a character) asked, nothing unless a name
    goes there."""
    lines = text_lines(analysis.text)
    before = lines[line][:character] if 0 <= line < len(lines) else ""
    if "#" in before or DECLARING.search(before) or not _name_goes(before, trigger):
        return []
    known = analysis if analysis.bound is not None or last is None else last
    family = analysis.family or known.family
    block = enclosing_block(lines, line, character)
    if before.rfind("<-") > before.rfind("->"):
        if analysis.bound is None:
            known = _less_item(analysis, lines, line, character) or known
        return _paths(known, before, block[0] if block is not None else None)
    owner, formals = block if block is not None else ("", [])
    values = [Completion(name, "formal", f"parameter of block {owner}"
                         + (f", default {default}" if default else ""))
              for name, default in formals]
    hidden = {name for name, _ in formals}  # in its body a block's parameter hides the file's
    values += [Completion(name, "param", f"= {parameter.default}")
               for name, parameter in (family.parameters.items() if family else ())
               if name not in hidden]
    keywords_ = _keyword_arguments(family, _open_call(before))
    if keywords_ is not None:
        return [Completion(f"{name}=", "keyword", default) for name, default in keywords_] + values
    blocks = family.blocks if family is not None else prelude()
    # `or ""`: a primitive's and a block's signature is never None
    return ([Completion(name, "primitive", signature(family, name) or "")
             for name in sorted(PRIMITIVES)]
            + [Completion(name, "block", signature(family, name) or "") for name in sorted(blocks)]
            + values)


def _name_goes(before: str, trigger: str | None) -> bool:
    """Whether a name may be written after `before`, which typing `trigger` ended (None:
    completion was asked otherwise, as by typing a letter)."""
    if trigger == " ":
        return NAME_NEXT.search(before) is not None
    if trigger == "-":  # `<-`; a lone `-` is the start of `->`
        return before.endswith("<-")
    return True


def _less_item(analysis: Analysis, lines: list[str], line: int, character: int
               ) -> Analysis | None:
    """The text without the item whose inputs are being typed at `line`, `character` (from
    the `->` or `{` before it, or the line's start, to the `->`, `}` or comment after it, or
    the line's end; with one arrow beside it, so the chain stays one), analysed without its
    choices; None when that does not bind either. A path typed half way (`<- layer1/re`)
    resolves nowhere, so a text that never bound has only the paths of the rest of it."""
    text = lines[line]
    start = max(text.rfind("->", 0, character), text.rfind("{", 0, character))
    ends = [at for at in (text.find(mark, character) for mark in ("->", "}", "#")) if at >= 0]
    end = min(ends, default=len(text))
    arrow_before = text.startswith("->", start)
    begin = start if arrow_before else start + 1  # -1, no mark before it: the line's start
    if not arrow_before and text.startswith("->", end):
        end += len("->")
    cut = lines[:line] + [text[:begin] + text[end:]] + lines[line + 1:]
    less = analyse("\n".join(cut), analysis.name, choices=False)
    return less if less.bound is not None else None


def _paths(analysis: Analysis, before: str, block: str | None) -> list[Completion]:
    """The paths that may follow `<-` where `before` ends, with the one typed so far: from the
    group that `block`'s body ran in first (None: the top level), each node and group under
    the folder typed (`layer1/`), and `..` where there is a group above; each replaces what
    is typed."""
    if analysis.bound is None or analysis.made is None:
        return []
    groups = [""] if block is None else analysis.made.bodies.get(block, [])
    if not groups:  # the block is not called
        return []
    typed = re.split(r"[^A-Za-z0-9_./]", before)[-1]  # the path typed so far, maybe none
    start, folder = len(before) - len(typed), typed[:typed.rfind(SEP) + 1]
    try:
        base = normpath(SEP.join(part for part in (groups[0], folder.rstrip(SEP)) if part))
    except NetdslError:  # the folder typed climbs above the network
        return []
    prefix, graph = base + SEP if base else "", analysis.bound.graph
    found: dict[str, str] = {}
    for path in graph:
        if path != INPUT and path.startswith(prefix):
            parts = path[len(prefix):].split(SEP)
            for depth in range(1, len(parts)):  # the groups on the way
                found.setdefault(SEP.join(parts[:depth]), "group")
            op = graph[path][0]
            found[path[len(prefix):]] = f"{op.type} -> {format_shape(analysis.bound.shapes[path])}"
    out = [Completion(folder + path, "path", detail, start) for path, detail in found.items()]
    if base:
        out.append(Completion(folder + "..", "path", "the group above", start))
    return out


def _keyword_arguments(family: Family | None, callee: str | None
                       ) -> list[tuple[str, str]] | None:
    """(name, "default ..." or "") of each argument `callee` takes: a primitive's, a block's,
    a stage's (any other name); None outside a call."""
    if callee is None or callee in SPACES:
        return None
    if callee in PRIMITIVES:
        return [(name, "" if default is REQUIRED else f"default {default!r}")
                for name, default in PRIMITIVES[callee].params]
    blocks = family.blocks if family is not None else prelude()
    block = blocks.get(callee, blocks["stage"])
    return [(f.name, "" if f.default is None else f"default {expression(f.default)}")
            for f in block.formals]


def _open_call(before: str) -> str | None:
    """The name of the call whose parenthesis is open at the end of `before`, or None."""
    depth = 0
    for at in range(len(before) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(before[at], 0)
        if depth < 0:
            name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", before[:at])
            return name.group(1) if name else None
    return None
