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
    `tuner` (with evolution's `population` and `tournament`, the predictor's `feature`: a
    score of each network, see `network_feature`), a `prefilter` (PROXY:K), a
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
    feature: str = "flops"
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
    _check_feature(o, training)
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


def _check_feature(o: SearchOptions, training: Training) -> None:
    """The predictor's feature: a score of one network (an aggregate ranks a population that
    grows as the search goes), from images where it reads them."""
    from ..rank.scores import DATA_FREE, NETWORK_SCORES

    if o.feature != "flops" and o.tuner != "predictor":
        raise ArgumentError(lambda given: f"bad option: {given('feature', o.feature)} is the "
                            f"predictor's: give {given('tuner', 'predictor')}")
    if o.feature not in NETWORK_SCORES:
        raise ArgumentError(lambda given: (
            f"bad option: {given('feature', o.feature)}: the feature is a score of one "
            f"network, one of {', '.join(NETWORK_SCORES)}"))
    if o.feature not in DATA_FREE and training.data is None:
        raise ArgumentError(lambda given: (
            f"bad option: {given('feature', o.feature)} scores images: give "
            f"{given('dataset')} (or a score read off the network: {', '.join(DATA_FREE)})"))


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


def network_feature(name: str, family: Family, data, base: dict[str, Any], batch, seed: int
                    ) -> Callable[[dict[str, Any]], float | None]:
    """values -> the score `name` of the network they bind (with `base`), the predictor's
    feature; None where they bind no valid network or the score is not defined for it. FLOPs
    (the default) and weights as their log, a count's scale, both read off the bound graph,
    nothing built or run (the predictor features dozens of candidates a trial: building each
    NAS-Bench-201 module to count its weights made a search of 200 trials take over 15
    minutes); any other score as it is, of the network initialised by `seed`, on `batch` (the
    search's scoring batch of `data`)."""
    from ..rank.scores import FLOPS, score

    def feature(values: dict[str, Any]) -> float | None:
        try:
            bindings, _ = split_values(values, family)
            bound = bind_to_data(family, data, {**base, **bindings})
            if name in (FLOPS, "weights"):
                return math.log1p(bound.flops if name == FLOPS else bound.weight_count)
            value = score(bound, data, batch, [name], seed).scores[name]
        except NetdslError:
            return None
        return None if math.isnan(value) else value
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
