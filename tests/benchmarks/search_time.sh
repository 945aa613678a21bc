#!/bin/bash
# Where a small search's time goes, for two checkouts of netdsl one after the other (the
# machine is shared and noisy: each pair runs twice). Issue 16's search: airbench94 at widths
# 8 to 16, a 5,000-image subset, 3 epochs, 5 random trials.
#   tests/benchmarks/search_time.sh OLD_CHECKOUT NEW_CHECKOUT CIFAR10_FOLDER [extra flags of NEW]
# e.g. git worktree add /tmp/old <commit>; tests/benchmarks/search_time.sh /tmp/old . /tmp/cifar10-jpg
# Prints each run's closing line; everything is written under a temporary folder.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2"); data=$(realpath "$3"); shift 3
python=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo '{"width": {"_type": "choice", "_value": [8, 10, 12, 14, 16]}}' > "$work/space.json"
search() {  # label checkout flags...
  local label=$1 code=$2; shift 2
  (cd "$work" && "$python" -c "import sys; sys.path.insert(0, '$code'); from netdsl.cli import main; sys.exit(main())" \
    search "$new/models/airbench94.net" --space space.json --recipe airbench94 \
    --dataset "$data" --train-limit 5000 --epochs 3 --trials 5 --tuner random \
    --storage "sqlite:///$work/$label.db" "$@" > "$work/$label.log" 2>&1) || {
    cat "$work/$label.log"; exit 1; }
  echo "$label: $(grep -E '^(best|this process)' "$work/$label.log" | tr '\n' ' ')"
}
for round in 1 2; do
  search "old-$round" "$old"
  search "new-$round" "$new"
  if [ $# -gt 0 ]; then search "new-$round $*" "$new" "$@"; fi
done
