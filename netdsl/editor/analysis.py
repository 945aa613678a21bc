"""What the server knows of one version of a document (`Analysis`): its text parsed and
bound at its defaults as `netdsl check` would, every option of every choice checked (after the
rest is published: it takes many times as long), its diagnostics, and `netdsl fmt`'s layout of
it. Analysing never raises: any text gets an answer."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ..errors import LINE_BREAK, NetdslError, text_lines
from ..language import Bound, Family
from ..language.choices import ChoiceSpace
from ..language.expand import prelude
from ..language.names import Occurrence, misread_stages, occurrences
from ..language.places import WORD, Made, made
from ..language.syntax import Block, Item, Source, parse_statements


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
    if not analysis.choices_checked and analysis.family is not None:  # unchecked: it bound
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


def names_in(analysis: Analysis) -> list[Occurrence]:
    """Every name of the text and what it refers to (`language.names`); none when the text does
    not parse. A text that parses but does not bind has its names too."""
    if analysis.names is None:
        statements = written(analysis)
        own = {s.name: s for s in statements if isinstance(s, Block)}
        analysis.names = occurrences(statements, {**prelude(), **own})
    return analysis.names


def formatted(text: str, name: str) -> str | None:
    """`netdsl fmt`'s layout of `text`, its lines ended as `text`'s first line is (`fmt` reads
    \r\n as \n, and an editor keeps a file's line ends); None when it does not parse."""
    from ..language.printer import format_text

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
        for stage, message in misread_stages(names_in(analysis), analysis.bound.family.blocks):
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


def items_of(statements: list) -> list[Item]:
    """The items of a text's statements, at its top level and in its blocks' bodies."""
    return [s for s in statements if isinstance(s, Item)] + [
        s for block in statements if isinstance(block, Block) for s in block.body
        if isinstance(s, Item)]


def occurrence_at(analysis: Analysis, line: int, character: int) -> Occurrence | None:
    """The name at 0-based `line` and `character` that refers to something, or None."""
    for occurrence in names_in(analysis):
        start = occurrence.column - 1
        if occurrence.line - 1 == line and start <= character <= start + len(
                occurrence.symbol.name):
            return occurrence
    return None
