"""netdsl's airbench94 against the plain-PyTorch reference, and accuracy for training time, on
the machine it runs on (a CPU-sized net: width 16). Runs one after the other, never at once:

    tar xJf ../shared/data/cifar10-jpg.tar.xz -C /tmp
    python tests/benchmarks/airbench_cpu.py --data /tmp/cifar10-jpg --out airbench_cpu

1. `compare`: for each seed, `../shared/bench/ref_airbench.py --width 16 --seed S`, then
   `netdsl run models/airbench94.net --set width=16 --recipe airbench94 --seed S` (9.9 epochs);
   seconds as airbench counts them (whitening, training, the final TTA evaluation) on both sides.
2. `budgets`: the seed recipe on models/resnet9.net at 16/32/64/128 channels and the airbench94
   recipe at width 16, each at a few epoch budgets: test accuracy against training seconds.

Writes OUT/results.json, OUT/accuracy_time.png and prints Markdown tables.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "bench" / "ref_airbench.py"


def netdsl_run(model, recipe, data, seed, epochs, out, extra=()):
    record = out / f"{Path(model).stem}-{recipe}-e{epochs}-s{seed}.json"
    command = [sys.executable, "-m", "netdsl", "run", str(ROOT / model), "--recipe", recipe,
               "--dataset", data, "--seed", str(seed), "--epochs", str(epochs),
               "--json", str(record), *extra]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    (run,) = json.loads(record.read_text())["runs"]
    final = run["final"]
    return {"accuracy": final["valid_acc"], "seconds": final["core_time"]}


def reference_run(data, seed, width, epochs):
    command = [sys.executable, str(REFERENCE), "--data", data, "--width", str(width),
               "--seed", str(seed), "--epochs", str(epochs)]
    print("$", " ".join(command[1:]), flush=True)
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    print(done.stdout, flush=True)
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT"))
    values = dict(re.findall(r"(\w+)=([\d.]+)", line))
    return {"accuracy": float(values["tta_acc"]), "seconds": float(values["seconds"])}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            name = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
        flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        native = [f for f in ("amx_tile", "avx512_bf16", "avx512f", "avx2") if f" {f}" in flags]
        return f"{name}, {os.cpu_count()} cores, {' '.join(native)}"
    except (OSError, StopIteration):
        return platform.processor()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="CIFAR-10 image folder")
    parser.add_argument("--out", default="airbench_cpu", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", default="compare,budgets")
    parser.add_argument("--seed-budgets", default="2,4,8", help="epochs, seed recipe")
    parser.add_argument("--airbench-budgets", default="2,5", help="epochs, airbench94 recipe "
                        "(9.9 comes from the comparison)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = cpu_name()
    started = time.time()
    airbench = ("models/airbench94.net", "airbench94")
    width16 = ("--set", "width=16")

    if "compare" in args.parts:
        rows = []
        for seed in range(args.seeds):
            reference = reference_run(args.data, seed, 16, 9.9)
            ours = netdsl_run(*airbench, args.data, seed, 9.9, args.out, width16)
            rows.append({"seed": seed, "reference": reference, "netdsl": ours})
            results["compare"] = rows
            results_path.write_text(json.dumps(results, indent=1))
        print("\n| seed | reference TTA acc | netdsl TTA acc | reference s | netdsl s | ratio |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            r, n = row["reference"], row["netdsl"]
            print(f"| {row['seed']} | {r['accuracy']:.4f} | {n['accuracy']:.4f} | "
                  f"{r['seconds']:.1f} | {n['seconds']:.1f} | {n['seconds'] / r['seconds']:.3f} |")
        mean = lambda side, key: statistics.mean(row[side][key] for row in rows)
        print(f"| mean | {mean('reference', 'accuracy'):.4f} | {mean('netdsl', 'accuracy'):.4f} | "
              f"{mean('reference', 'seconds'):.1f} | {mean('netdsl', 'seconds'):.1f} | "
              f"{mean('netdsl', 'seconds') / mean('reference', 'seconds'):.3f} |")

    if "budgets" in args.parts:
        seed, ours = "seed recipe, ResNet-9 16/32/64/128", "airbench94 recipe, width 16"
        curves = results.setdefault("budgets", {})
        small = ("--set", "prep=16", "--set", "layer1=32", "--set", "layer2=64", "--set",
                 "layer3=128")
        for name, budgets, model, extra in (
                (seed, args.seed_budgets, ("models/resnet9.net", "seed"), small),
                (ours, args.airbench_budgets, airbench, width16)):
            if not budgets:  # kept from an earlier run
                continue
            curves[name] = []
            for epochs in budgets.split(","):
                run = netdsl_run(*model, args.data, 0, epochs, args.out, extra)
                curves[name].append({"epochs": float(epochs), **run})
                results_path.write_text(json.dumps(results, indent=1))
            if name == ours:
                curves[ours] += [{"epochs": 9.9, **row["netdsl"]}
                                 for row in results.get("compare", [])[:1]]
        results_path.write_text(json.dumps(results, indent=1))
        print("\n| recipe and net | epochs | training seconds | test accuracy |")
        print("|---|---|---|---|")
        for name, points in curves.items():
            for p in points:
                print(f"| {name} | {p['epochs']:g} | {p['seconds']:.0f} | {p['accuracy']:.4f} |")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axes = plt.subplots(figsize=(6, 4))
        for name, points in curves.items():
            points = sorted(points, key=lambda p: p["seconds"])
            axes.plot([p["seconds"] for p in points], [p["accuracy"] for p in points], "o-",
                      label=name)
            for p in points:
                axes.annotate(f"{p['epochs']:g} ep", (p["seconds"], p["accuracy"]),
                              textcoords="offset points", xytext=(4, -10), fontsize=8)
        axes.set_xlabel("training seconds (whitening, steps, final evaluation)")
        axes.set_ylabel("CIFAR-10 test accuracy")
        axes.set_title(results["machine"], fontsize=8)
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        figure.savefig(args.out / "accuracy_time.png", dpi=120)
    print(f"\n{results['machine']}; {time.time() - started:.0f} s in all")


if __name__ == "__main__":
    main()
