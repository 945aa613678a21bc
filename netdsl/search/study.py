"""Views of a stored search, which change nothing: `netdsl trials`, `best` and `plot`."""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from ..bench.table import METRIC_ATTR
from ..errors import ArgumentError, NetdslError
from ..files import write_atomically
from ..language.records import to_json
from .record import Record
from .storage import open_storage

PLOTS = ("history.png", "accuracy_time.png", "importance.png")  # what `netdsl plot` writes
# A search's user attribute, + the number of the trial that trained the network: its test
# accuracy, measured once the search chose it (with a validation split).
TEST_ACCURACY = "test_accuracy/"


def stored_study(url: str, name: str | None):
    """The search `name` stored at `url`; without a name, the one search stored there."""
    import optuna

    storage = open_storage(url, create=False)
    names = optuna.get_all_study_names(storage)  # summaries would read every trial
    found = name or (names[-1] if len(names) == 1 else None)
    if found not in names:
        have = ", ".join(names)
        if not names:
            raise NetdslError(f"no searches in {url}")
        if name is None:
            raise ArgumentError(lambda given: f"{url} holds several searches ({have}); give "
                                f"{given('name')}")
        raise NetdslError(f"no search named '{name}' in {url} (searches: {have})")
    return optuna.load_study(study_name=found, storage=storage)


def test_accuracy(study, trial, attrs: dict[str, Any] | None = None) -> float | None:
    """`trial`'s network's accuracy on the test set, where the search measured it: for the
    network it chose, with a validation split (a repeat reads the trial it repeats). `attrs`:
    the study's user attributes, read once by a caller that looks at many trials (each read
    is a query)."""
    attrs = study.user_attrs if attrs is None else attrs
    return attrs.get(f"{TEST_ACCURACY}{Record(trial).get('same_as', trial.number)}")


def trial_rows(study) -> list[dict[str, Any]]:
    """A row per trial, in one read of the trials and one of the study's attributes."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    attrs = study.user_attrs
    retried = {Record(t).retry_of: t.number for t in trials if Record(t).retry_of is not None}
    for t in trials:
        stored = Record(t)
        rows.append({"number": t.number, "state": t.state.name.lower(),
                     "accuracy": t.values[0] if t.values else None,
                     "test_accuracy": test_accuracy(study, t, attrs),
                     "train_time": stored.train_time, "flops": stored.flops,
                     "values": stored.get("values", {}), "dsl": stored.dsl,
                     "flags": stored.flags, "same_as": stored.same_as,
                     "redrawn": bool(stored.redrawn), "retry_of": stored.retry_of,
                     "prefilter": stored.prefilter, "error": stored.error,
                     "interrupted": _interruption(t, retried)})
    return rows


def _interruption(trial, retried: dict[int, int]) -> str | None:
    """Why `trial` failed without an error of its own, and what became of its values: it
    was interrupted (storage.retry tries it again, as the trial `retried` maps it to). None
    for any other trial."""
    from optuna.trial import TrialState

    if trial.state != TrialState.FAIL or Record(trial).error is not None:
        return None
    again = retried.get(trial.number)
    return ("interrupted: Ctrl-C, or its process was killed (marked failed once its heartbeat "
            "stopped); " + (f"tried again as trial {again}" if again is not None
                            else "tried again when the search goes on"))


def print_trials(study, number: int | None = None, as_json: bool = False,
                 csv_file: str | None = None) -> None:
    """The study's trials as a table (one trial whole: `number`), as JSON, or written to a
    CSV file."""
    rows = trial_rows(study)
    if number is not None:
        row = next((r for r in rows if r["number"] == number), None)
        if row is None:
            have = f"trials 0 to {len(rows) - 1}" if rows else "no trials yet"
            raise NetdslError(f"no trial {number} in this search ({have})")
        rows = [row]
    if as_json:
        print(to_json(rows[0] if number is not None else rows))
        return
    if csv_file:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        for row in rows:  # a cell holding values or a prefilter's candidates holds their JSON
            writer.writerow({key: to_json(cell, indent=None) if isinstance(cell, (dict, list))
                             else cell for key, cell in row.items()})
        write_atomically(Path(csv_file), buffer.getvalue().encode())
        print(f"wrote {csv_file}")
        return
    # a column of test accuracies where the search measured any (a table's --report: each)
    tested = any(row["test_accuracy"] is not None for row in rows)
    print(f"{'trial':>5}  {'state':<8}  {'accuracy':>8}  " + (f"{'test':>8}  " if tested else "")
          + f"{'train s':>8}  values drawn")
    for row in rows:
        accuracy = "" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        test = "" if row["test_accuracy"] is None else f"{row['test_accuracy']:.4f}"
        seconds = "" if row["train_time"] is None else f"{row['train_time']:.1f}"
        values = " ".join(f"{key}={_value_text(value)}" for key, value in row["values"].items())
        print(f"{row['number']:>5}  {row['state']:<8}  {accuracy:>8}  "
              + (f"{test:>8}  " if tested else "") + f"{seconds:>8}  {values}")
        same = (f"same network as trial {row['same_as']}"
                + ("; drawn again, not counted" if row["redrawn"] else "")
                if row["same_as"] is not None else None)
        note = row["error"] or row["interrupted"] or same
        if note:
            print(f"{'':>{47 if tested else 37}}"
                  f"{note if number is not None else note.splitlines()[0]}")
    if number is not None:
        print(f"\n{rows[0]['dsl'] or '(no network: the trial failed before binding it)'}",
              end="" if rows[0]["dsl"] else "\n")
        if rows[0]["flags"]:
            print(f"\ntrainer flags: {rows[0]['flags']}")
    elif rows:
        print("\na trial whole, its network and trainer flags: netdsl trials NUMBER")


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


def _scores(study, trial) -> str:
    test = test_accuracy(study, trial)
    accuracy = f"accuracy {trial.values[0]:.4f}" + ("" if test is None else
                                                    f" (test accuracy {test:.4f})")
    return ", ".join([accuracy, *(f"{v:.4g}" for v in trial.values[1:])])


def print_best(study) -> None:
    best = best_trials(study)
    if not best:
        print("no finished trial yet")
    elif len(study.directions) == 1:
        print(f"best: trial {best[0].number}, {_scores(study, best[0])}")
    else:
        print("Pareto front (accuracy, " + study.user_attrs.get("objectives", "accuracy,?")
              .split(",")[1] + "):")
        for trial in best:
            print(f"  trial {trial.number}: {_scores(study, trial)}")


# What `best --objective` picks of a Pareto front, in words.
PICKED_BY = {"accuracy": "the most accurate", "time": "the fastest to train",
             "flops": "the fewest FLOPs"}


def picked(study, objective: str | None):
    """The best trial; of a Pareto front, the best at `objective` (default: accuracy), said on
    stderr with the front's other trials."""
    best = best_trials(study)
    if not best:
        raise NetdslError(f"search '{study.study_name}' has no finished trial yet")
    names = study.user_attrs.get("objectives", "accuracy").split(",")
    objective = objective or names[0]
    if objective not in names:
        asked = objective
        raise ArgumentError(lambda given: (
            f"{given('objective', asked)}: search '{study.study_name}' has "
            f"{' and '.join(names)} as its objective{'s' * (len(names) > 1)}"))
    if len(names) == 1:
        if test_accuracy(study, best[0]) is not None:  # stdout stays the network's text
            print(f"netdsl: trial {best[0].number}, {_scores(study, best[0])}", file=sys.stderr)
        return best[0]
    place = names.index(objective)  # accuracy is maximised, the other minimised
    trial = best[0] if place == 0 else min(best, key=lambda t: (t.values[place], -t.values[0]))
    other = names[1 - place]
    print(f"netdsl: trial {trial.number}, {PICKED_BY[objective]} of the Pareto front (trials "
          f"{', '.join(str(t.number) for t in best)}; --objective {other}: "
          f"{PICKED_BY[other]})", file=sys.stderr)
    return trial


def pareto_front(points: Sequence[tuple[float, ...]]) -> list[int]:
    """Indices of the points (accuracy, cost) that no other point beats on both accuracy
    (higher) and cost (lower), sorted by cost."""
    front = [i for i, (acc, cost) in enumerate(points)
             if not any(a >= acc and c <= cost and (a, c) != (acc, cost) for a, c in points)]
    return sorted(front, key=lambda i: points[i][1])


def objective_name(study) -> str:
    """What a search's first objective is, for an axis: the table's column it looked up, else
    the validation accuracy it trained for."""
    return study.user_attrs.get(METRIC_ATTR) or "validation accuracy"


def timed_points(study, trials: list) -> list[tuple[int, float, float]]:
    """(number, accuracy, training seconds) of each of `trials` that trained its network, for
    the chart of accuracy against training time. A repeat (drawn again, or taking its twin's
    result) trained nothing: at 0 s it made the Pareto front, and at its twin's seconds it
    would hide under its twin, so it is left out. A table search's seconds are lookups, and a
    supernet's trials train nothing: neither has any point."""
    if METRIC_ATTR in study.user_attrs:
        return []
    return [(t.number, t.values[0], stored.train_time)
            for t, stored in ((t, Record(t)) for t in trials)
            if stored.same_as is None and stored.train_time is not None]


def plot_study(study, out: Path) -> None:
    """Write history.png, accuracy_time.png (with the Pareto front; not for a search that
    trained nothing) and importance.png into the folder `out`."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as optuna_plots

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(trials) < 2:
        raise NetdslError(f"search '{study.study_name}' needs 2 finished trials to plot, "
                          f"has {len(trials)}")
    if out.exists() and not out.is_dir():
        raise NetdslError(f"-o {out}: that is a file; a search's plots go into a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NetdslError(f"-o {out}: cannot make the folder ({e.strerror})") from None
    accuracy = (lambda t: t.values[0]) if len(study.directions) > 1 else None
    name = objective_name(study)

    def save(ax, file: str) -> None:
        ax.figure.savefig(out / file, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(f"wrote {out / file}")

    history, accuracy_time, importance = PLOTS
    save(optuna_plots.plot_optimization_history(study, target=accuracy, target_name=name),
         history)
    points = timed_points(study, trials)
    if points:
        save(_accuracy_time(study.study_name, points, name), accuracy_time)
    else:
        print(f"{accuracy_time} not written: no trial of this search trained its network "
              "(networks looked up in a table, or ranked by a supernet)")
    try:
        save(optuna_plots.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=accuracy,
            target_name=name), importance)
    except (ValueError, RuntimeError) as e:  # too few trials, or no parameter varies
        print(f"{importance} not written: {e}")


def _accuracy_time(title: str, points: list[tuple[int, float, float]], name: str):
    """The axes of each trial's `name` (its accuracy) against its training seconds, the
    Pareto front joined and numbered."""
    import matplotlib.pyplot as plt

    front = pareto_front([(accuracy, seconds) for _, accuracy, seconds in points])
    _, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([s for _, _, s in points], [a for _, a, _ in points], s=18, color="#80b1d3",
               label="trials")
    ax.plot([points[i][2] for i in front], [points[i][1] for i in front], "o-",
            color="#fb8072", label="Pareto front")
    for i in front:
        number, accuracy, seconds = points[i]
        ax.annotate(str(number), (seconds, accuracy), fontsize=8, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xlabel="training time (s)", ylabel=name,
           title=f"{title}: accuracy against training time")
    ax.legend()
    return ax
