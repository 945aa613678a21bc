"""Errors whose message names the arguments it speaks of through a mention: `words(mention)`
is the message, naming each argument as `mention(parameter)` or, with a value,
`mention(parameter, value)` does. Their own text names them as Python passes them
(`dataset='cifar11'`); a caller that knows them by other names words them its way (netdsl's
command line: by its flags). No torch."""
from __future__ import annotations

from typing import Any, Callable

Mention = Callable[..., str]


def argument(parameter: str, *value: Any) -> str:
    """An argument as Python passes it: `data_dir`, or `dataset='cifar11'` with its value."""
    return f"{parameter}={value[0]!r}" if value else parameter


class Worded(Exception):
    """An error worded through a mention (see the module); a plain message names none."""

    def __init__(self, message: str | Callable[[Mention], str]):
        self.words: Callable[[Mention], str] = (
            message if callable(message) else lambda mention: message)
        super().__init__(self.words(argument))


class WordedValueError(Worded, ValueError):
    """A bad value, worded through a mention."""
