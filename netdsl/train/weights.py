"""Saved weights read and checked whole: a network's or a supernet's, for `--init-from`;
a supernet file, for `search --supernet`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

from ..errors import ArgumentError, NetdslError
from ..language import Family

if TYPE_CHECKING:
    from ..supernet import Supernet


@overload
def load_weights(path: str) -> dict[str, Any]: ...
@overload
def load_weights(path: None) -> None: ...
def load_weights(path: str | None) -> dict[str, Any] | None:
    """The path-keyed weights saved by --save-weights, a supernet saved by `netdsl supernet`,
    or None; each checked whole (every entry of its kind, every weight a finite number)."""
    if path is None:
        return None
    import torch

    from ..supernet.file import FORMAT, check_saved

    weights = _unpickled(path)
    saved_format = weights.get("format") if isinstance(weights, dict) else None
    if saved_format == FORMAT:
        tensors = check_saved(weights, path)["layers"]  # each network takes its own (`fit`)
    elif isinstance(saved_format, str) and saved_format.startswith("netdsl-supernet-"):
        raise NetdslError(f"{path}: a supernet saved as {saved_format}, which this netdsl "
                          f"does not read ({FORMAT}): train it again with netdsl supernet")
    elif not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        raise NetdslError(f"{path} holds no weights saved by --save-weights (a dict of node "
                          "paths to tensors) or netdsl supernet")
    else:
        tensors = weights
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise NetdslError(f"{path}: the file holds non-finite weights ('{name}' has nan "
                              "or inf): it is damaged, or not from a finished training")
    return weights


def read_supernet(supernet: str, family: Family, values: dict[str, Any],
                  input_shape: tuple[int, ...]) -> "Supernet":
    """The supernet `netdsl supernet` saved at the path `supernet`, checked against `family`
    (see `netdsl.supernet.load_supernet`)."""
    from ..supernet.file import FORMAT, load_supernet

    path = supernet
    saved = load_weights(path)
    if saved.get("format") != FORMAT:
        raise ArgumentError(lambda given: f"{given('supernet', path)}: not a supernet saved by "
                            "netdsl supernet (a network's weights?)")
    return load_supernet(saved, family, values, input_shape, path)


# How a file torch writes begins: a zip archive (torch.save's format), or the pickled magic
# number of the format before it. Such a file that does not load is damaged, not another kind.
TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80\x02\x8a\x0a")


def _unpickled(path: str) -> Any:
    """What torch saved at `path`, read without running code (weights_only)."""
    import torch

    try:
        file = open(path, "rb")
    except OSError as e:
        raise NetdslError(f"cannot load weights from {path}: {e.strerror}") from None
    with file:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # a file of anything else fails in torch's unpickler in many ways
            # torch's first sentence: the rest of its messages are advice on pickles
            reason = str(e).splitlines()[0].split(". ")[0] if str(e) else type(e).__name__
            file.seek(0)
            start = file.read(4)
            if not start:
                raise NetdslError(f"cannot load weights from {path}: the file is empty") \
                    from None
            if start.startswith(TORCH_FILE_STARTS):
                raise NetdslError(f"cannot load weights from {path}: the file is truncated or "
                                  f"corrupt ({type(e).__name__}: {reason})") from None
            raise NetdslError(f"cannot load weights from {path}: not a file saved by "
                              f"--save-weights ({type(e).__name__}: {reason})") from None
