"""pygls's protocol as `netdsl lsp` speaks it to an editor (pygls is the `[lsp]` extra: only the
server imports this).

- A document's lines are the editor's: pygls applies an incremental edit to the lines
  str.splitlines makes, which also end at a form feed or U+2028, so its copy of a text with
  one drifts from the editor's. Here a line ends at \\n, \\r\\n or \\r (`errors.LINE_BREAK`).
- Positions are in the units negotiated at initialize: UTF-16 code units unless the client
  asked for UTF-8 or UTF-32; the server counts code points. `Units` converts both ways, and
  every position received or sent passes through it.
- A request the server declines (`Refused`) is answered with the reason and logs nothing: an
  editor shows each line the server writes to stderr as an error.
- A message whose params do not fit its method is answered InvalidParams when it is a request
  (pygls answers nothing, and the editor waits), dropped with one line to stderr when it is a
  notification.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from cattrs import transform_error
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.workspace import PositionCodec, TextDocument, Workspace

from ..errors import text_lines

logger = logging.getLogger(__name__)

LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")  # one line with its end (`LINE_BREAK`)


class Refused(JsonRpcException):
    """A request the server declines, with why: the editor shows the message."""

    def __init__(self, reason: str):
        super().__init__(reason, code=types.LSPErrorCodes.RequestFailed)


class Units:
    """The positions of one text, between the server's (0-based line, code point) and the
    client's (0-based line, the negotiated units)."""

    def __init__(self, codec: PositionCodec, text: str):
        self.codec, self.lines = codec, text_lines(text)

    def _line(self, line: int) -> str:
        return self.lines[line] if 0 <= line < len(self.lines) else ""

    def position(self, line: int, character: int) -> types.Position:
        """The client's position of code point `character` of `line`."""
        text = self._line(line)[:character]
        units = len(text) if text.isascii() else self.codec.client_num_units(text)
        return types.Position(line=line, character=units)

    def range(self, start: tuple[int, int], end: tuple[int, int]) -> types.Range:
        """The client's range from (line, character) `start` to `end`, in code points."""
        return types.Range(start=self.position(*start), end=self.position(*end))

    def received(self, position: types.Position) -> tuple[int, int]:
        """The server's (line, code point) of the client's `position`; past a line's end, its
        end (as the protocol says), and inside a character's units, just after it."""
        text = self._line(position.line)
        if text.isascii():
            return position.line, min(position.character, len(text))
        units = 0
        for index, char in enumerate(text):
            if units >= position.character:
                return position.line, index
            units += self.codec.client_num_units(char)
        return position.line, len(text)


class EditorDocument(TextDocument):
    """pygls's document, whose lines (which its incremental edits and position conversions
    read) end where the editor's do."""

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(LINE.findall(self.source))


class EditorWorkspace(Workspace):
    """pygls's workspace, whose documents are EditorDocuments."""

    def _create_text_document(self, doc_uri: str, source: str | None = None,
                              version: int | None = None,
                              language_id: str | None = None) -> TextDocument:
        return EditorDocument(doc_uri, source=source, version=version, language_id=language_id,
                              sync_kind=self._sync_kind, position_codec=self.position_codec)


@dataclass
class Malformed:
    """A message whose params do not fit its method: `id` None for a notification."""

    id: int | str | None
    method: str
    reasons: list[str]  # cattrs's, each naming the field (`... @ message.params.position.line`)


class EditorProtocol(LanguageServerProtocol):
    """pygls's protocol with the changes the module's docstring lists."""

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        result = yield from super().lsp_initialize(params)
        made = self.workspace  # pygls's, with what initialize negotiated; no document open yet
        self._workspace = EditorWorkspace(made.root_uri, made._sync_kind,
                                          list(made.folders.values()), made.position_encoding)
        return result

    def structure_message(self, data: dict):
        if "jsonrpc" not in data or "method" not in data:  # a nested object, or a response
            return super().structure_message(data)
        kind = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        try:
            return self._converter.structure(data, self.get_message_type(data["method"]) or kind)
        except Exception as e:  # cattrs's errors, whose tree transform_error reads
            return Malformed(data.get("id"), str(data["method"]), transform_error(e, "message"))

    def handle_message(self, message) -> None:
        if not isinstance(message, Malformed):
            return super().handle_message(message)
        reason = f"malformed {message.method}: {'; '.join(message.reasons)}"
        if message.id is None:
            logger.warning("ignored %s", reason)
        else:
            self._send_response(message.id,
                                error=JsonRpcInvalidParams(reason).to_response_error())

    def _send_handler_result(self, future, *, msg_id) -> None:
        refusal = None if future.cancelled() else future.exception()
        if isinstance(refusal, Refused):
            self._request_futures.pop(msg_id, None)
            self._send_response(msg_id, error=refusal.to_response_error())
        else:
            super()._send_handler_result(future, msg_id=msg_id)
