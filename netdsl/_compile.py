"""Graph -> nn.Module. The only part of netdsl that imports torch."""
from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

from .errors import NetdslError
from .graph import SEP, Graph, execution_order
from .ops import Op


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm over channels of images (N, C, H, W) or features (N, C): the op `bn` takes
    both, so one class serves; it prints as `BatchNorm(...)` as in the seed."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        # Shapes were checked when the graph was built; a check on input.dim() here would be
        # control flow on a traced value and break torch.fx tracing.
        pass

    def extra_repr(self) -> str:
        # The seed's format; newer torch releases add "bias=True" to theirs.
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class Add(nn.Module):
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0] + inputs[1]
        for more in inputs[2:]:
            total = total + more
        return total


class Cat(nn.Module):
    """Concatenates along channels."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=1)


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class Mul(nn.Module):
    """Multiplies by a constant: the head's logits scale. Prints as `Mul()` as in the seed."""

    def __init__(self, weight: float):
        super().__init__()
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


_BUILDERS: dict[str, Callable[[dict], nn.Module]] = {
    "Conv2d": lambda a: nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"],
                                  stride=a["stride"], padding=a["padding"], groups=a["groups"],
                                  bias=a["bias"]),
    "BatchNorm": lambda a: BatchNorm(a["num_features"], eps=a["eps"], momentum=a["momentum"]),
    "ReLU": lambda a: nn.ReLU(inplace=a["inplace"]),
    "GELU": lambda a: nn.GELU(),
    "CELU": lambda a: nn.CELU(alpha=a["alpha"], inplace=a["inplace"]),
    "MaxPool2d": lambda a: nn.MaxPool2d(a["kernel_size"], stride=a["stride"]),
    "AvgPool2d": lambda a: nn.AvgPool2d(a["kernel_size"], stride=a["stride"]),
    "Identity": lambda a: nn.Identity(),
    "Add": lambda a: Add(),
    "Cat": lambda a: Cat(),
    "Flatten": lambda a: Flatten(),
    "Linear": lambda a: nn.Linear(a["in_features"], a["out_features"], bias=a["bias"]),
    "Mul": lambda a: Mul(a["weight"]),
    "Dropout": lambda a: nn.Dropout(a["p"]),
}


def module_name(path: str) -> str:
    """The child name of the node at `path`: `layer1/extra_1/conv` -> `layer1_extra_1_conv`."""
    return path.replace(SEP, "_")


def build_module(op: Op) -> nn.Module:
    try:
        return _BUILDERS[op.type](op.kwargs)
    except KeyError:
        raise NetdslError(f"no module for op type '{op.type}'") from None


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

        order = execution_order(graph)
        order.remove(inputs[0])
        order.insert(0, inputs[0])
        position = {path: i for i, path in enumerate(order)}
        last_read = {}
        for path in order:
            for source in graph[path][1]:
                last_read[source] = position[path]
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
    tensor at the same path is copied, sliced to the target's shape where the source is larger
    in some dimension (the first channels are kept). Returns {path: "copied" | "sliced" |
    "kept"}; "kept" means no usable source (missing, or smaller), so the tensor keeps its
    initialisation."""
    report = {}
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            path = target.path_of(name)
            donor = source.get(path)
            if donor is None or donor.dim() != tensor.dim() or any(
                    d < t for d, t in zip(donor.shape, tensor.shape)):
                report[path] = "kept"
                continue
            tensor.copy_(donor[tuple(slice(0, size) for size in tensor.shape)])
            report[path] = "copied" if donor.shape == tensor.shape else "sliced"
    return report
