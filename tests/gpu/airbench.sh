#!/usr/bin/env bash
# The GPU check of the modern recipe, under 9 minutes on one GPU:
#   1. models/airbench94.net --recipe airbench94, 10 runs (one process, data loaded once);
#   2. ../shared/bench/ref_airbench.py, 10 runs (seeds 0-9), the plain-PyTorch reference;
#   3. the same netdsl runs compiled (--compile, 3 runs: compiling is minutes, reported apart);
#   4. models/resnet9.net with the seed's recipe, 3 runs.
# Aim (issue 9): netdsl's mean TTA accuracy within 0.2 points of the reference's, and its time
# per run (whitening, training, final evaluation) at most 1.05x the reference's.
#
# Prepare as tests/gpu/setup.sh says, and put the plain-PyTorch reference ref_airbench.py (the
# project's shared bench folder: ../shared/bench/) in .gpu/ too. Run from the repository root on
# any machine with a CUDA GPU: bash tests/gpu/airbench.sh
# Writes $OUT/*.json (per-run records) and $OUT/*.log, and prints the summary.
source tests/gpu/setup.sh
net() { python3 -m netdsl run "$@" --dataset $data --data-dir /tmp/cache; }

net models/airbench94.net --recipe airbench94 --runs 10 --json "$out/airbench94.json" \
    2>&1 | tee "$out/airbench94.log" | grep -E "^(run |test-time|Finished|[0-9]+ runs)" || true
for seed in 0 1 2 3 4 5 6 7 8 9; do
    python3 .gpu/ref_airbench.py --data $data --seed $seed | grep RESULT
done 2>&1 | tee "$out/reference.log"
net models/airbench94.net --recipe airbench94 --compile --runs 3 --json "$out/airbench94_compiled.json" \
    2>&1 | tee "$out/airbench94_compiled.log" | grep -E "^(compiled|test-time|Finished|[0-9]+ runs)" || true
net models/resnet9.net --runs 3 --json "$out/resnet9.json" 2>&1 | tee "$out/resnet9.log" | tail -3

python3 - "$out" <<'PY'
import json, re, statistics, sys
out = sys.argv[1]
def runs(name):
    record = json.load(open(f"{out}/{name}.json"))
    return [(r["final"]["valid_acc"], r["final"]["core_time"]) for r in record["runs"]]
ref = [(float(a), float(s)) for a, s in re.findall(r"tta_acc=([\d.]+) .*seconds=([\d.]+)",
                                                   open(f"{out}/reference.log").read())]
rows = {"reference": ref, "netdsl": runs("airbench94"), "netdsl compiled": runs("airbench94_compiled"),
        "resnet9 seed": runs("resnet9")}
for name, values in rows.items():
    acc, sec = [v[0] for v in values], [v[1] for v in values]
    print(f"{name:16s} n={len(values):2d} acc {statistics.mean(acc):.4f} "
          f"(std {statistics.pstdev(acc):.4f}) seconds {statistics.mean(sec):.2f}")
print("time ratio netdsl/reference:",
      round(statistics.mean(v[1] for v in rows["netdsl"]) / statistics.mean(v[1] for v in ref), 3))
PY
