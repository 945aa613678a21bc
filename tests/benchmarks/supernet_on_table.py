"""A weight-sharing supernet of NAS-Bench-201 against the benchmark's own 200-epoch accuracies
(docs/ranking.md, "The supernet against the truth").

    python tests/benchmarks/supernet_on_table.py DATA TABLE OUT_DIR --name NAME \\
        [--train-limit N] [--valid V] [--networks 200] [--recalibrate B] -- SUPERNET_FLAGS...

DATA is the image folder of ../shared/data (CIFAR-10), TABLE its nb201_cifar.csv.xz. Trains
`netdsl supernet models/nb201.net --dataset DATA --train-limit N --valid-split V SUPERNET_FLAGS
-o OUT_DIR/NAME.pt` (unless that file is there: then ranks it again; N 0 is all 50,000, V
5,000 by default), then ranks NETWORKS networks drawn at random as `netdsl score --sample N
--seed 0` draws them (at the supernet's --set size) by their accuracy on the V held-out
training images with the supernet's weights,
BatchNorm recalibrated on B batches of training images, and measures Kendall tau, Spearman rho
and top-10% overlap against the table's cifar10 column. Appends a record to
OUT_DIR/supernet_on_table.json: the flags, the CPU seconds of training and of ranking (both
cores count), each network's inherited accuracy and truth, the agreement.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from netdsl.bench import nb201
from netdsl.cli import build_parser
from netdsl.commands.flags import recipe_of
from netdsl.train import DataWanted, load_data, read_supernet, with_classes
from netdsl.rank import agreement
from netdsl.rank.scores import drawn_networks
from netdsl.bench.table import load_table

SEED = 0


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("table")
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--valid", type=int, default=5000)
    parser.add_argument("--networks", type=int, default=200)
    parser.add_argument("--recalibrate", type=int, default=8)
    ours, flags = (sys.argv[1:sys.argv.index("--")], sys.argv[sys.argv.index("--") + 1:]) \
        if "--" in sys.argv else (sys.argv[1:], [])
    args = parser.parse_args(ours)
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / f"{args.name}.pt"

    command = ["supernet", "models/nb201.net", "--dataset", args.data, "--train-limit",
               str(args.train_limit), "--valid-split", str(args.valid), *flags, "-o", str(saved)]
    train_cpu = None
    if not saved.exists():
        start, wall = children_cpu(), time.time()
        subprocess.run([sys.executable, "-m", "netdsl", *command], check=True)
        train_cpu = children_cpu() - start
        print(f"trained in {time.time() - wall:.0f} s wall, {train_cpu:.0f} CPU s", flush=True)

    family = nb201.family()
    data = load_data(DataWanted(args.data, train_limit=args.train_limit, valid_split=args.valid),
                     torch.device("cpu"), seed=SEED)
    # The command's own flags, read as it read them: its --set values and its recipe (whose
    # batch size the recalibration takes).
    flags_read = build_parser().parse_args(command)
    values = with_classes(family, data, dict(flags_read.set or []))
    supernet = read_supernet(str(saved), family, values, data.image_shape)
    supernet.eval()
    recipe, _ = recipe_of(flags_read)
    truth = load_table(args.table, "cifar10", family, family.space(values), values)

    start = time.process_time()
    networks = []
    for bound in drawn_networks(family, data, values, args.networks, SEED):
        accuracy = supernet.accuracy(bound, data, recipe, args.recalibrate)
        networks.append({"arch": nb201.from_bound(bound), "inherited": accuracy,
                         "truth": truth.look_up(bound)})
    rank_cpu = time.process_time() - start
    measured = agreement([n["truth"] for n in networks], [n["inherited"] for n in networks])
    print(f"{args.name}: tau {measured['kendall_tau']:.3f} rho {measured['spearman_rho']:.3f} "
          f"top10% {measured['top_overlap']:.2f} over {len(networks)} networks "
          f"(ranking {rank_cpu:.0f} CPU s)")

    results_file = args.out / "supernet_on_table.json"
    records = json.loads(results_file.read_text()) if results_file.exists() else []
    records.append({"name": args.name, "flags": flags, "train_limit": args.train_limit,
                    "valid": args.valid, "recalibration_batches": args.recalibrate,
                    "machine": platform.processor() or platform.machine(),
                    "train_cpu_seconds": train_cpu, "rank_cpu_seconds": rank_cpu,
                    "agreement": measured, "networks": networks})
    results_file.write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main()
