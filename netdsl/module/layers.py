"""netdsl's own modules, for the Ops whose layer torch has not (or not as netdsl needs it): an
Op becomes `<Op.type>(**Op.args)` from here, else torch.nn's class of that name
(`network.build_module`)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Add", "BatchNorm", "Cat", "Conv2d", "Flatten", "Mix", "Mul", "Whiten", "Zero"]


def Conv2d(*args, dirac: bool = False, **kwargs) -> nn.Conv2d:
    """torch's Conv2d (so torch.fx keeps it a leaf), optionally started as the identity on its
    first input channels (`dirac`, airbench's implicit residual: filter i passes channel i
    through unchanged; the other filters keep torch's initialisation)."""
    conv = nn.Conv2d(*args, **kwargs)
    if dirac:
        with torch.no_grad():
            nn.init.dirac_(conv.weight[:conv.in_channels])
    return conv


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm over channels of images (N, C, H, W) or features (N, C): the op `bn` takes
    both, so one class serves; it prints as `BatchNorm(...)` as in the seed. `scale=False`
    keeps its weight at 1, untrained (airbench's BatchNorm: only the shift learns)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 scale: bool = True):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.scale = scale
        self.weight.requires_grad_(scale)

    def _check_input_dim(self, input: torch.Tensor) -> None:
        # Shapes were checked when the graph was built; a check on input.dim() here would be
        # control flow on a traced value and break torch.fx tracing.
        pass

    def extra_repr(self) -> str:
        # The seed's format; newer torch releases add "bias=True" to theirs.
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}"
                + ("" if self.scale else ", scale=False"))


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


class Mix(nn.Module):
    """A mixed choice point's outputs joined (differentiable search): input i times its
    weight, the sum of `probabilities[o]` over the options o in `selects[i]`, summed.
    `probabilities` (the point's, one per option) is set by the search before each forward
    pass; it carries their gradient. An input passed as None (a path the search did not run,
    GDAS) adds its weight alone, as GDAS's cells do: zero in value, yet its option's gradient
    flows."""

    weighs: torch.Tensor

    def __init__(self, point: str, selects: tuple[tuple[int, ...], ...]):
        super().__init__()
        self.point, self.selects = point, selects
        options = 1 + max(o for chosen in selects for o in chosen)
        weighs = torch.zeros(len(selects), options)
        for i, chosen in enumerate(selects):
            weighs[i, list(chosen)] = 1
        self.register_buffer("weighs", weighs, persistent=False)  # inputs x options, 0 or 1
        self.probabilities: torch.Tensor | None = None

    def forward(self, *inputs: torch.Tensor | None) -> torch.Tensor:
        if self.probabilities is None:
            raise RuntimeError(f"mix of choice '{self.point}' run before the search set its "
                               "probabilities")
        weights = self.weighs @ self.probabilities
        terms = [weight if x is None else weight * x for weight, x in zip(weights, inputs)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def extra_repr(self) -> str:
        return f"point={self.point!r}"


class Zero(nn.Module):
    """Zeros of its input's shape: the "none" edge of NAS-Bench-201's cells."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class Whiten(nn.Conv2d):
    """A k x k convolution, no padding, whose 2 * C * k * k filters whiten the image's patches:
    the eigenvectors of their covariance scaled by 1 / sqrt(eigenvalue + eps), and their
    negatives (airbench). Its weight is set from training images before training and never
    trained; its bias trains, for the first `bias_epochs` epochs only when that is given."""

    EPS = 5e-4  # added to each eigenvalue: keeps the near-constant directions from exploding

    def __init__(self, in_channels: int, kernel_size: int, bias_epochs: int | None = None):
        super().__init__(in_channels, 2 * in_channels * kernel_size ** 2, kernel_size, bias=True)
        self.weight.requires_grad_(False)
        self.bias_epochs = bias_epochs

    def initialise_from_images(self, images: torch.Tensor) -> None:
        """Set the filters from `images` (N, C, H, W), normalised as the network sees them."""
        c, k = self.in_channels, self.kernel_size[0]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1).transpose(1, 3)
        patches = patches.reshape(-1, c * k * k)
        covariance = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)  # ascending
        filters = eigenvectors.T.reshape(-1, c, k, k).flip(0)
        filters = filters / torch.sqrt(eigenvalues.flip(0) + self.EPS).view(-1, 1, 1, 1)
        with torch.no_grad():
            self.weight.copy_(torch.cat((filters, -filters)))

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
                + ("" if self.bias_epochs is None else f", bias_epochs={self.bias_epochs}"))

