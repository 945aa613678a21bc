"""The one error type netdsl raises for bad networks, bad DSL text and bad requests, where in
DSL text it is (lines counted as an editor counts them), and the exit codes of the command
line."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

# The exit codes of every netdsl command.
EXIT_OK = 0
EXIT_BAD_INPUT = 2     # bad DSL text, file, flag or value: a NetdslError, printed, no traceback
EXIT_DIVERGED = 3      # the training loss stopped being finite
EXIT_FAILED = 4        # a search whose every trial failed
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
# A training's status (netdsl_runtime's Result.status) -> the exit code of the command that ran
# it; "stopped" (a pruner's, or a reporter's) is not a run's to end with.
EXIT_OF_STATUS = {"finished": EXIT_OK, "diverged": EXIT_DIVERGED,
                  "interrupted": EXIT_INTERRUPTED}

# What ends a line of DSL text: what the Language Server Protocol (and so an editor) counts.
# str.splitlines also breaks at form feed, U+2028 and others, which an editor shows inside a
# line: lines counted so would drift from the editor's, and from the parser's.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def text_lines(text: str) -> list[str]:
    """`text`'s lines without their ends, split at LINE_BREAK only; a text that ends in a line
    break has an empty last line (where an editor's cursor may stand)."""
    return LINE_BREAK.split(text)


@dataclass(frozen=True)
class Location:
    """A place in DSL text: the source's name, its text, and a 1-based line and column."""

    source: str
    text: str
    line: int
    column: int

    def excerpt(self) -> str:
        """The offending line with a caret under the column."""
        lines = text_lines(self.text)
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


# How a message names an argument: mention("device") or, with its value,
# mention("device", "cuda:9").
Mention = Callable[..., str]


def argument(parameter: str, *value: Any) -> str:
    """An argument as Python passes it: `batch_size`, or `batch_size=600` with its value."""
    return f"{parameter}={value[0]!r}" if value else parameter


class ArgumentError(NetdslError):
    """A bad argument of a library call, in a message that names each argument it speaks of
    through a Mention: `words(mention)` is the message. Its own text names them as Python
    passes them (`device='cuda:9'`, `argument`); the command line, where the values come
    from flags, names the flags instead (`--device cuda:9`: commands.flags.flag_mention)."""

    def __init__(self, words: Callable[[Mention], str]):
        super().__init__(words(argument))
        self.words = words


def refusal(what: str | tuple[Any, ...], reason: str, between: str = ": ") -> NetdslError:
    """`what` refused: "{what}{between}{reason}". `what` names what is refused in words, or
    is the argument that asked, (parameter,) or (parameter, value), which the ArgumentError
    names as its caller gave it."""
    if isinstance(what, str):
        return NetdslError(f"{what}{between}{reason}")
    return ArgumentError(lambda given: f"{given(*what)}{between}{reason}")
