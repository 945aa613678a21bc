"""Graph -> nn.Module, and weights moved between networks by node path."""
from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ..errors import NetdslError
from ..graph import SEP, Graph, Op, execution_order
from ..graph.nested import readers
from . import layers


def module_name(path: str) -> str:
    """The child name of the node at `path`: `layer1/extra_1/conv` -> `layer1_extra_1_conv`."""
    return path.replace(SEP, "_")


def build_module(op: Op) -> nn.Module:
    """The module of `op`, called with its arguments: netdsl's own maker of that name (in
    `layers`), else torch's class (`torch.nn`), so a primitive torch has needs no code here."""
    maker = getattr(layers, op.type) if op.type in layers.__all__ else getattr(nn, op.type, None)
    if maker is None:
        raise NetdslError(f"no module for op type '{op.type}'")
    return maker(**op.kwargs)


class Network(nn.Module):
    """The compiled network: one child per graph node, named by its path with `/` -> `_`.

    `forward(x)` runs the nodes in execution order and returns the last node's output. Each
    intermediate output is dropped after its last reader, so inference holds no more than it
    needs.
    """

    def __init__(self, graph: Graph):
        super().__init__()
        inputs = [path for path, (op, _) in graph.items() if op is None]
        if len(inputs) != 1:
            raise NetdslError(f"a network needs exactly one input node, got {len(inputs)}")
        self.paths: dict[str, str] = {}  # child name -> graph path
        for path, (op, _) in graph.items():
            if op is None:
                continue
            name = module_name(path)
            if name in self.paths:
                raise NetdslError(f"nodes '{self.paths[name]}' and '{path}' would both be "
                                  f"named '{name}' in the module; rename one")
            self.paths[name] = path
            self.add_module(name, build_module(op))

        order = execution_order(graph)  # a graph netdsl made is in it already: checked only
        order.remove(inputs[0])
        order.insert(0, inputs[0])
        position = {path: i for i, path in enumerate(order)}
        last_read = {source: max(position[reader] for reader in users)
                     for source, users in readers(graph).items() if users}
        # (module, input positions, positions whose last reader this is); the list holds the
        # same module objects as the children, so .to() and state_dict see them once.
        self._steps: list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]] = []
        for i, path in enumerate(order[1:], start=1):
            sources = tuple(position[s] for s in graph[path][1])
            done = tuple(sorted({p for p in sources if last_read[order[p]] == i}))
            self._steps.append((getattr(self, module_name(path)), sources, done))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values: list[torch.Tensor | None] = [x]
        for module, sources, done in self._steps:
            values.append(module(*[values[i] for i in sources]))
            for i in done:
                values[i] = None  # its last reader has run: let the memory go
        return values[-1]

    def node(self, path: str) -> nn.Module:
        """The module of the node at `path` (`layer1/residual/res2/conv`)."""
        return getattr(self, module_name(path))

    def path_of(self, parameter: str) -> str:
        """The graph path of a parameter or buffer name: `layer3_conv.weight` ->
        `layer3/conv/weight`. The trainer groups learning rates by these paths."""
        child, _, rest = parameter.partition(".")
        return f"{self.paths[child]}/{rest.replace('.', '/')}" if rest else self.paths[child]

    def path_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict keyed by graph path (`layer1/conv/weight`): what `transfer_weights`
        reads, whatever the two networks' module names."""
        return {self.path_of(name): tensor.detach().clone()
                for name, tensor in self.state_dict().items()}

    def named_nodes(self) -> Iterator[tuple[str, nn.Module]]:
        """(graph path, module) for every node, in graph order."""
        for name, module in self.named_children():
            yield self.paths[name], module


def transfer_weights(source: dict[str, torch.Tensor], target: Network) -> dict[str, str]:
    """Start `target` from `source` (a `path_state_dict` of an earlier or wider network): each
    tensor at the same path is copied, sliced to the target's shape where the source has more
    channels (the first ones are kept). Returns {path: "copied" | "sliced" | "kept"}; "kept"
    means no usable source (missing, fewer channels, or another kernel size: a 3x3 filter's
    corner is no 1x1 filter), so the tensor keeps its initialisation."""
    report = {}
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            path = target.path_of(name)
            donor = source.get(path)
            # Dimensions 0 and 1 are channels (out, in; features for Linear); the rest, a
            # kernel's height and width, must match.
            if donor is None or donor.dim() != tensor.dim() or any(
                    d < t for d, t in zip(donor.shape, tensor.shape)) or \
                    donor.shape[2:] != tensor.shape[2:]:
                report[path] = "kept"
                continue
            tensor.copy_(donor[tuple(slice(0, size) for size in tensor.shape)])
            report[path] = "copied" if donor.shape == tensor.shape else "sliced"
    return report
