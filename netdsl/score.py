"""`netdsl score`: zero-cost proxies (`runtime.proxies`) of one network, or of networks drawn at
random from a family's space, on one seeded batch of real training images, at initialisation:
a ranking in seconds where training costs minutes."""
from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import NetdslError
from .fit import bind_to_data, device_from, load_data
from .language import Bound, Family
from .language.choices import drawn_at_random

if TYPE_CHECKING:
    import runtime

# Every score's name: the network's size and cost, read off the bound network, and the proxies
# computed from a batch (runtime/proxies.py). Higher ranks higher for every one.
PROXIES = ("weights", "flops", "grad_norm", "snip", "synflow", "naswot")
BATCH_SIZE = 64  # images in the scoring batch, as Abdelfattah et al. score NAS-Bench-201
DRAWS_PER_NETWORK = 20  # draws that may repeat a network before a space counts as exhausted


@dataclass
class Scored:
    """One network's scores; a score not defined for it is NaN, with the reason in
    `undefined`."""

    bound: Bound
    scores: dict[str, float]
    undefined: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"dsl": self.bound.text, "choices": self.bound.choices,
                "fingerprint": self.bound.fingerprint,
                "scores": {name: None if math.isnan(v) else v for name, v in self.scores.items()},
                "undefined": self.undefined, "seconds": self.seconds}


def proxy_names(text: str) -> list[str]:
    """`grad_norm,synflow` -> the names, each checked."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in PROXIES:
            raise NetdslError(f"bad option: --proxy: no score named '{name}' (scores: "
                              f"{', '.join(PROXIES)})")
    if not names:
        raise NetdslError(f"bad option: --proxy names no score (scores: {', '.join(PROXIES)})")
    return names


def scoring_batch(data: "runtime.DeviceData", size: int, seed: int):
    """`size` training images drawn by `seed`, normalised, not augmented, and their labels."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(data.train_size, generator=generator)[:size].to(data.device)
    return data.normalise(data.train_x[index]), data.train_y[index]


def score(bound: Bound, x, y, proxies: list[str], seed: int = 0) -> Scored:
    """`proxies` of `bound`'s network with weights initialised by `seed`, each on its own copy
    of those weights (a proxy's forward passes move BatchNorm's statistics)."""
    from runtime.proxies import PROXIES as COMPUTED, Undefined

    start = time.perf_counter()
    initial = bound.module(seed=seed).to(x.device)
    scored = Scored(bound, {})
    for name in proxies:
        if name == "flops":
            scored.scores[name] = float(bound.flops)
            continue
        try:
            scored.scores[name] = COMPUTED[name](copy.deepcopy(initial), x, y)
        except Undefined as e:
            scored.scores[name], scored.undefined[name] = math.nan, str(e)
    scored.seconds = time.perf_counter() - start
    return scored


def drawn_networks(family: Family, data: "runtime.DeviceData", values: dict[str, Any],
                   count: int, seed: int) -> list[Bound]:
    """`count` different networks of `family`'s space drawn at random by `seed` (every choice
    point not in `values` uniformly over its options, as binding meets it); fewer when the space
    holds fewer."""
    rng = random.Random(seed)
    networks: dict[str, Bound] = {}
    for _ in range(count * DRAWS_PER_NETWORK):
        bound = bind_to_data(family, data, values, drawn_at_random(rng))
        networks.setdefault(bound.fingerprint, bound)
        if len(networks) == count:
            break
    return list(networks.values())


def score_command(args: argparse.Namespace, family: Family) -> int:
    proxies = proxy_names(args.proxy)
    if args.sample is not None and args.sample < 1:
        raise NetdslError(f"bad option: --sample must be at least 1, got {args.sample}")
    if args.batch_size < 2:
        raise NetdslError(f"bad option: --batch-size must be at least 2 (naswot compares "
                          f"images), got {args.batch_size}")
    values = dict(args.set)
    if args.sample is None:
        family.check_values(values)
    elif not family.choice_points:
        raise NetdslError(f"--sample: {family.name} declares no choice(...), range(...) or "
                          "logrange(...) to draw networks from")
    note = (lambda line: print(line, file=sys.stderr)) if args.json else print  # stdout: JSON
    data = load_data(args.dataset, device_from(args), data_dir=args.data_dir,
                     train_limit=args.train_limit, seed=args.seed, log=note)
    if args.batch_size > data.train_size:
        raise NetdslError(f"bad option: --batch-size {args.batch_size} is more than the "
                          f"{data.train_size} training images")
    x, y = scoring_batch(data, args.batch_size, args.seed)
    networks = ([bind_to_data(family, data, values)] if args.sample is None
                else drawn_networks(family, data, values, args.sample, args.seed))
    if args.sample is not None and len(networks) < args.sample:
        note(f"{family.name}'s space holds {len(networks)} networks; scoring them all")
    results = []
    if not args.json:
        print(f"{'#':>4} " + " ".join(f"{name:>11}" for name in proxies) + f" {'seconds':>8}"
              + ("  choices" if args.sample is not None else ""))
    for number, bound in enumerate(networks):
        scored = score(bound, x, y, proxies, args.seed)
        results.append(scored)
        if not args.json:
            choices = " ".join(f"{k}={v}" for k, v in bound.choices.items())
            print(f"{number:>4} " + " ".join(f"{scored.scores[name]:>11.4g}" for name in proxies)
                  + f" {scored.seconds:>8.3f}" + (f"  {choices}" if args.sample is not None
                                                  else ""))
    if args.json:
        print(json.dumps({"proxies": proxies, "batch_size": args.batch_size, "seed": args.seed,
                          "networks": [r.to_dict() for r in results]}, indent=1))
        return 0
    for number, scored in enumerate(results):
        for name, reason in scored.undefined.items():
            print(f"network {number}: {name} is not defined: {reason}")
    return 0
