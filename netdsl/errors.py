"""The one error type netdsl raises for bad networks, bad DSL text and bad requests, and the
exit codes of the command line."""
from __future__ import annotations

from dataclasses import dataclass

# The exit codes of every netdsl command.
EXIT_OK = 0
EXIT_BAD_INPUT = 2     # bad DSL text, file, flag or value: a NetdslError, printed, no traceback
EXIT_DIVERGED = 3      # the training loss stopped being finite
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


@dataclass(frozen=True)
class Location:
    """A place in DSL text: the source's name, its text, and a 1-based line and column."""

    source: str
    text: str
    line: int
    column: int

    def excerpt(self) -> str:
        """The offending line with a caret under the column."""
        lines = self.text.splitlines()
        if not 1 <= self.line <= len(lines):
            return ""
        line = lines[self.line - 1].expandtabs(1)
        return f"    {line}\n    {' ' * (self.column - 1)}^"


class NetdslError(Exception):
    """A network, DSL text or request that netdsl cannot use.

    `message` says what is wrong; `location`, when the problem is in DSL text, says where.
    `str(error)` gives `file:line:column: message`, the line, and a caret under the column.
    """

    def __init__(self, message: str, location: Location | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.location = location
        self.notes = notes

    def __str__(self) -> str:
        if self.location is None:
            text = self.message
        else:
            where = self.location
            text = f"{where.source}:{where.line}:{where.column}: {self.message}"
            excerpt = where.excerpt()
            if excerpt:
                text += "\n" + excerpt
        return "\n".join([text, *self.notes])
