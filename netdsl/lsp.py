"""`netdsl lsp`: a language server for .net files over stdio (pygls, the `[lsp]` extra).

Each change of a document is analysed as `netdsl check` would: parsed, bound at its defaults
(a `--set` value the file needs comes from its family's defaults) and every option of every
choice checked. The server publishes the error there is as a diagnostic at its location, with
check's message; it answers hover (a node's op, shape, weights and FLOPs; a primitive's,
block's or parameter's signature or value), inlay hints (each top-level call's output shape at
its end), a code lens (how many networks a file with choices describes), completion
(primitives, blocks, parameters; a primitive's keyword arguments; node paths after `<-`), go to
definition, references and rename (of a parameter, block, label or block parameter: the
binder's scoping, `language.names`), document symbols and formatting (`netdsl fmt`, comments
kept). Analysing never raises: any text gets an answer.

Analysis runs in one worker thread, so the editor's messages are read while a large text is
parsed (a 1 MB file takes seconds); a document whose text is analysed already is answered at
once, and a version overtaken by a newer one before its turn is never analysed.
"""
from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import __version__
from .errors import NetdslError
from .graph import PRIMITIVES, REQUIRED, format_shape
from .language import Bound, Family
from .language.choices import SPACES, Space
from .language.expand import prelude
from .language.names import TOP, Occurrence, Symbol, declared_here, occurrences
from .language.printer import expression
from .language.syntax import Block, Source, keywords, parse_statements

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PATH = re.compile(r"(\.\.|[A-Za-z_][A-Za-z0-9_]*)(/(\.\.|[A-Za-z_][A-Za-z0-9_]*))*")  # a REF


@dataclass
class Analysis:
    """What the server knows of one version of a document."""

    text: str
    name: str = "<string>"
    family: Family | None = None
    bound: Bound | None = None
    space: Space | None = None  # the family's choices, when it has any
    origins: dict[str, tuple[int, int]] = field(default_factory=dict)  # see Family.origins
    errors: list[NetdslError] = field(default_factory=list)
    names: list[Occurrence] | None = None  # see `names_in`, made when first asked for


def analyse(text: str, name: str) -> Analysis:
    """`text` parsed, bound at its defaults and its choices checked, as `netdsl check` does;
    the first error, if any, in `errors`."""
    analysis = Analysis(text, name)
    try:
        analysis.family = Family(text, name)
        analysis.bound = analysis.family.bind()
        analysis.origins = analysis.family.origins()
        if analysis.bound.points:
            analysis.space = analysis.family.space()  # every option of every choice fits
    except NetdslError as e:
        analysis.errors.append(e)
    except RecursionError:  # nesting past what the parser guards: an error, not a crash
        analysis.errors.append(NetdslError("the text nests too deeply to read"))
    return analysis


def word_at(text: str, line: int, character: int) -> str | None:
    """The identifier at 0-based `line` and `character`, or None."""
    match = _token_at(WORD, text, line, character)
    return match.group() if match else None


def _token_at(token: re.Pattern, text: str, line: int, character: int) -> re.Match | None:
    """The match of `token` on 0-based `line` that `character` is in or just after."""
    lines = text.splitlines()
    if not 0 <= line < len(lines):
        return None
    return next((match for match in token.finditer(lines[line])
                 if match.start() <= character <= match.end()), None)


def path_at(text: str, line: int, character: int) -> str | None:
    """The node path after `<-` at 0-based `line` and `character`, through the part there
    (`layer1/residual` over `residual` of `layer1/residual/res2`), or None."""
    lines = text.splitlines()
    before = lines[line][:character] if 0 <= line < len(lines) else ""
    match = _token_at(PATH, text, line, character)
    if "<-" not in before or "#" in before or match is None:  # no path, or in a comment
        return None
    end = lines[line].find("/", character)  # the end of the part under the cursor
    return match.group()[:end - match.start()] if 0 <= end < match.end() else match.group()


def hover_text(analysis: Analysis, word: str) -> str | None:
    """What hovering over `word` (a name, or a node's path) shows, a line for each thing it
    names: a parameter's value (and its options); a node's or group's op, output shape, weights
    and FLOPs; a block's or a primitive's signature and what it is."""
    family, bound = analysis.family, analysis.bound
    lines = []
    if family is not None and word in family.parameters:
        parameter = family.parameters[word]
        # the bound network's points: asking the family would bind again, and raise if
        # the text does not bind
        point = bound.points.get(word) if bound is not None else None
        options = f"; {point.describe_options()}" if point is not None else ""
        lines.append(f"param {word} = {parameter.default} ({parameter.kind}{options})")
    if bound is not None:
        paths = [path for path in bound.graph if path == word or path.startswith(word + "/")]
        if paths:
            last, op = paths[-1], bound.graph[paths[-1]][0]  # the graph is in execution order
            lines.append(f"node {word}: {op.type if op is not None else 'input'} -> "
                         f"{format_shape(bound.shapes[last])}; {costs_of(bound, paths)}")
    callable_ = signature(family, word)
    if callable_ is not None:
        lines.append(callable_)
        lines.append(summary(family, word))
    return "\n".join(line for line in lines if line) or None


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


def summary(family: Family | None, name: str) -> str:
    """What a primitive computes, or what a block is: the comment written just above its
    definition, as one line ("" when there is none)."""
    if name in PRIMITIVES:
        return PRIMITIVES[name].summary
    blocks = family.blocks if family is not None else prelude()
    if name not in blocks:
        return ""
    lines = blocks[name].source.text.splitlines()
    row = blocks[name].pos[0] - 2  # the line above `block NAME(...)`, 0-based
    comment: list[str] = []
    while row >= 0 and lines[row].lstrip().startswith("#"):
        comment.insert(0, lines[row].lstrip("# \t"))
        row -= 1
    return " ".join(comment)


def shape_hints(analysis: Analysis) -> list[tuple[int, int, str, tuple[int, int]]]:
    """(0-based line, character, shape, origin) at the end of each top-level call: the output
    shape of the last node it makes; origin is the call's 1-based (line, column)."""
    if analysis.bound is None:
        return []
    last: dict[tuple[int, int], str] = {}
    for path in analysis.bound.graph:  # in execution order: the call's last node wins
        if path in analysis.origins:
            last[analysis.origins[path]] = path
    return [(*call_end(analysis.text, *origin), format_shape(analysis.bound.shapes[path]), origin)
            for origin, path in sorted(last.items())]


def call_costs(analysis: Analysis, origin: tuple[int, int]) -> str | None:
    """What the top-level call at 1-based `origin` costs: its weights and FLOPs per image."""
    if analysis.bound is None:
        return None
    return costs_of(analysis.bound, [path for path, at in analysis.origins.items()
                                     if at == origin])


def costs_of(bound: Bound, paths: list[str]) -> str:
    """The weights and FLOPs per image of the nodes at `paths`, together."""
    weights = sum(bound.costs[path][0] for path in paths if path in bound.costs)
    flops = sum(bound.costs[path][1] for path in paths if path in bound.costs)
    return f"{weights:,} weights, {flops:,} FLOPs per image"


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
    """(label, kind, detail) of what may be written at 0-based `line`, `character`, from this
    text, or while it does not bind from `last_bound` (the last version that did): after `<-`,
    the node paths; inside a call's parentheses, its keyword arguments and the parameters;
    elsewhere, primitives and blocks with their signatures, and the parameters."""
    lines = analysis.text.splitlines()
    before = lines[line][:character] if 0 <= line < len(lines) else ""
    bound = analysis.bound or last_bound
    family = analysis.family or (last_bound.family if last_bound is not None else None)
    if "<-" in before.split("#")[0]:
        paths = list(bound.graph)[1:] if bound is not None else []
        return [(path, "path", "node") for path in paths] + [("..", "path", "the group above")]
    parameters = [(name, "param", f"= {parameter.default}")
                  for name, parameter in (family.parameters.items() if family else ())]
    keywords_ = _keyword_arguments(family, _open_call(before))
    if keywords_ is not None:
        return [(f"{name}=", "keyword", default) for name, default in keywords_] + parameters
    out = [(name, "primitive", signature(family, name)) for name in sorted(PRIMITIVES)]
    blocks = family.blocks if family is not None else prelude()
    out += [(name, "block", signature(family, name)) for name in sorted(blocks)]
    return out + parameters


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
        if analysis.family is not None:
            statements = analysis.family.statements
        else:
            try:
                statements = parse_statements(Source(analysis.name, analysis.text))
            except (NetdslError, RecursionError):
                statements = []
        own = {s.name: s for s in statements if isinstance(s, Block)}
        analysis.names = occurrences(statements, {**prelude(), **own})
    return analysis.names


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


def symbols(analysis: Analysis) -> list[Occurrence]:
    """The parameters, blocks and labels (stages' names too) the text declares at its top
    level."""
    return [o for o in names_in(analysis) if o.declares and o.symbol.scope == TOP]


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
    """`text` with the name `old` at each of `places` written `new`."""
    lines = text.split("\n")
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
                          o.column + shift * before, o.declares)

    return [moved(o) for o in names]


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
    from pygls.exceptions import JsonRpcException
    from pygls.lsp.server import LanguageServer

    def refused(e: NetdslError) -> JsonRpcException:
        """A request the server declines, with why (the editor shows the message)."""
        return JsonRpcException(e.message, code=lsp.LSPErrorCodes.RequestFailed)

    ls = LanguageServer("netdsl", __version__,
                        text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
    # One thread analyses, in turn: the texts' work shares one interpreter lock anyway, and
    # lark's parser is not known to be safe to run twice at once.
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="netdsl-analysis")
    analyses: dict[str, Analysis] = {}   # each document's analysis of its current text
    bound_last: dict[str, Bound] = {}    # each document's last version that bound
    running: dict[str, tuple[str, asyncio.Future]] = {}  # each document's analysis under way

    def current(uri: str) -> str | None:
        """The document's text: the editor's, or the file's when the editor has not opened it
        (a request may name any file); None when that cannot be read."""
        try:
            return ls.workspace.get_text_document(uri).source
        except (OSError, UnicodeDecodeError):
            return None

    def analyse_if_current(uri: str, text: str, name: str) -> Analysis | None:
        return analyse(text, name) if current(uri) == text else None  # None: overtaken

    async def analysis_of(uri: str, text: str) -> Analysis | None:
        """The analysis of `text`, the document's text now; None if an edit overtakes it."""
        if uri in analyses and analyses[uri].text == text:
            return analyses[uri]
        if uri not in running or running[uri][0] != text:  # requests made meanwhile share it
            name = ls.workspace.get_text_document(uri).filename or uri
            running[uri] = (text, asyncio.get_running_loop().run_in_executor(
                worker, analyse_if_current, uri, text, name))
        analysis = await running[uri][1]
        if analysis is None or current(uri) != text:
            return None
        analyses[uri] = analysis
        if analysis.bound is not None:
            bound_last[uri] = analysis.bound
        return analysis

    async def analysed(uri: str) -> Analysis:
        """The analysis of the document's text as it is when the analysis ends; a file that
        cannot be read is an empty text with that error."""
        while True:
            text = current(uri)
            if text is None:
                return Analysis("", uri, errors=[NetdslError(f"cannot read {uri}")])
            analysis = await analysis_of(uri, text)
            if analysis is not None:
                return analysis

    async def in_worker(function, *args):
        return await asyncio.get_running_loop().run_in_executor(worker, function, *args)

    async def publish(uri: str) -> None:  # of an open document: its text is the editor's
        analysis = await analysis_of(uri, current(uri))
        if analysis is None:  # the edit that overtook this text publishes
            return
        diagnostics = [lsp.Diagnostic(range=_range_of(e, analysis.text), message=e.message,
                                      severity=lsp.DiagnosticSeverity.Error, source="netdsl")
                       for e in analysis.errors]
        ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics, version=ls.workspace.get_text_document(uri).version))

    def where(uri: str, occurrence: Occurrence):
        start = lsp.Position(line=occurrence.line - 1, character=occurrence.column - 1)
        end = lsp.Position(line=start.line, character=start.character
                           + len(occurrence.symbol.name))
        return lsp.Location(uri=uri, range=lsp.Range(start=start, end=end))

    @ls.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(params: lsp.DidOpenTextDocumentParams) -> None:
        await publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(params: lsp.DidChangeTextDocumentParams) -> None:
        await publish(params.text_document.uri)

    @ls.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: lsp.DidCloseTextDocumentParams) -> None:
        for kept in (analyses, bound_last, running):
            kept.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(
            lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @ls.feature(lsp.TEXT_DOCUMENT_HOVER)
    async def hover(params: lsp.HoverParams) -> lsp.Hover | None:
        analysis = await analysed(params.text_document.uri)
        at = (analysis.text, params.position.line, params.position.character)
        path, word = path_at(*at), word_at(*at)
        # a path written at the top level is the node's; one in a block's body is relative
        text = (path and hover_text(analysis, path)) or (word and hover_text(analysis, word))
        return None if text is None else lsp.Hover(contents=lsp.MarkupContent(
            kind=lsp.MarkupKind.PlainText, value=text))

    @ls.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    async def document_symbols(params: lsp.DocumentSymbolParams) -> list[lsp.DocumentSymbol]:
        kinds = {"param": lsp.SymbolKind.Variable, "block": lsp.SymbolKind.Function,
                 "label": lsp.SymbolKind.Field}
        analysis = await analysed(params.text_document.uri)
        declared = await in_worker(symbols, analysis)
        return [lsp.DocumentSymbol(name=o.symbol.name, kind=kinds[o.symbol.kind],
                                   range=where("", o).range, selection_range=where("", o).range,
                                   detail=o.symbol.kind) for o in declared]

    @ls.feature(lsp.TEXT_DOCUMENT_INLAY_HINT,
                lsp.InlayHintOptions(resolve_provider=True))
    async def inlay_hints(params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
        first, last = params.range.start.line, params.range.end.line
        uri = params.text_document.uri
        return [lsp.InlayHint(position=lsp.Position(line=line, character=character),
                              label=shape, padding_left=True,
                              data={"uri": uri, "origin": origin})
                for line, character, shape, origin in shape_hints(await analysed(uri))
                if first <= line <= last]

    @ls.feature(lsp.INLAY_HINT_RESOLVE)
    async def inlay_hint_costs(hint: lsp.InlayHint) -> lsp.InlayHint:
        """On request, a hint's tooltip: what its call costs."""
        data = hint.data or {}
        if data.get("uri") in analyses:
            hint.tooltip = call_costs(await analysed(data["uri"]), tuple(data["origin"]))
        return hint

    @ls.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
    async def code_lens(params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
        title = space_lens(await analysed(params.text_document.uri))
        top = lsp.Range(start=lsp.Position(line=0, character=0),
                        end=lsp.Position(line=0, character=0))
        return [] if title is None else [
            lsp.CodeLens(range=top, command=lsp.Command(title=title, command=""))]

    @ls.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=["(", ",", "-", " "]))
    async def completion(params: lsp.CompletionParams) -> lsp.CompletionList:
        kinds = {"path": lsp.CompletionItemKind.Reference,
                 "keyword": lsp.CompletionItemKind.Property,
                 "primitive": lsp.CompletionItemKind.Function,
                 "block": lsp.CompletionItemKind.Class, "param": lsp.CompletionItemKind.Variable}
        uri = params.text_document.uri
        analysis = await analysed(uri)
        found = completions(analysis, params.position.line, params.position.character,
                            bound_last.get(uri))
        return lsp.CompletionList(is_incomplete=False, items=[
            lsp.CompletionItem(label=label, kind=kinds[kind], detail=detail,
                               documentation=summary(analysis.family, label) or None)
            for label, kind, detail in found])

    async def named_at(params) -> tuple[Analysis, Occurrence | None]:
        analysis = await analysed(params.text_document.uri)
        occurrence = await in_worker(occurrence_at, analysis, params.position.line,
                                     params.position.character)
        return analysis, occurrence

    @ls.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    async def go_to_definition(params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis, occurrence = await named_at(params)
        declared = declaration(analysis, occurrence.symbol) if occurrence else None
        return None if declared is None else where(params.text_document.uri, declared)

    @ls.feature(lsp.TEXT_DOCUMENT_REFERENCES)
    async def find_references(params: lsp.ReferenceParams) -> list[lsp.Location]:
        analysis, occurrence = await named_at(params)
        if occurrence is None:
            return []
        return [where(params.text_document.uri, o) for o in references(analysis, occurrence.symbol)
                if params.context.include_declaration or not o.declares]

    @ls.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
    async def prepare_rename(params: lsp.PrepareRenameParams) -> lsp.Range:
        analysis = await analysed(params.text_document.uri)
        try:
            target = await in_worker(rename_target, analysis, params.position.line,
                                     params.position.character)
        except NetdslError as e:
            raise refused(e) from None
        return where(params.text_document.uri, target).range

    @ls.feature(lsp.TEXT_DOCUMENT_RENAME)
    async def rename(params: lsp.RenameParams) -> lsp.WorkspaceEdit:
        uri = params.text_document.uri
        analysis = await analysed(uri)

        def edits() -> list[Occurrence]:
            target = rename_target(analysis, params.position.line, params.position.character)
            return renamed(analysis, target, params.new_name)
        try:
            places = await in_worker(edits)
        except NetdslError as e:
            raise refused(e) from None
        return lsp.WorkspaceEdit(changes={uri: [
            lsp.TextEdit(range=where(uri, o).range, new_text=params.new_name) for o in places]})

    @ls.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    async def formatting(params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit]:
        source = current(params.text_document.uri)
        if source is None:
            return []
        text = await in_worker(formatted, source, params.text_document.uri)
        if text is None or text == source:
            return []
        end = lsp.Position(line=len(source.splitlines()), character=0)  # after the last line
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
