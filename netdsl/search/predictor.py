"""`--tuner predictor`: Bayesian optimisation over the choices, with a zero-cost feature.

A Gaussian process predicts each candidate's rank among the trials from two things: how far
its values lie from each finished trial's (a distance that counts a different option of a
choice as 1 and a number's difference as its share of the range), and a cheap score of the
network the values bind, free of data (the search gives the log of its FLOPs: the network
read off the bound graph, nothing built or run). Candidates are every one-value change of the
best finished networks and a few random draws; the trial takes the candidate of highest
expected improvement that no trial has tried. Until `startup` different networks have
finished, trials are drawn at random. The table study (docs/search.md) finds NAS-Bench-201's
best networks in fewer trials with it than with TPE or evolution.

Like evolution it is an Optuna sampler that plans a trial's values when the trial first asks
for one, so storage, resuming, workers and `--set` work as with any tuner.
"""
from __future__ import annotations

import json
import math
import random
import time
from typing import Any, Callable

import numpy as np
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from .evolution import PlanningSampler, offers, other_value

STARTUP = 10        # distinct finished networks drawn at random before the model is used
LENGTH = 1.0        # the kernel's length scale, in changed values (1: one option different)
FEATURE_WEIGHT = 1.0  # the linear kernel's weight on the standardised feature
NOISE = 1e-2        # the model's noise, in the variance of the standardised ranks
PARENTS = 5         # the best finished networks whose one-value changes are candidates
RANDOM = 20         # candidates drawn at random besides, so the model also looks elsewhere
NUMBER_CHANGES = 4  # other values tried of a number (an int or float range) per parent

Feature = Callable[[dict[str, Any]], "float | None"]  # values -> a network's cheap score


class Predictor(PlanningSampler):
    def __init__(self, seed: int | None = None, feature: Feature | None = None,
                 startup: int = STARTUP):
        super().__init__(seed)
        self._feature = feature
        self._features: dict[str, float | None] = {}  # values' key -> the feature, once each
        self.startup = startup
        self._seconds = 0.0  # spent computing features since `take_seconds` last asked

    def take_seconds(self) -> float:
        """The seconds spent computing features since the last call: a trial's share."""
        seconds, self._seconds = self._seconds, 0.0
        return seconds

    def _plan(self, study) -> dict[str, Any]:
        """The values of the next trial: the candidate of highest expected improvement; none
        (all at random) while fewer than `startup` networks have finished."""
        trials = study.get_trials(deepcopy=False)
        finished: dict[str, FrozenTrial] = {}  # a network drawn again counts once
        for t in trials:
            if t.state == TrialState.COMPLETE:
                finished.setdefault(_key(t.params), t)
        if len(finished) < self.startup:
            return {}
        sign = 1.0 if study.directions[0] == StudyDirection.MAXIMIZE else -1.0
        done = list(finished.values())
        scores = np.array([sign * t.values[0] for t in done])
        spaces = {name: d for t in done for name, d in t.distributions.items()}
        tried = {_key(t.params) for t in trials if t.params}
        candidates = [c for c in self._candidates(done, scores, spaces) if _key(c) not in tried]
        if not candidates:
            return {}
        gain = self._expected_improvement([t.params for t in done], scores, candidates, spaces)
        return candidates[int(np.argmax(gain))]

    def _candidates(self, done: list[FrozenTrial], scores: np.ndarray,
                    spaces: dict[str, BaseDistribution]) -> list[dict[str, Any]]:
        """Every one-value change of the best `PARENTS` networks, and `RANDOM` random draws."""
        candidates = []
        for index in np.argsort(-scores)[:PARENTS]:
            parent = done[index].params
            for name, value in parent.items():
                for other in _others(spaces[name], value, self._rng):
                    candidates.append({**parent, name: other})
        for _ in range(RANDOM):
            candidates.append({name: _draw(d, self._rng) for name, d in spaces.items()})
        return candidates

    def _expected_improvement(self, known: list[dict], scores: np.ndarray,
                              candidates: list[dict], spaces: dict[str, BaseDistribution]
                              ) -> np.ndarray:
        """The Gaussian process's expected improvement of each candidate over the best known,
        on the known networks' ranks made normal scores (robust to a few failed networks
        scoring far below the rest)."""
        from scipy.stats import norm, rankdata

        target = norm.ppf((rankdata(scores) - 0.5) / len(scores))
        names = sorted(spaces)
        a, b = _encode(known, names, spaces), _encode(candidates, names, spaces)
        fa, fb = self._standardised(known, candidates)
        k = _kernel(a, a, fa, fa) + NOISE * np.eye(len(known))
        cross = _kernel(b, a, fb, fa)
        lower = np.linalg.cholesky(k)
        weights = np.linalg.solve(lower.T, np.linalg.solve(lower, target))
        mean = cross @ weights
        v = np.linalg.solve(lower, cross.T)
        spread = np.sqrt(np.maximum(1.0 + FEATURE_WEIGHT * fb ** 2 - (v * v).sum(0), 1e-12))
        improvement = mean - target.max()
        z = improvement / spread
        return improvement * norm.cdf(z) + spread * norm.pdf(z)

    def _standardised(self, known: list[dict], candidates: list[dict]
                      ) -> tuple[np.ndarray, np.ndarray]:
        """The feature of the known networks and the candidates, standardised over the known
        ones; 0 (their mean) where there is none."""
        feature = self._feature
        if feature is None:
            return np.zeros(len(known)), np.zeros(len(candidates))
        fa, fb = (np.array([self._feature_of(feature, values) for values in group], dtype=float)
                  for group in (known, candidates))
        mean, spread = np.nanmean(fa), np.nanstd(fa)
        if not math.isfinite(mean) or not spread > 0:
            return np.zeros(len(known)), np.zeros(len(candidates))
        return tuple(np.nan_to_num((f - mean) / spread) for f in (fa, fb))

    def _feature_of(self, feature: Feature, values: dict[str, Any]) -> float:
        """`feature` (the sampler's) of `values`, computed once; NaN where it has none."""
        key = _key(values)
        if key not in self._features:
            start = time.perf_counter()
            self._features[key] = feature(values)
            self._seconds += time.perf_counter() - start
        known = self._features[key]
        return math.nan if known is None else known


def _kernel(a: np.ndarray, b: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """exp(-distance / LENGTH) between every row of `a` and of `b` (encoded values), plus a
    linear kernel on their features."""
    present_a, present_b = ~np.isnan(a), ~np.isnan(b)
    both = present_a[:, None, :] & present_b[None, :, :]
    one = present_a[:, None, :] ^ present_b[None, :, :]  # a point only one network has
    apart = np.abs(np.nan_to_num(a)[:, None, :] - np.nan_to_num(b)[None, :, :])
    distance = np.where(both, np.minimum(apart, 1.0), 0.0).sum(-1) + one.sum(-1)
    return np.exp(-distance / LENGTH) + FEATURE_WEIGHT * np.outer(fa, fb)


def _encode(group: list[dict], names: list[str], spaces: dict[str, BaseDistribution]
            ) -> np.ndarray:
    """Values as numbers whose difference is the distance along each point: an option of a
    choice spread so that two different options differ by at least 1; a number as its place
    in the range (0 to 1, on a log scale where drawn log-uniform); NaN where absent."""
    encoded = np.full((len(group), len(names)), np.nan)
    for column, name in enumerate(names):
        d = spaces[name]
        for row, values in enumerate(group):
            if name in values and offers(d, values[name]):
                encoded[row, column] = _place(d, values[name])
    return encoded


def _place(d: BaseDistribution, value: Any) -> float:
    if isinstance(d, CategoricalDistribution):
        return 2.0 * d.to_internal_repr(value)  # options 2 apart: capped at 1 in the kernel
    assert isinstance(d, (IntDistribution, FloatDistribution))  # a range: the kinds left
    low, high = float(d.low), float(d.high)
    if high <= low:
        return 0.0
    if d.log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (float(value) - low) / (high - low)


def _others(d: BaseDistribution, value: Any, rng: random.Random) -> list[Any]:
    """The other values of a point to try in a parent: every other option of a choice, a few
    other numbers of a range."""
    if isinstance(d, CategoricalDistribution):
        return [c for c in d.choices if c != value]
    draws = [other_value(d, value, rng) for _ in range(NUMBER_CHANGES)]
    return [v for v in draws if v is not None]


def _draw(d: BaseDistribution, rng: random.Random) -> Any:
    if isinstance(d, CategoricalDistribution):
        return rng.choice(d.choices)
    if isinstance(d, IntDistribution):
        steps = (d.high - d.low) // d.step
        return d.low + rng.randrange(steps + 1) * d.step
    assert isinstance(d, FloatDistribution)
    if d.step is not None:
        steps = round((d.high - d.low) / d.step)
        return d.low + rng.randrange(steps + 1) * d.step
    if d.log:
        return math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    return rng.uniform(d.low, d.high)


def _key(values: dict[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, default=str)
