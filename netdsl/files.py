"""Writing output files whole or not at all, never over a file the command reads, and
formatting a user's file in place."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from .errors import NetdslError, refusal

PathLike = Union[str, "os.PathLike[str]"]
Named = tuple[str, Union[PathLike, None]]  # (what it is, e.g. "--json" or "the network", path)
SQLITE_HEADER = b"SQLite format 3\0"  # the first 16 bytes of every SQLite database file
STORAGE = "--storage"  # the one output that is an SQLite database: a search's


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_identity(path: PathLike) -> tuple:
    """What makes two names one file: the device and inode of an existing file (through
    symbolic and hard links alike), else the absolute path with links in its folders
    resolved."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return ("path", os.path.realpath(path))
    return ("file", st.st_dev, st.st_ino)


def refuse_clashes(outputs: Iterable[Named], inputs: Iterable[Named] = ()) -> None:
    """Raise NetdslError, before any work, when an output is the same file as an input (the
    network, weights, a search's storage...), as another output, or an SQLite database other
    than a search's own --storage: writing it would destroy what the command reads, a
    search's trials, or one result would overwrite the other."""
    taken: dict[tuple, tuple[str, str]] = {}
    for what, path in inputs:
        if path is not None:
            taken.setdefault(file_identity(path), (what, str(path)))
    written: dict[tuple, str] = {}
    for what, path in outputs:
        if path is None:
            continue
        key = file_identity(path)
        if key in taken:
            other, other_path = taken[key]
            same = "" if other_path == str(path) else f" ({other_path})"
            raise NetdslError(f"{what} {path} is {other}{same}: writing it would destroy that; "
                              "give another file")
        if key in written:
            raise NetdslError(f"{what} {path} is also the file of {written[key]}: one would "
                              "overwrite the other; give another file")
        if what != STORAGE and is_database(path):
            raise NetdslError(f"{what} {path} is an SQLite database (a search's storage?): "
                              "writing it would destroy that; give another file")
        written[key] = what


def is_database(path: PathLike) -> bool:
    """Whether `path` is an existing file that opens as an SQLite database does."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:  # not there, a folder, unreadable: nothing of a search's to destroy
        return False


def check_writable(path: Path, what: str | tuple[Any, ...]) -> None:
    """Raise NetdslError now if `path` cannot be written later (its folder cannot be made or
    written, or it is a folder): a run must not train for an hour and then lose its result.
    `what` names the output (a flag, or the argument: see errors.refusal)."""
    directory = path.parent if str(path.parent) else Path(".")
    try:
        if path.is_dir():
            raise refusal(what, f"{path}: that is a folder", between=" ")
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise refusal(what, f"{path}: cannot write there ({e.strerror})", between=" ") from None


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


def write_each(outputs: Iterable[tuple[PathLike, Callable[[], bytes]]],
               log: Callable[[str], None] = print) -> None:
    """Write each output, its bytes made only when its turn comes, whatever becomes of the
    others: one that cannot be made or written (a full disk, a value no record can hold) does
    not lose the rest, e.g. a finished training's weights. The first failure is raised once
    every output has been tried."""
    failure = None
    for path, make in outputs:
        try:
            write_atomically(Path(path), make())
            log(f"wrote {path}")
        except Exception as e:  # raised below, after the other outputs are written
            failure = failure or e
    if failure is not None:
        raise failure


def check_rewritable(path: PathLike) -> None:
    """Raise NetdslError unless `path` is (or links to) a regular file its owner may write: a
    device, a folder or a read-only file is the user's to keep as it is."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise NetdslError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NetdslError(f"{path}: not a regular file; only .net files are formatted")
    if not st.st_mode & 0o222:  # root may write anything: the mode says what the user meant
        raise NetdslError(f"{path}: the file is read-only; make it writable to format it")


def rewrite_in_place(path: PathLike, data: bytes) -> None:
    """Replace the contents of the file `path` names with `data`, through its links: the same
    file keeps its mode, owner and every name (a rename would give a symbolic link's name a
    new file and leave a hard link's other names the old text). A failed write puts the old
    contents back."""
    real = os.path.realpath(path)
    try:
        with open(real, "r+b") as f:
            before = f.read()
            f.seek(0)
            try:
                f.write(data)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
            except OSError:
                f.seek(0)
                f.write(before)
                f.truncate()
                raise
    except OSError as e:
        raise NetdslError(f"cannot write {path}: {e.strerror}") from None
