"""Where a search lives: the Optuna storage (a SQLite file or a server) and its policy: which
trials spend the budget, which are tried again, which points of the space have been tried, and
that a stored search goes on over the space it began with."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

from ..errors import ArgumentError, NetdslError
from ..files import SQLITE_HEADER
from .record import Record, attrs

DEFAULT_STORAGE = "sqlite:///netdsl.db"
HEARTBEAT_SECONDS, GRACE_SECONDS = 2, 6  # a trial silent this long was killed: retry it


def storage_file(url: str) -> str | None:
    """The file a SQLite storage URL names, as SQLite opens it: sqlite:///netdsl.db (through
    any driver, sqlite+pysqlite:///netdsl.db) -> netdsl.db, its percent escapes decoded
    (sqlite:///a%20b.db -> `a b.db`), a `file:` URI's path (with ?uri=true). None for a
    server's URL, an in-memory database, or a URL that does not parse."""
    parsed = _sqlite_url(url)
    if parsed is None or parsed.query.get("mode") == "memory":
        return None
    path = parsed.database or ""
    if parsed.query.get("uri") == "true" and path.startswith("file:"):
        path = unquote(urlparse(path).path)  # SQLite decodes a URI's escapes once more
    return path if path not in ("", ":memory:") else None


def _sqlite_url(url: str):
    """`url` parsed (sqlalchemy's URL), if it names a SQLite database; else None."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    return parsed if parsed.get_backend_name() == "sqlite" else None


def open_storage(url: str, *, create: bool = True):
    """The Optuna storage at `url`. A SQLite file that does not exist is made only when
    `create` (a search); reading views say there is none and open the file read-only (in a
    read-only folder too; nothing of theirs is written). In-memory SQLite is refused: it
    would keep nothing."""
    import warnings

    import optuna
    import sqlalchemy.event
    import sqlalchemy.exc

    path = storage_file(url)
    if path is None and _sqlite_url(url) is not None:
        raise NetdslError(f"storage {url} is in memory and would keep nothing; give a file, "
                          f"e.g. {DEFAULT_STORAGE}")
    if path is not None and not create and not Path(path).exists():
        raise NetdslError(f"no storage at {url}: {path} does not exist (no search has run there)")
    if path is not None and Path(path).is_file():
        _check_database(path)
    # Optuna logs a traceback for every failed trial; the search prints one line for each and
    # stores the whole error with the trial.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # Heartbeats and stale-trial handling are marked experimental; they are what resuming uses.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # SQLite lets one writer at a time; the others wait this long for its lock (not the
    # driver's 5 s) before "database is locked": workers sharing a file on a loaded machine.
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    read_only = path is not None and not create
    for attempt in range(4):
        try:
            storage = optuna.storages.RDBStorage(_read_only(url) if read_only else url,
                                                 heartbeat_interval=HEARTBEAT_SECONDS,
                                                 grace_period=GRACE_SECONDS,
                                                 heartbeat_stale_trial_callback=retry,
                                                 engine_kwargs=engine_kwargs,
                                                 skip_table_creation=read_only)
            if path is not None and create:  # a search, which writes
                sqlalchemy.event.listen(storage.engine, "connect", _synced_at_checkpoints)
                storage.engine.dispose()  # the connections made so far: without it
            return storage
        except sqlalchemy.exc.SQLAlchemyError as e:
            # Workers that open a new database at once race to create its tables; the loser
            # finds them made when it tries again.
            if attempt == 3:
                raise NetdslError(f"cannot open storage {url}: {e}") from None
            time.sleep(0.5 * 2 ** attempt)
        except (ValueError, ImportError, optuna.exceptions.StorageInternalError) as e:
            raise NetdslError(f"cannot open storage {url}: {e}") from None


def _read_only(url: str) -> str:
    """A SQLite storage URL opened read-only: SQLite's URI form with mode=ro."""
    from urllib.parse import quote

    parsed = _sqlite_url(url)
    database = parsed.database or ""
    if parsed.query.get("uri") == "true" and database.startswith("file:"):
        uri = database + ("&" if "?" in database else "?") + "mode=ro"
    else:
        uri = f"file:{quote(str(Path(database).absolute()))}?mode=ro"
    return parsed.set(database=uri, query={**parsed.query, "uri": "true"}).render_as_string(
        hide_password=False)


def settle(storage) -> None:
    """At a search's end, its write-ahead log moved into the database file and the file put
    back in SQLite's rollback mode: netdsl.db alone then holds every trial (a copy of it is
    whole) and opens in a read-only folder. Left for later while another worker has it open:
    the last to end settles it."""
    import contextlib
    import sqlite3

    engine = getattr(storage, "engine", None)  # none in Optuna's in-memory storage
    path = None if engine is None else storage_file(str(engine.url))
    if engine is None or path is None:
        return
    engine.dispose()  # this process's connections, which SQLite would count as others
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=0)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.OperationalError:  # locked: another worker is writing
        pass


def _synced_at_checkpoints(connection, _record) -> None:
    """SQLite in WAL mode, synced to disk at its checkpoints, not at every commit. A trial
    commits about 20 times (each value drawn, each record); synced each time, that was most of
    a table search's time (`netdsl search models/nb201.net --table ... --trials 100`: 33 s,
    against 14 s so, on a loaded 2-core machine). A killed process still loses nothing; a power
    cut may lose the last commits, whose trials a resumed search runs again. While a search
    runs (or after it was killed) the newest trials are in netdsl.db-wal: `settle` moves
    them into netdsl.db at its end."""
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def _check_database(path: str) -> None:
    """An existing file must be an SQLite database (or empty, which SQLite makes one): SQLite
    would take any other file of under a page for a new database and write over it."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise NetdslError(f"cannot read the storage {path}: {e.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise ArgumentError(lambda given: f"the storage {path} is not an SQLite database; "
                            f"give {given('storage')} a new file or one a search made")


class TrialFailed(Exception):
    """A trial that cannot give a result (invalid network, loss not finite, out of memory).
    The search records it with its error and goes on."""


def retry(study, trial) -> None:
    """An interrupted trial (killed, or Ctrl-C) failed without an error: try its values again,
    once."""
    if Record(trial).error is not None:
        return
    if any(Record(t).retry_of == trial.number for t in study.get_trials(deepcopy=False)):
        return
    study.enqueue_trial(trial.params, user_attrs=attrs(retry_of=trial.number))


def retry_interrupted(study) -> None:
    """`retry` for every interrupted trial of a stored search, in one pass over its trials
    (a retry's look at all trials for each was quadratic: minutes on a resume of thousands)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {Record(t).retry_of for t in trials}
    for trial in trials:
        if (trial.state == TrialState.FAIL and Record(trial).error is None
                and trial.number not in retried):
            study.enqueue_trial(trial.params, user_attrs=attrs(retry_of=trial.number))


def spends_budget(trial) -> bool:
    """Done, pruned, or failed with an error of its own (not interrupted, not turned away
    because the budget was full, not a repeated network drawn again)."""
    from optuna.trial import TrialState

    stored = Record(trial)
    if stored.redrawn:
        return False
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and stored.error is not None and not stored.over_budget)


def counted(study) -> int:
    """Trials that spent the budget."""
    return sum(spends_budget(t) for t in study.get_trials(deepcopy=False))


def tried(study, setting: str) -> int:
    """How many different points of the space the search's trials under `setting` (see
    `loop.setting_of`; an earlier run's with another text or recipe are not this one's) have
    trained, failed on, or are training: by their network and recipe (the fingerprint), or for
    a trial that failed before binding one, by the values it drew. Redrawn repeats and
    interrupted trials (tried again) add nothing."""
    from optuna.trial import TrialState

    points = {stored.fingerprint or json.dumps(stored.values, sort_keys=True)
              for trial, stored in ((t, Record(t)) for t in study.get_trials(deepcopy=False))
              if stored.setting == setting
              and (trial.state == TrialState.RUNNING or spends_budget(trial))}
    return len(points)


def check_same_space(study, drawn_now: Callable[[str], Any]) -> None:
    """A stored search goes on over the space it began with: Optuna cannot draw a point whose
    options changed under its name (an option added or removed, a choice become a range) and
    would fail every trial. `drawn_now(name)`: the Optuna distribution this search would draw
    `name` from (None: it draws it no longer, which Optuna allows)."""
    from optuna.distributions import check_distribution_compatibility

    checked = set()
    for trial in study.get_trials(deepcopy=False):
        for name, before in trial.distributions.items():
            if (name, repr(before)) in checked:
                continue
            checked.add((name, repr(before)))
            now = drawn_now(name)
            try:
                if now is not None:
                    check_distribution_compatibility(before, now)
            except ValueError:
                drawn = (f"search '{study.study_name}' drew '{name}' from {_described(before)}; "
                         f"this one would draw it from {_described(now)}, which one search "
                         "cannot hold")
                again = f"{study.study_name}-2"
                raise ArgumentError(lambda given: (
                    f"{drawn}. Start a new search with {given('name')} (e.g. "
                    f"{given('name', again)}), or put the options back as they were")) from None


def _described(distribution) -> str:
    """An Optuna distribution as a user wrote it: its options, or its range."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return "the options " + ", ".join(json.dumps(option) if isinstance(option, bool)
                                          else str(option) for option in distribution.choices)
    whole = "whole numbers" if isinstance(distribution, IntDistribution) else "numbers"
    how = "log-uniform " if distribution.log else ""
    step = f" in steps of {distribution.step:g}" if distribution.step not in (None, 1) else ""
    return f"{how}{whole} from {distribution.low:g} to {distribution.high:g}{step}"
