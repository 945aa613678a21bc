"""Random search, TPE and regularized evolution over models/nb201.net, side by side, on equal
budgets: the best network each finds (chosen on validation images) and its test accuracy,
against trials and against CPU seconds.

    python tests/benchmarks/search_side_by_side.py PATH/TO/cifar10-jpg OUT_DIR

PATH is the image folder of ../shared/data (cifar10-jpg/{train,test}/<class>/*.jpg). A random
10,000 of the training images (seed 0) are split into 8,000 to train on and 2,000 to select
on; the 10,000 test images only report. Each network is NB201 at C=8, N=1, trained for 3
epochs with the seed's recipe (peak at epoch 1). A network drawn by more than one run is
trained once and its result reused (the cache is keyed by its architecture string); each run
is still charged that network's own training seconds, so every strategy pays for what it
draws. Writes OUT_DIR/search_side_by_side.json (every run's trials) and .png (the plot).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna

import netdsl.bench.nb201
import netdsl_runtime as runtime
import netdsl_runtime.machine
from netdsl.train import fit
from netdsl.search.evolution import RegularizedEvolution
from netdsl_runtime.images import Images

TRIALS = int(os.environ.get("TRIALS", 20))  # per run; TRIALS=2 tries the script out
SEEDS = (0, 1, 2)
TRAIN, VALID = 8000, 2000
STRATEGIES = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "evolution": lambda seed: RegularizedEvolution(population=10, tournament=3, seed=seed),
}


def split(images: Images) -> tuple[Images, Images]:
    """(train on 8,000, select on 2,000 held out of the training images; test on the test set)
    as two datasets with the same training images."""
    order = np.random.RandomState(0).permutation(len(images.train_y))
    train, valid = order[:TRAIN], order[TRAIN:TRAIN + VALID]
    select = Images("cifar10[8000]/valid[2000]", images.classes, images.train_x[train],
                    images.train_y[train], images.train_x[valid], images.train_y[valid])
    report = Images("cifar10[8000]/test", images.classes, images.train_x[train],
                    images.train_y[train], images.test_x, images.test_y)
    return select, report


def main(folder: str, out: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    images = runtime.load_images(folder)
    select_images, report_images = split(images)
    select = runtime.DeviceData(select_images, "cpu")
    report = runtime.DeviceData(report_images, "cpu")
    recipe = replace(runtime.Recipe(), epochs=3, peak_epoch=1)
    family = netdsl.bench.nb201.family()
    trained: dict[str, tuple[float, float, float]] = {}  # arch -> (valid, test, CPU seconds)

    def train(arch: str) -> tuple[float, float, float]:
        if arch not in trained:
            bound = family.bind({**netdsl.bench.nb201.edges(arch), "C": 8, "N": 1})
            start = time.process_time()
            fitted = fit(bound, select, recipe, log=None)
            seconds = time.process_time() - start
            dtype = runtime.machine.AUTOCAST_DTYPES[fitted.result.precision]
            _, test = runtime.validate(fitted.model, report, recipe, dtype)
            trained[arch] = (fitted.accuracy, test, seconds)
            print(f"  trained {arch}: valid {fitted.accuracy:.4f}, test {test:.4f}, "
                  f"{seconds:.1f} CPU s", flush=True)
        return trained[arch]

    runs = []
    for name, sampler in STRATEGIES.items():
        for seed in SEEDS:
            study = optuna.create_study(direction="maximize", sampler=sampler(seed))
            rows = []

            def objective(trial):
                edges = {e: trial.suggest_categorical(e, list(netdsl.bench.nb201.OPS))
                         for e in netdsl.bench.nb201.EDGES}
                valid, test, seconds = train(netdsl.bench.nb201.arch(edges))
                rows.append({"arch": netdsl.bench.nb201.arch(edges), "valid": valid, "test": test, "seconds": seconds})
                return valid

            study.optimize(objective, n_trials=TRIALS)
            runs.append({"strategy": name, "seed": seed, "trials": rows})
            best = max(rows, key=lambda r: r["valid"])
            print(f"{name} seed {seed}: best valid {best['valid']:.4f}, its test "
                  f"{best['test']:.4f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_side_by_side.json").write_text(json.dumps(
        {"trials": TRIALS, "seeds": SEEDS, "networks_trained": len(trained),
         "cpu_seconds_spent": sum(s for _, _, s in trained.values()), "runs": runs}, indent=1))
    table(runs)
    plot(runs, out / "search_side_by_side.png")


def best_so_far(rows: list[dict]) -> tuple[list[float], list[float]]:
    """After each trial: the test accuracy of the best network so far by validation, and the
    CPU seconds spent so far."""
    tests, seconds, best, spent = [], [], None, 0.0
    for row in rows:
        spent += row["seconds"]
        if best is None or row["valid"] > best["valid"]:
            best = row
        tests.append(best["test"])
        seconds.append(spent)
    return tests, seconds


def table(runs: list[dict]) -> None:
    print("\nstrategy    test accuracy of the best by validation, mean (min-max) of "
          f"{len(SEEDS)} seeds; CPU seconds")
    for name in STRATEGIES:
        cells = []
        for at in sorted({min(5, TRIALS), min(10, TRIALS), TRIALS}):
            tests = [best_so_far(r["trials"])[0][at - 1] for r in runs if r["strategy"] == name]
            cells.append(f"{at} trials {statistics.mean(tests):.4f} ({min(tests):.4f}-"
                         f"{max(tests):.4f})")
        seconds = [best_so_far(r["trials"])[1][-1] for r in runs if r["strategy"] == name]
        print(f"{name:<10}  " + "  ".join(cells) + f"  {statistics.mean(seconds):.0f} s")


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_trials, by_seconds) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    colours = {"random": "#7f7f7f", "tpe": "#1f77b4", "evolution": "#d62728"}
    for run in runs:
        tests, seconds = best_so_far(run["trials"])
        label = run["strategy"] if run["seed"] == SEEDS[0] else None
        by_trials.plot(range(1, len(tests) + 1), tests, color=colours[run["strategy"]],
                       label=label, alpha=0.8)
        by_seconds.plot(seconds, tests, color=colours[run["strategy"]], alpha=0.8)
    by_trials.set_xlabel("trials")
    by_seconds.set_xlabel("CPU seconds (process time, 2 cores)")
    by_trials.set_ylabel("test accuracy of the best by validation")
    by_trials.legend()
    figure.suptitle(f"NB201 (C=8, N=1), CIFAR-10 8,000 images, 3 epochs; {len(SEEDS)} seeds each")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]))
