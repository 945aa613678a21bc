"""Records as JSON: what `run --json`, a search's stored trials, `trials --json`/`--csv` and
`score --json` write, whatever values the network took.

A parameter's value is not always JSON as it is: `param e = conv_bn` binds an op (a
`Callee`), which a record holds by its name. Every writer of a record goes through `plain`
(or `to_json`), so a new kind of value needs teaching here once, not in each writer.
"""
from __future__ import annotations

import json
from typing import Any

from .choices import Callee


def plain(value: Any) -> Any:
    """`value` as JSON holds it: an op by its name, a tuple as a list, a mapping's keys as
    text; numbers, text, true/false and None as they are. Anything else is left for
    json.dumps to refuse: a value no record should hold is a bug to see."""
    if isinstance(value, Callee):
        return value.name
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def to_json(value: Any, indent: int | None = 1) -> str:
    """`value` as JSON text, through `plain`."""
    return json.dumps(plain(value), indent=indent)
