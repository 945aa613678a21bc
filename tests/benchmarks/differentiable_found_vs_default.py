"""Differentiable search off NAS-Bench-201: does the network each method finds in
models/branches_search.net (an item choice per twin block, an input choice for the skip) beat
the file's default network, both trained the same way? (docs/search.md, "Differentiable
search").

    python tests/benchmarks/differentiable_found_vs_default.py DATA OUT_DIR [--limit 10000]
        [--search-epochs 10] [--epochs 10] [--seeds 0,1]

DATA is the image folder of ../shared/data (CIFAR-10). Each method searches once on LIMIT
training images (half for the architecture) at width 16; then the default network and each
network found train with the seed recipe for EPOCHS epochs on the same LIMIT images, once per
seed, and are tested on the 10,000 test images. Writes OUT_DIR/found_vs_default.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILE = str(ROOT / "models/branches_search.net")
SEARCH = ["--set", "width=16", "--batch-size", "64", "--peak-lr", "0.025", "--cutout", "0",
          "--arch-lr", "3e-3"]


def netdsl(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "netdsl", *args], check=True,
                   stdout=subprocess.DEVNULL)


def trained(sets: list[str], data: str, limit: int, epochs: float, seed: int,
            record: Path) -> float:
    netdsl("run", FILE, "--set", "width=16", *sets, "--dataset", data, "--train-limit",
           str(limit), "--epochs", str(epochs), "--seed", str(seed), "--json", str(record))
    return json.loads(record.read_text())["runs"][0]["final"]["valid_acc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit", type=int, default=10000)
    parser.add_argument("--search-epochs", type=float, default=10)
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--methods", default="darts,gdas,drnas")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    networks: dict[str, list[str]] = {"default": []}
    for method in args.methods.split(","):
        record = args.out / f"{method}.json"
        netdsl("supernet", FILE, "--dataset", args.data, "--train-limit", str(args.limit),
               "--method", method, "--epochs", str(args.search_epochs), *SEARCH,
               "--json", str(record))
        found = json.loads(record.read_text())
        networks[method] = [arg for value in found["set"] for arg in ("--set", value)]
    summary = {"setup": {"search": SEARCH, "search_epochs": args.search_epochs,
                         "train_limit": args.limit, "epochs": args.epochs, "seeds": seeds}}
    for name, sets in networks.items():
        accuracies = [trained(sets, args.data, args.limit, args.epochs, seed,
                              args.out / f"run_{name}_{seed}.json") for seed in seeds]
        summary[name] = {"set": sets[1::2], "test_acc": accuracies,
                         "mean": round(statistics.mean(accuracies), 4)}
        (args.out / "found_vs_default.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(name, summary[name]["set"], summary[name]["mean"], flush=True)


if __name__ == "__main__":
    main()
