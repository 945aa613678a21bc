"""Zero-cost proxies: scores of an untrained network from one batch, which rank networks
without training them. Each is one function of any nn.Module at initialisation, a batch of
normalised images and their labels; a higher score is a better guess. A score that is not
defined for a network raises `Undefined` with the reason.

The definitions follow Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021)
for grad_norm, snip and synflow (summed over the weights of convolutions and linear layers),
and Mellor et al., "Neural Architecture Search without Training" (ICML 2021) for naswot.
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


def weight_count(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The number of trained weights."""
    return float(sum(p.numel() for p in model.parameters() if p.requires_grad))


# Each proxy by its name, the functions in PROXY_NAMES' order.
PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = dict(zip(
    PROXY_NAMES, (weight_count, grad_norm, snip, synflow, naswot), strict=True))
