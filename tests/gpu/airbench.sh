#!/usr/bin/env bash
# The GPU check of the modern recipe, in one device call of under 9 minutes:
#   1. models/airbench94.net --recipe airbench94, 10 runs (one process, data loaded once);
#   2. ../shared/bench/ref_airbench.py, 10 runs (seeds 0-9), the plain-PyTorch reference;
#   3. the same netdsl runs compiled (--compile, 3 runs: compiling is minutes, reported apart);
#   4. models/resnet9.net with the seed's recipe, 3 runs.
# Aim (issue 9): netdsl's mean TTA accuracy within 0.2 points of the reference's, and its time
# per run (whitening, training, final evaluation) at most 1.05x the reference's.
#
# Prepare, on the development machine, in the repository root (.gpu/ is ignored by git):
#   mkdir -p .gpu && cp ../shared/data/cifar10-jpg.tar.xz ../shared/bench/ref_*.py .gpu/
#   python3 -m pip download --no-deps -d .gpu lark==1.3.1 tomli==2.2.1  # the GPU image has neither
# Run with the device tool: command "bash tests/gpu/airbench.sh", carry [".gpu"], timeout_s 560.
# Writes $OUT/*.json (per-run records) and $OUT/*.log, and prints the summary.
set -euo pipefail
out=${OUT:-/tmp/netdsl-gpu}
mkdir -p "$out" /tmp/site /tmp/data

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())"

tar xJf .gpu/cifar10-jpg.tar.xz -C /tmp/data
data=/tmp/data/cifar10-jpg
net() { python3 -m netdsl run "$@" --dataset $data --data-dir /tmp/cache; }

net models/airbench94.net --recipe airbench94 --runs 10 --json "$out/airbench94.json" \
    2>&1 | tee "$out/airbench94.log" | grep -E "^(run|test-time|Finished|mean)" || true
for seed in 0 1 2 3 4 5 6 7 8 9; do
    python3 .gpu/ref_airbench.py --data $data --seed $seed | grep RESULT
done 2>&1 | tee "$out/reference.log"
net models/airbench94.net --recipe airbench94 --compile --runs 3 --json "$out/airbench94_compiled.json" \
    2>&1 | tee "$out/airbench94_compiled.log" | grep -E "^(compiled|test-time|Finished|mean)" || true
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
