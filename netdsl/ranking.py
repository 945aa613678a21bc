"""`netdsl score`: networks scored (`netdsl.score`) one by one, or drawn from a family's space,
and with --table how well each score ranks them against a table's truth (Kendall tau, Spearman
rho, the overlap of the two top 10%); the cache of scores that lets a rerun, or a larger
sample, score only the networks it has not scored before."""
from __future__ import annotations

import hashlib
import itertools
import math
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import NetdslError
from .train import DataWanted, bind_to_data, device_from, load_data, with_classes
from .language import Bound, Family
from .records import to_json
from .score import (ALL, BATCH_SIZE, SCORES, Scored, drawn_networks, proxy_names, score,
                    scoring_batch)
from .bench.table import Table, every_key, table_of

if TYPE_CHECKING:
    import netdsl_runtime as runtime

TOP = 0.1  # the top fraction of networks whose overlap is measured
CACHE_FILE = "scores.sqlite"  # in the data folder (--data-dir, $NETDSL_DATA, ~/.cache/netdsl)


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


def json_safe(measured: dict[str, dict[str, float]]) -> dict[str, dict]:
    """`rankings` as JSON holds them: nan (a constant side) as null."""
    return {name: {key: None if isinstance(v, float) and math.isnan(v) else v
                   for key, v in m.items()} for name, m in measured.items()}


class ScoreCache:
    """Scores already computed, in an SQLite file of the data folder, keyed by the network's
    fingerprint, the proxy, the batch (its images and labels, so the dataset, --train-limit,
    --batch-size and the seed that drew it), the seed of the initial weights, and the code
    that computes them (runtime/proxies.py, the network's layers, torch's version): a change
    of any scores again. A file that is not such a cache (corrupt, or a table of another
    shape) is set aside and a new one begun; where none can be written, scores are computed
    and not kept. Either is said in a line on stderr; neither stops the scoring."""

    def __init__(self, data_dir: str | None, batch, seed: int):
        import netdsl_runtime as runtime
        import torch

        folder = Path(data_dir) if data_dir else runtime.default_data_dir()
        x, y = batch
        digest = hashlib.sha256()
        for tensor in (x, y):
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.batch = digest.hexdigest()[:16]
        self.seed = seed
        self.code = _code_version(torch.__version__, x.device.type)
        self.path = folder / CACHE_FILE
        self.keeping = True  # until a write fails: then scored on, unkept
        self.db = self._open(folder)
        self.reused = self.computed = 0  # this process's scores, a network's proxy each

    def _open(self, folder: Path) -> sqlite3.Connection:
        """The cache's file, or a new one where it is not a cache (the old set aside), or one
        in memory where neither can be opened or written."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return _connect(self.path)
            except NotACache as e:
                aside = _set_aside(self.path)
                print(f"netdsl: {self.path} is not a cache of scores ({e}): set aside as "
                      f"{aside.name}, a new one begun", file=sys.stderr)
                return _connect(self.path)
        except (OSError, sqlite3.Error, NotACache) as e:
            self._stop_keeping(e)
            return _connect(":memory:")

    def _stop_keeping(self, error: Exception) -> None:
        self.keeping = False
        print(f"netdsl: cannot keep scores in {self.path} ({error}): scoring without the "
              "cache (give --data-dir a folder you can write to keep them)", file=sys.stderr)

    def tally(self) -> str:
        """How many of this process's scores the cache gave and how many were computed."""
        return (f"{self.reused} of the {self.reused + self.computed} scores came from the cache "
                f"{self.path}, {self.computed} computed now")

    def known(self, fingerprint: str) -> dict[str, tuple[float, str | None]]:
        rows = self.db.execute("SELECT proxy, value, reason FROM scores WHERE batch = ? AND "
                               "code = ? AND seed = ? AND fingerprint = ?",
                               (self.batch, self.code, self.seed, fingerprint))
        return {proxy: (math.nan if value is None else value, reason)
                for proxy, value, reason in rows}

    def keep(self, scored: Scored) -> None:
        if not self.keeping:
            return
        try:
            with self.db:  # one transaction a network: an interrupted run keeps what it scored
                self.db.executemany(
                    "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(self.batch, self.code, self.seed, scored.bound.fingerprint, name,
                      None if math.isnan(value) else value, scored.undefined.get(name))
                     for name, value in scored.scores.items()])
        except sqlite3.Error as e:  # a folder or file read-only, a disk full: said once
            self._stop_keeping(e)

    def score(self, bound: Bound, data: "runtime.DeviceData", batch, proxies: list[str]
              ) -> Scored:
        """`netdsl.score.score`, computing only the proxies the cache does not hold for this
        network; `seconds` are this process's."""
        known = self.known(bound.fingerprint)
        missing = [name for name in proxies if name not in known]
        scored = score(bound, data, batch, missing, self.seed) if missing else Scored(bound, {})
        if missing:
            self.keep(scored)
        self.reused += len(proxies) - len(missing)
        self.computed += len(missing)
        for name in proxies:
            if name in known:
                scored.scores[name] = known[name][0]
                if known[name][1] is not None:
                    scored.undefined[name] = known[name][1]
        scored.scores = {name: scored.scores[name] for name in proxies}  # in the asked order
        return scored


# The cache's one table: the key (the first five columns), a score and why it is not defined.
SCHEMA = ("CREATE TABLE IF NOT EXISTS scores (batch TEXT, code TEXT, seed INTEGER, "
          "fingerprint TEXT, proxy TEXT, value REAL, reason TEXT, "
          "PRIMARY KEY (batch, code, seed, fingerprint, proxy))")
COLUMNS = (("batch", 1), ("code", 2), ("seed", 3), ("fingerprint", 4), ("proxy", 5),
           ("value", 0), ("reason", 0))  # each column's name and its place in the key (0: none)


class NotACache(Exception):
    """A file that SQLite reads, or fails to, as something other than a cache of scores."""


def _connect(path: Path | str) -> sqlite3.Connection:
    """The cache at `path` (a file, or ":memory:"), its table made if new; NotACache where
    the file is corrupt or its table `scores` is of another shape, sqlite3.Error where it
    cannot be opened or written."""
    db = sqlite3.connect(path, timeout=60)  # another process may be writing
    try:
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise NotACache(f"corrupt: {check}")
        db.execute(SCHEMA)
        columns = tuple((row[1], row[5]) for row in db.execute("PRAGMA table_info(scores)"))
        if columns != COLUMNS:
            names = lambda shape: ", ".join(name for name, _ in shape)
            raise NotACache(f"its table 'scores' has the columns {names(columns)}, not "
                            f"{names(COLUMNS)} keyed by the first five")
        return db
    except (sqlite3.Error, NotACache) as e:
        db.close()
        # OperationalError: it cannot be opened or written (read-only, locked), no fault of
        # the file's; any other DatabaseError: not a database, or one of malformed pages.
        if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError):
            raise NotACache(f"corrupt: {e}") from None
        raise


def _set_aside(path: Path) -> Path:
    """Rename `path` (and its journal, which would be played into the new file) to the first
    free `path.bad-N`, which it returns."""
    aside = next(path.with_name(f"{path.name}.bad-{n}") for n in itertools.count(1)
                 if not path.with_name(f"{path.name}.bad-{n}").exists())
    path.rename(aside)
    for end in ("-journal", "-wal", "-shm"):
        companion = path.with_name(path.name + end)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + end))
    return aside


def _code_version(*more: str) -> str:
    """A hash of the code a score depends on: the proxies (their names pair with their
    functions by place), what makes of them a network's score, and the layers a network is
    built of."""
    from netdsl_runtime import proxies, proxy_names

    from . import score as scoring
    from .module import layers, network

    digest = hashlib.sha256()
    for module in (proxies, proxy_names, scoring, layers, network):
        digest.update(Path(module.__file__).read_bytes())
    for text in more:
        digest.update(text.encode())
    return digest.hexdigest()[:16]


def every_network(family: Family, data: "runtime.DeviceData", values: dict[str, Any]
                  ) -> Iterator[Bound]:
    """Each network of `family`'s space with `values` bound, one at a time: a space of finite
    choice points met in every network (`--sample all`)."""
    values = with_classes(family, data, values)
    space = family.space(values, input_shape=data.image_shape)
    points = family.listed_points(space, values, "--sample all")
    for key in every_key(points, values)[1]:
        yield bind_to_data(family, data, {**values, **{p.name: o for p, o in zip(points, key)}})


def score_command(family: Family, bindings: dict[str, Any], wanted: DataWanted, *,
                  device: str = "auto", proxy: str = ",".join(SCORES),
                  sample: int | str | None = None, table: str | None = None,
                  metric: str | None = None, batch_size: int = BATCH_SIZE, seed: int = 0,
                  as_json: bool = False) -> int:
    """Print the scores (`proxy`: names, comma-separated) of `family`'s network with
    `bindings`, or of `sample` networks drawn from its space (a count, or all), on one batch
    of `batch_size` training images of the data `wanted` drawn by `seed`; beside each, its
    truth in the column `metric` of `table`, and each score's agreement with it. A table, or
    JSON when `as_json`."""
    proxies = proxy_names(proxy)
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
    data = load_data(wanted, device_from(device), seed=seed, log=note)
    if batch_size > data.train_size:
        raise NetdslError(f"bad option: --batch-size {batch_size} is more than the "
                          f"{data.train_size} training images")
    batch = scoring_batch(data, batch_size, seed)
    cache = ScoreCache(wanted.data_dir, batch, seed)
    networks = ([bind_to_data(family, data, values)] if sample is None
                else every_network(family, data, values) if sample == ALL
                else drawn_networks(family, data, values, sample, seed))
    if isinstance(sample, int) and len(networks) < sample:
        note(f"{family.name}'s space holds {len(networks)} networks; scoring them all")
    results = []  # each network's record, not its network: `--sample all` may be thousands
    sampled = sample is not None
    for number, bound in enumerate(networks):
        choices = " ".join(f"{k}={v}" for k, v in bound.choices.items())
        try:
            scored = cache.score(bound, data, batch, proxies)
        except NetdslError as e:  # outputs that do not fit: which network of the sample
            raise NetdslError(f"network {number} ({choices}): {e}" if sampled else str(e)) \
                from None
        scored.truth = None if truth is None else truth.look_up(bound)
        results.append(scored.to_dict())
        if not as_json:
            if number == 0:  # after the first network is known to fit the data
                print(f"{'#':>4} " + " ".join(f"{name:>11}" for name in proxies)
                      + f" {'seconds':>8}" + ("" if truth is None else f" {metric:>11}")
                      + ("  choices" if sampled else ""))
            print(f"{number:>4} " + " ".join(f"{scored.scores[name]:>11.4g}" for name in proxies)
                  + f" {scored.seconds:>8.3f}"
                  + ("" if truth is None else f" {scored.truth:>11.4g}")
                  + (f"  {choices}" if sampled else ""))
    agreement = None if truth is None else rankings(results, proxies)
    if as_json:
        print(to_json({"proxies": proxies, "batch_size": batch_size, "seed": seed,
                       "networks": results, **({} if truth is None else {"table": {
                           "path": truth.path, "metric": truth.metric,
                           "rankings": json_safe(agreement)}})}))
    else:
        for number, record in enumerate(results):
            for name, reason in record["undefined"].items():
                print(f"network {number}: {name} is not defined: {reason}")
        if truth is not None:
            print_agreement(agreement, len(results), truth)
    if cache.reused:
        note(cache.tally())
    return 0
