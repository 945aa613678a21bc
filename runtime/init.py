"""Layers set from the data before training (airbench's whitening): each such layer given the
images that reach it, in chunks, once."""
from __future__ import annotations


import torch
from torch import nn

from .groups import parameter_path


class _Reached(Exception):
    """Ends a forward pass at the layer whose input was wanted."""


INIT_CHUNK = 1000  # images per forward pass while setting layers from the data


def initialise_from_data(model: nn.Module, images: torch.Tensor) -> None:
    """Set each layer that has `initialise_from_images` (whitening) from what reaches it when
    the model runs on `images`, not from the images themselves: the model runs (in eval mode,
    no gradients, `INIT_CHUNK` images at a time) up to the first layer not yet set, which is
    then set, and again for the next, so a later one sees what the earlier ones make."""
    pending = [(name, module) for name, module in model.named_modules()
               if callable(getattr(module, "initialise_from_images", None))]
    was_training = model.training
    model.eval()
    try:
        while pending:
            reached: list[tuple[nn.Module, torch.Tensor]] = []

            def stop(module: nn.Module, inputs: tuple) -> None:
                reached.append((module, inputs[0]))
                raise _Reached
            hooks = [module.register_forward_pre_hook(stop) for _, module in pending]
            try:
                with torch.no_grad():
                    for chunk in images.split(INIT_CHUNK):
                        try:
                            model(chunk)
                        except _Reached:
                            pass
            finally:
                for hook in hooks:
                    hook.remove()
            if not reached:  # the forward pass never uses them: nothing to set them from
                return
            module = reached[0][0]
            name = next(name for name, m in pending if m is module)
            try:
                # a method of the layer's own, no nn.Module's: found by name, as `pending` is
                initialise = getattr(module, "initialise_from_images")
                initialise(torch.cat([x for _, x in reached]))
            except torch.linalg.LinAlgError as e:
                raise ValueError(f"{parameter_path(model, name)}: cannot be set from the "
                                 f"training images ({_first_line(e)})") from None
            pending = [(n, m) for n, m in pending if m is not module]
    finally:
        model.train(was_training)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
