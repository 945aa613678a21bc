"""`netdsl search --prefilter PROXY:K`: each trial draws K candidate networks from the search's
strategy, scores each with a zero-cost proxy (`netdsl.rank.scores`) and trains only the best-scored
one. The strategy learns from the trained one, as without a prefilter.

The strategy is wrapped in `Prefiltered`, an Optuna sampler: while a trial's candidates are
drawn, each choice point's value comes from the wrapped sampler (a new draw per candidate);
once one is chosen, the trial's own draws return the chosen candidate's values.
"""
from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.distributions import BaseDistribution

from ..errors import ArgumentError
from ..rank.aggregate import base_scores
from ..rank.scores import NETWORK_SCORES, SCORES
from .space import distribution_of


# Candidates per trial at most: each trial binds, builds and scores every one and stores its
# choices and score with the trial. At this many, scoring costs about what training does
# (docs/ranking.md: synflow takes 50 ms a NAS-Bench-201 network at C=8, 5 epochs of training
# 44 s), and the prefilter saves nothing.
MAX_CANDIDATES = 1000


def parse_prefilter(prefilter: str) -> tuple[str, int]:
    """`synflow:8` -> ("synflow", 8), checked (an ArgumentError of `prefilter`)."""
    text = prefilter
    name, sep, count = text.partition(":")
    count = count.strip()
    if not sep or not (count.isascii() and count.isdigit()) or int(count) < 2:
        raise ArgumentError(lambda given: f"bad option: {given('prefilter', text)}: give "
                            "PROXY:K, K candidates of at least 2 per trial (e.g. synflow:8)")
    if int(count) > MAX_CANDIDATES:
        raise ArgumentError(lambda given: (
            f"bad option: {given('prefilter', text)}: at most {MAX_CANDIDATES} candidates per "
            "trial (each is bound, built, scored and stored with the trial, every trial)"))
    unknown = [part for part in base_scores([name]) if part not in NETWORK_SCORES]
    if unknown:
        raise ArgumentError(lambda given: f"bad option: {given('prefilter')}: no score named "
                            f"'{unknown[0]}' (scores: {', '.join(SCORES)}, or rank(A,B,...) "
                            "of any of them)")
    return name, int(count)


class Prefiltered(optuna.samplers.BaseSampler):
    """`inner`'s draws, with a trial's choice points fixed to its chosen candidate's values
    once `choose` is told them."""

    def __init__(self, inner: optuna.samplers.BaseSampler):
        self.inner = inner
        self._chosen: dict[int, dict[str, Any]] = {}  # trial number -> the candidate's values

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}  # every value through sample_independent, where a candidate's can be given

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def sample_independent(self, study, trial, name: str, distribution: BaseDistribution) -> Any:
        chosen = self._chosen.get(trial.number, {})
        if name in chosen:
            return chosen[name]
        return self.inner.sample_independent(study, trial, name, distribution)

    def before_trial(self, study, trial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study, trial, state, values) -> None:
        self._chosen.pop(trial.number, None)
        self.inner.after_trial(study, trial, state, values)

    def candidate_chooser(self, study, trial):
        """A chooser drawing one candidate: each point's value from the wrapped sampler, as
        the trial would draw it (evolution plans a new child for each candidate)."""
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        draw_again = getattr(self.inner, "draw_again", None)
        if draw_again is not None:
            draw_again(trial.number)
        return lambda point: self.inner.sample_independent(study, frozen, point.name,
                                                           distribution_of(point))

    def choose(self, trial, values: dict[str, Any]) -> None:
        """Fix `trial`'s choice points to `values` (the chosen candidate's)."""
        self._chosen[trial.number] = values


def best_candidate(scores: list[float], new: list[bool] | None = None) -> int:
    """The index of the highest score; a score not defined (NaN) ranks below every other. With
    `new` (whether no trial has tried each candidate's network), of the scored candidates a new
    one ranks above one tried, which the search would only draw again."""
    return max(range(len(scores)), key=lambda i: (
        not math.isnan(scores[i]), new is None or new[i],
        scores[i] if not math.isnan(scores[i]) else 0.0))
