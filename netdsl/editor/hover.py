"""What a position shows: hover (the nodes a label or call made, run by run; a primitive's,
block's, block parameter's or parameter's signature or value), inlay hints (each top-level
item's output shape at its end), the costs of a call and the code lens (how many networks a file
with choices describes). While a text has an error, its hints and lens are those of the last
text that had none."""
from __future__ import annotations

from ..errors import NetdslError, text_lines
from ..graph import PRIMITIVES, REQUIRED, SEP, format_shape
from ..graph.nested import normpath
from ..language import Bound, Family
from ..language.expand import prelude
from ..language.names import Occurrence, Symbol
from ..language.places import Made, call_positions, item_end
from ..language.printer import block_header
from ..language.syntax import InputChoice, Item
from .analysis import Analysis, items_of, occurrence_at, written


def hover_at(analysis: Analysis, line: int, character: int) -> str | None:
    """What hovering at 0-based `line`, `character` shows, a line for each thing, by what the
    name there refers to (`language.names`): over a path after `<-`, the node or group that
    part of it reaches from where the path is read; over a label or a call, what the call
    made; over a parameter, its value and options; over a block's parameter, its block; over a
    block or a primitive, its signature and what it is. A call in a block's body runs once per
    call of the block: its runs alike share a line, those that differ have one each."""
    reached = _path_reached(analysis, line, character)
    if reached is not None and analysis.bound is not None:  # a path reached: the text bound
        return "\n".join(made_lines(analysis.bound, reached)) or None
    occurrence = occurrence_at(analysis, line, character)
    if occurrence is None:
        return None
    symbol, family = occurrence.symbol, analysis.family
    lines: list[str | None] = []
    if symbol.kind == "param":
        lines.append(_parameter_line(analysis, symbol.name))
    elif symbol.kind == "formal":
        lines.append(_formal_line(family, symbol))
    elif symbol.kind in ("block", "primitive"):
        lines += [signature(family, symbol.name), description(family, symbol.name)]
    if analysis.bound is not None and analysis.made is not None:
        lines += made_lines(analysis.bound, _runs_named(analysis.made, analysis, occurrence))
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




def _runs_named(made: Made, analysis: Analysis, occurrence: Occurrence
                ) -> list[tuple[str, list[str]]]:
    """(name, nodes) of each run of the call that `occurrence` names or labels (`made`: what
    the calls of `analysis`'s text made)."""
    where = (occurrence.line, occurrence.column)
    positions = [where] if occurrence.called else []
    if occurrence.symbol.kind == "label" and occurrence.declares and not occurrence.called:
        item = next((item for item in items_of(written(analysis)) if item.label_pos == where),
                    None)
        positions = call_positions(item) if item is not None else []
    return [(run.name, list(run.paths)) for at in positions for run in made.calls.get(at, ())]


def _path_reached(analysis: Analysis, line: int, character: int
                  ) -> list[tuple[str, list[str]]] | None:
    """Over a path after `<-`: (path, nodes) of the node or group that the path reaches
    through the part at the place (`layer1/residual` over `residual` of
    `layer1/residual/res2`), from each group the item ran in; None elsewhere."""
    if analysis.bound is None or analysis.made is None:
        return None
    for item in items_of(written(analysis)):
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
        return block_header(blocks[name])
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
    if analysis.bound is None or analysis.made is None:
        return []
    lines = text_lines(analysis.text)
    hints = []
    for item in analysis.bound.family.statements:
        paths = _item_nodes(analysis.made, item) if isinstance(item, Item) else []
        if paths:
            hints.append((*item_end(lines, item), format_shape(analysis.bound.shapes[paths[-1]]),
                          item.call.pos))
    return hints


def _item_nodes(made: Made, item: Item) -> list[str]:
    """The nodes a written item made (`made`: what its text's calls made), its runs in order
    (a repeat's in turn)."""
    return [path for where in call_positions(item) for run in made.calls.get(where, ())
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
    if analysis.bound is None or analysis.made is None:
        return None
    item = next((s for s in analysis.bound.family.statements
                 if isinstance(s, Item) and s.call.pos == origin), None)
    return None if item is None else costs_of(analysis.bound, _item_nodes(analysis.made, item))


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
