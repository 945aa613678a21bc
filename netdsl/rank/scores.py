"""`netdsl score`: zero-cost proxies (`runtime.proxies`) of one network, or of networks drawn at
random from a family's space, on one seeded batch of real training images, at initialisation:
a ranking in seconds where training costs minutes."""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from netdsl_runtime.proxy_names import AZ_NAS_PARTS, PROXY_NAMES

from ..errors import ArgumentError, NetdslError
from ..bench.table import every_key
from ..train import bind_to_data, with_classes
from ..language import Bound, Family
from ..language.choices import drawn_at_random
from ..graph import SEP
from .aggregate import AZ_NAS, base_scores, parts, split_names

if TYPE_CHECKING:
    import netdsl_runtime as runtime

FLOPS = "flops"  # read off the bound graph: nothing built
# The scores that need no images: the network's size and cost (runtime's first score, its
# weights, counted on the module built, then its FLOPs).
DATA_FREE = (PROXY_NAMES[0], FLOPS)
# Every score's name: those, the proxies computed from a batch (runtime/proxies.py, named
# without torch), AZ-NAS's parts, and its aggregate over the networks scored together (any
# scores' too: `rank(a,b)`, see aggregate.py). Higher ranks higher for every one.
NETWORK_SCORES = (*DATA_FREE, *PROXY_NAMES[1:], *AZ_NAS_PARTS)
SCORES = (*NETWORK_SCORES, AZ_NAS)
BATCH_SIZE = 64  # images in the scoring batch, as Abdelfattah et al. score NAS-Bench-201
DRAWS_PER_NETWORK = 20  # draws that may repeat a network before a space counts as exhausted
ALL = "all"  # --sample all: every network of the space


@dataclass
class Scored:
    """One network's scores; a score not defined for it is NaN, with the reason in
    `undefined`."""

    bound: Bound
    scores: dict[str, float]
    undefined: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    truth: float | None = None  # the network's value in --table's --metric column

    def to_dict(self) -> dict[str, Any]:
        return {"dsl": self.bound.text, "choices": self.bound.choices,
                "fingerprint": self.bound.fingerprint,
                "scores": {name: None if math.isnan(v) else v for name, v in self.scores.items()},
                "undefined": self.undefined, "seconds": self.seconds,
                **({} if self.truth is None else {"truth": self.truth})}


def proxy_names(proxy: str) -> list[str]:
    """`grad_norm,synflow,rank(az_nas,meco)` -> the names, each checked (an ArgumentError of
    `proxy`)."""
    names = split_names(proxy)
    scores = ", ".join(SCORES) + ", or rank(A,B,...) of any of them"
    for name in names:
        unknown = [part for part in base_scores([name]) if part not in NETWORK_SCORES]
        if unknown or name.count("(") != name.count(")") or parts(name) == ("",):
            raise ArgumentError(lambda given: f"bad option: {given('proxy')}: no score named "
                                f"'{unknown[0] if unknown else name}' (scores: {scores})")
    if not names:
        raise ArgumentError(lambda given: f"bad option: {given('proxy')} names no score "
                            f"(scores: {scores})")
    return names


def scoring_batch(data: "runtime.DeviceData", size: int, seed: int):
    """`size` training images drawn by `seed`, normalised, not augmented, and their labels."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(data.train_size, generator=generator)[:size].to(data.device)
    return data.normalise(data.train_x[index]), data.train_y[index]


def score(bound: Bound, data: "runtime.DeviceData", batch, proxies: list[str],
          seed: int = 0) -> Scored:
    """`proxies` of `bound`'s network on `batch` (images and labels of `data`), with weights
    initialised by `seed`, each on its own copy of those weights (a proxy's forward passes
    move BatchNorm's statistics). With a batch, a network whose outputs are not one per class
    of `data` is refused as `netdsl run` refuses it; a score that comes out other than a
    finite number is NaN, with the reason. The DATA_FREE scores need no batch (None): the
    weights are counted on the module built on the CPU, FLOPs read off the bound graph."""
    import netdsl_runtime as runtime
    from netdsl_runtime.proxies import PROXIES as COMPUTED, Undefined, az_nas_parts

    start = time.perf_counter()
    x, y = (None, None) if batch is None else batch
    if any(name != FLOPS for name in proxies):
        initial = bound.module(seed=seed).to("cpu" if x is None else x.device)
        if x is not None:  # images to check the outputs on
            try:
                runtime.check_outputs(initial, data)
            except ValueError as e:
                raise NetdslError(str(e)) from None
    scored = Scored(bound, {})
    parts_of_az: dict[str, float] = {}  # one pass gives the three
    for name in proxies:
        if name == FLOPS:
            scored.scores[name] = float(bound.flops)
            continue
        try:
            if name in AZ_NAS_PARTS:
                if not parts_of_az:
                    network = copy.deepcopy(initial)
                    parts_of_az = az_nas_parts(network, x, [  # type: ignore[arg-type]
                        network.node(path) for path in stage_outputs(bound)], seed)
                value = parts_of_az[name]
            else:
                # x and y are None only without a batch, for DATA_FREE scores: they read
                # neither
                value = COMPUTED[name](copy.deepcopy(initial), x, y)  # type: ignore[arg-type]
            if value == -math.inf and name in AZ_NAS_PARTS:  # AZ-NAS's own verdict
                raise Undefined("AZ-NAS scores it -inf: a stage passes the gradient through "
                                "unchanged, or a map's spectrum is not defined (all zero)")
            if not math.isfinite(value):
                raise Undefined(f"it came out {value}: the network's outputs or gradients are "
                                "not finite at initialisation")
            scored.scores[name] = value
        except Undefined as e:
            scored.scores[name], scored.undefined[name] = math.nan, str(e)
    scored.seconds = time.perf_counter() - start
    return scored


def stage_outputs(bound: Bound) -> list[str]:
    """The nodes whose outputs AZ-NAS compares, in graph order: the input of the network's
    first top-level group (unless that is the image itself), then each top-level group's
    output, its last node. For NAS-Bench-201 that is its authors' 3N + 3: the stem's output
    and each cell's and reduction's (a repeat `cell * N` is a group each)."""
    last: dict[str, str] = {}  # top-level group -> its last node
    for path in bound.graph:
        if SEP in path:
            last[path.split(SEP)[0]] = path
    if not last:
        return []
    first = next(path for path in bound.graph if SEP in path)
    before = [ref for ref in bound.graph[first][1] if ref != "input"][:1]
    return [*before, *last.values()]


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


def every_network(family: Family, data: "runtime.DeviceData", values: dict[str, Any]
                  ) -> Iterator[Bound]:
    """Each network of `family`'s space with `values` bound, one at a time: a space of finite
    choice points met in every network (`--sample all`)."""
    values = with_classes(family, data, values)
    space = family.space(values, input_shape=data.image_shape)
    points = family.listed_points(space, values, ("sample", ALL))
    for key in every_key(points, values)[1]:
        yield bind_to_data(family, data, {**values, **{p.name: o for p, o in zip(points, key)}})
