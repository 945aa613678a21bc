"""netdsl: describe, draw, compile, train and search small convolutional networks with a
one-line DSL.

The pipeline, one module per step:

    family = netdsl.load("models/resnet9.net")  # text -> Family, parsed once   (language/)
    net = family.bind({"prep": 32})             # -> Bound: the checked graph   (language/, graph/)
    model = net.module()                        # -> nn.Module                  (module/)
    fitted = netdsl.train(net, data, recipe)      # -> trained, by the trainer    (fit.py, runtime/)

Shortcuts: `parse(text)` gives Page's nested dict, `compile(network)` an nn.Module and
`draw(network)` a graphviz.Digraph, for DSL text, a .net path, a nested dict or a Graph;
`to_text(graph)` gives DSL text back for any of them.
Importing netdsl does not import torch; building a module does, on first use.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Union

from .errors import Location, NetdslError
from .graph import PRIMITIVES, Graph, Nested, Op, flatten, operations, pipeline, shapes, to_json
from .language import DEFAULT_INPUT_SHAPE, Bound, Family, Parameter, load

if TYPE_CHECKING:
    import graphviz

    from .module.network import Network

__version__ = "0.1.0"

__all__ = ["DEFAULT_INPUT_SHAPE", "Bound", "Family", "Graph", "Location", "NetdslError",
           "Network", "NetworkLike", "Op", "PRIMITIVES", "Parameter", "compile", "draw",
           "fit", "flatten", "graph_of", "load", "operations", "parameters",
           "parse", "pipeline", "shapes", "to_json", "to_text", "__version__"]

NetworkLike = Union[str, "os.PathLike[str]", Nested, Graph, Bound]


def parse(text: str, /, params: dict[str, Any] | None = None, *, source: str = "<string>",
          input_shape=DEFAULT_INPUT_SHAPE, **bindings: Any) -> Nested:
    """DSL text -> Page's nested dict of Ops, checked against `input_shape`. Parameters the
    text declares are bound by keyword (`width=32`) or by `params`. Raises NetdslError, with
    the line and column, for any problem in the text."""
    return load(text, source=source).bind(params, input_shape=input_shape, **bindings).nested


def parameters(text: str, /, *, source: str = "<string>") -> dict[str, Any]:
    """The parameters DSL text declares, with their defaults: `{"width": 64, "deep": False}`."""
    return load(text, source=source).defaults()


def graph_of(network: NetworkLike, params: dict[str, Any] | None = None, *,
             input_shape=DEFAULT_INPUT_SHAPE, **bindings: Any) -> Graph:
    """The flattened graph of any network: DSL text, a path (a PathLike, or a str ending in
    `.net`), Page's nested dict, a Graph or a Bound network."""
    if isinstance(network, Bound):
        return network.graph
    if isinstance(network, Graph):
        return network
    if isinstance(network, dict):
        return flatten(network)
    return load(network).bind(params, input_shape=input_shape, **bindings).graph


def compile(network: NetworkLike, params: dict[str, Any] | None = None,
            **bindings: Any) -> "Network":
    """Any network -> a `Network` nn.Module whose children are named by node path with
    `/` -> `_`."""
    from .module.network import Network

    return Network(graph_of(network, params, **bindings))


def to_text(network: "NetworkLike | str | list", *, input_shape=DEFAULT_INPUT_SHAPE) -> str:
    """DSL text for any resolved network that parses back to the same graph: a Graph, Page's
    nested dict, a Bound network, or the JSON of `netdsl show --format json` (its text or its
    parsed list). Built-in blocks are used where the nodes are theirs: a ResNet-9 prints as
    its one-liner. `input_shape` is what the network is fed (its shapes check the text)."""
    from .graph import from_json
    from .language.family import graph_to_text

    if isinstance(network, Bound):
        return graph_to_text(network.graph, network.input_shape)
    if isinstance(network, list) or (isinstance(network, str) and network.lstrip()[:1] == "["):
        return graph_to_text(from_json(network), input_shape)
    if isinstance(network, Graph):
        return graph_to_text(network, input_shape)
    if isinstance(network, dict):
        try:
            graph = flatten(network)
        except RecursionError:
            raise NetdslError("the nested dict nests too deeply to be a network") from None
        return graph_to_text(graph, input_shape)
    raise NetdslError("to_text takes a graph, a nested dict, a bound network or a graph's "
                      f"JSON, got {type(network).__name__}")


def draw(network: NetworkLike, params: dict[str, Any] | None = None, *, show_identity: bool = False,
         **bindings: Any) -> "graphviz.Digraph":
    """Any network -> a graphviz.Digraph (shows itself in Jupyter; `.source` is DOT text)."""
    from .module.draw import draw_graph

    return draw_graph(graph_of(network, params, **bindings), show_identity=show_identity)


def __getattr__(name: str) -> Any:
    if name == "Network":  # the nn.Module class; loading it imports torch
        from .module.network import Network

        return Network
    if name == "fit":  # the trainer's entry; loading it imports torch
        from .train import fit

        return fit
    raise AttributeError(f"module 'netdsl' has no attribute '{name}'")
