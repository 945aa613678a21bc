"""A search as its command asks for it (`SearchOptions`), its options checked against each
other and the family, and the Optuna sampler and pruner they name."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal

from netdsl_runtime.recipe import SEEDS

from ..errors import ArgumentError, NetdslError
from ..train import Training, bind_to_data
from ..language import Family
from .space import Space
from .values import split_values


TUNERS = ("tpe", "random", "grid", "cmaes", "evolution", "predictor")


PRUNERS = ("none", "median", "hyperband")


OBJECTIVES = ("accuracy", "accuracy,time", "accuracy,flops")


@dataclass(frozen=True)
class Objectives:
    """--objectives, parsed once: accuracy (maximised), and a `second` minimised beside it,
    the training's seconds ("time") or the network's FLOPs ("flops"), or None. Its text is
    what the study stores and a resume compares."""
    second: str | None = None

    @classmethod
    def parse(cls, text: str) -> Objectives:
        if text not in OBJECTIVES:
            raise ArgumentError(lambda given: f"{given('objectives', text)}: one of "
                                f"{', '.join(OBJECTIVES)}")
        return cls(text.partition(",")[2] or None)

    @property
    def multi(self) -> bool:
        return self.second is not None

    @property
    def names(self) -> list[str]:
        return ["accuracy", *([self.second] if self.second else [])]

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:  # Optuna's words
        return ["maximize", "minimize"] if self.multi else ["maximize"]

    def __str__(self) -> str:
        return ",".join(self.names)


@dataclass(frozen=True)
class SearchOptions:
    """A search as its command asks for it, the flags read once: the budget (`trials`), where
    it is stored (`storage` URL, `name`; default: the file's name), an NNI `space` file, the
    `tuner` (with evolution's `population` and `tournament`), a `prefilter` (PROXY:K), a
    `supernet` file to rank by or a `table` and its `metric` to look networks up in (and its
    `report` column, each network's test accuracy: shown, never the tuner's), the
    `pruner`, the `objectives`, a `timeout` in seconds, `resume` (refuse a new search), and
    `training_flags`: the flags given that only a training or a supernet's ranking reads (a
    table search refuses them)."""
    trials: int
    storage: str
    name: str | None = None
    space: str | None = None
    tuner: str = "tpe"
    population: int = 10
    tournament: int = 3
    prefilter: str | None = None
    supernet: str | None = None
    table: str | None = None
    metric: str | None = None
    report: str | None = None
    pruner: str = "none"
    objectives: Objectives = Objectives()
    timeout: float | None = None
    resume: bool = False
    training_flags: tuple[str, ...] = ()


def check_options(options: SearchOptions, training: Training, family: Family, space: Space):
    """The search's options, checked against each other and the family (an ArgumentError
    names the fields of `options` and `training` it refuses); returns the parsed prefilter
    (proxy, candidates) or None."""
    o = options
    if not space and not family.choice_points:
        raise ArgumentError(lambda given: f"nothing to search: {family.name} declares no "
                            "choice(...), range(...) or logrange(...), and no "
                            f"{given('space')} is given")
    if o.trials < 1:
        raise ArgumentError(lambda given: f"bad option: {given('trials')} must be at least 1, "
                            f"got {o.trials}")
    if o.timeout is not None and not o.timeout > 0:
        raise ArgumentError(lambda given: f"bad option: {given('timeout')} must be a positive "
                            f"number of seconds, got {o.timeout}")
    if o.tuner == "evolution" and not (2 <= o.population and 1 <= o.tournament <= o.population):
        raise ArgumentError(lambda given: (
            f"bad option: evolution needs {given('population')} of at least 2 and "
            f"{given('tournament')} from 1 to the population, got {o.population} and "
            f"{o.tournament}"))
    if o.objectives.multi and o.pruner != "none":
        raise ArgumentError(lambda given: "bad option: pruning needs a single objective "
                            f"({given('objectives', 'accuracy')})")
    from .prefilter import parse_prefilter

    prefilter = parse_prefilter(o.prefilter) if o.prefilter else None
    if prefilter is not None and o.tuner == "grid":
        raise ArgumentError(lambda given: f"bad option: {given('prefilter')} with "
                            f"{given('tuner', 'grid')}: a grid trains every network anyway; "
                            "use another tuner")
    if prefilter is not None and not family.choice_points:
        raise ArgumentError(lambda given: f"bad option: {given('prefilter')}: {family.name} "
                            "declares no choice(...) for candidates to differ in")
    if o.supernet and (o.space or o.pruner != "none" or o.objectives.second == "time"
                       or training.init_from):
        raise ArgumentError(lambda given: (
            f"bad option: {given('supernet')} ranks the file's choices with the supernet's "
            f"weights, untrained: it takes no {given('space')}, {given('pruner')}, "
            f"{given('init_from')} or training time objective"))
    if o.pruner != "none" and training.evaluate == "last":
        raise ArgumentError(lambda given: (
            f"bad option: {given('pruner', o.pruner)} reads every epoch's accuracy; "
            f"{given('evaluate', 'last')} gives only the last"))
    return prefilter


def make_sampler(options: SearchOptions, seed: int, count_before: int,
             grid_values: dict[str, list] | None, prefiltered: bool,
             feature: Callable[[dict[str, Any]], float | None]):
    """The --tuner's Optuna sampler, seeded by `seed` and, past a grid, the trials done before
    (a resumed search draws new points); wrapped to draw a prefilter's candidates. `feature`:
    a network's cheap score from its values, for the predictor."""
    import optuna

    from .predictor import Predictor

    resumed = (seed + count_before) % SEEDS
    sampler = {
        "tpe": lambda: optuna.samplers.TPESampler(seed=resumed),
        "random": lambda: optuna.samplers.RandomSampler(seed=resumed),
        "grid": lambda: _grid_sampler()(grid_values, seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=resumed,
                                                      warn_independent_sampling=False),
        "evolution": lambda: _evolution(options.population, options.tournament, resumed),
        "predictor": lambda: Predictor(seed=resumed, feature=feature),
    }[options.tuner]()
    if prefiltered:
        from .prefilter import Prefiltered

        sampler = Prefiltered(sampler)
    return sampler


def log_flops(family: Family, data, base: dict[str, Any]
               ) -> Callable[[dict[str, Any]], float | None]:
    """values -> the log of the FLOPs of the network they bind (with `base`): read off the
    bound graph, nothing built or run; None where they bind no valid network."""
    def feature(values: dict[str, Any]) -> float | None:
        try:
            bindings, _ = split_values(values, family)
            return math.log1p(bind_to_data(family, data, {**base, **bindings}).flops)
        except NetdslError:
            return None
    return feature


def make_pruner(name: str, epochs: float):
    import optuna

    return {"none": optuna.pruners.NopPruner,
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1,
                                                                max_resource=math.ceil(epochs)),
            }[name]()


def _evolution(population: int, tournament: int, seed: int):
    from .evolution import RegularizedEvolution

    return RegularizedEvolution(population, tournament, seed=seed)


def _grid_sampler():
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid, for a search that retries interrupted trials: a retry is enqueued with
        its values and has no grid id, which Optuna's own end-of-trial check looks up."""

        def after_trial(self, study, trial, state, values) -> None:
            if "grid_id" in trial.system_attrs:
                super().after_trial(study, trial, state, values)
            elif self.is_exhausted(study):
                study.stop()
    return GridSampler
