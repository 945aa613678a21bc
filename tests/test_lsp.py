"""`netdsl lsp` end to end: a real client (pygls's) talks to the server over stdio."""
import asyncio
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pygls", reason="netdsl lsp needs the [lsp] extra")
from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from conftest import ROOT  # noqa: E402
from netdsl.lsp import analyse, hover_text, path_at  # noqa: E402

URI = "file:///tmp/netdsl-lsp-test/net.net"
GOOD = "param width = 16\nstem: conv(width) -> bn -> relu\nhead(10)\n"
BAD = "param width = 16\nstem: conv(wdth) -> bn -> relu\nhead(10)\n"


async def session(steps, root_uri=None, publications=None):
    """Start the server, initialise, run `steps(client, diagnostics)`, shut down. Each
    publication's diagnostics are appended to `diagnostics`; the whole publication (uri,
    version) to `publications` when given."""
    client = LanguageClient("netdsl-test", "1")
    diagnostics: list = []

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params):
        diagnostics.append(params.diagnostics)
        if publications is not None:
            publications.append(params)

    await client.start_io(sys.executable, "-m", "netdsl", "lsp", cwd=str(ROOT))
    try:
        await client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=root_uri))
        client.initialized(lsp.InitializedParams())
        return await asyncio.wait_for(steps(client, diagnostics), 180)  # a hung server fails
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        await client.stop()


async def published_after(diagnostics, count, seconds=10):
    """The diagnostics of the `count`th publication, once it arrives."""
    for _ in range(int(seconds / 0.05)):
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
        assert hover.contents.value.endswith("\n2-d convolution to c channels; the default "
                                             "padding keeps the size, no bias")
        hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            range=lsp.Range(start=lsp.Position(line=0, character=0),
                            end=lsp.Position(line=3, character=0))))
        assert [(h.position.line, h.position.character, h.label) for h in hints] == [
            (1, 17, "16x32x32"), (1, 23, "16x32x32"), (1, 31, "16x32x32"), (2, 8, "10")]
        costs = await client.inlay_hint_resolve_async(hints[0])  # on request: what it costs
        assert costs.tooltip == "432 weights, 884,736 FLOPs per image"
        assert not await client.text_document_code_lens_async(lsp.CodeLensParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI)))  # no choices: no lens
        symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI)))
        assert [(s.name, s.detail, s.range.start.line) for s in symbols] == [
            ("width", "param", 0), ("stem", "label", 1)]
        uses = await client.text_document_references_async(lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=0, character=7),
            context=lsp.ReferenceContext(include_declaration=False)))
        assert [(u.range.start.line, u.range.start.character) for u in uses] == [(1, 11)]

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
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=4),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(
                text="param width = 16\nstem: conv_bn(")]))  # does not parse
        arguments = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=1, character=14)))
        assert [(item.label, item.detail) for item in arguments.items] == [
            ("c=", ""), ("ks=", "default 3"), ("width", "= 16")]  # the last family's width
        anything = await client.text_document_completion_async(lsp.CompletionParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=2, character=0)))
        labels = {item.label: item.detail for item in anything.items}
        assert labels["width"] == "= 16" and labels["conv_bn"] == "block conv_bn(c, ks=3)"
        assert labels["relu"] == "relu(): ReLU"

        messy = "param width=16 # channels\nstem:conv(width)->bn->relu\nhead( 10 )\n"
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=5),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=messy)]))
        [edit] = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
        assert edit.new_text == ("param width = 16  # channels\n"
                                 "stem: conv(width) -> bn -> relu\nhead(10)\n")
    asyncio.run(session(steps))


def test_hover_says_what_a_block_is():
    """A block's signature with its defaults, and the comment written above it."""
    analysis = analyse("# Two convolutions.\nblock twin(c, d=2*c) {\n    a: conv(c) -> b: conv(d)"
                       "\n}\ntwin(8)\n", "t")
    assert hover_text(analysis, "twin") == "block twin(c, d=2 * c)\nTwo convolutions."
    assert hover_text(analysis, "conv_bn") == ("block conv_bn(c, ks=3)\n"
                                               "conv -> BatchNorm -> ReLU; padding keeps the "
                                               "spatial size.")


def test_hover_over_a_path_shows_the_node_it_reaches():
    text = "layer1(16, res) -> w: add <- layer1/residual/res2/relu, layer1  # x/y\nhead(10)\n"
    analysis = analyse(text, "t")
    shown = {part: hover_text(analysis, path_at(text, 0, text.index(part)))
             for part in ("residual", "res2", "relu")}
    assert shown == {
        "residual": "node layer1/residual: Add -> 16x32x32; 4,672 weights, 9,551,872 FLOPs "
                    "per image",
        "res2": "node layer1/residual/res2: ReLU -> 16x32x32; 2,336 weights, 4,767,744 FLOPs "
                "per image",
        "relu": "node layer1/residual/res2/relu: ReLU -> 16x32x32; 0 weights, 16,384 FLOPs "
                "per image"}
    assert path_at(text, 0, text.index("x/y")) is None  # a comment


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


def test_rename_rewrites_the_uses_and_refuses_what_it_cannot():
    text = (ROOT / "models" / "resnet9.net").read_text()

    async def steps(client, diagnostics):
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="netdsl", version=1,
                                               text=text)))
        await published_after(diagnostics, 1)
        where = lsp.Position(line=11, character=14)  # `layer1` given to the stage layer1
        target = await client.text_document_prepare_rename_async(lsp.PrepareRenameParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI), position=where))
        assert (target.start.character, target.end.character) == (12, 18)
        edit = await client.text_document_rename_async(lsp.RenameParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI), position=where,
            new_name="width1"))
        assert [(e.range.start.line, e.range.start.character, e.new_text)
                for e in edit.changes[URI]] == [(4, 6, "width1"), (11, 12, "width1")]
        with pytest.raises(Exception, match="'res' is built into netdsl"):
            await client.text_document_prepare_rename_async(lsp.PrepareRenameParams(
                text_document=lsp.TextDocumentIdentifier(uri=URI),
                position=lsp.Position(line=11, character=27)))
        with pytest.raises(Exception, match="would break the file: parameter 'prep' is declared"):
            await client.text_document_rename_async(lsp.RenameParams(
                text_document=lsp.TextDocumentIdentifier(uri=URI), position=where,
                new_name="prep"))
    asyncio.run(session(steps))


BIG = "stem: conv(16)\n" + "conv(16) -> relu\n" * 58_000  # 986,014 characters


@pytest.mark.parametrize("uri, text, message", [
    ("untitled:Untitled-1", BAD, "unknown name 'wdth'"),  # an unsaved buffer
    ("file:///elsewhere/net.net", GOOD, None),  # outside the folder the editor opened
    ("file:///tmp/x.net", "block conv_bn(c) { conv(c) }\nconv_bn(3)\n",
     "'conv_bn' is a built-in block"),  # a prelude name shadowed
    ("file:///tmp/x.net", "param relu = 3\nconv(relu) -> relu\n", None),
    ("file:///tmp/x.net", "block b(c) { relu if false }\nblock d(c) { b(c) * 1000 }\n"
     "block e(c) { d(c) * 1000 }\ne(3)\n", "more than 200,000 steps"),  # the work limit
    ("file:///tmp/x.net", BIG, "more than 20000 nodes"),  # a 1 MB file
    ("file:///tmp/x.net", BIG + "relu\n" * 4000, "a network is at most 1,000,000"),
])
def test_bad_input_gets_a_diagnostic_or_nothing(uri, text, message):
    async def steps(client, diagnostics):
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="netdsl", version=1,
                                               text=text)))
        published = await published_after(diagnostics, 1, seconds=60)
        assert [d.message.split(";")[0] for d in published if message in d.message] == \
            [d.message.split(";")[0] for d in published] if message else not published
        assert len(published) == (message is not None)
        await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=0, character=1)))
    asyncio.run(session(steps, root_uri="file:///tmp/netdsl-lsp-test"))


def test_a_file_the_editor_has_not_opened_is_read_or_answered_with_nothing(tmp_path):
    """A request may name any file: one on disk is read; a missing one, or one that is not
    UTF-8, gets no answer rather than an error."""
    (tmp_path / "good.net").write_text(GOOD)
    (tmp_path / "bytes.net").write_bytes(b"stem: conv(8)\xff\n")

    async def steps(client, diagnostics):
        async def hover(name):
            return await client.text_document_hover_async(lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=(tmp_path / name).as_uri()),
                position=lsp.Position(line=1, character=2)))
        assert (await hover("good.net")).contents.value.startswith("node stem")
        assert await hover("bytes.net") is None and await hover("missing.net") is None
        assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=(tmp_path / "bytes.net").as_uri()),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
    asyncio.run(session(steps))


def test_a_large_file_does_not_hold_up_the_others():
    """While a 1 MB file is analysed (seconds), a file already analysed is answered."""
    small, large = URI, "file:///tmp/netdsl-lsp-test/large.net"
    order = []

    async def steps(client, diagnostics):
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=small, language_id="netdsl", version=1,
                                               text=GOOD)))
        await published_after(diagnostics, 1)
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=large, language_id="netdsl", version=1,
                                               text=BIG)))
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=small),
            position=lsp.Position(line=1, character=2)))
        order.append(("hover", len(diagnostics)))
        assert hover.contents.value.startswith("node stem")
        [error] = await published_after(diagnostics, 2, seconds=60)
        assert "more than 20000 nodes" in error.message
    asyncio.run(session(steps))
    assert order == [("hover", 1)]  # answered before the large file's diagnostic came


FRAGMENTS = ["(", ")", "->", "<-", ",", "\n", " ", "#", "conv", "c", "8", "x:", "choice(",
             "param ", "block b(c) {", "}", "..", "/", "\udcff", "\x00", "é", "*", "if"]


@st.composite
def edits(draw):
    """A text and edits of it: (start, end, inserted), offsets into the text before each."""
    text = draw(st.sampled_from([GOOD] + [(ROOT / "models" / name).read_text()
                                          for name in ("resnet9.net", "nb201.net")]))
    steps, length = [], len(text)
    for _ in range(draw(st.integers(1, 12))):
        start = draw(st.integers(0, length))
        end = draw(st.integers(start, min(length, start + 6)))
        inserted = "".join(draw(st.lists(st.sampled_from(FRAGMENTS), max_size=4)))
        steps.append((start, end, inserted))
        length += len(inserted) - (end - start)
    return text, steps


def position(text: str, offset: int) -> lsp.Position:
    before = text[:offset].split("\n")
    return lsp.Position(line=len(before) - 1, character=len(before[-1]))


@settings(max_examples=10, deadline=None)  # 140 examples passed once, by hand
@given(edits())
def test_the_server_survives_random_edits(case):
    """Random edits sent as incremental changes, a request of each kind after each: every
    request is answered, and the last diagnostics are check's for the text edited."""
    text, steps = case
    publications: list = []

    async def session_steps(client, diagnostics):
        nonlocal text
        client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=URI, language_id="netdsl", version=1,
                                               text=text)))
        for version, (start, end, inserted) in enumerate(steps, start=2):
            change = lsp.TextDocumentContentChangePartial(
                range=lsp.Range(start=position(text, start), end=position(text, end)),
                text=inserted)
            text = text[:start] + inserted + text[end:]
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[change]))
            document = lsp.TextDocumentIdentifier(uri=URI)
            at = position(text, start + len(inserted))
            await client.text_document_hover_async(lsp.HoverParams(
                text_document=document, position=at))
            await client.text_document_completion_async(lsp.CompletionParams(
                text_document=document, position=at))
            await client.text_document_definition_async(lsp.DefinitionParams(
                text_document=document, position=at))
            await client.text_document_references_async(lsp.ReferenceParams(
                text_document=document, position=at,
                context=lsp.ReferenceContext(include_declaration=True)))
            await client.text_document_inlay_hint_async(lsp.InlayHintParams(
                text_document=document, range=lsp.Range(
                    start=lsp.Position(line=0, character=0), end=at)))
            await client.text_document_code_lens_async(lsp.CodeLensParams(
                text_document=document))
            await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
                text_document=document))
            await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                text_document=document,
                options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
        last = len(steps) + 1
        for _ in range(400):
            if any(p.version == last for p in publications):
                break
            await asyncio.sleep(0.05)
        final = [p for p in publications if p.version == last][-1]
        assert [d.message for d in final.diagnostics] == [
            e.message for e in analyse(text, "net.net").errors]
    asyncio.run(session(session_steps, publications=publications))
