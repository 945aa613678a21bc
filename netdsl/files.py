"""Writing output files whole or not at all."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import NetdslError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder and a rename: a crash
    or a full disk leaves any earlier file as it was."""
    directory = path.parent if str(path.parent) else Path(".")
    temp = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".part")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes it private; our outputs are not
        os.replace(temp, path)
    except OSError as e:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        raise NetdslError(f"cannot write {path}: {e.strerror}") from None
    return path
