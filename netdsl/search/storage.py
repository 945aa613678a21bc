"""Where a search lives: the Optuna storage (a SQLite file or a server) and its policy: which
trials spend the budget, and which are tried again."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import NetdslError

DEFAULT_STORAGE = "sqlite:///netdsl.db"
HEARTBEAT_SECONDS, GRACE_SECONDS = 2, 6  # a trial silent this long was killed: retry it
SQLITE_HEADER = b"SQLite format 3\0"  # the first 16 bytes of every SQLite database file


def storage_file(url: str) -> str | None:
    """The file of a SQLite storage URL (sqlite:///netdsl.db -> netdsl.db); None for a
    server's URL or an in-memory one."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?")[0]
    return path if path not in ("", ":memory:") else None


def open_storage(url: str, *, create: bool = True):
    """The Optuna storage at `url`. A SQLite file that does not exist is made only when
    `create` (a search); reading views say there is none. In-memory SQLite is refused: it
    would keep nothing."""
    import warnings

    import optuna
    import sqlalchemy.exc

    path = storage_file(url)
    if url.startswith("sqlite") and (path is None or "mode=memory" in url):
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
    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS,
                                              heartbeat_stale_trial_callback=retry,
                                              engine_kwargs=engine_kwargs)
        except sqlalchemy.exc.SQLAlchemyError as e:
            # Workers that open a new database at once race to create its tables; the loser
            # finds them made when it tries again.
            if attempt == 3:
                raise NetdslError(f"cannot open storage {url}: {e}") from None
            time.sleep(0.5 * 2 ** attempt)
        except (ValueError, ImportError, optuna.exceptions.StorageInternalError) as e:
            raise NetdslError(f"cannot open storage {url}: {e}") from None


def _check_database(path: str) -> None:
    """An existing file must be an SQLite database (or empty, which SQLite makes one): SQLite
    would take any other file of under a page for a new database and write over it."""
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise NetdslError(f"cannot read the storage {path}: {e.strerror}") from None
    if header and header != SQLITE_HEADER:
        raise NetdslError(f"the storage {path} is not an SQLite database; give --storage a new "
                          "file or one a search made")


def retry(study, trial) -> None:
    """An interrupted trial (killed, or Ctrl-C) failed without an error: try its values again,
    once."""
    if "error" in trial.user_attrs:
        return
    if any(t.user_attrs.get("retry_of") == trial.number for t in study.get_trials(deepcopy=False)):
        return
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def spends_budget(trial) -> bool:
    """Done, pruned, or failed with an error of its own (not interrupted, not turned away
    because the budget was full, not a repeated network drawn again)."""
    from optuna.trial import TrialState

    if trial.user_attrs.get("redrawn"):
        return False
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and "error" in trial.user_attrs
        and not trial.user_attrs.get("over_budget"))


def counted(study) -> int:
    """Trials that spent the budget."""
    return sum(spends_budget(t) for t in study.get_trials(deepcopy=False))
