"""Search: DSL strings from a search space, evaluated by the shared trainer, stored by Optuna.

`evaluate` is the one call any search code needs (NNI, Ray Tune, a hand-written evolution):
DSL text + values -> a trained, measured network, on data already on the device.
The `*_command` functions are `netdsl search`, `trials`, `best`, `plot` and `trial` (NNI).
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ._api import parameters, parse
from .errors import NetdslError
from .graph import flatten, shapes, to_json
from .ops import flop_count
from .space import grid, keys, load_space, sample, whole_valued

# Space keys that set the trainer rather than the network, and the seed's NNI names for them.
TRAINER_KEYS = {"epochs": int, "batch_size": int, "peak_lr": float, "peak_epoch": float,
                "weight_decay": float, "momentum": float, "cutout": int,
                "label_smoothing": float, "ema": float}
SEED_NAMES = {"base_wd": "weight_decay", "total_epoch": "epochs"}
DEFAULT_STORAGE = "sqlite:///netdsl.db"
TUNERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("none", "median", "hyperband")
OBJECTIVES = ("accuracy", "accuracy,time", "accuracy,flops")
HEARTBEAT_SECONDS, GRACE_SECONDS = 2, 6  # a trial silent this long was killed: retry it


class TrialFailed(Exception):
    """A trial that cannot give a result (invalid network, loss not finite, out of memory).
    The search records it with its error and goes on."""


@dataclass
class Evaluation:
    """What one trained network gave."""

    status: str                 # finished, stopped (pruned), diverged, interrupted
    accuracy: float | None      # validation accuracy after the last epoch
    train_time: float           # seconds of training, validation excluded
    epochs_time: float          # seconds of the epochs, training and validation
    flops: int                  # per image, forward pass
    dsl: str                    # the network as DSL text with its parameters bound
    fingerprint: str            # hash of the resolved graph and the hyperparameters
    curve: list[float] = field(default_factory=list)  # validation accuracy per epoch


def split_values(values: dict[str, Any], declared: dict[str, Any]) -> tuple[dict, dict]:
    """Values in NNI's form -> (network bindings, recipe changes). A key the network declares
    binds the network; a trainer key (or the seed's name for one) changes the recipe; a nested
    choice {"_name": ..., keys...} binds its keys (and its `_name`, if the network declares the
    choice's own key). Any other key is an error."""
    bindings, changes = {}, {}
    for key, value in values.items():
        key = SEED_NAMES.get(key, key)
        if isinstance(value, dict) and "_name" in value:
            inner = {k: v for k, v in value.items() if k != "_name"}
            if key in declared:
                inner[key] = value["_name"]
            more_bindings, more_changes = split_values(inner, declared)
            bindings.update(more_bindings)
            changes.update(more_changes)
        elif key in declared:
            bindings[key] = value
        elif key in TRAINER_KEYS:
            kind = TRAINER_KEYS[key]
            if kind is int and not (isinstance(value, (int, float)) and float(value).is_integer()):
                raise NetdslError(f"'{key}' must be a whole number, got {value!r}")
            changes[key] = kind(value)
        else:
            raise NetdslError(f"'{key}' is neither a parameter of the network "
                              f"({', '.join(declared) or 'none'}) nor a trainer setting "
                              f"({', '.join(TRAINER_KEYS)})")
    return bindings, changes


def check_space_fits(space: dict, declared: dict[str, Any], source: str) -> None:
    """Before any training: every key must bind the network or the trainer, and keys of whole
    numbers (channels, depth, epochs) must not draw fractions."""
    for key, spec in keys(space).items():
        name = SEED_NAMES.get(key, key)
        if name not in declared and name not in TRAINER_KEYS:
            raise NetdslError(f"search space key '{key}' is neither a parameter of {source} "
                              f"({', '.join(declared) or 'none'}) nor a trainer setting "
                              f"({', '.join(TRAINER_KEYS)})")
        whole = (isinstance(declared.get(name), int) and not isinstance(declared.get(name), bool)) \
            or TRAINER_KEYS.get(name) is int
        if whole and spec["_type"] != "choice" and not whole_valued(spec):
            raise NetdslError(f"search space key '{key}' takes whole numbers, but {spec['_type']} "
                              f"{spec['_value']} draws fractions; use choice, randint or a "
                              "quniform with whole bounds and q")


def bind_text(text: str, bindings: dict[str, Any]) -> str:
    """`text` with each bound parameter's default replaced by its value and comments dropped:
    one standalone DSL text, ready for `netdsl run -e`."""
    lines = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].rstrip()  # the DSL has no strings: '#' always comments
        match = re.match(r"^(\s*param\s+)([A-Za-z_]\w*)(\s*=\s*).*$", line)
        if match and match.group(2) in bindings:
            line = match.group(1) + match.group(2) + match.group(3) + _literal(
                bindings[match.group(2)])
        if line.strip():
            lines.append(line)
    return "\n".join(lines)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def fingerprint(graph, recipe) -> str:
    """Same resolved graph and same hyperparameters -> same hash, however they were written."""
    settings = {k: v for k, v in vars(recipe).items() if k not in ("compile", "precision")}
    canonical = json.dumps({"graph": json.loads(to_json(graph)), "recipe": settings},
                           sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Prepared:
    """A network and recipe ready to train: what `prepare` gives and `evaluate` trains."""

    graph: Any
    recipe: Any
    dsl: str
    fingerprint: str
    flops: int


def prepare(text: str, data, recipe, values: dict[str, Any] | None = None, *,
            source: str = "<string>") -> Prepared:
    """Bind `values` (network parameters and trainer keys) into `text` and `recipe` and check
    the network against `data`'s images. Raises NetdslError for anything invalid."""
    declared = parameters(text, source=source)
    bindings, changes = split_values(values or {}, declared)
    if "classes" in declared and "classes" not in bindings:
        bindings["classes"] = len(data.classes)
    recipe = replace(recipe, **changes)
    try:
        recipe.check()
    except ValueError as e:
        raise NetdslError(f"bad hyperparameter: {e}") from None
    dsl = bind_text(text, bindings)
    graph = flatten(parse(dsl, source=source, input_shape=data.image_shape))
    out_shapes = shapes(graph, data.image_shape)
    flops = sum(flop_count(op, out_shapes[path], len(inputs))
                for path, (op, inputs) in graph.items() if op is not None)
    return Prepared(graph, recipe, dsl, fingerprint(graph, recipe), flops)


def evaluate(text: str, data, recipe, values: dict[str, Any] | None = None, *,
             source: str = "<string>", log: Callable[[str], None] | None = None,
             should_stop: Callable[[Any], bool] | None = None,
             prepared: Prepared | None = None,
             init: dict[str, Any] | None = None) -> Evaluation:
    """Bind `values` into `text` and `recipe`, compile, and train on `data` (a
    runtime.DeviceData, loaded once by the caller). `init`: path-keyed weights of an earlier
    or wider network to start from (see transfer_weights). Raises NetdslError for an invalid
    network or value; a loss that stops being finite gives status "diverged"."""
    import runtime
    import torch

    from ._compile import Network, transfer_weights

    net = prepared or prepare(text, data, recipe, values, source=source)
    torch.manual_seed(net.recipe.seed)
    model = Network(net.graph)
    if init is not None:
        transfer_weights(init, model)
    try:
        result = runtime.train(model, data, net.recipe, log=log,
                               should_stop=should_stop)
    except (ValueError, runtime.OutOfMemory) as e:
        raise NetdslError(str(e)) from None
    return Evaluation(result.status, result.valid_acc, result.train_time, result.total_time,
                      net.flops, net.dsl, net.fingerprint, [e.valid_acc for e in result.epochs])


# ---- the commands -------------------------------------------------------------------------------

def add_search_arguments(search: argparse.ArgumentParser) -> None:
    from .run import add_training_arguments

    search.add_argument("--space", required=True, metavar="SPACE.json",
                        help="NNI's search_space.json format; keys bind the network's parameters "
                        "or trainer settings (" + ", ".join(TRAINER_KEYS) + ")")
    search.add_argument("--trials", type=int, required=True, metavar="N",
                        help="the search's total budget: a finished search adds nothing when run "
                        "again, an interrupted one continues up to N")
    add_study_arguments(search)
    search.add_argument("--tuner", choices=TUNERS, default="tpe", help="Optuna sampler (default: tpe)")
    search.add_argument("--pruner", choices=PRUNERS, default="none",
                        help="stop poor trials early on their per-epoch accuracy (default: none)")
    search.add_argument("--objectives", choices=OBJECTIVES, default="accuracy",
                        help="maximise accuracy, or also minimise training time or FLOPs "
                        "(a Pareto front)")
    search.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="stop starting new trials after this long")
    search.add_argument("--resume", action="store_true",
                        help="continue a stored search (an error if there is none); running "
                        "the same command again does the same")
    add_training_arguments(search)


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", metavar="NAME",
                        help="the search's name in the storage (default: the .net file's name)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, metavar="URL",
                        help=f"Optuna storage URL (default: {DEFAULT_STORAGE}); a PostgreSQL URL "
                        "lets several workers share one search")


def _storage(url: str):
    import warnings

    import optuna
    import sqlalchemy.exc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Heartbeats and stale-trial handling are marked experimental; they are what resuming uses.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for attempt in range(4):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS,
                                              grace_period=GRACE_SECONDS,
                                              heartbeat_stale_trial_callback=_retry)
        except sqlalchemy.exc.SQLAlchemyError as e:
            # Workers that open a new database at once race to create its tables; the loser
            # finds them made when it tries again.
            if attempt == 3:
                raise NetdslError(f"cannot open storage {url}: {e}") from None
            time.sleep(0.5 * 2 ** attempt)
        except (ValueError, ImportError) as e:
            raise NetdslError(f"cannot open storage {url}: {e}") from None


def _retry(study, trial) -> None:
    """An interrupted trial (killed, or Ctrl-C) failed without an error: try its values again,
    once."""
    if "error" in trial.user_attrs:
        return
    if any(t.user_attrs.get("retry_of") == trial.number for t in study.get_trials(deepcopy=False)):
        return
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def _counted(study) -> int:
    """Trials that spend the budget: done, pruned, or failed with an error of their own."""
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED)
               or (t.state == TrialState.FAIL and "error" in t.user_attrs)
               for t in study.get_trials(deepcopy=False))


def search_command(args: argparse.Namespace, text: str, source: str) -> int:
    import optuna
    from optuna.trial import TrialState

    from .run import load_data, load_weights, recipe_and_device

    # -- everything checked before any data moves ------------------------------------------------
    space = load_space(args.space)
    declared = parameters(text, source=source)
    check_space_fits(space, declared, source)
    grid_values = grid(space) if args.tuner == "grid" else None
    if args.trials < 1:
        raise NetdslError(f"bad option: --trials must be at least 1, got {args.trials}")
    multi = args.objectives != "accuracy"
    if multi and args.pruner != "none":
        raise NetdslError("bad option: pruning needs a single objective (--objectives accuracy)")
    recipe, device = recipe_and_device(args)
    base = dict(args.set)
    parse(text, base, source=source)

    storage = _storage(args.storage)
    name = args.name or _default_name(source)
    existing = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if args.resume and name not in existing:
        raise NetdslError(f"--resume: no search named '{name}' in {args.storage} "
                          f"(searches: {', '.join(existing) or 'none'})")
    count_before = 0
    if name in existing:
        count_before = _counted(optuna.load_study(study_name=name, storage=storage))
        if count_before >= args.trials:
            print(f"search '{name}' has its {count_before} trials already; nothing to do "
                  f"(see: netdsl trials --name {name})")
            return 0
    sampler = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=args.seed + count_before),
        "random": lambda: optuna.samplers.RandomSampler(seed=args.seed + count_before),
        "grid": lambda: optuna.samplers.GridSampler(grid_values, seed=args.seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=args.seed + count_before,
                                                      warn_independent_sampling=False),
    }[args.tuner]()
    pruner = {"none": optuna.pruners.NopPruner,
              "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
              "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1,
                                                                  max_resource=recipe.epochs),
              }[args.pruner]()
    directions = ["maximize"] + (["minimize"] if multi else [])
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                                directions=directions, load_if_exists=True)
    study.set_user_attr("dsl", text)
    study.set_user_attr("objectives", args.objectives)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        _retry(study, trial)  # interrupted by Ctrl-C, or killed and seen stale: try again
    optuna.storages.fail_stale_trials(study)

    initial = load_weights(args.init_from)
    data, _ = load_data(args, text, source, base, device)
    print(f"search '{name}' in {args.storage}: {count_before} of {args.trials} trials done")

    # -- the trials ---------------------------------------------------------------------------------
    def objective(trial):
        values = sample(trial, space, grid_mode=grid_values is not None)
        trial.set_user_attr("values", values)
        done = {}  # fingerprint -> the first finished trial that trained it
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            done.setdefault(t.user_attrs.get("fingerprint"), t)

        def should_stop(epoch) -> bool:
            if multi:
                return False
            trial.report(epoch.valid_acc, epoch.epoch)
            return trial.should_prune()

        try:
            net = prepare(text, data, recipe, {**base, **values}, source=source)
            trial.set_user_attr("dsl", net.dsl)
            trial.set_user_attr("flags", recipe_flags(net.recipe))
            trial.set_user_attr("fingerprint", net.fingerprint)
            trial.set_user_attr("flops", net.flops)
            earlier = done.get(net.fingerprint)
            if earlier is not None:  # the same network and recipe: its result, not a retraining
                for key in ("train_time", "curve"):
                    trial.set_user_attr(key, earlier.user_attrs.get(key))
                trial.set_user_attr("same_as", earlier.number)
                print(f"trial {trial.number}: same network and recipe as trial {earlier.number}")
                return earlier.values[0] if not multi else tuple(earlier.values)
            result = evaluate(text, data, recipe, should_stop=should_stop, prepared=net,
                              init=initial)
        except NetdslError as e:
            trial.set_user_attr("error", e.message if e.location is None else str(e))
            raise TrialFailed(str(e)) from None
        trial.set_user_attr("train_time", result.train_time)
        trial.set_user_attr("epochs_time", result.epochs_time)
        trial.set_user_attr("curve", result.curve)
        if result.status == "interrupted":
            raise KeyboardInterrupt
        if result.status == "diverged":
            trial.set_user_attr("error", "the training loss stopped being finite")
            raise TrialFailed("diverged")
        if result.status == "stopped":
            raise optuna.TrialPruned()
        print(f"trial {trial.number}: accuracy {result.accuracy:.4f}, "
              f"{result.train_time:.1f} s, {json.dumps(values)}")
        if not multi:
            return result.accuracy
        return result.accuracy, result.train_time if args.objectives == "accuracy,time" \
            else result.flops

    def stop_at_budget(study, trial) -> None:
        if _counted(study) >= args.trials:
            study.stop()

    numbers_before = {t.number for t in study.get_trials(deepcopy=False)}
    start = time.perf_counter()
    try:
        study.optimize(objective, timeout=args.timeout, catch=(TrialFailed,),
                       callbacks=[stop_at_budget], n_trials=args.trials - count_before)
    except KeyboardInterrupt:
        print(f"netdsl: interrupted; run the same command again to continue '{name}'",
              file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - start
    print(f"search '{name}': {_counted(study)} of {args.trials} trials done")
    _print_best(study)
    mine = [t for t in study.get_trials(deepcopy=False) if t.number not in numbers_before]
    if mine:
        # Everything but the epochs (training and validation): sampling, binding, compiling,
        # deduplicating, storing.
        epochs = sum(t.user_attrs.get("epochs_time") or 0.0 for t in mine)
        print(f"this process: {len(mine)} trials in {elapsed:.2f} s, of which "
              f"{(elapsed - epochs) / len(mine):.3f} s per trial outside the epochs; "
              f"peak memory {_peak_memory_mb(data.device):.0f} MB")
    return 0


def _peak_memory_mb(device) -> float:
    """Peak resident memory of this process (CPU) or peak allocated device memory (CUDA)."""
    import resource

    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _default_name(source: str) -> str:
    from pathlib import Path

    return Path(source).stem if source != "<-e>" else "search"


def _study(args: argparse.Namespace):
    import optuna

    storage = _storage(args.storage)
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
                     "same_as": t.user_attrs.get("same_as"),
                     "retry_of": t.user_attrs.get("retry_of"),
                     "error": t.user_attrs.get("error")})
    return rows


def trials_command(args: argparse.Namespace) -> int:
    rows = trial_rows(_study(args))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if args.csv:
        from ._files import write_atomically
        from pathlib import Path

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "values": json.dumps(row["values"])})
        write_atomically(Path(args.csv), buffer.getvalue().encode())
        print(f"wrote {args.csv}")
        return 0
    print(f"{'trial':>5}  {'state':<8}  {'accuracy':>8}  {'train s':>8}  parameters / DSL")
    for row in rows:
        accuracy = "" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        seconds = "" if row["train_time"] is None else f"{row['train_time']:.1f}"
        print(f"{row['number']:>5}  {row['state']:<8}  {accuracy:>8}  {seconds:>8}  "
              f"{json.dumps(row['values'])}")
        note = row["error"] or (f"same network as trial {row['same_as']}"
                                if row["same_as"] is not None else None)
        if note:
            print(f"{'':>36}{note.splitlines()[0]}")
        if row["dsl"]:
            print(f"{'':>36}{' '.join(row['dsl'].split())}")
    return 0


def _print_best(study) -> None:
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        print("no finished trial yet")
        return
    if len(study.directions) == 1:
        best = study.best_trial
        print(f"best: trial {best.number}, accuracy {best.values[0]:.4f}")
    else:
        print("Pareto front (accuracy, " + study.user_attrs.get("objectives", "accuracy,?")
              .split(",")[1] + "):")
        for t in sorted(study.best_trials, key=lambda t: -t.values[0]):
            print(f"  trial {t.number}: {t.values[0]:.4f}, {t.values[1]:.4g}")


def recipe_flags(recipe) -> str:
    """The `netdsl run` flags that give `recipe`'s training again."""
    flags = [f"--epochs {recipe.epochs}", f"--batch-size {recipe.batch_size}",
             f"--peak-lr {recipe.peak_lr!r}", f"--peak-epoch {recipe.peak_epoch!r}",
             f"--weight-decay {recipe.weight_decay!r}", f"--momentum {recipe.momentum!r}",
             f"--cutout {recipe.cutout}", f"--label-smoothing {recipe.label_smoothing!r}",
             f"--ema {recipe.ema!r}", f"--seed {recipe.seed}"]
    flags += [f"--lr-scale {prefix}={factor!r}" for prefix, factor in recipe.lr_scale.items()]
    return " ".join(flags + (["--tta"] if recipe.tta else []))


def best_command(args: argparse.Namespace) -> int:
    """Print the best trial's DSL text (every Pareto-front trial's, for two objectives), or
    with --flags the `netdsl run` flags of its training."""
    from optuna.trial import TrialState

    study = _study(args)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise NetdslError(f"search '{study.study_name}' has no finished trial yet")
    if len(study.directions) == 1:
        print(study.best_trial.user_attrs["flags" if args.flags else "dsl"])
        return 0
    for t in sorted(study.best_trials, key=lambda t: -t.values[0]):  # the Pareto front
        print(f"# trial {t.number}: accuracy {t.values[0]:.4f}, {t.values[1]:.4g}")
        print(t.user_attrs["flags" if args.flags else "dsl"])
    return 0


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points that no other point beats on both accuracy (higher) and cost
    (lower), sorted by cost."""
    front = [i for i, (acc, cost) in enumerate(points)
             if not any(a >= acc and c <= cost and (a, c) != (acc, cost) for a, c in points)]
    return sorted(front, key=lambda i: points[i][1])


def plot_command(args: argparse.Namespace) -> int:
    """Write history.png, accuracy_time.png (with the Pareto front) and importance.png."""
    from pathlib import Path

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

    save(optuna_plots.plot_optimization_history(study, target=accuracy,
                                                target_name="validation accuracy"), "history.png")

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
    save(ax, "accuracy_time.png")

    try:
        save(optuna_plots.plot_param_importances(
            study, evaluator=optuna.importance.PedAnovaImportanceEvaluator(), target=accuracy,
            target_name="validation accuracy"), "importance.png")
    except (ValueError, RuntimeError) as e:  # too few trials, or no parameter varies
        print(f"importance.png not written: {e}")
    return 0


def trial_command(args: argparse.Namespace, text: str, source: str) -> int:
    """`netdsl trial`: one NNI trial. Takes its values from nni.get_next_parameter(), reports
    the validation accuracy after every epoch (report_intermediate_result) and at the end
    (report_final_result). NNI itself is not a dependency: it is imported when this runs."""
    try:
        import nni
    except ImportError:
        raise NetdslError("netdsl trial runs as an NNI trial command and needs `import nni`; "
                          "without NNI, use netdsl search") from None
    from .run import load_data, load_weights, recipe_and_device

    values = nni.get_next_parameter() or {}
    declared = parameters(text, source=source)
    base = dict(args.set)
    split_values(values, declared)  # unknown keys fail before any data moves
    recipe, device = recipe_and_device(args)
    data, _ = load_data(args, text, source, base, device)

    def report(epoch) -> bool:
        nni.report_intermediate_result(epoch.valid_acc)
        return False

    result = evaluate(text, data, recipe, {**base, **values}, source=source, log=print,
                      should_stop=report, init=load_weights(args.init_from))
    if result.status != "finished":
        raise NetdslError(f"the trial did not finish: {result.status}")
    nni.report_final_result(result.accuracy)
    return 0
