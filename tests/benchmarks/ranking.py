"""How well cheap rankings order networks against training them: zero-cost scores, a
weight-sharing supernet's inherited accuracy and one epoch of training, against NB201 networks
trained standalone; then a search with and without the best score as a prefilter.

    python tests/benchmarks/ranking.py PATH/TO/cifar10-jpg OUT_DIR

PATH is the image folder of ../shared/data. A random 10,000 of the training images (seed 0) are
split into 8,000 to train on and 2,000 to select on. NETWORKS networks of models/nb201.net at
C=8, N=1 are drawn at random (seed 0); each is trained standalone for 5 epochs with the seed's
recipe at batch 128 (peak_lr 0.1, the peak at epoch 1.5) with seeds 0 and 1: the ground truth
is the mean accuracy on the 10,000 test images (a ranking chooses nothing, and the larger set
is the less noisy), and the two seeds' own Kendall tau is the ceiling any ranking can be
expected to reach. (At 3 epochs of batch 512, 45 steps, that ceiling was -0.06: noise.) Each
ranking's cost is CPU seconds (time.process_time: both cores count). Then random search over
the whole space, SEARCH_TRIALS trials a run, 3 runs, with and without `--prefilter BEST:10`
(the zero-cost score with the highest tau), each trial's network trained at seed 0 as above
and chosen on the validation images (a network trained before is reused, charged its own
seconds). Writes OUT_DIR/ranking.json and ranking.png.
"""
from __future__ import annotations

import json
import math
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import netdsl.bench.nb201
import netdsl_runtime as runtime
from netdsl.train import fit
from netdsl.language.choices import drawn_at_random
from netdsl.rank.scores import BATCH_SIZE, SCORES, score, scoring_batch
from netdsl.search.prefilter import best_candidate
from netdsl.supernet import Supernet
from netdsl_runtime.images import Images
from search_side_by_side import best_so_far  # this folder's: run as a script

NETWORKS = int(os.environ.get("NETWORKS", 30))  # NETWORKS=4 tries the script out
SEARCH_TRIALS = int(os.environ.get("SEARCH_TRIALS", 10))
EPOCHS = 5
SUPERNET_EPOCHS = int(os.environ.get("SUPERNET_EPOCHS", 10))
CANDIDATES = 10  # per prefiltered trial
TRAIN, VALID = 8000, 2000
SIZE = {"C": 8, "N": 1}


def split(images: Images) -> Images:
    """8,000 training images to train on, 2,000 held out to rank on, the test set to report."""
    order = np.random.RandomState(0).permutation(len(images.train_y))
    train, valid = order[:TRAIN], order[TRAIN:TRAIN + VALID]
    return Images("cifar10[8000]/valid[2000]", images.classes, images.train_x[train],
                  images.train_y[train], images.train_x[valid], images.train_y[valid],
                  images.test_x, images.test_y)


def ranks(values: list[float]) -> list[float]:
    """Average ranks, 0 for the lowest; a NaN (a score not defined) ranks below every number."""
    keyed = [-math.inf if math.isnan(v) else v for v in values]
    order = sorted(range(len(keyed)), key=lambda i: keyed[i])
    out = [0.0] * len(keyed)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and keyed[order[j + 1]] == keyed[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties in either list counted as neither agreeing nor disagreeing)."""
    ra, rb = ranks(a), ranks(b)
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(ra)):
        for j in range(i + 1, len(ra)):
            da, db = ra[i] - ra[j], rb[i] - rb[j]
            if da == 0:
                ties_a += db != 0
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denominator if denominator else math.nan


def spearman_rho(a: list[float], b: list[float]) -> float:
    """The correlation of the two lists' ranks."""
    ra, rb = np.array(ranks(a)), np.array(ranks(b))
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def top_overlap(a: list[float], b: list[float], k: int = 5) -> float:
    """The share of b's top k that a's top k holds."""
    top = lambda v: set(sorted(range(len(v)), key=lambda i: ranks(v)[i])[-k:])
    return len(top(a) & top(b)) / k


def main(folder: str, out: Path) -> None:
    data = runtime.DeviceData(split(runtime.load_images(folder)), "cpu")
    recipe = replace(runtime.Recipe(), epochs=EPOCHS, peak_epoch=EPOCHS * 0.3, batch_size=128,
                     peak_lr=0.1)  # the seed's 0.4 at batch 512, scaled to the batch
    family = netdsl.bench.nb201.family()
    rng = random.Random(0)
    networks: dict[str, object] = {}
    while len(networks) < NETWORKS:
        bound = family.bind({**SIZE, "classes": 10}, chooser=drawn_at_random(rng))
        networks.setdefault(netdsl.bench.nb201.from_bound(bound), bound)
    archs = list(networks)
    trained: dict[tuple[str, int], dict] = {}  # (arch, seed) -> valid, test, CPU seconds

    def train(arch: str, seed: int) -> dict:
        if (arch, seed) not in trained:
            start = time.process_time()
            fitted = fit(networks[arch], data, replace(recipe, seed=seed), log=None)
            trained[arch, seed] = {"valid": fitted.accuracy, "test": fitted.test_accuracy,
                                   "seconds": time.process_time() - start}
            print(f"  {arch} seed {seed}: valid {fitted.accuracy:.4f}, test "
                  f"{fitted.test_accuracy:.4f}, {trained[arch, seed]['seconds']:.1f} CPU s",
                  flush=True)
        return trained[arch, seed]

    # -- the ground truth: every network trained with two seeds ----------------------------------
    truth_by_seed = [[train(arch, seed)["test"] for arch in archs] for seed in (0, 1)]
    truth = [statistics.mean(pair) for pair in zip(*truth_by_seed)]
    truth_seconds = sum(train(arch, seed)["seconds"] for arch in archs for seed in (0, 1))

    # -- the rankings ----------------------------------------------------------------------------
    rankings: dict[str, tuple[list[float], float]] = {}  # name -> (scores, CPU seconds)
    batch = scoring_batch(data, BATCH_SIZE, 0)
    for proxy in SCORES:
        start = time.process_time()
        scores = [score(networks[arch], data, batch, [proxy], 0).scores[proxy]
                  for arch in archs]
        rankings[proxy] = scores, time.process_time() - start
    start = time.process_time()
    supernet = Supernet(family, {**SIZE, "classes": 10}, data.image_shape, seed=0)
    supernet.allocate(0)
    runtime.train(supernet, data, replace(recipe, epochs=SUPERNET_EPOCHS,
                                          peak_epoch=SUPERNET_EPOCHS * 0.3),
                  log=None, evaluate_each_epoch=False)
    trained_supernet = time.process_time() - start
    inherited = [supernet.accuracy(networks[arch], data, recipe)
                 for arch in archs]
    rankings["supernet"] = inherited, time.process_time() - start
    start = time.process_time()
    one_epoch = replace(recipe, epochs=1, peak_epoch=0.3)
    rankings["1 epoch"] = ([fit(networks[arch], data, one_epoch, log=None,
                                report_test=False).accuracy for arch in archs],
                           time.process_time() - start)

    rows = [{"ranking": name, "kendall_tau": kendall_tau(scores, truth),
             "spearman_rho": spearman_rho(scores, truth), "top5": top_overlap(scores, truth),
             "cpu_seconds": seconds, "undefined": sum(math.isnan(s) for s in scores)}
            for name, (scores, seconds) in rankings.items()]
    ceiling = {"kendall_tau": kendall_tau(*truth_by_seed),
               "spearman_rho": spearman_rho(*truth_by_seed),
               "top5": top_overlap(*truth_by_seed), "cpu_seconds": truth_seconds}
    print(f"\n{NETWORKS} networks; ground truth: {EPOCHS} epochs, seeds 0 and 1, "
          f"{truth_seconds:.0f} CPU s")
    print(f"{'ranking':<12}{'Kendall tau':>12}{'Spearman rho':>14}{'top-5':>7}{'CPU s':>9}")
    print(f"{'seed vs seed':<12}{ceiling['kendall_tau']:>12.3f}{ceiling['spearman_rho']:>14.3f}"
          f"{ceiling['top5']:>7.1f}{truth_seconds / 2:>9.1f}")
    for row in rows:
        print(f"{row['ranking']:<12}{row['kendall_tau']:>12.3f}{row['spearman_rho']:>14.3f}"
              f"{row['top5']:>7.1f}{row['cpu_seconds']:>9.1f}"
              + (f"  ({row['undefined']} not defined)" if row["undefined"] else ""))

    # -- search with and without the best zero-cost score as a prefilter ---------------------------
    zero_cost = [row for row in rows if row["ranking"] in SCORES]
    best = max(zero_cost, key=lambda row: row["kendall_tau"])["ranking"]
    searches = []
    for seed in (0, 1, 2):
        for prefilter in (None, best):
            draw = random.Random(seed)
            trials = []
            for _ in range(SEARCH_TRIALS):
                candidates = [family.bind({**SIZE, "classes": 10}, chooser=drawn_at_random(draw))
                              for _ in range(CANDIDATES if prefilter else 1)]
                start = time.process_time()
                chosen = candidates[0] if not prefilter else candidates[best_candidate(
                    [score(c, data, batch, [prefilter], 0).scores[prefilter] for c in candidates])]
                scoring = time.process_time() - start
                arch = netdsl.bench.nb201.from_bound(chosen)
                networks.setdefault(arch, chosen)
                result = train(arch, 0)
                trials.append({"arch": arch, **result, "seconds": result["seconds"] + scoring})
            chosen_trial = max(trials, key=lambda t: t["valid"])
            searches.append({"seed": seed, "prefilter": prefilter, "trials": trials,
                             "test_of_best": chosen_trial["test"],
                             "cpu_seconds": sum(t["seconds"] for t in trials)})
            label = f" + prefilter {best}:{CANDIDATES}" if prefilter else ""
            print(f"random search seed {seed}{label}: best by validation "
                  f"{chosen_trial['valid']:.4f}, its test {chosen_trial['test']:.4f}, "
                  f"{searches[-1]['cpu_seconds']:.0f} CPU s", flush=True)
    for prefilter in (None, best):
        tests = [s["test_of_best"] for s in searches if s["prefilter"] == prefilter]
        print(f"{'random' if not prefilter else f'random + {best}:{CANDIDATES}':<22} test of the "
              f"best, mean of 3: {statistics.mean(tests):.4f} ({min(tests):.4f}-{max(tests):.4f})")

    out.mkdir(parents=True, exist_ok=True)
    (out / "ranking.json").write_text(json.dumps({
        "networks": [{"arch": arch, "truth": t, "seed0": a, "seed1": b,
                      **{name: scores[i] if not math.isnan(scores[i]) else None
                         for name, (scores, _) in rankings.items()}}
                     for i, (arch, t, a, b) in enumerate(zip(archs, truth, *truth_by_seed))],
        "ceiling": ceiling, "rankings": rows, "supernet_training_cpu_seconds": trained_supernet,
        "best_zero_cost": best, "searches": searches,
        "environment": runtime.environment(data.device)}, indent=1))
    plot(rows, ceiling, searches, best, out / "ranking.png")


def plot(rows, ceiling, searches, best, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (taus, found) = plt.subplots(1, 2, figsize=(11, 4))
    names = [row["ranking"] for row in rows]
    taus.bar(names, [row["kendall_tau"] for row in rows], color="#1f77b4")
    taus.axhline(ceiling["kendall_tau"], color="#d62728", linestyle="--",
                 label=f"seed vs seed {ceiling['kendall_tau']:.2f}")
    taus.axhline(0, color="black", linewidth=0.5)
    taus.set(ylabel=f"Kendall tau against {EPOCHS}-epoch training",
             title=f"{len(names)} rankings")
    taus.tick_params(axis="x", rotation=30)
    taus.legend(fontsize=8)
    for prefilter, colour in ((None, "#7f7f7f"), (best, "#2ca02c")):
        for run in (s for s in searches if s["prefilter"] == prefilter):
            bests, _ = best_so_far(run["trials"])
            found.plot(range(1, len(bests) + 1), bests, color=colour, alpha=0.8,
                       label=(f"random + {best}:{CANDIDATES}" if prefilter else "random")
                       if run["seed"] == 0 else None)
    found.set(xlabel="trials (networks trained)", ylabel="test accuracy of the best by validation",
              title="random search, with and without the prefilter")
    found.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], Path(sys.argv[2]))
