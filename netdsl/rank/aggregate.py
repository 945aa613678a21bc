"""Scores that rank a population rather than score a network: AZ-NAS's non-linear rank
aggregation (Lee & Ham, CVPR 2024; the authors' NB201/tss_general.ipynb), the sum over its
parts of log(rank / m), each part ranked ascending among the m networks scored together (ties
sharing their mean rank, as scipy's rankdata ranks them), so a network weak on one part
cannot make it up on another. `az_nas` aggregates FLOPs, expressivity, progressivity and
trainability; `rank(a,b,...)` any listed scores. A network's value depends on the others
scored with it: over a sample (`netdsl score`), a trial's candidates (`--prefilter`)."""
from __future__ import annotations

import math

AZ_NAS = "az_nas"
AZ_NAS_OF = ("flops", "expressivity", "progressivity", "trainability")
COMBINED = ("rank(", ")")  # rank(a,b,...): a rank aggregation of the scores named


def parts(name: str) -> tuple[str, ...] | None:
    """The scores an aggregate ranks by (az_nas's, or rank(...)'s as written); None for a
    score of a network alone."""
    if name == AZ_NAS:
        return AZ_NAS_OF
    start, end = COMBINED
    if name.startswith(start) and name.endswith(end):
        return tuple(part.strip() for part in name[len(start):-len(end)].split(","))
    return None


def split_names(text: str) -> list[str]:
    """`naswot,rank(az_nas,meco)` -> ["naswot", "rank(az_nas,meco)"]: commas split names
    outside parentheses only."""
    names, depth, current = [], 0, ""
    for character in text:
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            names.append(current.strip())
            current = ""
        else:
            current += character
    names.append(current.strip())
    return [name.replace(" ", "") for name in names if name]


def base_scores(names: list[str]) -> list[str]:
    """The scores of a network alone that `names` need, each once, in order: an aggregate's
    parts in its place (az_nas inside rank(...) too)."""
    needed: list[str] = []
    for name in names:
        inner = parts(name)
        for part in ([name] if inner is None else base_scores(list(inner))):
            if part not in needed:
                needed.append(part)
    return needed


def aggregated(name: str, table: list[dict[str, float]]) -> list[float]:
    """`name`'s value for each network of `table` (one mapping of its scores per network,
    the base scores computed): the sum over its parts of log(rank / m). A score not defined
    (NaN) ranks below every defined one, -inf with it."""
    from scipy.stats import rankdata

    inner = parts(name)
    if inner is None:
        return [row[name] for row in table]
    total = [0.0] * len(table)
    for part in inner:
        values = [-math.inf if math.isnan(v) else v for v in aggregated(part, table)]
        for i, rank in enumerate(rankdata(values)):
            total[i] += math.log(rank / len(table))
    return total
