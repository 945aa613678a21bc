"""Differentiable search on NAS-Bench-201, judged by the benchmark's table (docs/search.md,
"Differentiable search").

    python tests/benchmarks/differentiable_on_table.py DATA TABLE OUT_DIR [--seeds 0,1,2]
        [--methods darts,gdas,drnas] [--limit 10000] [--epochs 15] [--extra 'FLAGS']

DATA is the image folder of ../shared/data (CIFAR-10), TABLE its nb201_cifar.csv.xz. Each
method and seed runs `netdsl supernet models/nb201.net --method M --seed S` on LIMIT training
images (half trains the weights, half the architecture: --arch-split 0.5) at C=8, N=1 with
the flags below, one process after another, and its record lands in OUT_DIR/M_S.json.
OUT_DIR/differentiable_on_table.json then holds, per method: each seed's network found, its
CIFAR-10 test accuracy in the table (`cifar10`, 200 epochs), the search's CPU seconds (the
process's user and system time) and seconds of steps, and how many of the six edges chose a
parameter-free op (skip_connect or none); the mean and standard deviation over seeds.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--set", "C=8", "--set", "N=1", "--batch-size", "64", "--peak-lr", "0.025",
         "--cutout", "0", "--arch-lr", "3e-3"]
PARAMETER_FREE = ("skip_connect", "none")


def run(method: str, seed: int, data: str, table: str, out: Path, limit: int, epochs: float,
        extra: list[str]) -> dict:
    record = out / f"{method}_{seed}.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "netdsl", "supernet", str(ROOT / "models/nb201.net"),
                    "--dataset", data, "--train-limit", str(limit), "--method", method,
                    "--seed", str(seed), "--epochs", str(epochs), *FLAGS, *extra,
                    "--table", table, "--metric", "cifar10", "--json", str(record)],
                   check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = json.loads(record.read_text())
    return {"seed": seed, "found": found["found"], "cifar10": found["table"]["value"],
            "cpu_seconds": round(after.ru_utime + after.ru_stime
                                 - before.ru_utime - before.ru_stime, 1),
            "step_seconds": round(found["seconds"], 1),
            "parameter_free_edges": sum(op in PARAMETER_FREE for op in found["found"].values())}


def machine() -> str:
    """The CPU by name and model number, as lscpu shows them."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    name = {key.strip(): value.strip() for key, value in fields.items()}
    return (f"{name.get('model name', platform.machine())}, model {name.get('model', '?')}, "
            f"{os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("table")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="darts,gdas,drnas")
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--epochs", type=float, default=15)
    parser.add_argument("--extra", type=shlex.split, default=[],
                        help="more flags for netdsl supernet, e.g. '--arch-lr 6e-4'")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "differentiable_on_table.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    summary["setup"] = {"flags": FLAGS + args.extra, "train_limit": args.limit,
                        "epochs": args.epochs, "machine": machine()}
    for method in args.methods.split(","):
        runs = [run(method, int(seed), args.data, args.table, args.out, args.limit,
                    args.epochs, args.extra) for seed in args.seeds.split(",")]
        accuracies = [r["cifar10"] for r in runs]
        summary[method] = {"runs": runs, "mean": round(statistics.mean(accuracies), 2),
                           "std": round(statistics.pstdev(accuracies), 2)}
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        print(method, summary[method]["mean"], "+-", summary[method]["std"], flush=True)


if __name__ == "__main__":
    main()
