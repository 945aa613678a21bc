"""`netdsl lsp`, a language server for .net files over stdio: what it answers from a document's
text. The server itself (pygls's, the `[lsp]` extra), which turns each request into a question
for these functions, is `lsp_server.py`, with the command.

Each change of a document is analysed as `netdsl check` would: parsed, bound at its defaults
(a `--set` value the file needs comes from its family's defaults) and every option of every
choice checked, the last after the rest is published (it takes many times as long). The server
publishes the error there is as a diagnostic at its location, with check's message; it answers
by what each written name refers to (the binder's scoping, `language.names`) and what each
written call made (`language.places`): hover (the nodes a label or call made, run by run; a
primitive's, block's, block parameter's or parameter's signature or value), inlay hints (each
top-level item's output shape at its end), a code lens (how many networks a file with choices
describes), completion (primitives, blocks, parameters, a block's own in its body; keyword
arguments; after `<-` the paths that resolve there, in a text that does not bind those of the
text less the item being typed), go to definition (into the prelude or primitives.py for
what is built in), references and rename, document symbols (blocks with their contents) and
formatting (`netdsl fmt`, comments kept). While a text has an error, its hints and lens are
those of the last text that had none. Analysing never raises: any text gets an answer.
"""
from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Callable, Iterator

from .errors import LINE_BREAK, NetdslError, text_lines
from .graph import INPUT, PRIMITIVES, REQUIRED, SEP, format_shape
from .graph.nested import normpath
from .language import Bound, Family
from .language.choices import SPACES, ChoiceSpace
from .language.expand import prelude
from .language.names import (TOP, Occurrence, Symbol, declared_here, misread_stages,
                             occurrences)
from .language.places import (WORD, Made, block_extent, call_positions, enclosing_block,
                              expression_end, item_end, made)
from .language.printer import expression
from .language.syntax import (PRELUDE, Block, InputChoice, Item, Source, keywords,
                              parse_statements)


@dataclass
class Analysis:
    """What the server knows of one version of a document."""

    text: str
    name: str = "<string>"
    family: Family | None = None
    bound: Bound | None = None
    made: Made | None = None    # what each call written in the text made, once it binds
    space: ChoiceSpace | None = None  # the family's choices, when it has any and they are checked
    choices_checked: bool = True  # False until `check_choices` runs, for a text with choices
    errors: list[NetdslError] = field(default_factory=list)
    statements: list | None = None  # see `written`, parsed when first asked for
    names: list[Occurrence] | None = None  # see `names_in`, made when first asked for


def analyse(text: str, name: str, choices: bool = True) -> Analysis:
    """`text` parsed and bound at its defaults and, with `choices`, every option of every
    choice checked, as `netdsl check` does; the first error, if any, in `errors`. The server
    checks the choices apart (`check_choices`), after the rest is shown: a file's options may
    take many times as long as binding it once (models/nb201.net's 30)."""
    analysis = Analysis(text, name)
    with _recorded(analysis):
        analysis.family = Family(text, name)
        analysis.bound = analysis.family.bind()
        analysis.made = made(analysis.bound)
        analysis.choices_checked = not analysis.bound.points
    if choices:
        check_choices(analysis)
    return analysis


def check_choices(analysis: Analysis, between: Callable[[], None] | None = None) -> None:
    """Every option of every choice of a text that bound checked (`Family.space`): the space
    they describe, or the first option's error in `errors`. `between`, called before each of
    the bindings, may raise to abandon the check (the analysis stays unchecked)."""
    if not analysis.choices_checked:
        with _recorded(analysis):
            analysis.space = analysis.family.space(between=between)
        analysis.choices_checked = True


@contextlib.contextmanager
def _recorded(analysis: Analysis) -> Iterator[None]:
    """An error of the text recorded in `analysis.errors`: analysing never raises."""
    try:
        yield
    except NetdslError as e:
        analysis.errors.append(e)
    except RecursionError:  # nesting past what the parser guards: an error, not a crash
        analysis.errors.append(NetdslError("the text nests too deeply to read"))


def hover_at(analysis: Analysis, line: int, character: int) -> str | None:
    """What hovering at 0-based `line`, `character` shows, a line for each thing, by what the
    name there refers to (`language.names`): over a path after `<-`, the node or group that
    part of it reaches from where the path is read; over a label or a call, what the call
    made; over a parameter, its value and options; over a block's parameter, its block; over a
    block or a primitive, its signature and what it is. A call in a block's body runs once per
    call of the block: its runs alike share a line, those that differ have one each."""
    reached = _path_reached(analysis, line, character)
    if reached is not None:
        return "\n".join(made_lines(analysis.bound, reached)) or None
    occurrence = occurrence_at(analysis, line, character)
    if occurrence is None:
        return None
    symbol, family = occurrence.symbol, analysis.family
    lines = []
    if symbol.kind == "param":
        lines.append(_parameter_line(analysis, symbol.name))
    elif symbol.kind == "formal":
        lines.append(_formal_line(family, symbol))
    elif symbol.kind in ("block", "primitive"):
        lines += [signature(family, symbol.name), description(family, symbol.name)]
    if analysis.made is not None:
        lines += made_lines(analysis.bound, _runs_named(analysis, occurrence))
    return "\n".join(line for line in lines if line) or None


def _parameter_line(analysis: Analysis, name: str) -> str:
    """A parameter's default, kind and, for a choice, its options."""
    parameter = analysis.family.parameters.get(name) if analysis.family else None
    if parameter is None:
        return ""
    # the bound network's points: asking the family would bind again, and raise if the text
    # does not bind
    point = analysis.bound.points.get(name) if analysis.bound is not None else None
    options = f"; {point.describe_options()}" if point is not None else ""
    return f"param {name} = {parameter.default} ({parameter.kind}{options})"


def _formal_line(family: Family | None, symbol: Symbol) -> str:
    """What a block's parameter is: a switch or a parameter, of which block."""
    block = (family.blocks if family is not None else prelude()).get(symbol.scope)
    if block is None:
        return ""
    kind = "switch" if symbol.name in block.switches else "parameter"
    return f"{kind} {symbol.name} of {signature(family, block.name)}"


def _items(statements: list) -> list[Item]:
    """The items of a text's statements, at its top level and in its blocks' bodies."""
    return [s for s in statements if isinstance(s, Item)] + [
        s for block in statements if isinstance(block, Block) for s in block.body
        if isinstance(s, Item)]


def _runs_named(analysis: Analysis, occurrence: Occurrence) -> list[tuple[str, list[str]]]:
    """(name, nodes) of each run of the call that `occurrence` names or labels."""
    where = (occurrence.line, occurrence.column)
    positions = [where] if occurrence.called else []
    if occurrence.symbol.kind == "label" and occurrence.declares and not occurrence.called:
        item = next((item for item in _items(written(analysis)) if item.label_pos == where),
                    None)
        positions = call_positions(item) if item is not None else []
    return [(run.name, list(run.paths)) for at in positions
            for run in analysis.made.calls.get(at, ())]


def _path_reached(analysis: Analysis, line: int, character: int
                  ) -> list[tuple[str, list[str]]] | None:
    """Over a path after `<-`: (path, nodes) of the node or group that the path reaches
    through the part at the place (`layer1/residual` over `residual` of
    `layer1/residual/res2`), from each group the item ran in; None elsewhere."""
    if analysis.made is None:
        return None
    for item in _items(written(analysis)):
        refs = item.inputs.refs if isinstance(item.inputs, InputChoice) else item.inputs or []
        for ref, (row, column) in zip(refs, item.ref_positions):
            at = character - (column - 1)
            if row - 1 != line or not 0 <= at <= len(ref):
                continue
            end = ref.find(SEP, at)
            part = ref if end < 0 else ref[:end]
            groups = dict.fromkeys(run.group for where in call_positions(item)
                                   for run in analysis.made.calls.get(where, ()))
            return [found for group in groups
                    if (found := _nodes_under(analysis.bound, group, part)) is not None]
    return None


def _nodes_under(bound: Bound, group: str, path: str) -> tuple[str, list[str]] | None:
    """(absolute path, nodes) of the node or group that `path` names from `group`, or None."""
    try:
        absolute = normpath(SEP.join(part for part in (group, path) if part))
    except NetdslError:  # it climbs above the network
        return None
    paths = [p for p in bound.graph if p == absolute or p.startswith(absolute + SEP)]
    return (absolute, paths) if paths else None


def made_lines(bound: Bound, named: list[tuple[str, list[str]]]) -> list[str]:
    """"node NAME: op -> shape; weights, FLOPs" of each (name, nodes in execution order) of
    `named`, the op and shape its last node's; one line for those alike, naming them all."""
    alike: dict[str, list[str]] = {}
    for name, paths in named:
        op = bound.graph[paths[-1]][0]
        what = (f"{op.type if op is not None else 'input'} -> "
                f"{format_shape(bound.shapes[paths[-1]])}; {costs_of(bound, paths)}")
        alike.setdefault(what, []).append(name)
    return [f"node {_listed(names)}: {what}" for what, names in alike.items()]


def _listed(names: list[str], shown: int = 4) -> str:
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def signature(family: Family | None, name: str) -> str | None:
    """A block's (the file's or the prelude's) or a primitive's signature."""
    blocks = family.blocks if family is not None else prelude()
    if name in blocks:
        formals = ", ".join(f.name if f.default is None else f"{f.name}={expression(f.default)}"
                            for f in blocks[name].formals)
        return f"block {name}({formals})"
    if name in PRIMITIVES:
        arguments = ", ".join(arg if default is REQUIRED else f"{arg}={default!r}"
                              for arg, default in PRIMITIVES[name].params)
        return f"{name}({arguments}): {PRIMITIVES[name].op}"
    return None


def description(family: Family | None, name: str) -> str:
    """What a primitive computes, or what a block is: the comment written just above its
    definition, as one line ("" when there is none)."""
    if name in PRIMITIVES:
        return PRIMITIVES[name].description
    blocks = family.blocks if family is not None else prelude()
    if name not in blocks:
        return ""
    lines = text_lines(blocks[name].source.text)
    row = blocks[name].pos[0] - 2  # the line above `block NAME(...)`, 0-based
    comment: list[str] = []
    while row >= 0 and lines[row].lstrip().startswith("#"):
        comment.insert(0, lines[row].lstrip("# \t"))
        row -= 1
    return " ".join(comment)


def shape_hints(analysis: Analysis) -> list[tuple[int, int, str, tuple[int, int]]]:
    """(0-based line, character, shape, origin) after each top-level item's call and repeat
    (`cell(C) * N`): the output shape of the last node it made; origin is its call's 1-based
    (line, column)."""
    if analysis.made is None:
        return []
    lines = text_lines(analysis.text)
    hints = []
    for item in analysis.family.statements:
        paths = _item_nodes(analysis, item) if isinstance(item, Item) else []
        if paths:
            hints.append((*item_end(lines, item), format_shape(analysis.bound.shapes[paths[-1]]),
                          item.call.pos))
    return hints


def _item_nodes(analysis: Analysis, item: Item) -> list[str]:
    """The nodes a written item made, its runs in order (a repeat's in turn)."""
    return [path for where in call_positions(item) for run in analysis.made.calls.get(where, ())
            for path in run.paths]


def carried_hints(analysis: Analysis, text: str) -> list[tuple[int, int, str, tuple[int, int]]]:
    """`analysis`'s hints on the lines of `text` (a later version of its text, which does not
    bind) where those lines are unchanged: a hint above the first line that changed keeps its
    line, one below the last moves with it, one on a changed line is dropped."""
    old, new = text_lines(analysis.text), text_lines(text)
    same = min(len(old), len(new))
    head = next((i for i in range(same) if old[i] != new[i]), same)
    tail = next((i for i in range(same - head) if old[-1 - i] != new[-1 - i]), same - head)
    shift = len(new) - len(old)
    return [(line if line < head else line + shift, character, shape, origin)
            for line, character, shape, origin in shape_hints(analysis)
            if line < head or line >= len(old) - tail]


def call_costs(analysis: Analysis, origin: tuple[int, int]) -> str | None:
    """What the top-level item whose call is at 1-based `origin` made costs: its weights and
    FLOPs per image."""
    if analysis.made is None:
        return None
    item = next((s for s in analysis.family.statements
                 if isinstance(s, Item) and s.call.pos == origin), None)
    return None if item is None else costs_of(analysis.bound, _item_nodes(analysis, item))


def costs_of(bound: Bound, paths: list[str]) -> str:
    """The weights and FLOPs per image of the nodes at `paths`, together."""
    weights = sum(bound.costs[path][0] for path in paths if path in bound.costs)
    flops = sum(bound.costs[path][1] for path in paths if path in bound.costs)
    return f"{weights:,} weights, {flops:,} FLOPs per image"


def space_lens(analysis: Analysis) -> str | None:
    """The code lens of a file with choices: how many networks it describes."""
    space = analysis.space
    if space is None:
        return None
    return f"{len(space.points)} choice points, {space.counted()}"


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
    formals = block[1] if block is not None else []
    values = [Completion(name, "formal", f"parameter of block {block[0]}"
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
    return ([Completion(name, "primitive", signature(family, name)) for name in sorted(PRIMITIVES)]
            + [Completion(name, "block", signature(family, name)) for name in sorted(blocks)]
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
    if analysis.made is None:
        return []
    groups = [""] if block is None else analysis.made.bodies.get(block, [])
    if not groups:  # the block is not called
        return []
    typed = re.search(r"[A-Za-z0-9_./]*$", before).group()
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


def names_in(analysis: Analysis) -> list[Occurrence]:
    """Every name of the text and what it refers to (`language.names`); none when the text does
    not parse. A text that parses but does not bind has its names too."""
    if analysis.names is None:
        statements = written(analysis)
        own = {s.name: s for s in statements if isinstance(s, Block)}
        analysis.names = occurrences(statements, {**prelude(), **own})
    return analysis.names


def written(analysis: Analysis) -> list:
    """The text's statements, parsed; none when it does not parse."""
    if analysis.statements is None:
        if analysis.family is not None:
            analysis.statements = analysis.family.statements
        else:
            try:
                analysis.statements = parse_statements(Source(analysis.name, analysis.text))
            except (NetdslError, RecursionError):
                analysis.statements = []
    return analysis.statements


def occurrence_at(analysis: Analysis, line: int, character: int) -> Occurrence | None:
    """The name at 0-based `line` and `character` that refers to something, or None."""
    for occurrence in names_in(analysis):
        start = occurrence.column - 1
        if occurrence.line - 1 == line and start <= character <= start + len(
                occurrence.symbol.name):
            return occurrence
    return None


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
    items = {item.label_pos or item.call.pos: item for item in _items(statements)}
    blocks = {s.name: s for s in statements if isinstance(s, Block)}
    declared = [o for o in names_in(analysis) if o.declares]

    def entry(o: Occurrence) -> Outlined:
        name, kind = o.symbol.name, o.symbol.kind
        at = (o.line - 1, o.column - 1)
        start, end, children = at, (at[0], at[1] + len(name)), ()
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
    from .graph import primitives

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


def formatted(text: str, name: str) -> str | None:
    """`netdsl fmt`'s layout of `text`, its lines ended as `text`'s first line is (`fmt` reads
    \r\n as \n, and an editor keeps a file's line ends); None when it does not parse."""
    from .language.printer import format_text

    try:
        layout = format_text(parse_statements(Source(name, text)), text)
    except (NetdslError, RecursionError):
        return None
    ending = LINE_BREAK.search(text)
    return layout if ending is None else layout.replace("\n", ending.group())


def diagnostics_of(analysis: Analysis
                   ) -> list[tuple[str, tuple[int, int], tuple[int, int], str]]:
    """("error" or "hint", start, end, message) of each thing the editor marks in the text, at
    0-based (line, character)s: check's error with its notes (`(inside conv_bn -> conv)`), and
    in a text that binds (as `netdsl check` notes them) each stage whose name is a slip of a
    block's: the text means something else without a word. (A text that does not bind has
    its error to show; its names are not walked for this, which takes 0.6 s on a 1 MB text.)"""
    marks = [("error", *_span_of(e, analysis.text), diagnostic_message(e))
             for e in analysis.errors]
    if analysis.bound is not None:
        for stage, message in misread_stages(names_in(analysis), analysis.family.blocks):
            start = (stage.line - 1, stage.column - 1)
            marks.append(("hint", start, (start[0], start[1] + len(stage.symbol.name)),
                          message))
    return marks


def diagnostic_message(error: NetdslError) -> str:
    """check's message of `error`, with its notes, a line each."""
    return "\n".join([error.message, *(note.strip() for note in error.notes)])


def _span_of(error: NetdslError, text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """The 0-based start and end a diagnostic marks: the identifier (or the one character) at
    the error's location; the first line when it has none."""
    line, column = ((error.location.line - 1, error.location.column - 1)
                    if error.location is not None else (0, 0))
    lines = text_lines(text)
    rest = lines[line][column:] if 0 <= line < len(lines) else ""
    match = WORD.match(rest)
    length = len(match.group()) if match else min(1, len(rest))
    return (line, column), (line, column + length)
