"""`netdsl score`: networks scored one by one, or drawn from a family's space, and with --table
how well each score ranks them against a table's truth."""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable

from netdsl_runtime.recipe import Recipe  # no torch

from ..bench.table import Table, table_of
from ..errors import NetdslError
from ..language import Bound, Family
from ..language.records import to_json
from ..rank import (BATCH_SIZE, ScoreCache, drawn_networks, every_network, json_safe,
                    proxy_names, rankings, scoring_batch)
from ..rank.aggregate import aggregated, base_scores, parts
from ..rank.agreement import TOP
from ..rank.scores import NETWORK_SCORES
from ..train import DataWanted, Training, bind_to_data, ready


def score_command(family: Family, bindings: dict[str, Any], wanted: DataWanted, *,
                  device: str = "auto", proxy: str = ",".join(NETWORK_SCORES),
                  sample: int | str | None = None, table: str | None = None,
                  metric: str | None = None, batch_size: int = BATCH_SIZE, seed: int = 0,
                  as_json: bool = False) -> int:
    """Print the scores (`proxy`: names, comma-separated) of `family`'s network with
    `bindings`, or of `sample` networks drawn from its space (a count, or all), on one batch
    of `batch_size` training images of the data `wanted` drawn by `seed`; beside each, its
    truth in the column `metric` of `table`, and each score's agreement with it. A table, or
    JSON when `as_json`. An aggregate (az_nas, rank(...)) ranks the networks scored together:
    its values follow the networks' own scores, once all are scored."""
    proxies = proxy_names(proxy)
    computed = base_scores(proxies)  # each network's own, aggregates' parts included
    if batch_size < 2:
        raise NetdslError(f"bad option: --batch-size must be at least 2 (naswot compares "
                          f"images), got {batch_size}")
    values = dict(bindings)
    if sample is None:
        family.check_values(values)
    elif not family.choice_points:
        raise NetdslError(f"--sample: {family.name} declares no choice(...), range(...) or "
                          "logrange(...) to draw networks from")
    truth = table_of(table, metric, family, values)
    note = (lambda line: print(line, file=sys.stderr)) if as_json else print  # stdout: JSON
    # The prologue every training command runs: here it checks the device, then loads.
    training = Training(values, Recipe(seed=seed), frozenset(), wanted, device)
    data = ready(family, training, fit_recipe=False).load(wanted, log=note)
    if batch_size > data.train_size:
        raise NetdslError(f"bad option: --batch-size {batch_size} is more than the "
                          f"{data.train_size} training images")
    batch = scoring_batch(data, batch_size, seed)
    cache = ScoreCache(wanted.data_dir, batch, seed)
    if sample is None:
        networks: Iterable[Bound] = [bind_to_data(family, data, values)]
    elif isinstance(sample, int):
        networks = drawn_networks(family, data, values, sample, seed)
        if len(networks) < sample:
            note(f"{family.name}'s space holds {len(networks)} networks; scoring them all")
    else:  # rank.ALL, the one text it takes: every network
        networks = every_network(family, data, values)
    results = []  # each network's record, not its network: `--sample all` may be thousands
    sampled = sample is not None
    for number, bound in enumerate(networks):
        choices = " ".join(f"{k}={v}" for k, v in bound.choices.items())
        try:
            scored = cache.score(bound, data, batch, computed)
        except NetdslError as e:  # outputs that do not fit: which network of the sample
            raise NetdslError(f"network {number} ({choices}): {e}" if sampled else str(e)) \
                from None
        scored.truth = None if truth is None else truth.look_up(bound)
        results.append(scored.to_dict())
        if not as_json:
            if number == 0:  # after the first network is known to fit the data
                print(f"{'#':>4} " + " ".join(f"{name:>11}" for name in computed)
                      + f" {'seconds':>8}" + ("" if truth is None else f" {metric:>11}")
                      + ("  choices" if sampled else ""))
            print(f"{number:>4} " + " ".join(f"{scored.scores[name]:>11.4g}" for name in computed)
                  + f" {scored.seconds:>8.3f}"
                  + ("" if truth is None else f" {scored.truth:>11.4g}")
                  + (f"  {choices}" if sampled else ""))
    aggregates = [name for name in proxies if parts(name) is not None]
    _add_aggregates(results, aggregates, computed, print_them=not as_json)
    if as_json:
        print(to_json({"proxies": proxies, "batch_size": batch_size, "seed": seed,
                       "networks": results, **({} if truth is None else {"table": {
                           "path": truth.path, "metric": truth.metric,
                           "rankings": json_safe(rankings(results, proxies))}})}))
    else:
        for number, record in enumerate(results):
            for name, reason in record["undefined"].items():
                print(f"network {number}: {name} is not defined: {reason}")
        if truth is not None:
            print_agreement(rankings(results, proxies), len(results), truth)
    if cache.reused:
        note(cache.tally())
    return 0


def _add_aggregates(records: list[dict], aggregates: list[str], computed: list[str],
                    print_them: bool) -> None:
    """Each record's value of each aggregate over all `records` (their scores of `computed`),
    added to its scores; printed, a line a network, when `print_them`."""
    if not aggregates:
        return
    table = [{name: math.nan if r["scores"][name] is None else r["scores"][name]
              for name in computed} for r in records]
    columns = {name: aggregated(name, table) for name in aggregates}
    for i, record in enumerate(records):
        record["scores"].update({name: values[i] for name, values in columns.items()})
    if print_them:
        print(f"\nranked over the {len(records)} networks (the sum of log(rank / "
              f"{len(records)}) over each aggregate's parts):")
        print(f"{'#':>4} " + " ".join(f"{name:>11}" for name in aggregates))
        for i in range(len(records)):
            print(f"{i:>4} " + " ".join(f"{columns[name][i]:>11.4g}" for name in aggregates))


def print_agreement(measured: dict[str, dict[str, float]], count: int, table: Table) -> None:
    print(f"\nagainst {table.metric} of {table.path}: {count} networks, the top 10% "
          f"{math.ceil(count * TOP)} (a network without a score ranks last)")
    print(f"{'score':>11} {'kendall_tau':>12} {'spearman_rho':>13} {'top_10%':>9} "
          f"{'no score':>9}")
    for name, m in measured.items():
        print(f"{name:>11} {_shown(m['kendall_tau'], 12, 3)} {_shown(m['spearman_rho'], 13, 3)} "
              f"{_shown(m['top_overlap'], 9, 2)} {m['without_score']:>9}")
    if any(math.isnan(v) for m in measured.values() for v in m.values()):
        print("(undefined: the table's values, or the score's, are all equal: no ranking)")


def _shown(value: float, width: int, places: int) -> str:
    return f"{'undefined':>{width}}" if math.isnan(value) else f"{value:>{width}.{places}f}"
