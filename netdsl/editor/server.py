"""The `netdsl lsp` server: pygls's LanguageServer holding what it knows of each document, and
a handler for each feature, which turns the protocol's params into a question for `netdsl.editor`'s
analysis and its answer into the protocol's result; and the command that starts it (pygls is
the `[lsp]` extra: the command line imports this module only to run `netdsl lsp`).

Analysis runs in one worker thread, so the editor's messages are read while a large text is
parsed (a 1 MB file takes seconds); a document whose text is analysed already is answered at
once, a version overtaken by a newer one before its turn is never analysed, and a check of the
choices stops at its next binding once its text is overtaken. A file the editor has not opened
is read there too, a regular file's first MAX_TEXT characters only: a FIFO or a file of
gigabytes never holds the server up.
"""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..errors import NetdslError
from ..language import read_text
from ..language.names import Occurrence, Symbol
from .analysis import Analysis, analyse, check_choices, diagnostics_of, formatted, occurrence_at
from .completion import Completion, completions
from .hover import call_costs, carried_hints, description, hover_at, shape_hints, space_lens
from .navigation import (Outlined, builtin_declaration, declaration, outline, references,
                         rename_target, renamed)
from .protocol import EditorProtocol, Refused, Units

SEVERITIES = {"error": lsp.DiagnosticSeverity.Error, "hint": lsp.DiagnosticSeverity.Hint}
SYMBOL_KINDS = {"param": lsp.SymbolKind.Variable, "block": lsp.SymbolKind.Function,
                "formal": lsp.SymbolKind.Variable, "label": lsp.SymbolKind.Field}
COMPLETION_KINDS = {"path": lsp.CompletionItemKind.Reference,
                    "keyword": lsp.CompletionItemKind.Property,
                    "primitive": lsp.CompletionItemKind.Function,
                    "block": lsp.CompletionItemKind.Class,
                    "param": lsp.CompletionItemKind.Variable,
                    "formal": lsp.CompletionItemKind.Variable}


class Overtaken(Exception):
    """The text being analysed is no longer the document's."""


@dataclass
class Document:
    """What the server knows of one document: forgetting it (the editor closed it) is dropping
    this."""
    analysis: Analysis | None = None    # of its current text
    last_bound: Analysis | None = None  # of its last text that bound
    # (text, its analysis) under way; requests made meanwhile share it
    analysing: tuple[str, asyncio.Future] | None = None
    # (analysis, the check of its choices) under way; requests made meanwhile share it
    checking: tuple[Analysis, asyncio.Future] | None = None
    last_lens: str | None = None        # that of its last text without errors


class NetdslServer(LanguageServer):
    """pygls's server with what it knows of each document the editor has open (a `Document`
    by URI), and the one thread that analyses the documents' texts."""

    def __init__(self) -> None:
        super().__init__("netdsl", __version__, protocol_cls=EditorProtocol,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental)
        # One thread analyses, in turn: the texts' work shares one interpreter lock anyway, and
        # lark's parser is not known to be safe to run twice at once.
        self.analysis_thread = ThreadPoolExecutor(max_workers=1,
                                                  thread_name_prefix="netdsl-analysis")
        self.documents: dict[str, Document] = {}

    def document(self, uri: str) -> Document:
        return self.documents.setdefault(uri, Document())

    def forget(self, uri: str) -> None:
        """Drops all the server knows of a document (the editor closed it)."""
        self.documents.pop(uri, None)

    def units(self, text: str) -> Units:
        """Where every position received or sent in `text` is converted: the client counts in
        the units negotiated at initialize, the analysis in code points."""
        return Units(self.workspace.position_codec, text)

    def opened(self, uri: str) -> str | None:
        """The editor's text of a document it has opened; None for any other."""
        document = self.workspace.text_documents.get(unquote(uri))  # keyed so by pygls
        return None if document is None else document.source

    def overtaken(self, uri: str, text: str) -> bool:
        """Whether the editor's text of the document is no longer `text`."""
        return self.opened(uri) not in (None, text)

    async def in_worker(self, function, *args):
        """`function(*args)`, run in the analysis thread."""
        return await asyncio.get_running_loop().run_in_executor(self.analysis_thread,
                                                                function, *args)

    async def current(self, uri: str) -> str:
        """The document's text: the editor's, or the file's when the editor has not opened it
        (a request may name any file), read in the worker (`file_text`); NetdslError when it
        cannot be read."""
        text = self.opened(uri)
        return text if text is not None else await self.in_worker(file_text, uri)

    def analyse_if_current(self, uri: str, text: str, name: str) -> Analysis | None:
        """`text` analysed but for its choices (run in the worker), unless an edit overtook it
        before its turn: None then."""
        return None if self.overtaken(uri, text) else analyse(text, name, choices=False)

    def check_if_current(self, uri: str, analysis: Analysis) -> bool:
        """Checks the choices of `analysis` while its text is the document's: one binding
        (of a file's dozens) after an edit, the worker is the next text's."""
        def between() -> None:
            if self.overtaken(uri, analysis.text):
                raise Overtaken
        try:
            check_choices(analysis, between)
        except Overtaken:
            return False
        return True

    async def choices_checked(self, uri: str, analysis: Analysis) -> bool:
        """Whether `analysis`'s choices are checked, once the worker has checked them (after
        the diagnostics of the rest are out); False if an edit overtook its text first."""
        if analysis.choices_checked:
            return True
        document = self.document(uri)
        if document.checking is None or document.checking[0] is not analysis:
            document.checking = (analysis, asyncio.get_running_loop().run_in_executor(
                self.analysis_thread, self.check_if_current, uri, analysis))
        checking = document.checking
        done = await checking[1]
        if not done and document.checking is checking:
            document.checking = None  # its text may come back
        return done

    async def analysis_of(self, uri: str, text: str) -> Analysis | None:
        """The analysis of `text`, the document's text now; None if an edit overtakes it."""
        document = self.document(uri)
        if document.analysis is not None and document.analysis.text == text:
            return document.analysis
        if document.analysing is None or document.analysing[0] != text:
            name = self.workspace.get_text_document(uri).filename or uri
            document.analysing = (text, asyncio.get_running_loop().run_in_executor(
                self.analysis_thread, self.analyse_if_current, uri, text, name))
        analysis = await document.analysing[1]
        if analysis is None or self.overtaken(uri, text):
            return None
        document.analysis = analysis
        if analysis.bound is not None:
            document.last_bound = analysis
        return analysis

    async def analysed(self, uri: str) -> Analysis:
        """The analysis of the document's text as it is when the analysis ends; a file that
        cannot be read is an empty text with that error."""
        while True:
            try:
                text = await self.current(uri)
            except NetdslError as e:
                return Analysis("", uri, errors=[e])
            analysis = await self.analysis_of(uri, text)
            if analysis is not None:
                return analysis

    async def named_at(self, params) -> tuple[Analysis, Occurrence | None]:
        """The document's analysis, and the name at `params.position` that refers to
        something (or None)."""
        analysis = await self.analysed(params.text_document.uri)
        occurrence = await self.in_worker(occurrence_at, analysis,
                                          *self.units(analysis.text).received(params.position))
        return analysis, occurrence

    async def publish(self, uri: str) -> None:
        """The document's diagnostics, and once its choices are checked, again if that found
        an error: checking every option of a file takes many times as long as the rest."""
        text = self.opened(uri)
        analysis = None if text is None else await self.analysis_of(uri, text)
        if analysis is None:  # closed, or the edit that overtook this text publishes
            return
        errors = len(analysis.errors)  # counted first: a check ending meanwhile is sent again
        await self.send_diagnostics(uri, analysis)
        if await self.choices_checked(uri, analysis) and len(analysis.errors) > errors:
            await self.send_diagnostics(uri, analysis)

    async def send_diagnostics(self, uri: str, analysis: Analysis) -> None:
        marks = await self.in_worker(diagnostics_of, analysis)
        if self.overtaken(uri, analysis.text):  # the version now is another text's
            return
        at = self.units(analysis.text)
        diagnostics = [lsp.Diagnostic(range=at.range(start, end), message=message,
                                      severity=SEVERITIES[kind], source="netdsl")
                       for kind, start, end, message in marks]
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri=uri, diagnostics=diagnostics,
            version=self.workspace.get_text_document(uri).version))

    async def hints(self, uri: str, analysis: Analysis
                    ) -> list[tuple[int, int, str, tuple[int, int]]]:
        """`analysis`'s inlay hints (`lsp.shape_hints`); while its text does not bind, those of
        the document's last text that bound, on the lines unchanged since."""
        last_bound = self.document(uri).last_bound
        if analysis.made is None and last_bound is not None:
            return await self.in_worker(carried_hints, last_bound, analysis.text)
        return await self.in_worker(shape_hints, analysis)

    def lens(self, uri: str, analysis: Analysis) -> str | None:
        """The code lens of `analysis`, whose choices are checked; a text with an error shows
        the lens of the document's last text without one."""
        document = self.document(uri)
        if not analysis.errors:
            document.last_lens = space_lens(analysis)
        return document.last_lens

    def builtin_location(self, symbol: Symbol) -> lsp.Location | None:
        """Where a symbol built into netdsl is declared: the prelude's, or a primitive's."""
        builtin = builtin_declaration(symbol)
        if builtin is None:
            return None
        path, text, line, character = builtin
        return lsp.Location(uri=Path(path).as_uri(), range=self.units(text).range(
            (line, character), (line, character + len(symbol.name))))


def file_text(uri: str) -> str:
    """The text of the file at `uri`, which the editor has not opened: a regular file's only,
    at most MAX_TEXT characters (`read_text`), so that a FIFO or a file of gigabytes cannot
    hold up the server; NetdslError when it cannot be read."""
    path = to_fs_path(uri)
    if path is None:
        raise NetdslError(f"cannot read {uri}: the editor has not opened it, and it names no "
                          "file")
    return read_text(path, regular_only=True)


def location(uri: str, occurrence: Occurrence, at: Units) -> lsp.Location:
    """The location of `occurrence`'s name, in the text `at` converts for."""
    start = (occurrence.line - 1, occurrence.column - 1)
    end = (start[0], start[1] + len(occurrence.symbol.name))
    return lsp.Location(uri=uri, range=at.range(start, end))


def document_symbol(entry: Outlined, at: Units) -> lsp.DocumentSymbol:
    """The editor's symbol of an outline's entry, with its children's."""
    name_end = (entry.name_start[0], entry.name_start[1] + len(entry.name))
    return lsp.DocumentSymbol(
        name=entry.name, kind=SYMBOL_KINDS[entry.kind], detail=entry.kind,
        range=at.range(entry.start, entry.end),
        selection_range=at.range(entry.name_start, name_end),
        children=[document_symbol(child, at) for child in entry.children] or None)


def typed_trigger(context: lsp.CompletionContext | None) -> str | None:
    """The character whose typing asked for completion; None when it was asked otherwise."""
    if context is None or context.trigger_kind != lsp.CompletionTriggerKind.TriggerCharacter:
        return None
    return context.trigger_character


def completion_item(found: Completion, analysis: Analysis, at: Units, line: int,
                    character: int) -> lsp.CompletionItem:
    """The editor's item of `found`, offered at 0-based `line`, `character` of the text."""
    # a path replaces all of it typed so far: an editor's word ends at its `/`
    edit = None if found.start is None else lsp.TextEdit(
        range=at.range((line, found.start), (line, character)), new_text=found.label)
    return lsp.CompletionItem(
        label=found.label, kind=COMPLETION_KINDS[found.kind], detail=found.detail,
        documentation=description(analysis.family, found.label) or None,
        filter_text=found.label if edit else None, text_edit=edit)


def rename_places(analysis: Analysis, line: int, character: int,
                  new_name: str) -> list[Occurrence]:
    """The occurrences to rewrite to rename the name at 0-based `line`, `character` to
    `new_name`; NetdslError saying why it cannot be."""
    return renamed(analysis, rename_target(analysis, line, character), new_name)


server = NetdslServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
async def did_open(ls: NetdslServer, params: lsp.DidOpenTextDocumentParams) -> None:
    await ls.publish(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
async def did_change(ls: NetdslServer, params: lsp.DidChangeTextDocumentParams) -> None:
    await ls.publish(params.text_document.uri)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: NetdslServer, params: lsp.DidCloseTextDocumentParams) -> None:
    ls.forget(params.text_document.uri)
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
async def hover(ls: NetdslServer, params: lsp.HoverParams) -> lsp.Hover | None:
    analysis = await ls.analysed(params.text_document.uri)
    text = await ls.in_worker(hover_at, analysis,
                              *ls.units(analysis.text).received(params.position))
    return None if text is None else lsp.Hover(contents=lsp.MarkupContent(
        kind=lsp.MarkupKind.PlainText, value=text))


@server.feature(lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
async def document_symbols(ls: NetdslServer, params: lsp.DocumentSymbolParams
                           ) -> list[lsp.DocumentSymbol]:
    analysis = await ls.analysed(params.text_document.uri)
    at = ls.units(analysis.text)
    return [document_symbol(entry, at) for entry in await ls.in_worker(outline, analysis)]


@server.feature(lsp.TEXT_DOCUMENT_INLAY_HINT, lsp.InlayHintOptions(resolve_provider=True))
async def inlay_hints(ls: NetdslServer, params: lsp.InlayHintParams) -> list[lsp.InlayHint]:
    first, last = params.range.start.line, params.range.end.line
    uri = params.text_document.uri
    analysis = await ls.analysed(uri)
    hints = await ls.hints(uri, analysis)
    at = ls.units(analysis.text)
    return [lsp.InlayHint(position=at.position(line, character), label=shape,
                          padding_left=True, data={"uri": uri, "origin": origin})
            for line, character, shape, origin in hints if first <= line <= last]


@server.feature(lsp.INLAY_HINT_RESOLVE)
async def inlay_hint_costs(ls: NetdslServer, hint: lsp.InlayHint) -> lsp.InlayHint:
    """On request, a hint's tooltip: what its call costs."""
    data = hint.data or {}
    known = ls.documents.get(data.get("uri", ""))  # "": no document
    if known is not None and known.analysis is not None:
        analysis = await ls.analysed(data["uri"])
        if analysis.made is None:  # a hint carried from the last text that bound
            analysis = known.last_bound or analysis
        hint.tooltip = call_costs(analysis, tuple(data["origin"]))
    return hint


@server.feature(lsp.TEXT_DOCUMENT_CODE_LENS)
async def code_lens(ls: NetdslServer, params: lsp.CodeLensParams) -> list[lsp.CodeLens]:
    uri = params.text_document.uri
    analysis = await ls.analysed(uri)
    while not await ls.choices_checked(uri, analysis):  # an edit overtook it: the new text's
        analysis = await ls.analysed(uri)
    title = ls.lens(uri, analysis)
    top = lsp.Range(start=lsp.Position(line=0, character=0),
                    end=lsp.Position(line=0, character=0))
    return [] if title is None else [
        lsp.CodeLens(range=top, command=lsp.Command(title=title, command=""))]


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=["(", ",", "-", " ", "/"]))
async def completion(ls: NetdslServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    uri = params.text_document.uri
    analysis = await ls.analysed(uri)
    at = ls.units(analysis.text)
    line, character = at.received(params.position)
    found = await ls.in_worker(completions, analysis, line, character,
                               ls.document(uri).last_bound,
                               typed_trigger(params.context))
    return lsp.CompletionList(is_incomplete=False, items=[
        completion_item(each, analysis, at, line, character) for each in found])


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
async def go_to_definition(ls: NetdslServer, params: lsp.DefinitionParams
                           ) -> lsp.Location | None:
    analysis, occurrence = await ls.named_at(params)
    if occurrence is None:
        return None
    declared = declaration(analysis, occurrence.symbol)
    if declared is None:  # built in: the prelude's, or a primitive
        return ls.builtin_location(occurrence.symbol)
    return location(params.text_document.uri, declared, ls.units(analysis.text))


@server.feature(lsp.TEXT_DOCUMENT_REFERENCES)
async def find_references(ls: NetdslServer, params: lsp.ReferenceParams
                          ) -> list[lsp.Location]:
    analysis, occurrence = await ls.named_at(params)
    if occurrence is None:
        return []
    at = ls.units(analysis.text)
    return [location(params.text_document.uri, o, at)
            for o in references(analysis, occurrence.symbol)
            if params.context.include_declaration or not o.declares]


@server.feature(lsp.TEXT_DOCUMENT_PREPARE_RENAME)
async def prepare_rename(ls: NetdslServer, params: lsp.PrepareRenameParams) -> lsp.Range:
    analysis = await ls.analysed(params.text_document.uri)
    at = ls.units(analysis.text)
    try:
        target = await ls.in_worker(rename_target, analysis, *at.received(params.position))
    except NetdslError as e:
        raise Refused(e.message) from None
    return location(params.text_document.uri, target, at).range


@server.feature(lsp.TEXT_DOCUMENT_RENAME)
async def rename(ls: NetdslServer, params: lsp.RenameParams) -> lsp.WorkspaceEdit:
    uri = params.text_document.uri
    analysis = await ls.analysed(uri)
    at = ls.units(analysis.text)
    try:
        places = await ls.in_worker(rename_places, analysis, *at.received(params.position),
                                    params.new_name)
    except NetdslError as e:
        raise Refused(e.message) from None
    return lsp.WorkspaceEdit(changes={uri: [
        lsp.TextEdit(range=location(uri, o, at).range, new_text=params.new_name)
        for o in places]})


@server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
async def formatting(ls: NetdslServer, params: lsp.DocumentFormattingParams
                     ) -> list[lsp.TextEdit]:
    try:
        source = await ls.current(params.text_document.uri)
    except NetdslError:
        return []
    text = await ls.in_worker(formatted, source, params.text_document.uri)
    if text is None or text == source:  # an edit would mark the buffer modified
        return []
    at = ls.units(source)
    last = len(at.lines) - 1
    return [lsp.TextEdit(range=at.range((0, 0), (last, len(at.lines[last]))), new_text=text)]


def lsp_command() -> int:
    # pygls warns on stderr of an editor's ordinary traffic (a notification the server has no
    # use for, a cancel that came after the answer), and an editor logs each line there as an
    # error; its errors, the server's own failures, still show.
    logging.getLogger("pygls").setLevel(logging.ERROR)
    server.start_io()
    return 0
