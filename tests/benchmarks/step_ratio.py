"""Interleaved A/B timing of one training step of ResNet-9 (or airbench94), alternating step by
step so both sides see the same machine load: netdsl's compiled module against the hand-written
one, or (with --precisions) netdsl's module in two autocast precisions.

    python tests/benchmarks/step_ratio.py [--pairs 20] [--batch 128] [--widths 64,128,256,512]
                                          [--keep-freed-memory] [--precision auto|bf16|fp32]
                                          [--precisions bf16,fp32]
    python tests/benchmarks/step_ratio.py --net airbench94 [--width 16] [--batch 256]

Prints each side's median step time and the median of the per-pair ratios (first/second side).
--keep-freed-memory first applies runtime's malloc setting (what `runtime.train` does on the
CPU); run with and without it to see what that setting is worth. --precisions bf16,fp32 shows
what `--precision auto` gains or loses on this CPU.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
import netdsl  # noqa: E402
import netdsl_runtime as runtime  # noqa: E402
from handwritten import airbench94, resnet9  # noqa: E402
from test_speed import step_function  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--net", default="resnet9", choices=("resnet9", "airbench94"))
    parser.add_argument("--widths", default="64,128,256,512",
                        help="ResNet-9: channels of prep, layer1, layer2, layer3")
    parser.add_argument("--width", type=int, default=16,
                        help="airbench94: channels of its first group (the others have 4x)")
    parser.add_argument("--keep-freed-memory", action="store_true")
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="autocast on the CPU (auto: the trainer's choice for this CPU)")
    parser.add_argument("--precisions", metavar="A,B",
                        help="time netdsl's module in precision A against B instead")
    args = parser.parse_args()
    widths = dict(zip(("prep", "layer1", "layer2", "layer3"), map(int, args.widths.split(","))))
    if args.keep_freed_memory:
        from netdsl_runtime.machine import keep_freed_memory

        assert keep_freed_memory(), "not Linux with glibc"
    root = Path(__file__).resolve().parents[2]

    if args.net == "resnet9":
        compiled = lambda: netdsl.compile(root / "models/resnet9.net", **widths)
        handwritten, label = lambda: resnet9(*widths.values()), f"ResNet-9 {args.widths}"
    else:
        compiled = lambda: netdsl.compile(root / "models/airbench94.net", width=args.width)
        handwritten, label = lambda: airbench94(args.width), f"airbench94 width {args.width}"

    def ours(precision):
        return step_function(compiled(), args.batch, precision=precision)
    if args.precisions:
        steps = {f"netdsl {p}": ours(p) for p in args.precisions.split(",")}
    else:
        steps = {"netdsl": ours(args.precision),
                 "handwritten": step_function(handwritten(), args.batch,
                                              precision=args.precision)}
    for step in steps.values():  # warm-up: allocator, oneDNN kernel selection
        step(), step()
    times = {name: [] for name in steps}
    for i in range(args.pairs):
        order = list(steps) if i % 2 == 0 else list(reversed(steps))
        for name in order:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    first, second = steps
    ratios = [a / b for a, b in zip(times[first], times[second])]
    precision, why = runtime.choose_precision(args.precision, torch.device("cpu"))
    print(f"{label}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}, "
          f"{args.precisions or f'{precision} ({why})'}, channels_last, "
          f"{args.pairs} interleaved pairs, "
          f"{'freed memory kept' if args.keep_freed_memory else 'default malloc'}")
    for name, values in times.items():
        print(f"{name:12s} median {statistics.median(values) * 1e3:7.1f} ms per step")
    print(f"ratio {first}/{second}: median {statistics.median(ratios):.3f} "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.3f}-"
          f"{statistics.quantiles(ratios, n=4)[2]:.3f})")


if __name__ == "__main__":
    main()
