"""The checks before any training: the device a name asks for, a batch the images can fill
(a network's memory against what the device has free: module/memory.py)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ArgumentError

if TYPE_CHECKING:
    import netdsl_runtime as runtime


def device_from(name: str):
    """The torch.device that `name` (auto, cpu, cuda, cuda:N) asks for; one this torch cannot
    use is an ArgumentError of `device`."""
    import netdsl_runtime as runtime
    import torch

    def bad(reason: str, use_cpu: bool = False) -> ArgumentError:
        return ArgumentError(lambda given: f"bad option: {given('device', name)}: {reason}"
                             + (f"; use {given('device', 'cpu')}" if use_cpu else ""))

    try:
        device = runtime.default_device() if name == "auto" else torch.device(name)
    except RuntimeError as e:
        raise bad(str(e)) from None
    if device.type not in ("cpu", "cuda"):
        raise bad("netdsl trains on cpu or cuda")
    if device.type == "cpu" and device.index not in (None, 0):
        raise bad("the CPU is one device", use_cpu=True)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise bad("this torch sees no CUDA device", use_cpu=True)
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise bad(f"this machine has {torch.cuda.device_count()} CUDA devices (cuda:0 to "
                  f"cuda:{torch.cuda.device_count() - 1})")
    return device


def check_batch(recipe: "runtime.Recipe", data: "runtime.DeviceData") -> None:
    """Refuse, once the data is loaded and before any training, a batch larger than the
    training images (all of a small dataset, or what its train_limit and valid_split leave): a
    step takes a whole batch, so no network could train. An ArgumentError of the recipe's
    `batch_size` (and the data's `valid_split`)."""
    size, images, split = recipe.batch_size, data.train_size, data.report is not None
    if size > images:
        raise ArgumentError(lambda given: (
            f"bad option: {given('batch_size', size)} is more than the {images} training "
            "images" + f" that {given('valid_split')} leaves" * split
            + f"; give {given('batch_size', images)} or less"
            + f" or a smaller {given('valid_split')}" * split))

