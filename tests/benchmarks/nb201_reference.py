"""models/nb201.net against NAS-Bench-201's own code: weight counts and outputs, architecture by
architecture.

    python tests/benchmarks/nb201_reference.py PATH/TO/AutoDL-Projects

PATH is a checkout of https://github.com/D-X-Y/AutoDL-Projects (only xautodl/models is read).
For each architecture it builds the authors' TinyNetwork(C=16, N=5, classes=10) and netdsl's
network of the same string, prints both weight counts, then copies the authors' weights into
netdsl's module in the order both register them and compares the logits on one random batch
(eval mode): the same count and the same function mean the same structure.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

import netdsl
import netdsl.bench.nb201

ARCHITECTURES = {
    "largest (all nor_conv_3x3)": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                  "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "smallest (all none)": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "mixed": "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+"
             "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "pools and skips": "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+"
                       "|avg_pool_3x3~0|none~1|nor_conv_1x1~2|",
}


def load(root: Path, name: str, relative: str):
    spec = importlib.util.spec_from_file_location(name, root / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(root: Path) -> int:
    load(root, "xautodl.models.cell_operations", "xautodl/models/cell_operations.py")
    cells = load(root, "xautodl.models.cell_infers.cells", "xautodl/models/cell_infers/cells.py")
    sys.modules["xautodl.models.cell_infers"] = type(sys)("xautodl.models.cell_infers")
    sys.modules["xautodl.models.cell_infers"].cells = cells
    tiny = load(root, "xautodl.models.cell_infers.tiny_network",
                "xautodl/models/cell_infers/tiny_network.py")
    genotypes = load(root, "genotypes", "xautodl/models/cell_searchs/genotypes.py")
    failed = 0
    print(f"{'architecture':<28} {'NB201 code':>11} {'netdsl':>9}  max |logit difference|")
    for label, arch in ARCHITECTURES.items():
        torch.manual_seed(0)
        theirs = tiny.TinyNetwork(16, 5, genotypes.Structure.str2structure(arch), 10).eval()
        bound = netdsl.load(netdsl.bench.nb201.to_text(arch)).bind()
        ours = bound.module().eval()
        count = sum(p.numel() for p in theirs.parameters())
        source = [t for t in theirs.state_dict().values()]
        target = list(ours.state_dict().values())
        same_shapes = [s.shape for s in source] == [t.shape for t in target]
        difference = float("nan")
        if same_shapes:
            with torch.no_grad():
                for s, t in zip(source, target):
                    t.copy_(s)
                x = torch.randn(4, 3, 32, 32)
                difference = (theirs(x)[1] - ours(x)).abs().max().item()
        ok = count == bound.weight_count and same_shapes and difference < 1e-4
        failed += not ok
        print(f"{label:<28} {count:>11,} {bound.weight_count:>9,}  {difference:.2e}"
              f"{'' if ok else '  MISMATCH'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(Path(sys.argv[1])))
