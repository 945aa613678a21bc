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


def check_writable(path: Path, what: str) -> None:
    """Raise NetdslError now if `path` cannot be written later (its folder cannot be made or
    written, or it is a folder): a run must not train for an hour and then lose its result."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if path.is_dir():
            raise NetdslError(f"{what} {path}: that is a folder")
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise NetdslError(f"{what} {path}: cannot write there ({e.strerror})") from None


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
