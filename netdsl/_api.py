"""Reading networks: from DSL text, from a .net file, or from a graph already built."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

from ._lang import Source, declared_parameters, parse_source
from .errors import NetdslError
from .graph import Graph, Nested, flatten
from .ops import Shape

DEFAULT_INPUT_SHAPE: Shape = (3, 32, 32)  # CIFAR images: channels, height, width

NetworkLike = Union[str, "os.PathLike[str]", Nested, Graph]


def parse(text: str, /, params: dict[str, Any] | None = None, *, source: str = "<string>",
          input_shape: Shape = DEFAULT_INPUT_SHAPE, **bindings: Any) -> Nested:
    """DSL text -> Page's nested dict of Ops, checked against `input_shape`.

    Parameters the text declares (`param width = 64`) are bound by keyword (`width=32`) or by
    `params` (for names that clash with these keywords). Raises NetdslError, with the line and
    column, for any problem in the text.
    """
    values = {**(params or {}), **bindings}
    return parse_source(Source(source, text), values, tuple(input_shape))


def load(path: str | os.PathLike[str], /, params: dict[str, Any] | None = None, *,
         input_shape: Shape = DEFAULT_INPUT_SHAPE, **bindings: Any) -> Nested:
    """A `.net` file -> Page's nested dict of Ops; parameters as for `parse`."""
    return parse(read_text(path), params, source=str(path), input_shape=input_shape, **bindings)


def parameters(text: str, /, *, source: str = "<string>") -> dict[str, Any]:
    """The parameters DSL text declares, with their defaults: `{"width": 64, "deep": False}`."""
    return declared_parameters(Source(source, text))


def read_text(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise NetdslError(f"cannot read {path}: {reason}") from None


def graph_of(network: NetworkLike, params: dict[str, Any] | None = None, **bindings: Any) -> Graph:
    """The flattened graph of any network: DSL text, a path (a PathLike, or a str ending in
    `.net`), Page's nested dict, or a Graph."""
    if isinstance(network, Graph):
        return network
    if isinstance(network, dict):
        return flatten(network)
    if isinstance(network, os.PathLike) or (isinstance(network, str)
                                            and network.endswith(".net")):
        return flatten(load(network, params, **bindings))
    if isinstance(network, str):
        return flatten(parse(network, params, **bindings))
    raise NetdslError(f"expected DSL text, a .net path, a nested dict or a Graph, "
                      f"got {type(network).__name__}")
