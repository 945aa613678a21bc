"""Muon for convolution filters, as airbench94_muon uses it (Keller Jordan, 2024).

torch.optim.Muon takes 2-D parameters only; a filter bank (out, in, kh, kw) is orthogonalised
here as the matrix (out, in * kh * kw).
"""
from __future__ import annotations

import torch

# The quintic Newton-Schulz iteration's coefficients: chosen for the steepest slope at zero, so
# that three steps take every singular value of the normalised momentum near 1.
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)


def orthogonalise(matrix: torch.Tensor, steps: int = 3) -> torch.Tensor:
    """About U V^T of `matrix` = U S V^T: its singular values pushed towards 1. In bf16 on CUDA
    (as airbench), in fp32 elsewhere: CPUs without native bf16 compute it 8x slower."""
    a, b, c = NEWTON_SCHULZ
    x = matrix.to(torch.bfloat16 if matrix.is_cuda else torch.float32)
    x = x / (x.norm() + 1e-7)
    wide = x.size(0) <= x.size(1)
    if not wide:  # the iteration multiplies by x x^T: the smaller side keeps it cheap
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Orthogonalised Nesterov momentum for parameters of 2 or more dimensions. Each step first
    rescales a parameter to norm sqrt(rows) (its weight decay, in effect), then moves it by
    `lr` along its orthogonalised momentum."""

    def __init__(self, params, lr: float, momentum: float, nesterov: bool = True,
                 steps: int = 3):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, steps=steps))
        flat = [tuple(p.shape) for group in self.param_groups for p in group["params"]
                if p.ndim < 2]
        if flat:
            raise ValueError(f"Muon takes matrices and filters, not parameters of shape {flat[0]}")

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p.grad)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(p.grad)
                direction = p.grad.add(buffer, alpha=group["momentum"]) if group["nesterov"] \
                    else buffer
                p.mul_(len(p) ** 0.5 / p.norm())
                update = orthogonalise(direction.reshape(len(p), -1), group["steps"])
                p.add_(update.view_as(p), alpha=-group["lr"])
