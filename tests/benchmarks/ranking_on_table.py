"""The zero-cost scores of NAS-Bench-201's networks against the benchmark's own 200-epoch
accuracies (docs/ranking.md, "Against the truth").

    python tests/benchmarks/ranking_on_table.py DATA TABLE OUT_DIR [--sample N]

DATA is the image folder of ../shared/data (CIFAR-10), TABLE its nb201_cifar.csv.xz. At the
benchmark's size (models/nb201.net as written: C=16, N=5), on the one batch of 64 training
images `netdsl score --seed 0` draws, with the weights seed 0 initialises: `weights` and `flops`
of all 15,625 networks, and `grad_norm`, `snip`, `synflow` and `naswot` of N (default 1,000)
networks drawn at random as `netdsl score --sample N --seed 0` draws them. Scores go through
netdsl's score cache (`scores.sqlite` in the data folder), so an interrupted run, or a
`netdsl score` run of the same networks before it, is not scored again. Writes
OUT_DIR/nb201_scores.csv.xz (a row a network: `arch`, then each score; empty where not scored)
and OUT_DIR/nb201_ranking.json (each score's Kendall tau, Spearman rho and top-10% overlap with
the table's cifar10, cifar100 and imagenet16_120 columns, over the networks it scored).

    python tests/benchmarks/ranking_on_table.py --ranked-from docs/nb201_scores.csv.xz TABLE docs

ranks the scores of a run before against TABLE again (after a change in how agreement is
measured), rewriting only the rankings of OUT_DIR/nb201_ranking.json: no images, no scoring.

    python tests/benchmarks/ranking_on_table.py DATA TABLE docs --add-to docs/nb201_scores.csv.xz

scores only the scores that file lacks (a score added to netdsl since: meco, expressivity,
progressivity, trainability), of the networks it holds drawn ones of, on the same batch and
initial weights, and writes the file again with their columns beside the others. Besides each
score, the rankings hold the aggregates over the networks drawn (az_nas, and the
combinations of COMBINATIONS below): the sum of log(rank / m) over their parts.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import lzma
import math
import platform
import time
from pathlib import Path

import torch

from netdsl.bench import nb201
from netdsl.train import DataWanted, load_data, with_classes
from netdsl.rank import ScoreCache, agreement, every_network
from netdsl.rank.aggregate import aggregated, base_scores
from netdsl.rank.scores import BATCH_SIZE, NETWORK_SCORES, SCORES, drawn_networks, scoring_batch
from netdsl.bench.table import load_table

SEED = 0
SIZE_ONLY = ("weights", "flops")  # cheap enough for every network
METRICS = ("cifar10", "cifar100", "imagenet16_120")
# rank aggregations measured beside az_nas (`--proxy` takes each as written)
COMBINATIONS = ("rank(az_nas,naswot)", "rank(az_nas,meco)", "rank(az_nas,naswot,meco)",
                "rank(expressivity,progressivity,trainability,flops,naswot)",
                "rank(naswot,synflow,flops)")
RANKED = (*SCORES, *COMBINATIONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?")
    parser.add_argument("table")
    parser.add_argument("out", type=Path)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--ranked-from", type=Path, metavar="SCORES.csv.xz",
                        help="rank these scores (a run's nb201_scores.csv.xz) instead of scoring")
    parser.add_argument("--add-to", type=Path, metavar="SCORES.csv.xz",
                        help="score what this file lacks of its drawn networks, and write it "
                        "again in OUT_DIR")
    args = parser.parse_args()
    if args.ranked_from is not None:
        rank_again(args.ranked_from, args.table, args.out)
    elif args.add_to is not None and args.data is not None:
        add_scores(args)
    elif args.data is None:
        parser.error("give DATA, or --ranked-from SCORES.csv.xz")
    else:
        score_and_rank(args)


def read_scores(scores_file: Path) -> dict[str, dict[str, float]]:
    """A scores file: arch -> score name -> value (nan where a drawn network's score is not
    defined; a network not drawn has its sizes only)."""
    scores = {}
    with lzma.open(scores_file, "rt", encoding="utf-8") as file:
        for row in csv.DictReader(file):
            arch = row.pop("arch")
            # A drawn network (one with a proxy's score) has each proxy: an empty cell is one
            # that came out undefined (nan), which ranks last; others have the sizes only.
            drawn = any(value for name, value in row.items() if name not in SIZE_ONLY)
            scores[arch] = {name: float(value) if value else math.nan
                            for name, value in row.items()
                            if value or (drawn and name not in SIZE_ONLY)}
    return scores


def rank_again(scores_file: Path, table: str, out: Path) -> None:
    """The rankings of nb201_ranking.json in `out` measured again from `scores_file`."""
    scores = read_scores(scores_file)
    summary = json.loads((out / "nb201_ranking.json").read_text())
    summary["rankings"] = rankings(scores, table, nb201.family(), {})
    summary["ranked_again"] = ("python tests/benchmarks/ranking_on_table.py --ranked-from "
                               f"{scores_file} TABLE {out}")
    (out / "nb201_ranking.json").write_text(json.dumps(summary, indent=1) + "\n")
    print_rankings(summary["rankings"])


def rankings(scores: dict[str, dict[str, float]], table: str, family, values
             ) -> dict[str, dict[str, dict]]:
    """Each score's agreement with each column of `table`, over the networks it scored; each
    aggregate's over the networks drawn (those with every part)."""
    drawn = [arch for arch, row in scores.items() if all(
        name in row for name in base_scores(list(RANKED)))]
    table_rows = [scores[arch] for arch in drawn]
    for name in RANKED:
        if name not in NETWORK_SCORES and drawn:
            for arch, value in zip(drawn, aggregated(name, table_rows)):
                scores[arch][name] = value
    results = {}
    for metric in METRICS:
        truth = load_table(table, metric, family, family.space(values), values)
        results[metric] = {}
        for name in RANKED:
            archs = [arch for arch, row in scores.items() if name in row]
            if not archs:
                continue
            bound_keys = [truth.key(nb201.edges(arch)) for arch in archs]
            measured = agreement([truth.values[key] for key in bound_keys],
                                 [scores[arch][name] for arch in archs])
            results[metric][name] = {"networks": len(archs), **measured}
    return results


def print_rankings(results: dict[str, dict[str, dict]]) -> None:
    for name in results["cifar10"]:
        figures = "  ".join(f"{metric}: tau {r[name]['kendall_tau']:.3f} rho "
                            f"{r[name]['spearman_rho']:.3f} top10% {r[name]['top_overlap']:.2f}"
                            for metric, r in results.items())
        print(f"{name:>10} ({results['cifar10'][name]['networks']:,}): {figures}")


def write_scores(scores: dict[str, dict[str, float]], path: Path) -> None:
    """The scores of each network (NETWORK_SCORES, not the aggregates) as an xz CSV."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["arch", *NETWORK_SCORES])
    for arch, row in scores.items():
        writer.writerow([arch, *("" if name not in row or math.isnan(row[name])
                                 else f"{row[name]:.6g}" for name in NETWORK_SCORES)])
    with lzma.open(path, "wt", encoding="utf-8") as file:
        file.write(text.getvalue())


def add_scores(args) -> None:
    """The scores `args.add_to` lacks, of the networks it holds drawn ones of: drawn again as
    `score_and_rank` drew them (the same seed, so the same networks, batch and weights)."""
    scores = read_scores(args.add_to)
    family = nb201.family()
    data = load_data(DataWanted(args.data), torch.device("cpu"), seed=SEED)
    values = with_classes(family, data, {})
    batch = scoring_batch(data, BATCH_SIZE, SEED)
    cache = ScoreCache(None, batch, SEED)
    had = {name for row in scores.values() for name in row}
    missing = [name for name in NETWORK_SCORES if name not in had]
    start = time.process_time()
    for number, bound in enumerate(drawn_networks(family, data, values, args.sample, SEED)):
        arch = nb201.from_bound(bound)
        assert "naswot" in scores[arch], f"{arch}: not a drawn network of {args.add_to}"
        scores[arch].update(cache.score(bound, data, batch, missing).scores)
        if number % 100 == 99:
            print(f"{number + 1} of {args.sample} networks scored; {cache.tally()}", flush=True)
    seconds = time.process_time() - start
    args.out.mkdir(parents=True, exist_ok=True)
    write_scores(scores, args.out / "nb201_scores.csv.xz")
    summary_file = args.out / "nb201_ranking.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    summary["cpu_seconds"] = {**summary.get("cpu_seconds", {}),
                              f"{args.sample} drawn, {', '.join(missing)} added": seconds}
    summary["added"] = ("python tests/benchmarks/ranking_on_table.py DATA TABLE OUT "
                        f"--add-to {args.add_to}")
    summary["rankings"] = rankings(scores, args.table, family, values)
    summary_file.write_text(json.dumps(summary, indent=1) + "\n")
    print_rankings(summary["rankings"])


def score_and_rank(args) -> None:
    family = nb201.family()
    data = load_data(DataWanted(args.data), torch.device("cpu"), seed=SEED)
    values = with_classes(family, data, {})
    batch = scoring_batch(data, BATCH_SIZE, SEED)
    cache = ScoreCache(None, batch, SEED)
    scores: dict[str, dict[str, float]] = {}  # arch -> score name -> value
    seconds = {}

    start = time.process_time()
    for bound in every_network(family, data, values):
        scores[nb201.from_bound(bound)] = cache.score(bound, data, batch, list(SIZE_ONLY)).scores
    seconds["all, weights and flops"] = time.process_time() - start
    print(f"weights and flops of {len(scores):,} networks; {cache.tally()}", flush=True)

    start = time.process_time()
    data_proxies = [name for name in NETWORK_SCORES if name not in SIZE_ONLY]
    for number, bound in enumerate(drawn_networks(family, data, values, args.sample, SEED)):
        scored = cache.score(bound, data, batch, data_proxies)
        scores[nb201.from_bound(bound)].update(scored.scores)
        if number % 100 == 99:
            print(f"{number + 1} of {args.sample} networks scored; {cache.tally()}", flush=True)
    seconds[f"{args.sample} drawn, {', '.join(data_proxies)}"] = time.process_time() - start

    args.out.mkdir(parents=True, exist_ok=True)
    write_scores(scores, args.out / "nb201_scores.csv.xz")

    results = rankings(scores, args.table, family, values)
    summary = {"command": "python tests/benchmarks/ranking_on_table.py DATA TABLE OUT "
                          f"--sample {args.sample}",
               "size": "models/nb201.net as written (C=16, N=5)", "batch_size": BATCH_SIZE,
               "seed": SEED, "machine": f"{platform.processor() or platform.machine()}, "
                                        f"{torch.get_num_threads()} torch threads",
               "cpu_seconds": seconds, "cache": cache.tally(), "rankings": results}
    (args.out / "nb201_ranking.json").write_text(json.dumps(summary, indent=1) + "\n")
    print_rankings(results)


if __name__ == "__main__":
    main()
