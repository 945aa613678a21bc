"""Regularized (aging) evolution (Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019), as an Optuna sampler.

The population is the P newest finished trials in the storage (so the oldest is dropped as a
new one finishes: aging). Until P trials have finished, each trial is drawn at random. After,
a trial samples S of the population, takes the best of them as its parent, and changes one of
the parent's values, each choice point (or --space key) equally likely, to another of its
values. Everything lives in the storage, so a search resumes, and several workers on one
storage evolve one population, each worker planning its own trials.
"""
from __future__ import annotations

import math
import random
from typing import Any

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState


class PlanningSampler(optuna.samplers.BaseSampler):
    """An Optuna sampler that plans a trial's values (`_plan(study)`, from the finished trials)
    when the trial first asks for one, and hands them out as it asks; a value the plan lacks or
    the distribution no longer offers (a point another choice made appear, or one that
    changed) is drawn at random. Nothing is relative: the space may change from trial to
    trial, so storage, resuming, several workers and `--set` work as with any sampler."""

    def __init__(self, seed: int | None = None):
        self._rng = random.Random(seed)
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._planned: dict[int, dict[str, Any]] = {}  # trial number -> its planned values

    def _plan(self, study) -> dict[str, Any]:
        raise NotImplementedError

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        return {}  # every value is drawn as the trial asks for it (the space may change)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return {}

    def sample_independent(self, study, trial: FrozenTrial, name: str,
                           distribution: BaseDistribution) -> Any:
        if trial.number not in self._planned:
            self._planned[trial.number] = self._plan(study)
        planned = self._planned[trial.number]
        if name in planned and offers(distribution, planned[name]):
            return planned[name]
        return self._random.sample_independent(study, trial, name, distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._planned.pop(trial.number, None)

    def draw_again(self, number: int) -> None:
        """Plan trial `number` anew: a prefilter draws several candidates a trial."""
        self._planned.pop(number, None)


class RegularizedEvolution(PlanningSampler):
    def __init__(self, population: int = 10, tournament: int = 3, seed: int | None = None):
        if population < 2 or not 1 <= tournament <= population:
            raise ValueError(f"regularized evolution needs a population of at least 2 and "
                             f"a tournament of 1 to the population's size, got {population} "
                             f"and {tournament}")
        super().__init__(seed)
        self.population, self.tournament = population, tournament

    def _plan(self, study) -> dict[str, Any]:
        """The values of a new trial: the best of a random sample of the population with one
        value changed; nothing (all at random) while the population fills."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(finished) < self.population:
            return {}
        population = sorted(finished, key=lambda t: t.number)[-self.population:]
        best = max if study.directions[0] == StudyDirection.MAXIMIZE else min
        parent = best(self._rng.sample(population, self.tournament), key=lambda t: t.values[0])
        child = dict(parent.params)
        changeable = [name for name, d in parent.distributions.items()
                      if other_value(d, child[name], self._rng) is not None]
        if changeable:
            name = self._rng.choice(changeable)
            child[name] = other_value(parent.distributions[name], child[name], self._rng)
        return child


def offers(distribution: BaseDistribution, value: Any) -> bool:
    """Whether `distribution` can draw `value` (a planned value still fits the point)."""
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def other_value(distribution: BaseDistribution, value: Any, rng: random.Random) -> Any:
    """Another value the distribution offers, at random; None when it offers only `value`."""
    if isinstance(distribution, CategoricalDistribution):
        others = [c for c in distribution.choices if c != value]
        return rng.choice(others) if others else None
    if isinstance(distribution, IntDistribution):
        step = distribution.step
        count = (distribution.high - distribution.low) // step + 1
        if count < 2:
            return None
        index = rng.randrange(count - 1)
        other = distribution.low + index * step
        return other + step if other >= value else other
    if isinstance(distribution, FloatDistribution):
        if distribution.high <= distribution.low:
            return None
        if distribution.step is not None:
            count = round((distribution.high - distribution.low) / distribution.step) + 1
            index = rng.randrange(count - 1)
            below = distribution.low + index * distribution.step
            return below + distribution.step if below >= value - 1e-12 else below
        if distribution.log:
            return math.exp(rng.uniform(math.log(distribution.low), math.log(distribution.high)))
        return rng.uniform(distribution.low, distribution.high)
    return None
