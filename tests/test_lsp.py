"""`netdsl lsp` end to end: a real client (pygls's) talks to the server over stdio."""
import asyncio
import sys

import pytest

pytest.importorskip("pygls", reason="netdsl lsp needs the [lsp] extra")
from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from conftest import ROOT  # noqa: E402

URI = "file:///tmp/netdsl-lsp-test/net.net"
GOOD = "param width = 16\nstem: conv(width) -> bn -> relu\nhead(10)\n"
BAD = "param width = 16\nstem: conv(wdth) -> bn -> relu\nhead(10)\n"


async def session(steps):
    """Start the server, initialise, run `steps(client, diagnostics)`, shut down."""
    client = LanguageClient("netdsl-test", "1")
    diagnostics: list = []

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params):
        diagnostics.append(params.diagnostics)

    await client.start_io(sys.executable, "-m", "netdsl", "lsp", cwd=str(ROOT))
    try:
        await client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=None))
        client.initialized(lsp.InitializedParams())
        return await steps(client, diagnostics)
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        await client.stop()


async def published_after(diagnostics, count):
    """The diagnostics of the `count`th publication, once it arrives."""
    for _ in range(200):
        if len(diagnostics) >= count:
            return diagnostics[count - 1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} publications expected, {len(diagnostics)} came")


def test_diagnostics_follow_the_edits_and_requests_are_answered():
    async def steps(client, diagnostics):
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="netdsl", version=1,
                                               text=BAD)))
        [error] = await published_after(diagnostics, 1)
        assert error.message.startswith("unknown name 'wdth': not a parameter")  # as check
        assert (error.range.start.line, error.range.start.character) == (1, 11)
        assert (error.range.end.line, error.range.end.character) == (1, 15)
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=GOOD)]))
        assert not await published_after(diagnostics, 2)  # the error is gone

        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=1, character=2)))
        assert hover.contents.value == ("node stem: Conv2d -> 16x32x32; 432 weights, "
                                        "884,736 FLOPs per image")
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=1, character=8)))
        assert hover.contents.value.startswith("conv(c, ks=3")
        hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(start=lsp.Position(line=0, character=0),
                            end=lsp.Position(line=3, character=0))))
        assert [(h.position.line, h.position.character, h.label) for h in hints] == [
            (1, 17, "16x32x32"), (1, 23, "16x32x32"), (1, 31, "16x32x32"), (2, 8, "10")]
        assert not await client.text_document_code_lens_async(lsp.CodeLensParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI)))  # no choices: no lens
        symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI)))
        assert [(s.name, s.detail, s.range.start.line) for s in symbols] == [
            ("width", "param", 0), ("stem", "label", 1)]

        definition = await client.text_document_definition_async(lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=1, character=13)))  # conv(width): the param's use
        assert (definition.range.start.line, definition.range.start.character) == (0, 6)

        typing = GOOD + "x: add <- st"  # half typed: does not bind, the paths are the last's
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=3),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=typing)]))
        paths = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=3, character=12)))
        assert {"stem", "bn", "relu", "linear", ".."} <= {item.label for item in paths.items}
        keywords = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=1, character=11)))  # inside conv(
        assert [item.label for item in keywords.items][:3] == ["c=", "ks=", "stride="]
        anything = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=2, character=0)))
        labels = {item.label: item.detail for item in anything.items}
        assert labels["width"] == "= 16" and labels["conv_bn"] == "block conv_bn(c, ks)"
        assert labels["relu"] == "relu(): ReLU"

        messy = "param width=16 # channels\nstem:conv(width)->bn->relu\nhead( 10 )\n"
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=4),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=messy)]))
        [edit] = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
        assert edit.new_text == ("param width = 16  # channels\n"
                                 "stem: conv(width) -> bn -> relu\nhead(10)\n")
    asyncio.run(session(steps))


def test_a_file_with_choices_shows_its_size():
    async def steps(client, diagnostics):
        text = (ROOT / "models" / "nb201.net").read_text()
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="netdsl", version=1,
                                               text=text)))
        assert not await published_after(diagnostics, 1)
        [lens] = await client.text_document_code_lens_async(lsp.CodeLensParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI)))
        assert lens.command.title == "6 choice points, 15,625 networks"
    asyncio.run(session(steps))


@pytest.mark.parametrize("text", ["stem: conv(", "a(((((", "\udcff\x00 -> -> <-", "",
                                  "block b(c) { b(c) }\nb(3)", "param x = choice()\n"])
def test_the_server_answers_any_text(text):
    """Half-typed calls, unbalanced parentheses, bytes that are no text, recursion: a
    diagnostic or nothing, and the server still answers."""
    async def steps(client, diagnostics):
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="netdsl", version=1,
                                               text=text)))
        published = await published_after(diagnostics, 1)
        assert all(d.message for d in published)
        await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=0, character=1)))
        await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
    asyncio.run(session(steps))
