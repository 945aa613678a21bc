"""Evaluation: predictions with test-time augmentation (flips, then translations), accuracy
and loss on a dataset, and the checks that a model's outputs fit the data and that it has
something to train."""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .data import DeviceData
from .recipe import Recipe


TTA_VIEWS = {1: 2, 2: 6}  # forward passes per test image at each level of test-time augmentation


def predict(model: nn.Module, x: torch.Tensor, tta: int = 0) -> torch.Tensor:
    """fp32 logits of a batch. Test-time augmentation `tta` 1: the mean of the image's and its
    mirror image's; 2: half that, and a quarter each of the same for the image shifted by one
    pixel up-left and down-right (edges reflected), 6 views in all (airbench's level 2)."""
    logits = model(x).float()
    if tta >= 1:
        logits = (logits + model(x.flip(3)).float()) / 2
    if tta >= 2:
        height, width = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        up_left, down_right = padded[:, :, :height, :width], padded[:, :, 2:, 2:]
        shifted = (predict(model, up_left, 1) + predict(model, down_right, 1)) / 2
        logits = (logits + shifted) / 2
    return logits


def validate(model: nn.Module, data: DeviceData, recipe: Recipe,
             dtype: torch.dtype | None, tta: int = 0) -> tuple[float, float]:
    """Mean loss and accuracy on the test set, in eval mode, with test-time augmentation level
    `tta` (see `predict`)."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    with torch.no_grad(), torch.autocast(data.device.type, dtype=dtype, enabled=dtype is not None):
        for x, y in data.eval_batches(recipe.eval_batch_size):
            logits = predict(model, x, tta)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    n = len(data.eval_y)
    return loss_sum.item() / n, correct.item() / n


def check_outputs(model: nn.Module, data: DeviceData) -> None:
    """Raise ValueError when the model's outputs are not one per class of `data`: asked
    before the first step (and before zero-cost scores), not met after an epoch."""
    model.eval()
    images = data.eval_x[:2]  # a set of one image has one
    with torch.no_grad():
        logits = model(data.normalise(images))
    classes = len(data.classes)
    if logits.shape != (len(images), classes):
        shape = "x".join(map(str, logits.shape[1:]))
        raise ValueError(f"the model gives {shape} outputs per image but {data.name} has "
                         f"{classes} classes; give it {classes} outputs")


def check_trainable(model: nn.Module, data: DeviceData) -> None:
    """Raise ValueError when the model's outputs depend on no trained weight: no step could
    change them (and the backward pass of the first would fail)."""
    model.eval()
    with torch.enable_grad():
        logits = model(data.normalise(data.eval_x[:2]))
    if not logits.requires_grad:
        raise ValueError("the model's outputs depend on no trained weight (it has none, or "
                         "every path from them to the output is cut, as by an op giving "
                         "zeros): there is nothing to train")
