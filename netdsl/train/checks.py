"""The checks before any training: the device a name asks for, a batch the images can fill,
and a network's memory against what the device has free."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import NetdslError
from ..graph import format_shape
from ..language import Bound

if TYPE_CHECKING:
    import netdsl_runtime as runtime


def device_from(name: str):
    """The torch.device that `name` (the --device text: auto, cpu, cuda, cuda:N) asks for;
    one this torch cannot use is a NetdslError."""
    import netdsl_runtime as runtime
    import torch

    try:
        device = runtime.default_device() if name == "auto" else torch.device(name)
    except RuntimeError as e:
        raise NetdslError(f"bad option: --device {name}: {e}") from None
    if device.type not in ("cpu", "cuda"):
        raise NetdslError(f"bad option: --device {name}: netdsl trains on cpu or cuda")
    if device.type == "cpu" and device.index not in (None, 0):
        raise NetdslError(f"bad option: --device {name}: the CPU is one device; use "
                          "--device cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NetdslError("bad option: --device cuda: this torch sees no CUDA device; "
                          "use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise NetdslError(f"bad option: --device {name}: this machine has "
                          f"{torch.cuda.device_count()} CUDA devices (cuda:0 to "
                          f"cuda:{torch.cuda.device_count() - 1})")
    return device


def check_batch(recipe: "runtime.Recipe", data: "runtime.DeviceData") -> None:
    """Refuse, once the data is loaded and before any training, a batch larger than the
    training images (all of a small dataset, or what --train-limit and --valid-split leave):
    a step takes a whole batch, so no network could train."""
    if recipe.batch_size > data.train_size:
        split = data.report is not None
        raise NetdslError(f"bad option: --batch-size {recipe.batch_size} is more than the "
                          f"{data.train_size} training images"
                          + " that --valid-split leaves" * split
                          + f"; give --batch-size {data.train_size} or less"
                          + " or a smaller --valid-split" * split)


BYTES_PER_VALUE = 4  # fp32: an upper bound for autocast, whose activations are half that


TRAINING_COPIES = 4  # of each weight in training: itself, its gradient, momentum, an average


def memory_needed(bound: Bound, batch_size: int, *, training: bool = True) -> int:
    """Values a step holds at least: each weight (in training `TRAINING_COPIES` of it), and
    each node's output for a batch (in training kept for the backward pass; a forward alone
    frees them as it goes, but tracing for an export keeps them). A lower bound, so that only
    a network that cannot fit is refused; one that fits this but not the device is caught
    when the allocation fails."""
    activations = sum(math.prod(shape) for shape in bound.shapes.values())
    copies = TRAINING_COPIES if training else 1
    return copies * bound.weight_count + batch_size * activations


def refuse_beyond_free(values: int, device, needing: str, advice: str) -> None:
    """Refuse, before anything is allocated, `values` (of BYTES_PER_VALUE bytes) that do not
    fit the device's free memory: "{needing} about N GiB ..., more than the M GiB free on
    {device}; {advice}"."""
    import netdsl_runtime as runtime

    free = runtime.free_memory(device)
    need = BYTES_PER_VALUE * values
    if free is not None and need > free:
        raise NetdslError(f"{needing} about {need / 2 ** 30:,.1f} GiB, more than the "
                          f"{free / 2 ** 30:,.1f} GiB free on {device}; {advice}")


def check_memory(bound: Bound, batch_size: int, device, *, training: bool = True) -> None:
    """Refuse a network that cannot fit the device's free memory at `batch_size` (in
    training, or for one forward pass)."""
    advice = (f"use a smaller network or --batch-size {max(batch_size // 2, 1)}" if training
              else "use a smaller network or --input-shape")
    refuse_beyond_free(memory_needed(bound, batch_size, training=training), device,
                       f"the network {'to train at' if training else 'for a forward pass of'} "
                       f"batch size {batch_size} ({bound.weight_count:,} weights, inputs of "
                       f"{format_shape(bound.input_shape)}) needs", advice)
