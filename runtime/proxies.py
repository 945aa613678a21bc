"""Zero-cost proxies: scores of an untrained network from one batch, which rank networks
without training them. Each is one function of any nn.Module at initialisation, a batch of
normalised images and their labels; a higher score is a better guess. A score that is not
defined for a network raises `Undefined` with the reason.

The definitions follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021)
for grad_norm, snip and synflow (summed over the weights of convolutions and linear layers),
Mellor et al., "Neural Architecture Search without Training" (ICML 2021) for naswot, and
Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum
Eigenvalue of Correlation" (NeurIPS 2023) for meco. AZ-NAS's three scores of a network's
stages (Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search",
CVPR 2024) read the outputs of modules the caller names: `az_nas_parts`.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .proxy_names import PROXY_NAMES

# Layers whose weights the gradient-based proxies sum over, as in Abdelfattah et al.'s code.
SCORED = (nn.Conv2d, nn.Linear)
# Nonlinearities that split their input at 0 into an "on" and an "off" region: NASWOT's binary
# codes. GELU is smooth, but below 0 it passes almost nothing: its sign gives the same code.
RELU_LIKE = (nn.ReLU, nn.LeakyReLU, nn.GELU)


class Undefined(Exception):
    """The score is not defined for this network; the message says why."""


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, SCORED) and m.weight.requires_grad]


def _gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The cross-entropy loss's gradient for each scored weight, in training mode (BatchNorm
    on the batch's statistics), as the papers compute them."""
    model.train()
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    if not weights(model) or not loss.requires_grad:
        raise Undefined("no convolution or linear weight reaches the output (the network has "
                        "none, or every path from them passes a zero op)")
    loss.backward()
    return [w.grad if w.grad is not None else torch.zeros_like(w) for w in weights(model)]


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The sum over layers of the Euclidean norm of the loss's gradient for the layer's
    weight (Abdelfattah et al. 2021)."""
    return sum(g.norm().item() for g in _gradients(model, x, y))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity: the sum of |w * dL/dw| over every weight (Lee et al., "SNIP",
    ICLR 2019; summed over the network by Abdelfattah et al. 2021)."""
    grads = _gradients(model, x, y)
    return sum((w.detach() * g).abs().sum().item() for w, g in zip(weights(model), grads))


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Synaptic flow (Tanaka et al., "Pruning neural networks without any data by iteratively
    conserving synaptic flow", NeurIPS 2020): every weight replaced by its absolute value, an
    all-ones input of one image, R the sum of the outputs; the score is the sum of w * dR/dw.
    Data-free; in float64 (the product of many layers overflows float32), BatchNorm in eval
    mode on its initial statistics (the identity, as the paper's networks without it)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    flow = net(torch.ones_like(x[:1], dtype=torch.float64)).sum()
    if flow.requires_grad:  # else no weight at all reaches the output
        flow.backward()
    score = sum((w.detach() * w.grad).sum().item() for w in weights(net) if w.grad is not None)
    if score == 0:
        raise Undefined("no synaptic flow: no path carries the input through a weight to the "
                        "output (the network has none, or every path passes a zero op)")
    if not math.isfinite(score):
        raise Undefined(f"the synaptic flow overflows float64 ({score})")
    return score


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """log |det K| of the batch's activation-code kernel (Mellor et al. 2021): at each ReLU-like
    nonlinearity each image's code is which units are on (input > 0); K[i, j] counts the units
    where images i and j agree, over every such layer. Not defined when K is singular (two
    images share a code: log |det K| is -inf)."""
    layers = [m for m in model.modules() if isinstance(m, RELU_LIKE)]
    if not layers:
        raise Undefined("the network has no ReLU-like nonlinearity (relu, gelu) to read "
                        "activation codes from")
    n = len(x)
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def add_codes(module: nn.Module, inputs: tuple) -> None:
        on = (inputs[0].detach().reshape(n, -1) > 0).double()  # before an in-place ReLU
        kernel.add_(on @ on.T + (1 - on) @ (1 - on).T)
    hooks = [m.register_forward_pre_hook(add_codes) for m in layers]
    try:
        model.train()  # as Mellor et al.'s code: BatchNorm on the batch's statistics
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    score = torch.linalg.slogdet(kernel).logabsdet.item()
    if score == -math.inf:
        raise Undefined("the activation-code kernel is singular, log |det K| is -inf: the "
                        "network gives images of the batch the same codes")
    return score


def meco(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The sum over every module's output of the smallest eigenvalue of its channels'
    correlation matrix, on the batch's first image alone (Jiang et al. 2023; the authors'
    correlation/NAS_Bench_201.py): an output C x H x W is C variables observed at H*W places;
    a correlation that is not defined (a channel constant over the image) counts as 0, as
    theirs does, and an output with no spatial extent adds nothing. Training mode (BatchNorm
    on the image's own statistics), one forward pass, no labels. Their hooks sit on every
    module of their module tree, containers too, so an output shared by nested modules counts
    once for each; a compiled network's modules are its nodes, and each output counts once."""
    smallest: list[torch.Tensor] = []

    def add(module: nn.Module, inputs: tuple, output) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4 or output[0, 0].numel() < 2:
            return
        features = output[0].detach().reshape(output.shape[1], -1).double()
        correlation = torch.nan_to_num(torch.corrcoef(features), nan=0.0, posinf=0.0,
                                       neginf=0.0)
        smallest.append(torch.linalg.eigvalsh(correlation)[0])
    hooks = [m.register_forward_hook(add) for m in model.modules() if m is not model]
    try:
        model.train()
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    if not smallest:
        raise Undefined("no module outputs a feature map (channels x height x width) to "
                        "correlate")
    return float(torch.stack(smallest).sum())


def az_nas_parts(model: nn.Module, x: torch.Tensor, stages: list[nn.Module], seed: int = 0
                 ) -> dict[str, float]:
    """AZ-NAS's expressivity, progressivity and trainability (Lee & Ham 2024; the authors'
    NB201/ZeroShotProxy/compute_az_nas_score.py) of the feature maps the `stages` modules
    output, in the order they run (for NAS-Bench-201: the stem's, then each cell's), in one
    forward pass in training mode. As theirs: the weights Kaiming-normal (fan in; biases 0,
    BatchNorm 1 and 0), the input standard normal noise of `x`'s shape (the images are not
    read), each drawn by `seed`, as are the random gradients.
    - expressivity: the sum over the maps of the entropy of the eigenvalues (made to sum to 1)
      of the channels' covariance over every image and place;
    - progressivity: the least rise of that entropy from one map to the next;
    - trainability: the mean over consecutive maps of 2 - s - 1/s, s the largest singular
      value of the channels' Jacobian estimated with a random +-1 gradient pulled back from
      one map to the one before (a map twice the size first unshuffled to the smaller's).
      A stage that passes the gradient through unchanged scores -inf, as theirs does.
    A value that comes out NaN is -inf, as theirs is."""
    if len(stages) < 2:
        raise Undefined("AZ-NAS compares the feature maps of consecutive stages: fewer than "
                        "two stages given (for a netdsl network: its top-level blocks)")
    maps: dict[int, torch.Tensor] = {}

    def keep(module: nn.Module, inputs: tuple, output) -> None:
        maps.setdefault(id(module), output)
    hooks = [m.register_forward_hook(keep) for m in stages]
    generator = torch.Generator().manual_seed(seed)
    _kaiming_fan_in(model, generator)
    for m in model.modules():  # an in-place op would overwrite a kept map (hazard)
        if hasattr(m, "inplace"):
            setattr(m, "inplace", False)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    try:
        model.train()
        model(noise)
    finally:
        for hook in hooks:
            hook.remove()
    # a stage run whose output is a feature map (a head's logits are none)
    return az_nas_of([maps[id(m)] for m in stages if id(m) in maps and maps[id(m)].dim() == 4],
                     generator)


def az_nas_of(features: list[torch.Tensor], generator: torch.Generator) -> dict[str, float]:
    """`az_nas_parts` of the feature maps `features` (N x C x H x W, each computed from the
    one before), the random gradients drawn by `generator`."""
    if len(features) < 2 or any(f.dim() != 4 for f in features):
        raise Undefined("AZ-NAS compares the feature maps (channels x height x width) of "
                        "consecutive stages: fewer than two stages output one")
    entropies = [_spectral_entropy(f.detach()) for f in features]
    rises = [after - before for before, after in zip(entropies, entropies[1:])]
    parts = {"expressivity": sum(entropies), "progressivity": min(rises),
             "trainability": _trainability(features, generator)}
    return {name: -math.inf if math.isnan(value) else value for name, value in parts.items()}


def _kaiming_fan_in(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, SCORED):
                m.weight.copy_(torch.nn.init.kaiming_normal_(
                    torch.empty(m.weight.shape), mode="fan_in", nonlinearity="relu",
                    generator=generator))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._NormBase) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()


def _by_channel(feature: torch.Tensor) -> torch.Tensor:
    """An N x C x H x W map as N*H*W rows of C channels."""
    return feature.permute(0, 2, 3, 1).reshape(-1, feature.shape[1])


def _spectral_entropy(feature: torch.Tensor) -> float:
    rows = _by_channel(feature.double())
    rows = rows - rows.mean(0, keepdim=True)
    eigenvalues = torch.linalg.eigvalsh(rows.T @ rows / len(rows))
    share = eigenvalues / eigenvalues.sum()
    return float((-share * torch.log(share + 1e-8)).sum())  # 1e-8: theirs, for a share of 0


def _trainability(features: list[torch.Tensor], generator: torch.Generator) -> float:
    scores = []
    for before, after in reversed(list(zip(features, features[1:]))):
        pulled = (torch.bernoulli(torch.full(after.shape, 0.5), generator=generator) * 2 - 1
                  ).to(after)  # +-1 each
        # A stage whose output does not depend on its input (every path through a zero op)
        # passes no gradient: 0, as the authors' zero op (x * 0) passes.
        back = (torch.autograd.grad(after, before, grad_outputs=pulled, retain_graph=True,
                                    allow_unused=True)[0]
                if after.requires_grad and before.requires_grad else None)
        if back is None:
            back = torch.zeros_like(before)
        if back.shape == pulled.shape and torch.equal(back, pulled):
            scores.append(-math.inf)
            continue
        if back.shape[2:] != pulled.shape[2:]:
            back = F.pixel_unshuffle(back, back.shape[2] // pulled.shape[2])
        jacobian = _by_channel(back).T @ _by_channel(pulled) / len(_by_channel(pulled))
        largest = float(torch.linalg.svdvals(jacobian.double()).max())
        scores.append(-largest - 1 / (largest + 1e-6) + 2)
    return sum(scores) / len(scores)


def weight_count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The number of trained weights."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


# Each proxy by its name, the functions in PROXY_NAMES' order.
PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = dict(zip(
    PROXY_NAMES, (weight_count, grad_norm, snip, synflow, naswot, meco), strict=True))
