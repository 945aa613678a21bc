#!/usr/bin/env bash
# Family.space() of one 5-option choice in a block repeated n times (what `check`, `space` and
# the language server's choice check pay), in each checkout given, one after the other in the
# same run: `bash tests/benchmarks/space_repeated.sh OLD_CHECKOUT .` quotes old against new.
# Each checkout's own netdsl is imported (its folder first on sys.path); the Python is this
# one's venv unless PYTHON says otherwise.
set -euo pipefail
PYTHON=${PYTHON:-$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/python}
for n in 50 100 200; do
    for tree in "$@"; do
        (cd "$tree" && "$PYTHON" - "$n" "$tree" <<'PY'
import sys
import time

sys.path.insert(0, ".")
import netdsl

n, tree = int(sys.argv[1]), sys.argv[2]
family = netdsl.load(f"""param n = {n}
block b(c) {{
    mix: choice(conv_bn(c), conv_bn(c, ks=5), identity, zero, relu)
}}
stem: conv(8)
x: b(8) * n
""")
start = time.perf_counter()
family.space()
print(f"{tree} n={n}: {time.perf_counter() - start:.3f} s")
PY
        )
    done
done
