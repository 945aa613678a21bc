"""The cache of scores, which lets a rerun, or a larger sample, score only the networks it has
not scored before."""
from __future__ import annotations

import hashlib
import itertools
import math
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..language import Bound
from .scores import Scored, score

if TYPE_CHECKING:
    import netdsl_runtime as runtime

CACHE_FILE = "scores.sqlite"  # in the data folder (--data-dir, $NETDSL_DATA, ~/.cache/netdsl)


class ScoreCache:
    """Scores already computed, in an SQLite file of the data folder, keyed by the network's
    fingerprint, the proxy, the batch (its images and labels, so the dataset, --train-limit,
    --batch-size and the seed that drew it), the seed of the initial weights, and the code
    that computes them (runtime/proxies.py, the network's layers, torch's version): a change
    of any scores again. A file that is not such a cache (corrupt, or a table of another
    shape) is set aside and a new one begun; where none can be written, scores are computed
    and not kept. Either is said in a line on stderr; neither stops the scoring."""

    def __init__(self, data_dir: str | None, batch, seed: int):
        import netdsl_runtime as runtime
        import torch

        folder = Path(data_dir) if data_dir else runtime.default_data_dir()
        x, y = batch
        digest = hashlib.sha256()
        for tensor in (x, y):
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.batch = digest.hexdigest()[:16]
        self.seed = seed
        self.code = _code_version(torch.__version__, x.device.type)
        self.path = folder / CACHE_FILE
        self.keeping = True  # until a write fails: then scored on, unkept
        self.db = self._open(folder)
        self.reused = self.computed = 0  # this process's scores, a network's proxy each

    def _open(self, folder: Path) -> sqlite3.Connection:
        """The cache's file, or a new one where it is not a cache (the old set aside), or one
        in memory where neither can be opened or written."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return _connect(self.path)
            except NotACache as e:
                aside = _set_aside(self.path)
                print(f"netdsl: {self.path} is not a cache of scores ({e}): set aside as "
                      f"{aside.name}, a new one begun", file=sys.stderr)
                return _connect(self.path)
        except (OSError, sqlite3.Error, NotACache) as e:
            self._stop_keeping(e)
            return _connect(":memory:")

    def _stop_keeping(self, error: Exception) -> None:
        self.keeping = False
        print(f"netdsl: cannot keep scores in {self.path} ({error}): scoring without the "
              "cache (give --data-dir a folder you can write to keep them)", file=sys.stderr)

    def tally(self) -> str:
        """How many of this process's scores the cache gave and how many were computed."""
        return (f"{self.reused} of the {self.reused + self.computed} scores came from the cache "
                f"{self.path}, {self.computed} computed now")

    def known(self, fingerprint: str) -> dict[str, tuple[float, str | None]]:
        rows = self.db.execute("SELECT proxy, value, reason FROM scores WHERE batch = ? AND "
                               "code = ? AND seed = ? AND fingerprint = ?",
                               (self.batch, self.code, self.seed, fingerprint))
        return {proxy: (math.nan if value is None else value, reason)
                for proxy, value, reason in rows}

    def keep(self, scored: Scored) -> None:
        if not self.keeping:
            return
        try:
            with self.db:  # one transaction a network: an interrupted run keeps what it scored
                self.db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(self.batch, self.code, self.seed, scored.bound.fingerprint, name,
                      None if math.isnan(value) else value, scored.undefined.get(name))
                     for name, value in scored.scores.items()])
        except sqlite3.Error as e:  # a folder or file read-only, a disk full: said once
            self._stop_keeping(e)

    def score(self, bound: Bound, data: "runtime.DeviceData", batch, proxies: list[str]
              ) -> Scored:
        """`netdsl.rank.scores.score`, computing only the proxies the cache does not hold for this
        network; `seconds` are this process's."""
        known = self.known(bound.fingerprint)
        missing = [name for name in proxies if name not in known]
        scored = score(bound, data, batch, missing, self.seed) if missing else Scored(bound, {})
        if missing:
            self.keep(scored)
        self.reused += len(proxies) - len(missing)
        self.computed += len(missing)
        for name in proxies:
            if name in known:
                value, reason = known[name]
                scored.scores[name] = value
                if reason is not None:
                    scored.undefined[name] = reason
        scored.scores = {name: scored.scores[name] for name in proxies}  # in the asked order
        return scored


# The cache's one table: the key (the first five columns), a score and why it is not defined.
SCHEMA = ("CREATE TABLE IF NOT EXISTS scores (batch TEXT, code TEXT, seed INTEGER, "
          "fingerprint TEXT, proxy TEXT, value REAL, reason TEXT, "
          "PRIMARY KEY (batch, code, seed, fingerprint, proxy))")
COLUMNS = (("batch", 1), ("code", 2), ("seed", 3), ("fingerprint", 4), ("proxy", 5),
           ("value", 0), ("reason", 0))  # each column's name and its place in the key (0: none)


class NotACache(Exception):
    """A file that SQLite reads, or fails to, as something other than a cache of scores."""


def _connect(path: Path | str) -> sqlite3.Connection:
    """The cache at `path` (a file, or ":memory:"), its table made if new; NotACache where
    the file is corrupt or its table `scores` is of another shape, sqlite3.Error where it
    cannot be opened or written."""
    db = sqlite3.connect(path, timeout=60)  # another process may be writing
    try:
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise NotACache(f"corrupt: {check}")
        db.execute(SCHEMA)
        columns = tuple((row[1], row[5]) for row in db.execute("PRAGMA table_info(scores)"))
        if columns != COLUMNS:
            names = lambda shape: ", ".join(name for name, _ in shape)
            raise NotACache(f"its table 'scores' has the columns {names(columns)}, not "
                            f"{names(COLUMNS)} keyed by the first five")
        return db
    except (sqlite3.Error, NotACache) as e:
        db.close()
        # OperationalError: it cannot be opened or written (read-only, locked), no fault of
        # the file's; any other DatabaseError: not a database, or one of malformed pages.
        if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
            raise NotACache(f"corrupt: {e}") from None
        raise


def _set_aside(path: Path) -> Path:
    """Rename `path` (and its journal, which would be played into the new file) to the first
    free `path.bad-N`, which it returns."""
    aside = next(path.with_name(f"{path.name}.bad-{n}") for n in itertools.count(1)
                 if not path.with_name(f"{path.name}.bad-{n}").exists())
    path.rename(aside)
    for end in ("-journal", "-wal", "-shm"):
        companion = path.with_name(path.name + end)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + end))
    return aside


def _code_version(*more: str) -> str:
    """A hash of the code a score depends on: the proxies (their names pair with their
    functions by place), what makes of them a network's score, and the layers a network is
    built of."""
    from netdsl_runtime import proxies, proxy_names

    from . import scores as scoring
    from ..module import layers, network

    digest = hashlib.sha256()
    for module in (proxies, proxy_names, scoring, layers, network):
        assert module.__file__ is not None  # each a module of a file, read below
        digest.update(Path(module.__file__).read_bytes())
    for text in more:
        digest.update(text.encode())
    return digest.hexdigest()[:16]
