"""netdsl: describe, draw and compile small convolutional networks with a one-line DSL.

    import netdsl
    net = netdsl.parse("prep(64) -> layer1(128, pool, res) -> head(10)")  # Page's nested dict
    graph = netdsl.flatten(net)          # {path: (Op, [input paths])}
    model = netdsl.compile(net)          # nn.Module; also takes DSL text or a .net path
    dot = netdsl.draw("models/resnet9.net")  # graphviz.Digraph

Importing netdsl does not import torch; `compile` does, on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._api import DEFAULT_INPUT_SHAPE, NetworkLike, graph_of, load, parameters, parse
from .errors import Location, NetdslError
from .graph import Graph, execution_order, flatten, operations, pipeline, shapes, summary, to_json
from .ops import PRIMITIVES, Op

if TYPE_CHECKING:
    import graphviz

    from ._compile import Network

__version__ = "0.1.0"

__all__ = ["DEFAULT_INPUT_SHAPE", "Graph", "Location", "NetdslError", "Network", "NetworkLike", "Op",
           "PRIMITIVES", "compile", "draw", "execution_order", "flatten", "graph_of", "load",
           "operations", "parameters", "parse", "pipeline", "shapes", "summary", "to_json", "__version__"]


def compile(network: NetworkLike, params: dict[str, Any] | None = None,
            **bindings: Any) -> "Network":
    """Any network (DSL text, .net path, nested dict or Graph) -> a `Network` nn.Module whose
    children are named by node path with `/` -> `_`."""
    from ._compile import Network

    return Network(graph_of(network, params, **bindings))


def __getattr__(name: str) -> Any:
    if name == "Network":  # the nn.Module class; loading it imports torch
        from ._compile import Network

        return Network
    raise AttributeError(f"module 'netdsl' has no attribute '{name}'")


def draw(network: NetworkLike, params: dict[str, Any] | None = None, *, show_identity: bool = False,
         **bindings: Any) -> "graphviz.Digraph":
    """Any network -> a graphviz.Digraph (shows itself in Jupyter; `.source` is DOT text)."""
    from ._draw import draw_graph

    return draw_graph(graph_of(network, params, **bindings), show_identity=show_identity)
