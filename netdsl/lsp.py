"""`netdsl lsp`: a language server for .net files over stdio (pygls, the `[lsp]` extra).

Each change of a document is analysed as `netdsl check` would: parsed, bound at its defaults
(a `--set` value the file needs comes from its family's defaults) and every option of every
choice checked. The server publishes the error there is as a diagnostic at its location, with
check's message; it answers hover (a node's op, shape, weights and FLOPs; a primitive's,
block's or parameter's signature or value), inlay hints (each top-level call's output shape at
its end), a code lens (how many networks a file with choices describes), completion
(primitives, blocks, parameters; a primitive's keyword arguments; node paths after `<-`), go to
definition, document symbols (parameters, blocks, labels) and formatting (`netdsl fmt`,
comments kept). Analysing never
raises: any text gets an answer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import __version__
from .errors import NetdslError
from .graph import PRIMITIVES, REQUIRED, format_shape
from .language import Bound, Family
from .language.choices import Space
from .language.syntax import Block, Item, Param

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Analysis:
    """What the server knows of one version of a document."""

    text: str
    family: Family | None = None
    bound: Bound | None = None
    space: Space | None = None  # the family's choices, when it has any
    origins: dict[str, tuple[int, int]] = field(default_factory=dict)  # see Family.origins
    errors: list[NetdslError] = field(default_factory=list)


def analyse(text: str, name: str) -> Analysis:
    """`text` parsed, bound at its defaults and its choices checked, as `netdsl check` does;
    the first error, if any, in `errors`."""
    analysis = Analysis(text)
    try:
        analysis.family = Family(text, name)
        analysis.bound = analysis.family.bind()
        analysis.origins = analysis.family.origins()
        if analysis.family.choice_points:
            analysis.space = analysis.family.space()  # every option of every choice fits
    except NetdslError as e:
        analysis.errors.append(e)
    except RecursionError:  # nesting past what the parser guards: an error, not a crash
        analysis.errors.append(NetdslError("the text nests too deeply to read"))
    return analysis


def word_at(text: str, line: int, character: int) -> str | None:
    """The identifier at 0-based `line` and `character`, or None."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    for match in WORD.finditer(lines[line]):
        if match.start() <= character <= match.end():
            return match.group()
    return None


def hover_text(analysis: Analysis, word: str) -> str | None:
    """What hovering over `word` shows, a line for each thing it names: a parameter's value
    (and its options); a node's or group's op, output shape, weights and FLOPs; a block's or
    a primitive's signature."""
    family, bound = analysis.family, analysis.bound
    lines = []
    if family is not None and word in family.parameters:
        parameter = family.parameters[word]
        point = family.choice_points.get(word)
        options = f"; {point.describe_options()}" if point is not None else ""
        lines.append(f"param {word} = {parameter.default} ({parameter.kind}{options})")
    if bound is not None:
        paths = [path for path in bound.graph if path == word or path.startswith(word + "/")]
        if paths:
            last, op = paths[-1], bound.graph[paths[-1]][0]  # the graph is in execution order
            weights = sum(bound.costs[path][0] for path in paths if path in bound.costs)
            flops = sum(bound.costs[path][1] for path in paths if path in bound.costs)
            lines.append(f"node {word}: {op.type if op is not None else 'input'} -> "
                         f"{format_shape(bound.shapes[last])}; {weights:,} weights, "
                         f"{flops:,} FLOPs per image")
    callable_ = signature(family, word)
    if callable_ is not None:
        lines.append(callable_)
    return "\n".join(lines) or None


def signature(family: Family | None, name: str) -> str | None:
    """A block's (the file's or the prelude's) or a primitive's signature."""
    if family is not None and name in family.blocks:
        return f"block {name}({', '.join(f.name for f in family.blocks[name].formals)})"
    if name in PRIMITIVES:
        arguments = ", ".join(arg if default is REQUIRED else f"{arg}={default!r}"
                              for arg, default in PRIMITIVES[name].params)
        return f"{name}({arguments}): {PRIMITIVES[name].op}"
    return None


def shape_hints(analysis: Analysis) -> list[tuple[int, int, str]]:
    """(0-based line, character, shape) at the end of each top-level call: the output shape of
    the last node it makes."""
    if analysis.bound is None:
        return []
    last: dict[tuple[int, int], str] = {}
    for path in analysis.bound.graph:  # in execution order: the call's last node wins
        if path in analysis.origins:
            last[analysis.origins[path]] = path
    return [(*call_end(analysis.text, *position), format_shape(analysis.bound.shapes[path]))
            for position, path in sorted(last.items())]


def call_end(text: str, line: int, column: int) -> tuple[int, int]:
    """The 0-based position just after the call whose name starts at 1-based `line`, `column`:
    after its name, or after the parenthesis that closes its arguments (which may span
    lines; a `#` comment inside is skipped)."""
    lines = text.splitlines()
    row, at = line - 1, column - 1
    name = WORD.match(lines[row], at)
    at = name.end() if name else at
    rest = lines[row][at:]
    if not rest.lstrip().startswith("("):
        return row, at
    at += len(rest) - len(rest.lstrip())
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


def space_lens(analysis: Analysis) -> str | None:
    """The code lens of a file with choices: how many networks it describes."""
    space = analysis.space
    if space is None:
        return None
    if space.count is None:
        return f"{len(space.points)} choice points; endless (a range of real numbers)"
    return (f"{len(space.points)} choice points, {'' if space.exact else 'at most '}"
            f"{space.count:,} networks")


def completions(analysis: Analysis, line: int, character: int,
                last_bound: Bound | None = None) -> list[tuple[str, str, str]]:
    """(label, kind, detail) of what may be written at 0-based `line`, `character`: after
    `<-`, the node paths (of `last_bound`, the last version that bound, while the text being
    typed does not); inside a primitive's parentheses, its keyword arguments; elsewhere,
    primitives and blocks with their signatures, and the parameters."""
    lines = analysis.text.splitlines()
    before = lines[line][:character] if 0 <= line < len(lines) else ""
    family, bound = analysis.family, analysis.bound or last_bound
    if "<-" in before.split("#")[0]:
        paths = list(bound.graph)[1:] if bound is not None else []
        return [(path, "path", "node") for path in paths] + [("..", "path", "the group above")]
    callee = _open_call(before)
    if callee in PRIMITIVES:
        return [(f"{name}=", "keyword", "" if default is REQUIRED else f"default {default!r}")
                for name, default in PRIMITIVES[callee].params]
    out = [(name, "primitive", signature(family, name)) for name in sorted(PRIMITIVES)]
    if family is not None:
        out += [(name, "block", signature(family, name))
                for name in sorted(family.blocks) if name not in PRIMITIVES]
        out += [(name, "param", f"= {parameter.default}")
                for name, parameter in family.parameters.items()]
    return out


def _open_call(before: str) -> str | None:
    """The name of the call whose parenthesis is open at the end of `before`, or None."""
    depth = 0
    for at in range(len(before) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(before[at], 0)
        if depth < 0:
            name = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", before[:at])
            return name.group(1) if name else None
    return None


def definition(analysis: Analysis, word: str) -> tuple[int, int] | None:
    """The 1-based (line, column) where this text declares `word`: a parameter, a block or a
    top-level label; None when it does not (a primitive, the prelude's blocks)."""
    for name, _, line, column in symbols(analysis):
        if name == word:
            return line, column
    return None


def symbols(analysis: Analysis) -> list[tuple[str, str, int, int]]:
    """(name, kind, 1-based line, column) of each parameter, block and labelled item the
    document declares at its top level."""
    if analysis.family is None:
        return []
    out = []
    for statement in analysis.family.statements:
        if isinstance(statement, Param):
            out.append((statement.name, "param", *statement.pos))
        elif isinstance(statement, Block):
            out.append((statement.name, "block", *statement.pos))
        elif isinstance(statement, Item) and statement.label is not None:
            out.append((statement.label, "label", *statement.label_pos))
    return out


def formatted(text: str, name: str) -> str | None:
    """`netdsl fmt`'s layout of `text`, None when it does not parse."""
    from .language.printer import format_text
    from .language.syntax import Source, parse_statements

    try:
        return format_text(parse_statements(Source(name, text)), text)
    except (NetdslError, RecursionError):
        return None


def server():
    """The pygls server with every feature registered."""
    from lsprotocol import types as lsp
    from pygls.lsp.server import LanguageServer

    ls = LanguageServer("netdsl", __version__,
                        text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
    analyses: dict[str, Analysis] = {}
    bound_last: dict[str, Bound] = {}  # each document's last version that bound

    def analysed(uri: str) -> Analysis:
        document = ls.workspace.get_text_document(uri)
        if uri not in analyses or analyses[uri].text != document.source:
            analyses[uri] = analyse(document.source, document.filename or uri)
            if analyses[uri].bound is not None:
                bound_last[uri] = analyses[uri].bound
        return analyses[uri]

    def publish(uri: str) -> None:
        analysis = analysed(uri)
        diagnostics = [lsp.Diagnostic(range=_range_of(e, analysis.text), message=e.message,
                                      severity=lsp.DiagnosticSeverity.Error, source="netdsl")
                       for e in analysis.errors]
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))

    @ls.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        analyses.pop(params.text_document.uri, None)
        bound_last.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @ls.feature(lsp.TEXT_DOCUMENT_HOVER)
    def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        analysis = analysed(params.text_document.uri)
        word = word_at(analysis.text, params.position.line, params.position.character)
        text = hover_text(analysis, word) if word else None
        return None if text is None else lsp.Hover(contents=lsp.MarkupContent(
            kind=lsp.MarkupKind.PlainText, value=text))

    @ls.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def document_symbols(params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        kinds = {"param": lsp.SymbolKind.Variable, "block": lsp.SymbolKind.Function,
                 "label": lsp.SymbolKind.Field}
        out = []
        for name, kind, line, column in symbols(analysed(params.text_document.uri)):
            where = lsp.Range(start=lsp.Position(line=line - 1, character=column - 1),
                              end=lsp.Position(line=line - 1, character=column - 1 + len(name)))
            out.append(lsp.DocumentSymbol(name=name, kind=kinds[kind], range=where,
                                          selection_range=where, detail=kind))
        return out

    @ls.feature(lsp.TEXT_DOCUMENT_INLAY_HINT)
    def inlay_hints(params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        first, last = params.range.start.line, params.range.end.line
        return [lsp.InlayHint(position=lsp.Position(line=line, character=character),
                              label=shape, padding_left=True)
                for line, character, shape in shape_hints(analysed(params.text_document.uri))
                if first <= line <= last]

    @ls.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        title = space_lens(analysed(params.text_document.uri))
        top = lsp.Range(start=lsp.Position(line=0, character=0),
                        end=lsp.Position(line=0, character=0))
        return [] if title is None else [
            lsp.CodeLens(range=top, command=lsp.Command(title=title, command=""))]

    @ls.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=["(", ",", "-", " "]))
    def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        kinds = {"path": lsp.CompletionItemKind.Reference,
                 "keyword": lsp.CompletionItemKind.Property,
                 "primitive": lsp.CompletionItemKind.Function,
                 "block": lsp.CompletionItemKind.Class, "param": lsp.CompletionItemKind.Variable}
        uri = params.text_document.uri
        found = completions(analysed(uri), params.position.line, params.position.character,
                            bound_last.get(uri))
        return lsp.CompletionList(is_incomplete=False, items=[
            lsp.CompletionItem(label=label, kind=kinds[kind], detail=detail)
            for label, kind, detail in found])

    @ls.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def go_to_definition(params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis = analysed(params.text_document.uri)
        word = word_at(analysis.text, params.position.line, params.position.character)
        where = definition(analysis, word) if word else None
        if where is None:
            return None
        start = lsp.Position(line=where[0] - 1, character=where[1] - 1)
        return lsp.Location(uri=params.text_document.uri, range=lsp.Range(
            start=start, end=lsp.Position(line=start.line, character=start.character + len(word))))

    @ls.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def formatting(params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        document = ls.workspace.get_text_document(params.text_document.uri)
        text = formatted(document.source, document.filename or params.text_document.uri)
        if text is None or text == document.source:
            return []
        end = lsp.Position(line=len(document.lines), character=0)
        return [lsp.TextEdit(range=lsp.Range(start=lsp.Position(line=0, character=0), end=end),
                             new_text=text)]

    return ls


def _range_of(error: NetdslError, text: str):
    """The range a diagnostic marks: the identifier (or the one character) at the error's
    location; the first line when it has none."""
    from lsprotocol import types as lsp

    line, column = ((error.location.line - 1, error.location.column - 1)
                    if error.location is not None else (0, 0))
    lines = text.splitlines()
    rest = lines[line][column:] if 0 <= line < len(lines) else ""
    match = WORD.match(rest)
    length = len(match.group()) if match else min(1, len(rest))
    return lsp.Range(start=lsp.Position(line=line, character=column),
                     end=lsp.Position(line=line, character=column + length))


def lsp_command() -> int:
    try:
        ls = server()
    except ImportError:
        raise NetdslError("netdsl lsp needs pygls: pip install 'netdsl[lsp]'") from None
    ls.start_io()
    return 0
