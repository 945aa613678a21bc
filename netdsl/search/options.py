"""A search as its command asks for it (`SearchOptions`), its options checked against each
other and the family, and the Optuna sampler and pruner they name."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from netdsl_runtime.recipe import SEEDS

from ..errors import NetdslError
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
            raise NetdslError(f"--objectives {text}: one of {', '.join(OBJECTIVES)}")
        return cls(text.partition(",")[2] or None)

    @property
    def multi(self) -> bool:
        return self.second is not None

    @property
    def names(self) -> list[str]:
        return ["accuracy", *([self.second] if self.second else [])]

    @property
    def directions(self) -> list[str]:
        return ["maximize"] + ["minimize"] * self.multi

    def __str__(self) -> str:
        return ",".join(self.names)


@dataclass(frozen=True)
class SearchOptions:
    """A search as its command asks for it, the flags read once: the budget (`trials`), where
    it is stored (`storage` URL, `name`; default: the file's name), an NNI `space` file, the
    `tuner` (with evolution's `population` and `tournament`), a `prefilter` (PROXY:K), a
    `supernet` file to rank by or a `table` and its `metric` to look networks up in, the
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
    pruner: str = "none"
    objectives: Objectives = Objectives()
    timeout: float | None = None
    resume: bool = False
    training_flags: tuple[str, ...] = ()


def check_options(options: SearchOptions, training: Training, family: Family, space: Space):
    """The search's options, checked against each other and the family; returns the parsed
    --prefilter (proxy, candidates) or None."""
    if not space and not family.choice_points:
        raise NetdslError(f"nothing to search: {family.name} declares no choice(...), range(...) "
                          "or logrange(...), and no --space is given")
    if options.trials < 1:
        raise NetdslError(f"bad option: --trials must be at least 1, got {options.trials}")
    if options.timeout is not None and not options.timeout > 0:
        raise NetdslError(f"bad option: --timeout must be a positive number of seconds, "
                          f"got {options.timeout}")
    if options.tuner == "evolution" and not (2 <= options.population and
                                          1 <= options.tournament <= options.population):
        raise NetdslError(f"bad option: evolution needs --population of at least 2 and "
                          f"--tournament from 1 to the population, got {options.population} and "
                          f"{options.tournament}")
    if options.objectives.multi and options.pruner != "none":
        raise NetdslError("bad option: pruning needs a single objective (--objectives accuracy)")
    from .prefilter import parse_prefilter

    prefilter = parse_prefilter(options.prefilter) if options.prefilter else None
    if prefilter is not None and options.tuner == "grid":
        raise NetdslError("bad option: --prefilter with --tuner grid: a grid trains every "
                          "network anyway; use another tuner")
    if prefilter is not None and not family.choice_points:
        raise NetdslError(f"bad option: --prefilter: {family.name} declares no choice(...) "
                          "for candidates to differ in")
    if options.supernet and (options.space or options.pruner != "none"
                          or options.objectives.second == "time" or training.init_from):
        raise NetdslError("bad option: --supernet ranks the file's choices with the "
                          "supernet's weights, untrained: it takes no --space, --pruner, "
                          "--init-from or training time objective")
    if options.pruner != "none" and training.evaluate == "last":
        raise NetdslError(f"bad option: --pruner {options.pruner} reads every epoch's accuracy; "
                          "--evaluate last gives only the last")
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
