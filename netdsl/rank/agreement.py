"""How a score ranks networks against their truth: Kendall tau, Spearman rho and the overlap
of the two top 10%, ties counted fairly."""
from __future__ import annotations

import math
import warnings

TOP = 0.1  # the top fraction of networks whose overlap is measured


def agreement(truth: list[float], scores: list[float]) -> dict[str, float]:
    """How `scores` rank the networks against `truth`: Kendall's tau-b, Spearman's rho (both
    with ties) and the overlap of the two top 10% (`_top_overlap`), each nan (undefined) when
    either side is constant. A network without a score (nan) ranks below every scored one, as
    a search's prefilter ranks it."""
    from scipy.stats import kendalltau, spearmanr

    finite = [s for s in scores if not math.isnan(s)]
    floor = min(finite, default=0.0) - 1.0
    ranked = [floor if math.isnan(s) else s for s in scores]
    with warnings.catch_warnings():  # a constant side: nan, said in the table, not warned
        warnings.simplefilter("ignore")
        tau = kendalltau(truth, ranked).statistic if len(truth) > 1 else math.nan
        rho = spearmanr(truth, ranked).statistic if len(truth) > 1 else math.nan
    return {"kendall_tau": float(tau), "spearman_rho": float(rho),
            "top_overlap": _top_overlap(truth, ranked), "without_score": len(scores) - len(finite)}


def _top_overlap(truth: list[float], scores: list[float]) -> float:
    """The share of the top 10% by `truth` (`ceil(n / 10)` networks) that the top 10% by
    `scores` holds, ties counted fairly: where values tie across the cut-off, each of the
    tied networks holds an equal share of the places left (`_top_shares`), and a network
    counts as much as the smaller of its two shares. Without ties at either cut-off that is
    the plain overlap; one ranking against itself gives 1; the listing order changes nothing.
    nan (undefined) when either side is constant: it has no top 10%."""
    count = math.ceil(len(truth) * TOP)
    if len(set(truth)) < 2 or len(set(scores)) < 2:
        return math.nan
    shared = zip(_top_shares(truth, count), _top_shares(scores, count))
    return sum(min(by_truth, by_score) for by_truth, by_score in shared) / count


def _top_shares(values: list[float], count: int) -> list[float]:
    """Each value's share of the `count` highest places: 1 above the `count`-th highest
    value, none below it, and the places left shared equally by the values equal to it."""
    cut = sorted(values, reverse=True)[count - 1]
    above = sum(v > cut for v in values)
    share = (count - above) / sum(v == cut for v in values)
    return [1.0 if v > cut else share if v == cut else 0.0 for v in values]


def rankings(records: list[dict], proxies: list[str]) -> dict[str, dict[str, float]]:
    """Each proxy's `agreement` with the truth, over networks' records (`Scored.to_dict`)."""
    truth = [record["truth"] for record in records]
    return {name: agreement(truth, [math.nan if r["scores"][name] is None else r["scores"][name]
                                    for r in records]) for name in proxies}


def json_safe(measured: dict[str, dict[str, float]]) -> dict[str, dict]:
    """`rankings` as JSON holds them: nan (a constant side) as null."""
    return {name: {key: None if isinstance(v, float) and math.isnan(v) else v
                   for key, v in m.items()} for name, m in measured.items()}
