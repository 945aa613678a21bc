"""The modules a graph's Ops become: `<Op.type>(**Op.args)` from this namespace. torch's own
classes where torch has the layer; netdsl's for the rest."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import (CELU, GELU, AvgPool2d, Conv2d, Dropout, Identity, Linear, MaxPool2d, ReLU,
                      SiLU)

__all__ = ["Add", "AvgPool2d", "BatchNorm", "CELU", "Cat", "Conv2d", "Dropout", "Flatten", "GELU",
           "Identity", "Linear", "MaxPool2d", "Mul", "ReLU", "SiLU", "Zero"]


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


class Zero(nn.Module):
    """Zeros of its input's shape: the "none" edge of NAS-Bench-201's cells."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)
