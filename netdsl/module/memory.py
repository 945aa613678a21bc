"""What a network needs in memory to run, against what the device has free: checked before
anything is allocated, by a training (train/) and by an export's trace alike."""
from __future__ import annotations

import math

from ..errors import ArgumentError, NetdslError
from ..graph import format_shape
from ..language import Bound

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


def _beyond_free(values: int, device, needing: str) -> str | None:
    """"{needing} about N GiB ..., more than the M GiB free on {device}" when `values` (of
    BYTES_PER_VALUE bytes) do not fit the device's free memory; None when they do, or where
    the free memory is not known."""
    import netdsl_runtime as runtime

    free = runtime.free_memory(device)
    need = BYTES_PER_VALUE * values
    if free is None or need <= free:
        return None
    return (f"{needing} about {need / 2 ** 30:,.1f} GiB, more than the "
            f"{free / 2 ** 30:,.1f} GiB free on {device}")


def refuse_beyond_free(values: int, device, needing: str, advice: str) -> None:
    """Refuse, before anything is allocated, `values` (of BYTES_PER_VALUE bytes) that do not
    fit the device's free memory: "{needing} about N GiB ..., more than the M GiB free on
    {device}; {advice}"."""
    beyond = _beyond_free(values, device, needing)
    if beyond is not None:
        raise NetdslError(f"{beyond}; {advice}")


def check_memory(bound: Bound, batch_size: int, device, *, training: bool = True) -> None:
    """Refuse a network that cannot fit the device's free memory at `batch_size` (in
    training, or for one forward pass): an ArgumentError that advises a smaller `batch_size`
    (training) or `input_shape` (a forward pass)."""
    beyond = _beyond_free(memory_needed(bound, batch_size, training=training), device,
                          f"the network {'to train at' if training else 'for a forward pass of'} "
                          f"batch size {batch_size} ({bound.weight_count:,} weights, inputs of "
                          f"{format_shape(bound.input_shape)}) needs")
    if beyond is not None:
        smaller = max(batch_size // 2, 1)
        raise ArgumentError(lambda given: f"{beyond}; use a smaller network or " + (
            given("batch_size", smaller) if training else given("input_shape")))
