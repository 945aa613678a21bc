"""`netdsl lsp` end to end: a real client (pygls's) talks to the server over stdio."""
import asyncio
import json
import os
import queue
import re
import resource
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("pygls", reason="netdsl lsp needs the [lsp] extra")
from lsprotocol import types as lsp  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from conftest import ROOT  # noqa: E402
from netdsl.errors import text_lines  # noqa: E402
from netdsl.editor import analyse, diagnostics_of, hover_at  # noqa: E402

URI = "file:///tmp/netdsl-lsp-test/net.net"
GOOD = "param width = 16\nstem: conv(width) -> bn -> relu\nhead(10)\n"
BAD = "param width = 16\nstem: conv(wdth) -> bn -> relu\nhead(10)\n"


async def session(steps, root_uri=None, publications=None, memory=None, encodings=None):
    """Start the server, initialise, run `steps(client, diagnostics)`, shut down. Each
    publication's diagnostics are appended to `diagnostics`; the whole publication (uri,
    version) to `publications` when given. `memory`: the server's address space, in bytes;
    `encodings`: the position encodings the client offers (None: UTF-16, the protocol's
    default)."""
    client = LanguageClient("netdsl-test", "1")
    diagnostics: list = []

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def published(params):
        diagnostics.append(params.diagnostics)
        if publications is not None:
            publications.append(params)

    limit = (lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory))) if memory else None
    await client.start_io(sys.executable, "-m", "netdsl", "lsp", cwd=str(ROOT), preexec_fn=limit)
    try:
        general = lsp.GeneralClientCapabilities(position_encodings=encodings)
        await client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(general=general), root_uri=root_uri))
        client.initialized(lsp.InitializedParams())
        return await asyncio.wait_for(steps(client, diagnostics), 180)  # a hung server fails
    finally:
        await asyncio.wait_for(client.shutdown_async(None), 10)
        client.exit(None)
        await client.stop()


async def published_after(diagnostics, count):
    """The diagnostics of the `count`th publication, once it arrives (however long the server
    takes on a loaded machine: `session`'s limit fails one that never sends it)."""
    while len(diagnostics) < count:
        await asyncio.sleep(0.05)
    return diagnostics[count - 1]


def test_diagnostics_follow_the_edits_and_requests_are_answered():
    async def steps(client, diagnostics):
        open_text(client, BAD)
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
        assert hover.contents.value.split("\n")[1:] == [  # what it is, then what this call made
            "2-d convolution to c channels; the default padding keeps the size, no bias",
            "node stem: Conv2d -> 16x32x32; 432 weights, 884,736 FLOPs per image"]
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
        assert {"stem", "bn", "relu", "linear"} <= {item.label for item in paths.items}
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
                       "\n}\ntwin(8) -> conv_bn(8)\n", "t")
    assert hover_at(analysis, 1, 7) == "block twin(c, d=2 * c)\nTwo convolutions."
    assert hover_at(analysis, 4, 12).startswith(
        "block conv_bn(c, ks=3)\nconv -> BatchNorm -> ReLU; padding keeps the spatial size.")


def test_hover_over_a_path_shows_the_node_it_reaches():
    text = "layer1(16, res) -> w: add <- layer1/residual/res2/relu, layer1  # x/y\nhead(10)\n"
    analysis = analyse(text, "t")
    shown = {part: hover_at(analysis, 0, text.index(part))
             for part in ("residual", "res2", "relu")}
    assert shown == {
        "residual": "node layer1/residual: Add -> 16x32x32; 4,672 weights, 9,551,872 FLOPs "
                    "per image",
        "res2": "node layer1/residual/res2: ReLU -> 16x32x32; 2,336 weights, 4,767,744 FLOPs "
                "per image",
        "relu": "node layer1/residual/res2/relu: ReLU -> 16x32x32; 0 weights, 16,384 FLOPs "
                "per image"}
    assert hover_at(analysis, 0, text.index("x/y")) is None  # a comment


def test_a_file_with_choices_shows_its_size():
    async def steps(client, diagnostics):
        text = (ROOT / "models" / "nb201.net").read_text()
        open_text(client, text)
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
        open_text(client, text)
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
        open_text(client, text)
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


def test_a_rename_to_choice_is_refused_only_for_what_is_called():
    """`choice(...)` writes a choice, so a parameter naming an op (called `e(8)`) cannot be
    renamed `choice`, and the refusal says so; a parameter used as a value can."""
    text = "param width = 8\nparam e = choice(conv_bn, conv)\nstem: e(width)\nhead(10)\n"

    async def steps(client, diagnostics):
        open_text(client, text)
        assert not await published_after(diagnostics, 1)

        async def rename(line, character):
            return await client.text_document_rename_async(lsp.RenameParams(
                text_document=lsp.TextDocumentIdentifier(uri=URI),
                position=lsp.Position(line=line, character=character), new_name="choice"))
        refusal = "'choice' is the language's own call: choice(...) writes a choice, so 'e', " \
            "called at line 3, cannot take its name"
        with pytest.raises(Exception, match=re.escape(refusal)):
            await rename(1, 6)
        edit = await rename(0, 6)
        assert [(e.range.start.line, e.range.start.character) for e in edit.changes[URI]] == [
            (0, 6), (2, 8)]
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
        open_text(client, text, uri)
        published = await published_after(diagnostics, 1)
        assert [d.message.split(";")[0] for d in published if message in d.message] == \
            [d.message.split(";")[0] for d in published] if message else not published
        assert len(published) == (message is not None)
        await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=lsp.Position(line=0, character=1)))
    asyncio.run(session(steps, root_uri="file:///tmp/netdsl-lsp-test"))


def test_a_file_the_editor_has_not_opened_is_read_or_answered_with_nothing(tmp_path):
    """A request may name any file: one on disk is read; a missing one, one that is not
    UTF-8, a FIFO (opening it would wait for a writer) or a file of gigabytes gets no answer
    rather than an error, and the server goes on answering and shuts down. Only a regular
    file's first MAX_TEXT characters are read: the server runs in 1 GiB of address space, and
    the file is 2 GiB (sparse: no disk)."""
    (tmp_path / "good.net").write_text(GOOD)
    (tmp_path / "bytes.net").write_bytes(b"stem: conv(8)\xff\n")
    os.mkfifo(tmp_path / "fifo.net")
    with open(tmp_path / "huge.net", "wb") as huge:
        huge.truncate(2 << 30)

    async def steps(client, diagnostics):
        async def hover(name):
            return await client.text_document_hover_async(lsp.HoverParams(
                text_document=lsp.TextDocumentIdentifier(uri=(tmp_path / name).as_uri()),
                position=lsp.Position(line=1, character=2)))
        for name in ("bytes.net", "missing.net", "fifo.net", "huge.net"):
            assert await hover(name) is None, name
            assert not await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=(tmp_path / name).as_uri()),
                options=lsp.FormattingOptions(tab_size=4, insert_spaces=True))), name
        assert (await hover("good.net")).contents.value.startswith("node stem")
    asyncio.run(session(steps, memory=1 << 30))


def test_a_large_file_does_not_hold_up_the_others():
    """While a 1 MB file is analysed (seconds), a file already analysed is answered."""
    small, large = URI, "file:///tmp/netdsl-lsp-test/large.net"
    order = []

    async def steps(client, diagnostics):
        open_text(client, GOOD, small)
        await published_after(diagnostics, 1)
        open_text(client, BIG, large)
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=small),
            position=lsp.Position(line=1, character=2)))
        order.append(("hover", len(diagnostics)))
        assert hover.contents.value.startswith("node stem")
        [error] = await published_after(diagnostics, 2)
        assert "more than 20000 nodes" in error.message
    asyncio.run(session(steps))
    assert order == [("hover", 1)]  # answered before the large file's diagnostic came


# Line breaks of every kind an editor counts, and characters str.splitlines breaks at but an
# editor does not (form feed, U+2028, U+0085); characters of 2 (é), 3 (→) and 4 (𝑥) UTF-8 bytes,
# 𝑥 two UTF-16 units.
FRAGMENTS = ["(", ")", "->", "<-", ",", "\n", "\r\n", "\r", " ", "#", "conv", "c", "8", "x:",
             "choice(", "param ", "block b(c) {", "}", "..", "/", "\udcff", "\x00", "é", "→",
             "𝑥", "\x0c", "\u2028", "\x85", "*", "if"]


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
    """The editor's position of `offset`: lines as LSP counts them, characters in UTF-16."""
    before = text_lines(text[:offset])
    return lsp.Position(line=len(before) - 1,
                        character=len(before[-1].encode("utf-16-le", "surrogatepass")) // 2)


def outside_line_breaks(text: str, offset: int) -> int:
    """`offset`, or the one before it where it falls between the \r and \n of a line break
    (no position names that place)."""
    return offset - 1 if text[offset - 1:offset + 1] == "\r\n" else offset


@settings(max_examples=10, deadline=None)  # 140 examples passed once, by hand
@given(edits())
def test_the_server_survives_random_edits(case):
    """Random edits sent as incremental changes, a request of each kind after each: every
    request is answered, and the last diagnostics are check's for the text edited."""
    text, steps = case
    publications: list = []

    async def session_steps(client, diagnostics):
        nonlocal text
        open_text(client, text)
        for version, (start, end, inserted) in enumerate(steps, start=2):
            start, end = (outside_line_breaks(text, at) for at in (start, end))
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
        while not any(p.version == last for p in publications):
            await asyncio.sleep(0.05)
        final = [p for p in publications if p.version == last][-1]
        assert [d.message for d in final.diagnostics] == [
            message for *_, message in diagnostics_of(analyse(text, "net.net"))]
    asyncio.run(session(session_steps, publications=publications))


def change(client, version, edit, start, end=None):
    """Send `edit` in place of the text from `start` to `end` (0-based (line, character)s;
    `end` None: `start`), an incremental change as an editor sends one."""
    end = end or start
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=version),
        content_changes=[lsp.TextDocumentContentChangePartial(
            range=lsp.Range(start=lsp.Position(line=start[0], character=start[1]),
                            end=lsp.Position(line=end[0], character=end[1])),
            text=edit)]))


def test_the_servers_lines_are_the_editors():
    """A line ends at \\n, \\r\\n or \\r only: after a comment with U+2028 and a form feed (which
    str.splitlines breaks at, an editor not) an edit lands where the editor made it, and the
    diagnostic and hover are at the editor's line; a text whose lines end in \\r alone reads as
    the editor shows it."""
    text = "param width = 16\n# pasted\u2028comment\x0c\nstem: conv(width)\nhead(10)\n"

    async def steps(client, diagnostics):
        open_text(client, text)
        assert not await published_after(diagnostics, 1)
        change(client, 2, "wdth", (2, 11), (2, 16))
        [error] = await published_after(diagnostics, 2)
        assert error.message.startswith("unknown name 'wdth'")
        assert ((error.range.start.line, error.range.start.character),
                (error.range.end.line, error.range.end.character)) == ((2, 11), (2, 15))
        change(client, 3, "width", (2, 11), (2, 15))
        assert not await published_after(diagnostics, 3)
        hover = await client.text_document_hover_async(lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=URI),
            position=lsp.Position(line=2, character=2)))
        assert hover.contents.value.startswith("node stem: Conv2d -> 16x32x32")
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=4),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(
                text=BAD.replace("\n", "\r"))]))
        [error] = await published_after(diagnostics, 4)
        assert error.message.startswith("unknown name 'wdth'")
        assert (error.range.start.line, error.range.start.character) == (1, 11)
    asyncio.run(session(steps))


@pytest.mark.parametrize("encodings, units", [
    (None, lambda s: len(s.encode("utf-16-le")) // 2),
    (["utf-8"], lambda s: len(s.encode())),
    (["utf-32"], len),
])
def test_positions_are_counted_in_the_negotiated_units(encodings, units):
    """The diagnostic on 𝑥 (a character of 2 UTF-16 units, 4 UTF-8 bytes) covers it, and an
    edit of it, in the same units, replaces it: the text then binds."""
    line = "stem: conv(16) 𝑥 relu"
    at = line.index("𝑥")
    where = (1, units(line[:at])), (1, units(line[:at + 1]))

    async def steps(client, diagnostics):
        open_text(client, f"# → ok\n{line}\n")
        [error] = await published_after(diagnostics, 1)
        assert error.message == "unexpected character '𝑥'"
        assert ((error.range.start.line, error.range.start.character),
                (error.range.end.line, error.range.end.character)) == where
        change(client, 2, "->", *where)
        assert not await published_after(diagnostics, 2)
    asyncio.run(session(steps, encodings=encodings))


@pytest.mark.parametrize("encoding, width", [("utf-8", lambda s: len(s.encode())),
                                             ("utf-16", lambda s: len(s.encode("utf-16-le")) // 2),
                                             ("utf-32", len)])
def test_a_position_converts_to_the_clients_units_and_back(encoding, width):
    """Each code point of a line to the client's units and back; a position past the line's
    end reads as its end, one inside a character's units as just after it."""
    from pygls.workspace import PositionCodec

    from netdsl.editor.protocol import Units
    text = "a →𝑥é b\r\nx"
    at, line = Units(PositionCodec(encoding), text), "a →𝑥é b"
    for character in range(len(line) + 1):
        sent = at.position(0, character)
        assert (sent.line, sent.character) == (0, width(line[:character]))
        assert at.received(sent) == (0, character)
    assert at.received(lsp.Position(line=0, character=99)) == (0, len(line))
    if encoding != "utf-32":  # inside 𝑥's units
        assert at.received(lsp.Position(line=0, character=width("a →") + 1)) == (0, 4)


def test_a_formatted_crlf_file_gets_no_edit():
    """Formatting a formatted file whose lines end in \\r\\n changes nothing (an edit would mark
    the buffer modified); one that needs formatting keeps its \\r\\n."""
    messy = "param width=16 # channels\r\nstem:conv(width)->bn->relu\r\nhead( 10 )\r\n"

    async def steps(client, diagnostics):
        async def formatting(text, version):
            client.text_document_did_change(lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=URI, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))
            return await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                text_document=lsp.TextDocumentIdentifier(uri=URI),
                options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)))
        open_text(client, "")
        assert not await formatting(GOOD.replace("\n", "\r\n"), 2)
        [edit] = await formatting(messy, 3)
        assert edit.new_text == ("param width = 16  # channels\r\n"
                                 "stem: conv(width) -> bn -> relu\r\nhead(10)\r\n")
        assert (edit.range.end.line, edit.range.end.character) == (3, 0)
    asyncio.run(session(steps))


def test_a_diagnostic_keeps_checks_notes():
    text = "param width = 16\nstem: conv_bn(width, ks=0)\nhead(10)\n"
    [error] = analyse(text, "t").errors
    assert error.notes  # check prints where inside the block the error is

    async def steps(client, diagnostics):
        open_text(client, text)
        [shown] = await published_after(diagnostics, 1)
        assert shown.message == "\n".join([error.message, *(n.strip() for n in error.notes)])
        assert shown.message == ("conv: kernel size ks must be at least 1, got 0\n"
                                 "(inside conv)")  # conv_bn's conv
    asyncio.run(session(steps))


def test_a_stage_named_like_a_block_gets_a_hint():
    """`hed(10)` binds, as a conv stage named hed: a hint says so, where the name is."""
    async def steps(client, diagnostics):
        open_text(client, GOOD.replace("head", "hed"))
        [hint] = await published_after(diagnostics, 1)
        assert hint.severity == lsp.DiagnosticSeverity.Hint
        assert hint.message == "read as a stage named hed; did you mean head?"
        assert ((hint.range.start.line, hint.range.start.character),
                (hint.range.end.line, hint.range.end.character)) == ((2, 0), (2, 3))
    asyncio.run(session(steps))


class RawClient:
    """The server driven over stdio by hand, with messages pygls's client would not send
    (malformed params), and its stderr kept."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, "-m", "netdsl", "lsp"], cwd=ROOT,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
        self.received: queue.Queue = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.send(id=0, method="initialize", params={"capabilities": {}})
        self.answer(0)
        self.send(method="initialized", params={})

    def _read(self) -> None:
        while True:
            length = None
            while (header := self.process.stdout.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            if length is None:
                return
            self.received.put(json.loads(self.process.stdout.read(length)))

    def send(self, **message) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()

    def answer(self, id) -> dict:
        """The response to request `id` (a hung server fails the test after a minute)."""
        while True:
            message = self.received.get(timeout=60)
            if message.get("id") == id and "method" not in message:
                return message

    def close(self) -> str:
        """Shut the server down; what it wrote to stderr."""
        self.send(id="end", method="shutdown")
        self.answer("end")
        self.send(method="exit")
        self.process.stdin.close()
        self.process.wait(30)
        stderr = self.process.stderr.read().decode()
        # Every pipe closed (one left open is a ResourceWarning); stdout once the reader has
        # met its end, which the server's exit brought.
        self.reader.join(30)
        self.process.stdout.close()
        self.process.stderr.close()
        return stderr


def test_refusals_and_the_editors_traffic_leave_stderr_quiet_and_bad_params_are_answered():
    """A refused rename is answered with its reason and nothing on stderr (an editor logs each
    line there as an error), nor are notifications the server has no use for; a request whose
    params are malformed is answered InvalidParams, naming the field, and a malformed
    notification is dropped with one line."""
    client = RawClient()
    document = {"uri": URI}
    client.send(method="textDocument/didOpen", params={"textDocument": {
        **document, "languageId": "netdsl", "version": 1, "text": GOOD}})
    client.send(id=1, method="textDocument/rename", params={
        "textDocument": document, "position": {"line": 1, "character": 7}, "newName": "c"})
    assert client.answer(1)["error"]["message"] == \
        "'conv' is a primitive; it cannot be renamed in this file"
    client.send(method="textDocument/didSave", params={"textDocument": document})
    client.send(method="workspace/didChangeConfiguration", params={"settings": {}})
    client.send(method="$/cancelRequest", params={"id": 12345})
    client.send(id=2, method="textDocument/hover", params={
        "textDocument": document, "position": {"line": "x", "character": 0}})
    error = client.answer(2)["error"]
    assert error["code"] == -32602  # InvalidParams
    assert "expected int @ message.params.position.line" in error["message"]
    client.send(method="textDocument/didChange", params={"textDocument": document})
    client.send(id=3, method="textDocument/hover", params={
        "textDocument": document, "position": {"line": 1, "character": 2}})
    assert client.answer(3)["result"]["contents"]["value"].startswith("node stem")
    [line] = client.close().splitlines()
    assert line.startswith("ignored malformed textDocument/didChange: ")


MODELS = {name: (ROOT / "models" / f"{name}.net").read_text()
          for name in ("airbench94", "resnet9", "nb201")}


def opened(client, name: str, text: str | None = None) -> str:
    """Opens models/NAME.net (or `text` under that name) in the client; its uri."""
    uri = f"file:///tmp/netdsl-lsp-test/{name}.net"
    open_text(client, MODELS[name] if text is None else text, uri)
    return uri


def open_text(client, text: str, uri: str = URI) -> None:
    """Opens `text` in the client as version 1 of the document at `uri`."""
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(text_document=lsp.TextDocumentItem(
        uri=uri, language_id="netdsl", version=1, text=text)))


def changed(client, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)]))


async def hovered(client, uri: str, line: int, character: int) -> str | None:
    hover = await client.text_document_hover_async(lsp.HoverParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=lsp.Position(line=line, character=character)))
    return None if hover is None else hover.contents.value


def test_hover_answers_what_the_name_there_refers_to():
    """Inside a block, a label or a call shows the nodes that call made in each run of the
    block, a line for each shape; a block's parameter and a switch of the callee say what they
    are; none of them is a top-level node that happens to share the name."""
    async def steps(client, diagnostics):
        airbench, resnet9, nb201 = (opened(client, name) for name in MODELS)
        await published_after(diagnostics, 3)
        assert await hovered(client, airbench, 8, 30) == (  # `pool` in `block group`
            "node group1/pool: MaxPool2d -> 64x15x15; 0 weights, 57,600 FLOPs per image\n"
            "node group2/pool: MaxPool2d -> 256x7x7; 0 weights, 50,176 FLOPs per image\n"
            "node group3/pool: MaxPool2d -> 256x3x3; 0 weights, 9,216 FLOPs per image")
        assert await hovered(client, airbench, 15, 1) == (  # the top-level `pool`
            "node pool: MaxPool2d -> 256x1x1; 0 weights, 2,304 FLOPs per image")
        assert await hovered(client, airbench, 7, 12) == "parameter c of block group(c)"
        assert await hovered(client, resnet9, 11, 21) == (  # `pool` given to layer1
            "switch pool of block stage(c, pool=false, res=false, extra=0, ks=3)")
        relu = (await hovered(client, nb201, 19, 5)).split("\n")  # `relu` in relu_conv_bn
        assert relu[0] == "relu(): ReLU"
        assert relu[2].startswith("node cell1/n1/relu, cell1/e2_0/relu, cell1/e2_1/relu, ")
        assert [line.split(": ")[-1].split(";")[0] for line in relu[2:]] == [
            "ReLU -> 16x32x32", "ReLU -> 32x16x16", "ReLU -> 64x8x8"]
        assert "node relu:" not in "\n".join(relu)  # not lastact's relu
        assert await hovered(client, nb201, 43, 16) == (  # `e2_0` read by n2 in every cell
            "node cell1/e2_0, cell1_1/e2_0, cell1_2/e2_0, cell1_3/e2_0, cell1_4/e2_0: BatchNorm"
            " -> 16x32x32; 2,336 weights, 4,767,744 FLOPs per image\n"
            "node cell2/e2_0, cell2_1/e2_0, cell2_2/e2_0, cell2_3/e2_0, cell2_4/e2_0: BatchNorm"
            " -> 32x16x16; 9,280 weights, 4,743,168 FLOPs per image\n"
            "node cell3/e2_0, cell3_1/e2_0, cell3_2/e2_0, cell3_3/e2_0, cell3_4/e2_0: BatchNorm"
            " -> 64x8x8; 36,992 weights, 4,730,880 FLOPs per image")
    asyncio.run(session(steps))


async def completed(client, uri: str, line: int, character: int, typed: str | None = None):
    """The completion items at the place; `typed`: the trigger character just typed."""
    context = lsp.CompletionContext(trigger_kind=lsp.CompletionTriggerKind.Invoked) \
        if typed is None else lsp.CompletionContext(
            trigger_kind=lsp.CompletionTriggerKind.TriggerCharacter, trigger_character=typed)
    found = await client.text_document_completion_async(lsp.CompletionParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        position=lsp.Position(line=line, character=character), context=context))
    return found.items


PAIR = ("param width = 8\nblock pair(c, ks=3) {\n    a: conv(c, ks=ks) -> bn\n"
        "    b: add <- a, bn\n}\nstem: pair(width)\nhead(10)\n")


def test_path_completion_replaces_the_typed_path_with_what_resolves_there():
    """After `<- layer1/re` each item replaces the whole path typed (an editor's word ends at
    `/`) and is one under layer1; in a block's body the paths are its body's, relative."""
    async def steps(client, diagnostics):
        uri = opened(client, "resnet9")
        await published_after(diagnostics, 1)
        typing = MODELS["resnet9"] + "x: add <- layer1/re"  # does not bind: the last text's
        changed(client, uri, 2, typing)
        items = await completed(client, uri, 15, 19)
        assert {"layer1/residual", "layer1/residual/res2/relu", "layer1/conv", "layer1/.."} <= {
            item.label for item in items}
        assert all(item.label.startswith("layer1/") and item.filter_text == item.label
                   and item.text_edit.new_text == item.label
                   and (item.text_edit.range.start.character,
                        item.text_edit.range.end.character) == (10, 19) for item in items)
        pair = opened(client, "pair", PAIR)
        await published_after(diagnostics, 3)
        labels = {item.label for item in await completed(client, pair, 3, 14, " ")}
        assert labels == {"a", "bn", "b", ".."}  # stem's body, relative: not stem/a, head
    asyncio.run(session(steps))


def test_path_completion_in_a_text_that_never_bound_offers_the_paths_of_the_rest_of_it():
    """A file opened with a path half typed has no text that bound: the paths are those of
    the text less the item being typed (the item's own label not among them), at the top
    level and in a block's body, where the item is one of a chain."""
    async def steps(client, diagnostics):
        uri = opened(client, "typing", MODELS["resnet9"] + "x: add <- layer1/re")
        assert await published_after(diagnostics, 1)  # 'layer1/re' is not in the network
        labels = {item.label for item in await completed(client, uri, 15, 19)}
        assert {"layer1/residual", "layer1/residual/res2/relu", "layer1/conv", "layer1/.."
                } <= labels and all(label.startswith("layer1/") for label in labels)
        pair = opened(client, "pair", PAIR.replace("b: add <- a, bn", "b: add <- a, r -> relu"))
        assert await published_after(diagnostics, 2)
        assert {item.label for item in await completed(client, pair, 3, 18)} == {
            "a", "bn", "relu", ".."}
    asyncio.run(session(steps))


def test_completion_offers_names_only_where_a_name_goes():
    """Nothing in a comment, after `param`, or after a space that no name follows; in a
    block's body, the block's own parameters, hiding the file's of the same name."""
    text = ("param width = 8\nparam ks = 5\n# a note \nblock pair(c, ks=3) {\n"
            "    a: conv(c, ks=ks) -> bn\n}\nparam \nstem: pair(width) -> head(10)\n")

    async def steps(client, diagnostics):
        uri = opened(client, "quiet", text.replace("param \n", "\n"))
        await published_after(diagnostics, 1)
        changed(client, uri, 2, text)  # `param ` does not parse: the names are the last text's
        assert not await completed(client, uri, 2, 9, " ")  # `# a note `
        assert not await completed(client, uri, 2, 4)  # in the comment, asked
        assert not await completed(client, uri, 6, 6, " ")  # `param `
        assert not await completed(client, uri, 4, 4, " ")  # indentation
        assert not await completed(client, uri, 4, 22, " ")  # after `conv(c, ks=ks)`
        after_arrow = {item.label for item in await completed(client, uri, 7, 21, " ")}
        assert {"conv", "head", "pair", "width"} <= after_arrow
        inside = {item.label: item.detail for item in await completed(client, uri, 4, 19)}
        assert inside["ks"] == "parameter of block pair, default 3"  # not the file's 5
        assert inside["c"] == "parameter of block pair" and inside["width"] == "= 8"
        outside = {item.label for item in await completed(client, uri, 7, 11)}
        assert "c" not in outside and "ks" in outside  # the file's
    asyncio.run(session(steps))


async def hints_of(client, uri: str) -> list[tuple[int, int, str]]:
    found = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        text_document=lsp.TextDocumentIdentifier(uri=uri),
        range=lsp.Range(start=lsp.Position(line=0, character=0),
                        end=lsp.Position(line=1000, character=0))))
    return [(h.position.line, h.position.character, h.label) for h in found]


async def lens_of(client, uri: str) -> list[str]:
    return [lens.command.title for lens in await client.text_document_code_lens_async(
        lsp.CodeLensParams(text_document=lsp.TextDocumentIdentifier(uri=uri)))]


def test_an_error_keeps_the_last_hints_and_lens_and_a_repeat_is_hinted_after_its_count():
    """While the text does not bind, the hints of the last text that did stay where their
    lines are unchanged (moved with them), the others go; the code lens stays. A repeated
    call's hint follows its `* N`."""
    text = MODELS["nb201"]
    lines = text.split("\n")
    broken = text.replace("cell2: cell(2 * C) * N", "cell2: cell(2 * Q) * N")

    async def steps(client, diagnostics):
        uri = opened(client, "nb201")
        await published_after(diagnostics, 1)
        hints, lens = await hints_of(client, uri), await lens_of(client, uri)
        assert (62, len("cell1: cell(C) * N"), "16x32x32") in hints and lines[62].endswith("N")
        assert lens == ["6 choice points, 15,625 networks"]
        changed(client, uri, 2, broken)
        assert await published_after(diagnostics, 2)  # unknown name 'Q'
        assert await hints_of(client, uri) == [hint for hint in hints if hint[0] != 64]
        assert await lens_of(client, uri) == lens
        changed(client, uri, 3, "x = 1\n" + text)  # does not parse
        assert await published_after(diagnostics, 3)
        moved = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=lsp.Range(start=lsp.Position(line=0, character=0),
                            end=lsp.Position(line=1000, character=0))))
        assert [(h.position.line - 1, h.position.character, h.label) for h in moved] == hints
        costs = await client.inlay_hint_resolve_async(moved[0])  # `stem`'s, as it was
        assert costs.tooltip == "432 weights, 884,736 FLOPs per image"
        assert await lens_of(client, uri) == lens
    asyncio.run(session(steps))


def test_the_outline_nests_a_blocks_parameters_and_labels_in_its_body():
    async def steps(client, diagnostics):
        uri = opened(client, "airbench94")
        await published_after(diagnostics, 1)
        symbols = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri)))

        def span(s):
            return (s.range.start.line, s.range.start.character, s.range.end.line,
                    s.range.end.character)
        assert [(s.name, s.detail) for s in symbols] == [
            ("width", "param"), ("classes", "param"), ("group", "block"), ("whiten", "label"),
            ("group1", "label"), ("group2", "label"), ("group3", "label"), ("pool", "label"),
            ("logits", "label")]
        group = symbols[2]
        assert span(group) == (7, 0, 11, 1)  # `block group(c) {` to its `}`
        assert (group.selection_range.start.line, group.selection_range.start.character) == (7, 6)
        assert [(s.name, s.detail, span(s)) for s in group.children] == [
            ("c", "formal", (7, 12, 7, 13)), ("conv1", "label", (8, 4, 8, 25)),
            ("pool", "label", (8, 29, 8, 45)), ("bn1", "label", (8, 49, 8, 94)),
            ("conv2", "label", (10, 4, 10, 25)), ("bn2", "label", (10, 29, 10, 74))]
        assert span(symbols[0]) == (2, 0, 2, 16)  # `param width = 64`
        assert span(symbols[4]) == (14, 0, 14, 20)  # `group1: group(width)`
    asyncio.run(session(steps))


def test_definition_of_what_netdsl_builds_in_leads_to_where_it_is_written():
    """A prelude block and a switch of one: into the installed prelude file; a primitive: to
    its record in netdsl/graph/primitives.py."""
    async def steps(client, diagnostics):
        resnet9, airbench = opened(client, "resnet9"), opened(client, "airbench94")
        await published_after(diagnostics, 2)

        async def written(uri, line, character):
            found = await client.text_document_definition_async(lsp.DefinitionParams(
                text_document=lsp.TextDocumentIdentifier(uri=uri),
                position=lsp.Position(line=line, character=character)))
            path = found.uri.removeprefix("file://")
            start, end = found.range.start, found.range.end
            found_line = Path(path).read_text().split("\n")[start.line]
            return path.rsplit("/", 1)[-1], found_line[start.character:end.character], found_line
        file, name, line = await written(resnet9, 14, 6)  # head(classes, ...)
        assert (file, name) == ("prelude.net", "head") and line.startswith("block head(")
        file, name, line = await written(resnet9, 11, 21)  # the switch pool of stage
        assert (file, name) == ("prelude.net", "pool") and line.startswith("block stage(")
        file, name, line = await written(airbench, 8, 12)  # conv(c, dirac)
        assert (file, name) == ("primitives.py", "conv") and 'Primitive("conv",' in line
    asyncio.run(session(steps))


def test_the_choices_are_checked_after_the_first_diagnostics_are_out():
    """The default binding's diagnostics come at once; checking every option (30 bindings of
    models/nb201.net) comes after, with a second publication only when it finds an error."""
    text = "param p = choice(2, 64)\nstem: conv(16) -> maxpool(p)\nhead(10)\n"
    publications: list = []

    async def steps(client, diagnostics):
        uri = opened(client, "late", text)
        await published_after(diagnostics, 2)
        assert [[d.message for d in p.diagnostics] for p in publications] == [
            [], ["with p = 64: maxpool: kernel size 64 is larger than the 32x32 input"]]
        assert {p.version for p in publications} == {1}
        assert await lens_of(client, uri) == []  # an option does not fit: no lens
    asyncio.run(session(steps, publications=publications))
