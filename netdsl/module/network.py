"""Graph -> nn.Module, and weights moved between networks by node path."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Iterator

import torch
from torch import nn

from ..errors import NetdslError
from ..graph import SEP, Graph, Op
from . import layers


def module_name(path: str) -> str:
    """The child name of the node at `path`: `layer1/extra_1/conv` -> `layer1_extra_1_conv`."""
    return path.replace(SEP, "_")


def build_module(path: str, op: Op) -> nn.Module:
    """The module of the node `path`'s `op`, called with its arguments: netdsl's own maker of
    that name (in `layers`), else torch's class (`torch.nn`), so a primitive torch has needs no
    code here."""
    if not isinstance(op, Op):
        raise NetdslError(f"node '{path}': expected (Op or None, [input paths]), got {op!r:.80}")
    maker = getattr(layers, op.type) if op.type in layers.__all__ else getattr(nn, op.type, None)
    if maker is None:
        raise NetdslError(f"node '{path}': no module for op type '{op.type}'")
    return maker(**op.kwargs)


class Network(nn.Module):
    """The compiled network: one child per graph node, named by its path with `/` -> `_`.

    `forward(x)` runs the nodes in execution order and returns the last node's output. Each
    intermediate output is dropped after its last reader, so inference holds no more than it
    needs.
    """

    def __init__(self, graph: Mapping):
        super().__init__()
        graph = graph if isinstance(graph, Graph) else Graph(graph)
        self.paths: dict[str, str] = {}  # child name -> graph path
        for path, (op, _) in graph.items():
            if op is None:
                continue
            name = module_name(path)
            if name in self.paths:
                raise NetdslError(f"nodes '{self.paths[name]}' and '{path}' would both be "
                                  f"named '{name}' in the module; rename one")
            self.paths[name] = path
            self.add_module(name, build_module(path, op))

        position = {path: i for i, path in enumerate(graph)}  # execution order, input first
        # Readers are in execution order too: a node's last reader is the last listed.
        last_read = {position[source]: position[users[-1]]
                     for source, users in graph.readers.items() if users}
        # (module, input positions, positions whose last reader this is); the list holds the
        # same module objects as the children, so .to() and state_dict see them once.
        self._steps: list[tuple[nn.Module, tuple[int, ...], tuple[int, ...]]] = []
        for i, (path, (_, inputs)) in enumerate(graph.items()):
            if i == 0:
                continue  # the input
            sources = tuple(position[source] for source in inputs)
            done = tuple(sorted({p for p in sources if last_read[p] == i}))
            self._steps.append((getattr(self, module_name(path)), sources, done))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)

    def run(self, x: torch.Tensor, needed: list[bool] | None = None) -> torch.Tensor:
        """The output for `x`; `needed` (one per node, in graph order) skips the nodes it
        marks False, their outputs None to their readers (a differentiable search's paths not
        taken). Not `forward`'s argument: torch.fx would trace it as an input."""
        values: list[torch.Tensor | None] = [x]
        for k, (module, sources, done) in enumerate(self._steps, 1):
            if needed is not None and not needed[k]:
                values.append(None)
                continue
            values.append(module(*[values[i] for i in sources]))
            for i in done:
                values[i] = None  # its last reader has run: let the memory go
        output = values[-1]
        if output is None:
            raise ValueError("needed skips the output node, which is always needed")
        return output

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
