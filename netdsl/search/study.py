"""Reading a stored search: the storage, `netdsl trials`, `best` and `plot`."""
from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from ..errors import NetdslError
from ..files import write_atomically

DEFAULT_STORAGE = "sqlite:///netdsl.db"
HEARTBEAT_SECONDS, GRACE_SECONDS = 2, 6  # a trial silent this long was killed: retry it


PLOTS = ("history.png", "accuracy_time.png", "importance.png")  # what `netdsl plot` writes
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


def _study(args: argparse.Namespace):
    import optuna

    storage = open_storage(args.storage, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    name = args.name or (names[-1] if len(names) == 1 else None)
    if name not in names:
        have = ", ".join(names)
        if not names:
            raise NetdslError(f"no searches in {args.storage}")
        if args.name is None:
            raise NetdslError(f"{args.storage} holds several searches ({have}); give --name")
        raise NetdslError(f"no search named '{args.name}' in {args.storage} (searches: {have})")
    return optuna.load_study(study_name=name, storage=storage)


def trial_rows(study) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name.lower(),
                     "accuracy": t.values[0] if t.values else None,
                     "train_time": t.user_attrs.get("train_time"),
                     "flops": t.user_attrs.get("flops"),
                     "values": t.user_attrs.get("values", {}), "dsl": t.user_attrs.get("dsl"),
                     "flags": t.user_attrs.get("flags"),
                     "same_as": t.user_attrs.get("same_as"),
                     "redrawn": bool(t.user_attrs.get("redrawn")),
                     "retry_of": t.user_attrs.get("retry_of"),
                     "error": t.user_attrs.get("error")})
    return rows


def trials_command(args: argparse.Namespace) -> int:
    rows = trial_rows(_study(args))
    if args.number is not None:
        row = next((r for r in rows if r["number"] == args.number), None)
        if row is None:
            raise NetdslError(f"no trial {args.number} in this search (trials 0 to "
                              f"{len(rows) - 1})")
        rows = [row]
    if args.json:
        print(json.dumps(rows[0] if args.number is not None else rows, indent=1))
        return 0
    if args.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "values": json.dumps(row["values"])})
        write_atomically(Path(args.csv), buffer.getvalue().encode())
        print(f"wrote {args.csv}")
        return 0
    print(f"{'trial':>5}  {'state':<8}  {'accuracy':>8}  {'train s':>8}  values drawn")
    for row in rows:
        accuracy = "" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        seconds = "" if row["train_time"] is None else f"{row['train_time']:.1f}"
        values = " ".join(f"{key}={_value_text(value)}" for key, value in row["values"].items())
        print(f"{row['number']:>5}  {row['state']:<8}  {accuracy:>8}  {seconds:>8}  {values}")
        note = row["error"] or (f"same network as trial {row['same_as']}"
                                + ("; drawn again, not counted" if row["redrawn"] else "")
                                if row["same_as"] is not None else None)
        if note:
            print(f"{'':>37}{note if args.number is not None else note.splitlines()[0]}")
    if args.number is not None:
        print(f"\n{rows[0]['dsl'] or '(no network: the trial failed before binding it)'}",
              end="" if rows[0]["dsl"] else "\n")
        if rows[0]["flags"]:
            print(f"\ntrainer flags: {rows[0]['flags']}")
    elif rows:
        print(f"\na trial whole, its network and trainer flags: netdsl trials NUMBER")
    return 0


def _value_text(value: Any) -> str:
    """A drawn value as the search space gives it: 0.1234 for a float, a nested choice's keys
    in braces."""
    if isinstance(value, dict):
        return "{" + " ".join(f"{k}={_value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value)


def best_trials(study) -> list:
    """The best finished trial, or for two objectives every trial on the Pareto front, most
    accurate first; [] before any trial has finished."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def _scores(trial) -> str:
    return ", ".join([f"accuracy {trial.values[0]:.4f}", *(f"{v:.4g}" for v in trial.values[1:])])


def print_best(study) -> None:
    best = best_trials(study)
    if not best:
        print("no finished trial yet")
    elif len(study.directions) == 1:
        print(f"best: trial {best[0].number}, {_scores(best[0])}")
    else:
        print("Pareto front (accuracy, " + study.user_attrs.get("objectives", "accuracy,?")
              .split(",")[1] + "):")
        for trial in best:
            print(f"  trial {trial.number}: {_scores(trial)}")


def best_command(args: argparse.Namespace) -> int:
    """Print the best trial's DSL text (every Pareto-front trial's, for two objectives), or
    with --flags the `netdsl run` flags of its training."""
    study = _study(args)
    best = best_trials(study)
    if not best:
        raise NetdslError(f"search '{study.study_name}' has no finished trial yet")
    for trial in best:
        if len(best) > 1 or len(study.directions) > 1:  # several texts: say whose each is
            print(f"# trial {trial.number}: {_scores(trial)}")
        print(trial.user_attrs["flags" if args.flags else "dsl"].rstrip())
    return 0


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats on both accuracy (higher) and cost
    (lower), sorted by cost."""
    front = [i for i, (acc, cost) in enumerate(points)
             if not any(a >= acc and c <= cost and (a, c) != (acc, cost) for a, c in points)]
    return sorted(front, key=lambda i: points[i][1])


def plot_command(args: argparse.Namespace) -> int:
    """Write history.png, accuracy_time.png (with the Pareto front) and importance.png."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots

    study = _study(args)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(trials) < 2:
        raise NetdslError(f"search '{study.study_name}' needs 2 finished trials to plot, "
                          f"has {len(trials)}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    accuracy = (lambda t: t.values[0]) if len(study.directions) > 1 else None

    def save(ax, name: str) -> None:
        ax.figure.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(f"wrote {out / name}")

    history, accuracy_time, importance = PLOTS
    save(optuna_plots.plot_optimization_history(study, target=accuracy,
                                                target_name="validation accuracy"), history)

    points = [(t.values[0], t.user_attrs.get("train_time") or 0.0) for t in trials]
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([c for _, c in points], [a for a, _ in points], s=18, color="#80b1d3",
               label="trials")
    ax.plot([points[i][1] for i in front], [points[i][0] for i in front], "o-", color="#fb8072",
            label="Pareto front")
    for i in front:
        ax.annotate(str(trials[i].number), (points[i][1], points[i][0]), fontsize=8,
                    xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="training time (s)", ylabel="validation accuracy",
           title=f"{study.study_name}: accuracy against training time")
    ax.legend()
    save(ax, accuracy_time)

    try:
        save(optuna_plots.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=accuracy,
            target_name="validation accuracy"), importance)
    except (ValueError, RuntimeError) as e:  # too few trials, or no parameter varies
        print(f"{importance} not written: {e}")
    return 0


