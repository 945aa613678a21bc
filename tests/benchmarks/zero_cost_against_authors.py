"""netdsl's meco and AZ-NAS parts against their authors' own functions, on NAS-Bench-201
networks compiled by netdsl (docs/ranking.md, "AZ-NAS and MeCo").

    python tests/benchmarks/zero_cost_against_authors.py AZ_NAS_GIT MECO_GIT [--networks 5]

AZ_NAS_GIT and MECO_GIT are git directories of cvlab-yonsei/AZ-NAS and HamsterMimi/MeCo (the
workplace's `fetch` gives them). Their functions are read from NB201/ZeroShotProxy/
compute_az_nas_score.py (`compute_nas_score`, the file imported) and
correlation/NAS_Bench_201.py (`get_score`, the function alone: the file imports a package of
theirs) at HEAD and run unchanged, but for `.cuda()` (a CPU here): AZ-NAS's on a module whose
`extract_cell_features` returns the outputs of netdsl's stages (`rank.scores.stage_outputs`),
MeCo's on the compiled network itself. Each pair is run from the same seed: the authors draw
from torch's global generator in the order netdsl's generator draws (the weights in module
order, the noise, a gradient per pair of maps), so the two see the same numbers.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

from netdsl.bench import nb201
from netdsl.language.choices import drawn_at_random
from netdsl.rank.scores import stage_outputs
from netdsl_runtime.proxies import az_nas_parts, meco


def authors(git_dir: str, path: str, folder: Path):
    """The module at `path` of the repository's HEAD, imported from a copy in `folder`."""
    source = subprocess.run(["git", "-C", git_dir, "show", f"HEAD:{path}"], check=True,
                            capture_output=True, text=True).stdout
    copy = folder / Path(path).name
    copy.write_text(source)
    spec = importlib.util.spec_from_file_location(copy.stem, copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function(git_dir: str, path: str, name: str):
    """The function `name` of the file at `path` alone (the file imports a package of theirs
    not installed here): its source compiled beside torch and random."""
    source = subprocess.run(["git", "-C", git_dir, "show", f"HEAD:{path}"], check=True,
                            capture_output=True, text=True).stdout
    tree = ast.parse(source)
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    scope = {"torch": torch, "random": random}
    exec(compile(ast.Module([node], []), path, "exec"), scope)  # their code, read as code
    return scope[name]


class Stages(nn.Module):
    """A compiled network as AZ-NAS's code reads one: its stages' outputs, in order."""

    def __init__(self, network, paths):
        super().__init__()
        self.network, self.paths = network, paths

    def extract_cell_features(self, x):
        kept = {}
        hooks = [self.network.node(p).register_forward_hook(
            lambda m, i, o, p=p: kept.setdefault(p, o)) for p in self.paths]
        self.network(x)
        for hook in hooks:
            hook.remove()
        return [kept[p] for p in self.paths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("az_nas")
    parser.add_argument("meco")
    parser.add_argument("--networks", type=int, default=5)
    args = parser.parse_args()
    nn.Module.cuda = lambda self, *a, **k: self  # their code moves the model to a GPU
    with tempfile.TemporaryDirectory() as folder:
        az = authors(args.az_nas, "NB201/ZeroShotProxy/compute_az_nas_score.py", Path(folder))
    meco_of_theirs = function(args.meco, "correlation/NAS_Bench_201.py", "get_score")
    family = nb201.family()
    rng = random.Random(0)
    rows = []
    for number in range(args.networks):
        bound = family.bind({}, chooser=drawn_at_random(rng))
        paths = stage_outputs(bound)
        x = torch.randn(64, 3, 32, 32, generator=torch.Generator().manual_seed(number))
        network = bound.module(seed=number)
        for m in network.modules():  # as netdsl's AZ-NAS sets them: no map overwritten
            if hasattr(m, "inplace"):
                m.inplace = False
        mine = bound.module(seed=number)  # the weights are drawn again by each: any will do
        ours = az_nas_parts(mine, x, [mine.node(p) for p in paths], seed=number)
        torch.manual_seed(number)
        theirs = az.compute_nas_score(Stages(network, paths), None, None, 32, 64)
        image = x[:1]
        ours_meco = meco(bound.module(seed=number), image, None)
        theirs_meco = meco_of_theirs(bound.module(seed=number).train(), image, "cpu")
        rows.append({"arch": nb201.from_bound(bound), "netdsl": {**ours, "meco": ours_meco},
                     "authors": {**theirs, "meco": theirs_meco}})
        print(json.dumps(rows[-1]), flush=True)
    worst = {name: max(abs(r["netdsl"][name] - r["authors"][name]) /
                       max(abs(r["authors"][name]), 1e-12) for r in rows)
             for name in ("expressivity", "progressivity", "trainability", "meco")}
    print("largest relative difference:", json.dumps(worst), file=sys.stderr)


if __name__ == "__main__":
    main()
