"""Every tuner of `netdsl search` on NAS-Bench-201's table (CIFAR-10 test accuracy after 200
epochs), driven through netdsl's own search loop, beside the samplers driven by plain Optuna.

    python tests/benchmarks/search_on_table.py TABLE OUT_DIR [--seeds 100] [--first-seed 0]
        [--trials 200] [--strategies random,tpe,...] [--deadline HH:MM]
        [--metric cifar10] [--report COLUMN]

TABLE is NAS-Bench-201's table as CSV (`arch,cifar10,...`; ../shared/data/nb201_cifar.csv.xz).
Each netdsl run is `netdsl search models/nb201.net --table TABLE --metric METRIC --trials N
--seed S --tuner ...` in this process, with Optuna's in-memory storage (see `netdsl_run`); its
curve is the best accuracy among the trials that spent the budget, in their order (a redrawn
repeat spends none). With --report (the benchmark's protocol: `--metric cifar10_valid12
--report cifar10` on ../shared/data/nb201_fidelities.csv.xz) each search runs with `--report`,
and its curve is the report column's value of the network best by the metric so far: what
the search would hand over, judged on a number it never saw. A plain Optuna run asks the
sampler for the six edges, looks the network up and counts every trial, repeats too. Each run
is appended to OUT_DIR/runs/STRATEGY.jsonl as it ends, so the script resumes where it stopped
(kill it at any time) and several processes can run different --strategies, or one
strategy's seeds from different --first-seed, at once; each pass rewrites
OUT_DIR/search_on_table.json (mean +- std of the best accuracy at 10, 25, 50, 100, 150, 200
trials, regret to the optimum, the seeds each figure rests on, and for random, TPE and
evolution the paired difference from plain Optuna on the same seeds) and search_on_table.png.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import optuna

from netdsl import cli
from netdsl.bench import nb201
from netdsl.language import load
from netdsl.search.evolution import RegularizedEvolution
from netdsl.search.storage import spends_budget
from netdsl.search.study import test_accuracy
from netdsl.bench.table import load_table

NET = str(Path(__file__).resolve().parents[2] / "models" / "nb201.net")
CHECKPOINTS = (10, 25, 50, 100, 150, 200)
PREFILTER = "flops:10"  # read off each candidate's graph: no images needed beside the table
# --tuner and flags of each strategy run through netdsl's loop
NETDSL = {
    "random": ["--tuner", "random"],
    "tpe": ["--tuner", "tpe"],
    "evolution": ["--tuner", "evolution"],
    "evolution+prefilter": ["--tuner", "evolution", "--prefilter", PREFILTER],
    "tpe+prefilter": ["--tuner", "tpe", "--prefilter", PREFILTER],
    "predictor": ["--tuner", "predictor"],
    "predictor:weights": ["--tuner", "predictor", "--feature", "weights"],  # also data-free
}
PLAIN = {  # the samplers under plain Optuna: the reference figures
    "optuna:random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "optuna:tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "optuna:evolution": lambda seed: RegularizedEvolution(10, 3, seed=seed),
}
REFERENCE = {"random": "optuna:random", "tpe": "optuna:tpe", "evolution": "optuna:evolution"}


def netdsl_run(table: str, strategy: str, seed: int, trials: int, metric: str,
               report: str | None) -> dict:
    """One search through netdsl's command, in this process: its curve, redraws, seconds.
    Its storage is Optuna's in memory, not a SQLite file: the loop is the same (redraws,
    budget, startup), but each of its many reads of the trials is a list, not a query (on the
    loaded 2-core machine, SQLite made a 200-trial TPE search 200 s)."""
    storage = optuna.storages.InMemoryStorage()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), \
            mock.patch("netdsl.search.loop.open_storage", lambda url: storage):
        code = cli.main(["search", NET, "--table", table, "--metric", metric, "--trials",
                         str(trials), "--seed", str(seed), *NETDSL[strategy],
                         *(["--report", report] if report else [])])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{strategy} seed {seed}: netdsl search exited {code}")
    study = optuna.load_study(study_name="nb201", storage=storage)
    stored = sorted(study.trials, key=lambda t: t.number)
    spent = [t for t in stored if spends_budget(t)]
    attrs = study.user_attrs
    reported = [test_accuracy(study, t, attrs) if report else t.values[0] for t in spent]
    return {"curve": best_so_far([t.values[0] for t in spent], reported),
            "redrawn": sum(bool(t.user_attrs.get("redrawn")) for t in stored),
            "proxy_seconds": sum(t.user_attrs.get("score_time") or 0.0 for t in stored),
            "seconds": seconds}


def plain_run(values: dict[str, tuple[float, float]], strategy: str, seed: int, trials: int
              ) -> dict:
    """One search by plain Optuna: every trial counts, a repeated network too. `values`: each
    network's metric and report."""
    archs = []

    def objective(trial) -> float:
        edges = {edge: trial.suggest_categorical(edge, nb201.OPS) for edge in nb201.EDGES}
        archs.append(nb201.arch(edges))
        return values[archs[-1]][0]

    start = time.perf_counter()
    study = optuna.create_study(direction="maximize", sampler=PLAIN[strategy](seed))
    study.optimize(objective, n_trials=trials)
    return {"curve": best_so_far([values[a][0] for a in archs], [values[a][1] for a in archs]),
            "redrawn": 0, "proxy_seconds": 0.0, "seconds": time.perf_counter() - start}


def best_so_far(values: list[float], reported: list[float]) -> list[float]:
    """After each trial, the report of the trial best by value so far (the first of a tie)."""
    best, curve = float("-inf"), []
    for value, report in zip(values, reported):
        if value > best:
            best, kept = value, report
        curve.append(kept)
    return curve


def arch_values(table: str, metric: str, report: str | None) -> dict[str, tuple[float, float]]:
    """The table's metric and report (the metric again without one) by architecture string,
    read (and checked) as netdsl reads it."""
    family = load(NET)
    read = load_table(table, metric, family, family.space({}), {}, report)
    return {nb201.arch({p.name: o for p, o in zip(read.points, key)}):
            (value, read.reported[key] if report else value) for key, value in read.values.items()}


def done(out: Path, strategy: str) -> dict[int, dict]:
    path = out / "runs" / f"{strategy}.jsonl"
    if not path.exists():
        return {}
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {run["seed"]: run for run in runs}


def summary(out: Path, optimum: float, trials: int, metric: str, report: str | None) -> dict:
    """Each strategy's mean +- std of the best accuracy and its mean regret at each
    checkpoint, over the seeds run so far (the same seeds for every checkpoint)."""
    result = {"table": metric, "report": report, "optimum": optimum, "trials": trials,
              "strategies": {}}
    for strategy in [*NETDSL, *PLAIN]:
        runs = [r for r in done(out, strategy).values() if len(r["curve"]) >= trials]
        if not runs:
            continue
        at = {}
        for k in (c for c in CHECKPOINTS if c <= trials):
            best = [r["curve"][k - 1] for r in runs]
            at[k] = {"mean": statistics.fmean(best),
                     "std": statistics.stdev(best) if len(best) > 1 else 0.0,
                     "regret": max(0.0, optimum - statistics.fmean(best)),  # not -0.000
                     "found_optimum": sum(b >= optimum for b in best) / len(best)}
        reference = done(out, REFERENCE.get(strategy, ""))
        if all(r["seed"] in reference for r in runs) and strategy in REFERENCE:
            for k in at:  # the same seeds under plain Optuna: a paired difference
                gaps = [r["curve"][k - 1] - reference[r["seed"]]["curve"][k - 1] for r in runs]
                at[k]["minus_plain_optuna"] = statistics.fmean(gaps)
                at[k]["its_standard_error"] = (statistics.stdev(gaps) / len(gaps) ** 0.5
                                               if len(gaps) > 1 else 0.0)
        result["strategies"][strategy] = {
            "seeds": len(runs), "at": at,
            "seconds_per_run": statistics.fmean(r["seconds"] for r in runs),
            "proxy_seconds_per_run": statistics.fmean(r["proxy_seconds"] for r in runs),
            "redrawn_per_run": statistics.fmean(r["redrawn"] for r in runs),
            "mean_curve": [statistics.fmean(r["curve"][i] for r in runs) for i in range(trials)]}
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for strategy, s in result["strategies"].items():
        regret = [max(result["optimum"] - v, 1e-3) for v in s["mean_curve"]]
        ax.plot(range(1, len(regret) + 1), regret, ls="--" if strategy.startswith("optuna:")
                else "-", label=f"{strategy} ({s['seeds']} seeds)")
    ax.set(xlabel="trials (networks evaluated)", ylabel="mean regret to the optimum, points",
           yscale="log", title=f"NAS-Bench-201: {result['report'] or result['table']} of the "
           f"best by {result['table']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_paired(result: dict) -> None:
    """netdsl's loop minus plain Optuna on the same seeds, at each checkpoint."""
    for strategy, s in result["strategies"].items():
        if "minus_plain_optuna" in next(iter(s["at"].values())):
            print(f"{strategy} minus plain Optuna, same {s['seeds']} seeds: " + ", ".join(
                f"{k}: {a['minus_plain_optuna']:+.3f} +- {a['its_standard_error']:.3f}"
                for k, a in s["at"].items()))


def print_table(result: dict) -> None:
    checkpoints = list(next(iter(result["strategies"].values()))["at"])
    print("| strategy | seeds | " + " | ".join(f"{k} trials" for k in checkpoints)
          + " | regret at the end | s per run | proxy s |")
    print("|---|---:|" + "---|" * len(checkpoints) + "---:|---:|---:|")
    for strategy, s in result["strategies"].items():
        cells = [f"{s['at'][k]['mean']:.2f} +- {s['at'][k]['std']:.2f}" for k in checkpoints]
        print(f"| {strategy} | {s['seeds']} | " + " | ".join(cells)
              + f" | {s['at'][checkpoints[-1]]['regret']:.3f} | {s['seconds_per_run']:.1f} | "
              f"{s['proxy_seconds_per_run']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="start at this seed: a second process takes the later seeds")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--strategies", default=",".join([*NETDSL, *PLAIN]))
    parser.add_argument("--deadline", help="HH:MM UTC: start no run after it")
    parser.add_argument("--metric", default="cifar10", help="the column a search selects on")
    parser.add_argument("--report", help="the column it is judged on (default: the metric)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    strategies = args.strategies.split(",")
    unknown = [s for s in strategies if s not in NETDSL and s not in PLAIN]
    if unknown:
        raise SystemExit(f"no strategy {unknown[0]} (strategies: {', '.join([*NETDSL, *PLAIN])})")
    values = arch_values(args.table, args.metric, args.report)
    optimum = max(report for _, report in values.values())
    finish = lambda: write_summary(args.out, optimum, args.trials, args.metric, args.report)
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    # seed-major: every strategy has the same seeds so far
    for seed in range(args.first_seed, args.seeds):
        for strategy in strategies:
            if seed in done(args.out, strategy):
                continue
            if args.deadline and past(args.deadline):
                return finish()
            run = (netdsl_run(args.table, strategy, seed, args.trials, args.metric, args.report)
                   if strategy in NETDSL else plain_run(values, strategy, seed, args.trials))
            with open(args.out / "runs" / f"{strategy}.jsonl", "a") as f:
                f.write(json.dumps({"seed": seed, **run}) + "\n")
            print(f"{strategy} seed {seed}: {run['curve'][-1]:.4f} in {run['seconds']:.1f} s",
                  file=sys.stderr, flush=True)
        finish()


def past(deadline: str) -> bool:
    now = datetime.datetime.now(datetime.timezone.utc)
    hour, minute = map(int, deadline.split(":"))
    return (now.hour, now.minute) >= (hour, minute)


def write_summary(out: Path, optimum: float, trials: int, metric: str, report: str | None
                  ) -> None:
    result = summary(out, optimum, trials, metric, report)
    if not result["strategies"]:
        return
    (out / "search_on_table.json").write_text(json.dumps(
        {**result, "strategies": {name: {k: v for k, v in s.items() if k != "mean_curve"}
                                  for name, s in result["strategies"].items()}}, indent=1))
    plot(result, out / "search_on_table.png")
    print_table(result)
    print_paired(result)


if __name__ == "__main__":
    main()
