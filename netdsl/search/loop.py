"""`netdsl search`: sample a space, bind and fit each point, store every trial with Optuna.

`fit_point` is the one call any search code needs (NNI, Ray Tune, a hand-written evolution): a
family (or DSL text) + values -> a fitted network, on data already on the device. The search
loop is Optuna's `study.optimize` over `objective`, which binds one trial's values, skips a
network and recipe already trained, fits, and records what happened.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from netdsl_runtime.recipe import SEEDS

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, NetdslError
from ..fit import (Fitted, Training, bind_to_data, check_batch, device_from, early_recipe,
                   evaluates_each_epoch, fit, load_data, load_weights, read_supernet,
                   with_classes)
from ..graph import fits
from ..language import DEFAULT_INPUT_SHAPE, Bound, Family, load
from ..records import plain
from ..settings import (RECIPE_FIELDS, apply, is_recipe_key, key_kind, key_value, recipe_flags,
                        search_keys)
from ..score import BATCH_SIZE as SCORING_BATCH, score, scoring_batch
from .interrupts import Interrupts, held
from .space import (Space, distribution_of, distributions, grid, keys, load_space, sample, size,
                    suggest, whole_valued)
from .storage import (check_same_space, counted, open_storage, retry_interrupted, settle,
                      spends_budget, tried)
from .study import TEST_ACCURACY, best_trials, pareto_front, print_best
from .table import check_resumed, look_up_trial, no_images, remember, table_of

TUNERS = ("tpe", "random", "grid", "cmaes", "evolution", "predictor")
PRUNERS = ("none", "median", "hyperband")
OBJECTIVES = ("accuracy", "accuracy,time", "accuracy,flops")


class TrialFailed(Exception):
    """A trial that cannot give a result (invalid network, loss not finite, out of memory).
    The search records it with its error and goes on."""


# ---- values -> network and recipe ------------------------------------------------------------

def split_values(values: dict[str, Any], family: Family) -> tuple[dict, dict]:
    """Values in NNI's form -> (network bindings, recipe keys). A key the family declares
    binds the network; a recipe key (see netdsl.settings) sets the trainer; a nested choice
    {"_name": ..., keys...} binds its keys (and its `_name`, if the family declares the
    choice's own key), and so does a key that may name one of its choice points (any key, in a
    family with choices: binding says which it does not). Any other key is an error."""
    bindings, changes = {}, {}
    for key, value in values.items():
        if isinstance(value, dict) and "_name" in value:
            inner = {k: v for k, v in value.items() if k != "_name"}
            if key in family.parameters:
                inner[key] = value["_name"]
            more_bindings, more_changes = split_values(inner, family)
            bindings.update(more_bindings)
            changes.update(more_changes)
        elif key in family.parameters:
            bindings[key] = value
        elif is_recipe_key(key):
            changes[key] = value
        elif family.choice_points:
            bindings[key] = value
        else:
            raise NetdslError(_neither(f"'{key}'", family))
    return bindings, changes


def check_space_fits(space: Space, family: Family) -> None:
    """Before any training: every key must bind the network or the trainer, each choice must
    offer values of the kind the key takes, and keys of whole numbers (channels, depth,
    epochs) must not draw fractions."""
    for key, spec in keys(space).items():
        point = family.choice_points.get(key)
        if key not in family.parameters and point is None and not is_recipe_key(key):
            raise NetdslError(_neither(f"search space key '{key}'", family))
        parameter = family.parameters.get(key)
        if spec["_type"] == "choice":
            for option in spec["_value"]:
                _check_option(key, option, family)
            continue
        if point is not None and point.options:
            raise NetdslError(f"search space key '{key}' takes one of its options "
                              f"({point.describe_options()}); {spec['_type']} draws numbers: "
                              "use choice")
        if (parameter.kind in ("switch", "op") if parameter else key_kind(key) in (bool, str)):
            raise NetdslError(f"search space key '{key}' takes one of a fixed set of values; "
                              f"{spec['_type']} draws numbers: use choice")
        whole = parameter.kind == "whole" if parameter else key_kind(key) is int
        if whole and not whole_valued(spec):
            raise NetdslError(f"search space key '{key}' takes whole numbers, but {spec['_type']} "
                              f"{spec['_value']} draws fractions; use choice, randint or a "
                              "quniform with whole bounds and q")


def _check_option(key: str, option: Any, family: Family) -> None:
    """A choice's option must be a value the parameter, choice point or setting can take."""
    parameter, point = family.parameters.get(key), family.choice_points.get(key)
    if point is not None:
        try:
            point.check(option)
        except NetdslError as e:
            raise NetdslError(f"search space key '{key}': {e.message}") from None
        return
    if parameter is None:
        key_value(key, option)  # raises, naming the key and the field's rule
        return
    if parameter.kind == "op":
        if option not in family.callables:
            raise NetdslError(f"search space key '{key}' takes blocks and primitives by name, "
                              f"but its choice offers {option!r}")
        return
    if not fits(option, parameter.kind):
        want = {"switch": "true or false", "whole": "whole numbers",
                "number": "numbers"}[parameter.kind]
        raise NetdslError(f"search space key '{key}' takes {want}, but its choice offers "
                          f"{option!r}")


def _neither(what: str, family: Family) -> str:
    return (f"{what} is neither a parameter of {family.name} "
            f"({', '.join(family.parameters) or 'none'}) nor a trainer setting "
            f"({', '.join(search_keys())})")


def fingerprint(bound: Bound, recipe) -> str:
    """Same checked network and same hyperparameters -> same hash, however they were written.
    Settings that only change how fast a trial runs (precision, compiling) are left out;
    `recipe` None (a table search, whose values depend on the network alone): all are."""
    return _hash({"network": bound.fingerprint, "recipe": _trained_settings(recipe)})


def setting_of(family: Family, base: dict[str, Any], recipe, space: Space) -> str:
    """A hash of what one run of a search draws its points in: the text, --set, the recipe
    from the flags (None for a table search) and --space. Its trials are told apart from an
    earlier run's under another, which drew from another space."""
    return _hash(plain({"text": family.text, "set": base, "recipe": _trained_settings(recipe),
                        "space": space}))


def _trained_settings(recipe) -> dict[str, Any] | None:
    """The recipe's settings less those that only change how fast it trains."""
    if recipe is None:
        return None
    return {name: value for name, value in recipe.to_dict().items()
            if not RECIPE_FIELDS[name].metadata["speed_only"]}


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def fit_point(network: Family | str, data, recipe, values: dict[str, Any] | None = None, *,
             optional: frozenset = frozenset(), log: Callable[[str], None] | None = None,
             should_stop: Callable[[Any], bool] | None = None,
             init: dict[str, Any] | None = None, evaluate_each_epoch: bool = True) -> Fitted:
    """Bind `values` (network parameters and recipe keys, NNI's form) into a family (or DSL
    text) and `recipe`, and fit it on `data` (a runtime.DeviceData, loaded once by the
    caller). `optional`: the recipe's entries that apply only where the network has what
    they name (a preset's, see `netdsl.fit.fit`). `init`: path-keyed weights of an earlier or
    wider network to start from. `evaluate_each_epoch` False: only the result is evaluated
    (`should_stop` sees no epoch before it). Raises NetdslError for an invalid network or
    value; a loss that stops being finite gives status "diverged"."""
    family = network if isinstance(network, Family) else load(network)
    bindings, changes = split_values(values or {}, family)
    recipe = apply(recipe, changes)
    return fit(bind_to_data(family, data, bindings), data, recipe, optional=optional,
               init=init, log=log, should_stop=should_stop,
               evaluate_each_epoch=evaluate_each_epoch)


# ---- the search ------------------------------------------------------------------------------

@dataclass
class Search:
    """What every trial of one search shares."""

    family: Family
    space: Space
    grid: dict[str, list] | None  # the grid, for the grid tuner
    base: dict[str, Any]          # bindings from --set
    recipe: Any                   # runtime.Recipe from the flags
    optional: frozenset           # its entries that apply where a network has what they name
    data: Any                     # runtime.DeviceData
    initial: dict[str, Any] | None
    objectives: str
    study: Any                    # optuna.Study
    budget: int                   # trials the whole search may spend, all workers together
    each_epoch: bool              # evaluate after every epoch (a pruner reads them), else last
    prefilter: tuple[str, int] | None = None  # (proxy, candidates per trial)
    batch: Any = None             # the prefilter's scoring batch: (images, labels)
    supernet: Any = None          # netdsl.supernet.Supernet: ranks instead of training
    table: Any = None             # netdsl.search.table.Table: looks up instead of training
    mine: list[int] = field(default_factory=list)  # numbers of the trials this process ran
    # With a validation split: this process's best trained networks by trial number, with
    # their scores, until the end measures the chosen one's test accuracy.
    kept: dict[int, tuple[tuple[float, ...], Fitted]] = field(default_factory=dict)
    redraws: int = 0              # this process's draws in a row that repeated a network
    size: int | None = None       # the space's points (networks and recipes), if finite
    # Each free choice point's values as the tuner draws them, where every network of the
    # space is one value of each (no --space; the same points whatever is chosen; none a
    # real range); else None.
    listing: dict[str, Sequence] | None = None
    interrupts: Interrupts = field(default_factory=Interrupts)  # Ctrl-C, held between steps
    setting: str = ""             # setting_of(...): which stored trials drew from this space

    @property
    def multi(self) -> bool:
        return self.objectives != "accuracy"

    def fingerprint(self, bound: Bound, recipe) -> str:
        """A trial's network and recipe as one hash; a lookup's value depends on the network
        alone, so a table search's leaves the recipe out (resumed with another --seed, it
        finds the lookups it made)."""
        return fingerprint(bound, recipe if self.table is None else None)


WAIT_SECONDS = 1.0  # how often a trial waiting for the same network elsewhere looks again
# A draw that repeats a network already trained (or training) is drawn again, spending no
# budget, this many times in a row; after that the space seems to hold no new network, and
# the repeat takes the earlier trial's result and counts. A redraw costs a binding, not an
# epoch; at 10, a space with one network of four left missed it 5.6% of the time ((3/4)^10,
# a test that failed so), at 50 once in a million.
MAX_REDRAWS = 50
# Repeats in a row after which the sampler seems stuck: the next trial takes an untried network,
# drawn at random. TPE and CMA-ES converge: of a 125-network space, without it they tried 123
# and 121 networks in 130 trials (602 and 447 draws), with it all 125 (297 and 259 draws).
UNTRIED_AFTER = 3
LISTED_NETWORKS = 100_000  # listed and shuffled up to this many; drawn at random past it


def _queue_untried(search: Search, seed: int) -> bool:
    """Queue a network no trial has tried, drawn at random (seeded by `seed`), as the next
    trial's values; False where the space's networks cannot be listed (`Search.listing`) or
    none untried was found."""
    if search.listing is None:
        return False
    import random

    tried = _fingerprints(search)
    rng = random.Random(seed)
    names = list(search.listing)
    size = math.prod(len(values) for values in search.listing.values())
    if size <= LISTED_NETWORKS:
        order = [dict(zip(names, values))
                 for values in itertools.product(*search.listing.values())]
        rng.shuffle(order)
    else:
        order = [{name: rng.choice(values) for name, values in search.listing.items()}
                 for _ in range(LISTED_NETWORKS // 100)]
    for values in order:
        bound = bind_to_data(search.family, search.data, {**search.base, **values})
        if search.fingerprint(bound, search.recipe) not in tried:
            search.study.enqueue_trial(values, user_attrs={"untried_draw": True})
            return True
    return False


def objective(trial, search: Search):
    """One trial: sample, bind, skip what was trained already or is being trained by another
    worker, fit, record. Any error inside becomes this trial's recorded failure."""
    search.interrupts.check()  # a Ctrl-C held since the last trial: this one is tried again
    search.mine.append(trial.number)
    if _budget_full(search, trial):
        trial.set_user_attr("over_budget", True)
        trial.set_user_attr("error", f"not run: the search's budget of {search.budget} trials "
                            "was taken by other workers")
        search.study.stop()
        raise TrialFailed("over budget")
    trial.set_user_attr("setting", search.setting)
    values = sample(trial, search.space, grid_mode=search.grid is not None)
    trial.set_user_attr("values", plain(values))
    try:
        return _checked(_train_trial(trial, search, values), search)
    except NetdslError as e:
        trial.set_user_attr("error", e.message if e.location is None else str(e))
        print(f"trial {trial.number} failed: {e.message}")
        raise TrialFailed(str(e)) from None
    except Exception as e:  # whatever else a trial raises is its failure, not the search's
        import optuna

        if isinstance(e, (optuna.TrialPruned, TrialFailed)):  # recorded already
            raise
        trial.set_user_attr("error", f"{type(e).__name__}: {e}")
        trial.set_user_attr("traceback", traceback.format_exc())
        first_line = (str(e).splitlines() or [""])[0]
        print(f"trial {trial.number} failed: {type(e).__name__}: {first_line}")
        raise TrialFailed(str(e)) from None


def _checked(result, search: Search):
    """`result` where it fits the study: a finite number per objective. Optuna fails a trial
    whose result does not without an error of its own, spending no budget."""
    values = result if isinstance(result, tuple) else (result,)
    if len(values) != len(search.study.directions) or not all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        raise NetdslError(f"the trial's result {values} is not a finite number for each "
                          f"objective ({search.objectives})")
    return result


def _budget_full(search: Search, trial) -> bool:
    """Whether the trials numbered before this one fill the budget (trial numbers are given
    out one at a time by the storage). While trials still running elsewhere would fill it, it
    waits for them: one may yet turn out a repeat that is drawn again and spends nothing."""
    import optuna
    from optuna.trial import TrialState

    while True:
        earlier = [t for t in search.study.get_trials(deepcopy=False) if t.number < trial.number]
        spent = sum(spends_budget(t) for t in earlier)
        running = sum(t.state == TrialState.RUNNING and not t.user_attrs.get("redrawn")
                      for t in earlier)
        if spent >= search.budget or spent + running < search.budget:
            return spent >= search.budget
        search.interrupts.check()
        time.sleep(WAIT_SECONDS)
        optuna.storages.fail_stale_trials(search.study)  # a killed worker's trial ends


def _first_twin(search: Search, trial, key: str, any_running: bool = False):
    """The first other trial with the same network and recipe that trained, failed on its own,
    or is training (numbered before this one, unless `any_running`); None if there is none."""
    from optuna.trial import TrialState

    twins = [t for t in search.study.get_trials(deepcopy=False)
             if t.user_attrs.get("fingerprint") == key and t.number != trial.number
             and _holds_network(t)
             and (t.state != TrialState.RUNNING or any_running or t.number < trial.number)]
    return min(twins, key=lambda t: t.number) if twins else None


def _finished(search: Search, trial, twin):
    """`twin` once it is not training: looked up again (`_first_twin`) while it is."""
    from optuna.trial import TrialState

    while twin is not None and twin.state == TrialState.RUNNING:
        search.study.sampler.reseed_rng()  # another worker drew the same point: part them
        search.interrupts.check()
        time.sleep(WAIT_SECONDS)
        twin = _first_twin(search, trial, twin.user_attrs["fingerprint"])
    return twin


def _train_trial(trial, search: Search, values: dict[str, Any]):
    """One trial's result from its `values`: its network bound and recorded, then the result
    of an earlier trial of the same network and recipe where there is one, else its network
    ranked by the supernet, looked up in the table, or trained."""
    bound, recipe, key = _bind_trial(trial, search, values)
    earlier = _earlier_result(trial, search, key)
    if earlier is not None:
        return earlier
    if search.supernet is not None:
        return _rank_by_supernet(trial, search, bound, recipe, values)
    if search.table is not None:
        return look_up_trial(trial, search.table, bound, values, search.multi)
    return _fit_trial(trial, search, bound, recipe, values)


def _bind_trial(trial, search: Search, values: dict[str, Any]) -> tuple[Bound, Any, str]:
    """The trial's network (its choices drawn from the text, a prefilter's candidate fixing
    them), recipe (runtime.Recipe) and their fingerprint, from `values` and the search's --set
    and flags; all stored with the trial, the fingerprint before any twin is looked for."""
    bindings, changes = split_values(values, search.family)
    recipe = apply(search.recipe, changes)
    if search.table is None:  # a table search trains nothing (and --table takes no --space)
        check_batch(recipe, search.data)
    queued = "retry_of" in trial.user_attrs or "untried_draw" in trial.user_attrs
    if search.prefilter is not None and not queued:  # a queued trial's values are fixed
        _prefilter(trial, search, {**search.base, **bindings}, recipe)
    bound = bind_to_data(search.family, search.data, {**search.base, **bindings},
                         lambda point: suggest(trial, point, grid_mode=search.grid is not None),
                         ignore_unknown=True)
    take_seconds = getattr(search.study.sampler, "take_seconds", None)
    if take_seconds is not None:  # the predictor's features of its candidates, this trial's
        trial.set_user_attr("score_time", trial.user_attrs.get("score_time", 0.0)
                            + take_seconds())
    trial.set_user_attr("values", plain({**values, **bound.choices}))  # the text's choices too
    key = search.fingerprint(bound, recipe)
    trial.set_user_attr("dsl", bound.text)
    trial.set_user_attr("flags", " ".join(recipe_flags(recipe)))
    # Set before looking, so of two trials drawing one network at once at least one sees the
    # other: while it may draw again, a trial that sees a twin training, whatever its number,
    # draws again (both may; neither trains it twice). Past that it waits only for a twin
    # numbered before it, so two never wait for each other.
    trial.set_user_attr("fingerprint", key)
    trial.set_user_attr("flops", bound.flops)
    return bound, recipe, key


def _earlier_result(trial, search: Search, key: str):
    """The result of another trial with the same network and recipe (`key`, their
    fingerprint), so that none is trained twice; None when this trial's network is new. While
    it may (MAX_REDRAWS in a row), a repeat is drawn again (`_draw_again`), and after
    UNTRIED_AFTER in a row an untried network is queued for the next trial where the space's
    networks can be listed; past that it takes its twin's result, waiting for a twin still
    training."""
    from optuna.trial import TrialState

    may_redraw = search.redraws < MAX_REDRAWS
    twin = _first_twin(search, trial, key, any_running=may_redraw)
    if twin is not None and may_redraw:
        search.redraws += 1
        if search.redraws >= UNTRIED_AFTER and _queue_untried(search, trial.number):
            search.redraws = 0
        return _draw_again(trial, search, twin)
    if twin is None:
        search.redraws = 0
    earlier = _finished(search, trial, twin)
    if earlier is None:  # no twin, or the one training was interrupted
        return None
    for attr in ("train_time", "curve"):
        trial.set_user_attr(attr, earlier.user_attrs.get(attr))
    trial.set_user_attr("same_as", earlier.number)
    print(f"trial {trial.number}: same network and recipe as trial {earlier.number}")
    if earlier.state == TrialState.FAIL:
        raise NetdslError(f"same network and recipe as trial {earlier.number}, which "
                          f"failed: {earlier.user_attrs['error']}")
    return earlier.values[0] if not search.multi else tuple(earlier.values)


def _draw_again(trial, search: Search, twin):
    """A repeat of `twin`'s network and recipe, marked drawn again: it spends no budget.
    Returns the twin's result where it completed (the sampler learns from it); else the
    trial fails, saying whether the twin is training or failed."""
    from optuna.trial import TrialState

    # Two workers with one seed draw alike: part them. A repeat of this process's own
    # draw keeps the seed's sequence (reseeded, a search was not reproducible, and random
    # search drew other networks than Optuna's with that seed after its first repeat).
    if twin.number not in search.mine:
        search.study.sampler.reseed_rng()
    trial.set_user_attr("same_as", twin.number)
    trial.set_user_attr("redrawn", True)
    print(f"trial {trial.number}: same network and recipe as trial {twin.number}; "
          "drawn again")
    if twin.state == TrialState.COMPLETE:  # its result, which the sampler learns from
        return twin.values[0] if not search.multi else tuple(twin.values)
    message = (f"not trained: the same network and recipe as trial {twin.number}, which "
               f"{'is training' if twin.state == TrialState.RUNNING else 'failed'}; "
               "drawn again")
    trial.set_user_attr("error", message)
    raise TrialFailed(message)


def _fit_trial(trial, search: Search, bound: Bound, recipe, values: dict[str, Any]):
    """Train the trial's network, with one objective reporting each epoch's accuracy to the
    pruner; its times and curve stored with it, its scores returned (accuracy, and training
    time or FLOPs for two objectives). A loss that stops being finite fails the trial, the
    pruner's stop prunes it, and Ctrl-C during training stops the search."""
    import optuna

    def should_stop(epoch) -> bool:
        if search.multi:
            return False
        trial.report(epoch.valid_acc, epoch.epoch)
        return trial.should_prune()

    with search.interrupts.at_once():
        fitted = fit(bound, search.data, recipe, optional=search.optional,
                     init=search.initial, log=None, should_stop=should_stop,
                     evaluate_each_epoch=search.each_epoch, report_test=False)
    result = fitted.result
    trial.set_user_attr("train_time", result.train_time)
    trial.set_user_attr("epochs_time", result.total_time)
    trial.set_user_attr("valid_time", result.valid_time)
    trial.set_user_attr("curve", fitted.curve)
    if result.status == "interrupted":
        raise KeyboardInterrupt
    if result.status == "diverged":
        raise NetdslError("the training loss stopped being finite")
    if result.status == "stopped":
        raise optuna.TrialPruned()
    print(f"trial {trial.number}: accuracy {fitted.accuracy:.4f}, "
          f"{result.train_time:.1f} s, {json.dumps({**values, **bound.choices})}")
    scores = (fitted.accuracy,) if not search.multi else (
        fitted.accuracy, result.train_time if search.objectives == "accuracy,time" else bound.flops)
    if search.data.report is not None:
        _keep_if_best(search, trial.number, scores, fitted)
    return scores[0] if not search.multi else scores


def _rank_by_supernet(trial, search: Search, bound: Bound, recipe, values: dict[str, Any]):
    """The trial's score without training: its network's accuracy with the supernet's
    weights, BatchNorm recalibrated."""
    start = time.perf_counter()
    with search.interrupts.at_once():
        accuracy = search.supernet.accuracy(bound, search.data, recipe)
    seconds = time.perf_counter() - start
    trial.set_user_attr("supernet", True)
    trial.set_user_attr("valid_time", seconds)
    trial.set_user_attr("epochs_time", seconds)
    print(f"trial {trial.number}: accuracy {accuracy:.4f} with the supernet's weights, "
          f"{seconds:.1f} s, {json.dumps({**values, **bound.choices})}")
    return accuracy if not search.multi else (accuracy, bound.flops)


def _prefilter(trial, search: Search, values: dict[str, Any], recipe) -> None:
    """Draw the prefilter's candidates from the strategy, score each on the search's batch
    with weights initialised as training would (`recipe`'s seed), and fix the trial's choices
    to the best-scored one (`best_candidate`: a new network before one tried); the
    candidates' choices and scores are stored with the trial."""
    from .prefilter import best_candidate

    proxy, count = search.prefilter
    sampler = search.study.sampler
    candidates = [score(bind_to_data(search.family, search.data, values,
                                     sampler.candidate_chooser(search.study, trial)),
                        search.data, search.batch, [proxy], recipe.seed) for _ in range(count)]
    # A candidate some trial has tried would be drawn again: a new one ranks first. (Best of
    # all, evolution's children of one parent chose a repeat 6 times in 7 at 50 trials.)
    tried = _fingerprints(search)
    chosen = best_candidate([c.scores[proxy] for c in candidates],
                            [search.fingerprint(c.bound, recipe) not in tried for c in candidates])
    sampler.choose(trial, candidates[chosen].bound.choices)
    trial.set_user_attr("score_time", sum(c.seconds for c in candidates))
    trial.set_user_attr("prefilter", plain({
        "proxy": proxy, "chosen": chosen,
        "candidates": [{"choices": c.bound.choices, **c.to_dict()["scores"],
                        **({"undefined": c.undefined[proxy]} if c.undefined else {})}
                       for c in candidates]}))


def _holds_network(trial) -> bool:
    """Whether `trial` trained its network, failed on its own or is training it (not a
    repeat drawn again, not interrupted)."""
    from optuna.trial import TrialState

    return not trial.user_attrs.get("redrawn") and (
        trial.state in (TrialState.COMPLETE, TrialState.RUNNING)
        or trial.state == TrialState.FAIL and "error" in trial.user_attrs)


def _fingerprints(search: Search) -> set[str]:
    """The network and recipe of every trial that holds one (`_holds_network`)."""
    return {t.user_attrs.get("fingerprint") for t in search.study.get_trials(deepcopy=False)
            if _holds_network(t)}


def _keep_if_best(search: Search, number: int, scores: tuple[float, ...], fitted: Fitted) -> None:
    """Keep trial `number`'s trained network while it is among this process's best (the most
    accurate; for two objectives, its Pareto front), for the test report at the end; let the
    others' weights go."""
    search.kept[number] = scores, fitted
    numbers = list(search.kept)
    points = [search.kept[n][0] for n in numbers]
    best = (pareto_front(points) if search.multi
            else [max(range(len(points)), key=lambda i: points[i][0])])
    search.kept = {numbers[i]: search.kept[numbers[i]] for i in best}


def _report_test(search: Search) -> float:
    """The test accuracy of each network the search chose (its best trial, or Pareto front)
    that this process trained, stored with the search (`study.test_accuracy` reads it): with a
    validation split, the one evaluation on the test set. Returns its seconds."""
    seconds = 0.0
    for trial in best_trials(search.study):
        trained = trial.user_attrs.get("same_as", trial.number)
        if trained in search.kept:
            fitted = search.kept[trained][1]
            search.study.set_user_attr(f"{TEST_ACCURACY}{trained}",
                                       fitted.measure_test(search.data))
            seconds += fitted.test_seconds
    return seconds


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
    objectives: str = "accuracy"
    timeout: float | None = None
    resume: bool = False
    training_flags: tuple[str, ...] = ()


def search_command(family: Family, training: Training, options: SearchOptions) -> int:
    import optuna

    try:
        with held() as interrupts:
            return _search(family, training, options, interrupts)
    except optuna.exceptions.StorageInternalError as e:
        reason = str(e.__cause__ or e).splitlines()[0]
        raise NetdslError(f"storage {options.storage} failed: {reason} (is it writable?)") \
            from None


def _search(family: Family, training: Training, options: SearchOptions,
            interrupts: Interrupts) -> int:
    """A search as the command asks: its options, space and stored trials checked before any
    data moves, the text's space checked against the data's images, then the study set up
    and its trials run. A Ctrl-C (`interrupts`) stops it between steps, or loading the data."""
    # -- everything checked before any data moves ------------------------------------------------
    space = load_space(options.space) if options.space is not None else {}
    check_space_fits(space, family)
    base = dict(training.bindings)
    prefilter = _check_options(options, training, family, space)
    table = _table(options, training, family, base)
    recipe, optional = training.recipe, training.optional
    # A table search without images trains nothing and needs no torch: importing it was 560 of
    # the 700 MB a lookup search peaked at (for a 1.7 MB table).
    device = device_from(training.device) if training.data else None
    if table is None:
        early_recipe(family, base, recipe, optional)  # at the defaults; each trial's is its own

    storage = open_storage(options.storage)
    name = options.name or (Path(family.name).stem if family.name != "<-e>" else "search")
    stored = _stored_search(options, name, storage, table)
    count_before = 0 if stored is None else counted(stored)
    if count_before >= options.trials:  # only a stored search: --trials is at least 1
        print(f"search '{name}' has its {count_before} trials already; nothing to do "
              f"(see: netdsl trials --name {name})")
        return 0
    # The text's space checked before the data loads where it binds for CIFAR's images: which
    # points there are does not depend on the images, only whether every option fits them.
    chosen = _space_or_none(family, base)
    if chosen is not None:
        grid_values = _check_space(options.tuner, space, chosen, family, base,
                                   DEFAULT_INPUT_SHAPE, stored)
    initial = load_weights(training.init_from)
    with interrupts.at_once():
        data = (load_data(training.data, device, seed=recipe.seed) if training.data
                else no_images(family, device))
    values = with_classes(family, data, base)
    if chosen is None or (values, data.image_shape) != (base, DEFAULT_INPUT_SHAPE):
        # Every option of the text's choices checked against the data's images, once.
        chosen = family.space(values, input_shape=data.image_shape)
        grid_values = _check_space(options.tuner, space, chosen, family, values,
                                   data.image_shape, stored)
    if table is None and not any(is_recipe_key(key) for key in keys(space)):
        check_batch(recipe, data)  # else each trial checks the batch it draws
    interrupts.check()

    sampler = _sampler(options, recipe.seed, count_before, grid_values, prefilter is not None,
                       _log_flops(family, data, values))
    study = _open_study(options, family, name, storage, sampler, recipe.epochs, table)
    supernet = None
    if options.supernet:
        supernet = read_supernet(options.supernet, family, with_classes(family, data, base),
                                 data.image_shape).to(device)
    search = Search(family, space, grid_values, base, recipe, optional, data, initial,
                    options.objectives, study, options.trials,
                    evaluates_each_epoch(training.evaluate, wanted=options.pruner != "none"),
                    prefilter, scoring_batch(data, SCORING_BATCH, recipe.seed)
                    if prefilter and training.data else None,
                    supernet, table=table, size=_size_of(space, chosen, base),
                    listing=_listing(space, chosen, base, grid_values is not None),
                    interrupts=interrupts,
                    setting=setting_of(family, base, recipe if table is None else None, space))
    print(f"search '{name}' in {options.storage}: {count_before} of {options.trials} trials "
          "done")
    try:
        return _run(search, name, options.timeout)
    finally:
        settle(storage)


def _table(options: SearchOptions, training: Training, family: Family, fixed: dict[str, Any]):
    """The table the search looks its networks up in (None: it trains them), every check
    done: the options, then the table against the family's space with `fixed` (--set)
    bound."""
    if options.table is None and training.data is None and options.metric is None:
        raise NetdslError("bad option: --dataset is needed to train the networks (or "
                          "--table, to look them up)")
    if options.table is not None:
        _refuse_training_options(options, training)
    return table_of(options.table, options.metric, family, fixed)


def _refuse_training_options(options: SearchOptions, training: Training) -> None:
    """`--table` looks networks up: refuse what only a training, or a ranking by a
    supernet, would read (the seed stays: it draws the trials)."""
    from ..score import DATA_FREE
    from .prefilter import parse_prefilter

    if options.training_flags:
        raise NetdslError(f"bad option: --table looks each network's {options.metric} up "
                          f"instead of training it: it takes no {options.training_flags[0]}")
    if options.prefilter and training.data is None and \
            parse_prefilter(options.prefilter)[0] not in DATA_FREE:
        raise NetdslError("bad option: --prefilter scores images: give --dataset with --table "
                          f"(or a score read off the network: {', '.join(DATA_FREE)})")


def _stored_search(options: SearchOptions, name: str, storage, table):
    """The search stored as `name` that this one goes on with, checked to go on with the
    objectives it began with (a table's column, see `check_resumed`; --objectives); None for
    a new search, which --resume refuses."""
    import optuna

    existing = optuna.get_all_study_names(storage)  # summaries would read every trial
    if options.resume and name not in existing:
        raise NetdslError(f"--resume: no search named '{name}' in {options.storage} "
                          f"(searches: {', '.join(existing) or 'none'})")
    if name not in existing:
        return None
    stored = optuna.load_study(study_name=name, storage=storage)
    check_resumed(stored, table)
    began = stored.user_attrs.get("objectives", "accuracy")
    if began != options.objectives or len(stored.directions) != len(began.split(",")):
        raise NetdslError(f"search '{name}' began with --objectives {began}; it cannot go on "
                          f"with --objectives {options.objectives} (its trials hold "
                          f"{len(stored.directions)} value{'s' * (len(stored.directions) > 1)} "
                          f"each): give --objectives {began}, or another --name for a new "
                          "search")
    return stored


def _open_study(options: SearchOptions, family: Family, name: str, storage, sampler,
                epochs: float, table):
    """The search's Optuna study, new or stored: with `sampler`, the --pruner's pruner for
    `epochs`, a direction per objective, and the text, objectives and table's metric stored
    for the commands that read it later. A trial interrupted (Ctrl-C, or its worker killed
    and seen stale) is queued to run again, once; one still running whose worker died is
    marked failed."""
    import optuna

    directions = ["maximize"] + (["minimize"] if options.objectives != "accuracy" else [])
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                pruner=_pruner(options.pruner, epochs),
                                directions=directions, load_if_exists=True)
    study.set_user_attr("dsl", family.text)
    study.set_user_attr("objectives", options.objectives)
    if table is not None:
        remember(study, table)
    retry_interrupted(study)  # interrupted by Ctrl-C, or killed and seen stale: try again
    optuna.storages.fail_stale_trials(study)
    return study


def _run(search: Search, name: str, timeout: float | None) -> int:
    """The search's trials, until its budget is spent, every point of a finite space is
    tried or `timeout` seconds pass; then the test accuracy of what it chose and its closing
    lines. Ctrl-C stops it (EXIT_INTERRUPTED), to go on when the command runs again; a
    search whose every trial failed exits EXIT_FAILED."""
    def stop_at_budget(study, trial) -> None:
        search.interrupts.check()  # held while Optuna told the trial: told, it stops here
        _refuse_unspent(study, trial)
        if counted(study) >= search.budget or _tried_all(search):
            study.stop()

    start = time.perf_counter()
    try:
        # No n_trials: repeated networks drawn again spend no budget; stop_at_budget ends it.
        if not _tried_all(search):
            search.study.optimize(lambda trial: objective(trial, search), timeout=timeout,
                                  catch=(TrialFailed,), callbacks=[stop_at_budget])
        test_seconds = _report_test(search)
        _print_end(search, name, time.perf_counter() - start, test_seconds)
        search.interrupts.check()  # pressed as the search ended: it says so all the same
    except KeyboardInterrupt:
        print(f"netdsl: interrupted; run the same command again to continue '{name}'",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if _failed_all(search.study) else 0


def _refuse_unspent(study, trial) -> None:
    """The loop's guard: a trial of this process that spent no budget must be a repeat drawn
    again (bounded: MAX_REDRAWS in a row) or one turned away at a full budget (which stops
    the search). Any other, one Optuna failed on its own, would be drawn again and again
    without end (a result of two values for one objective did: thousands of trials): the
    search stops, and goes on with it tried again when the command runs again."""
    if spends_budget(trial) or trial.user_attrs.get("redrawn") or \
            trial.user_attrs.get("over_budget"):
        return
    raise NetdslError(f"trial {trial.number} failed inside Optuna without an error of its "
                      "own; the search stopped there")


def _failed_all(study) -> int:
    """How many trials the search has spent, when every one of them failed; else 0."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False) if spends_budget(t)]
    return len(states) if all(state == TrialState.FAIL for state in states) else 0


def _print_end(search: Search, name: str, elapsed: float, test_seconds: float) -> None:
    """The search's closing lines: trials done, the best, what the accuracy was selected on,
    where this process's `elapsed` seconds went."""
    study = search.study
    print(f"search '{name}': {counted(study)} of {search.budget} trials done")
    if counted(study) < search.budget and _tried_all(search):
        print(f"every one of the space's {search.size:,} networks has been tried: nothing "
              "more to search")
    print_best(study)
    if _failed_all(study):
        print(f"all {_failed_all(study)} trials failed: netdsl trials --name {name} shows why "
              "each did")
    if search.table is not None:
        print(search.table.objective())
    elif search.data.report is None:
        print("selected on the test set: the best accuracy is optimistic (--valid-split N "
              "selects on held-out training images and reports the test set beside it)")
    mine = [t for t in study.get_trials(deepcopy=False) if t.number in search.mine]
    if mine:
        print(f"this process: {len(mine)} trials in {elapsed:.2f} s: "
              f"{where_the_time_went(mine, elapsed, test_seconds)}; "
              f"peak memory {_peak_memory_mb(search.data.device):.0f} MB")


def _sampler(options: SearchOptions, seed: int, count_before: int,
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


def _log_flops(family: Family, data, base: dict[str, Any]
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


def _pruner(name: str, epochs: float):
    import optuna

    return {"none": optuna.pruners.NopPruner,
            "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1,
                                                                max_resource=math.ceil(epochs)),
            }[name]()


def _check_options(options: SearchOptions, training: Training, family: Family, space: Space):
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
    if options.objectives != "accuracy" and options.pruner != "none":
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
                          or options.objectives == "accuracy,time" or training.init_from):
        raise NetdslError("bad option: --supernet ranks the file's choices with the "
                          "supernet's weights, untrained: it takes no --space, --pruner, "
                          "--init-from or training time objective")
    if options.pruner != "none" and training.evaluate == "last":
        raise NetdslError(f"bad option: --pruner {options.pruner} reads every epoch's accuracy; "
                          "--evaluate last gives only the last")
    return prefilter


def where_the_time_went(trials, elapsed: float, test: float) -> str:
    """`elapsed` seconds of a search's `trials` split into training (setting layers from the
    data included), evaluating on the validation images, `test` seconds on the test set,
    scoring a prefilter's candidates, and the rest: sampling, binding, building, compiling,
    deduplicating, storing."""
    seconds = lambda key: sum(t.user_attrs.get(key) or 0.0 for t in trials)
    valid, scoring = seconds("valid_time"), seconds("score_time")
    training = seconds("epochs_time") - valid
    rest = elapsed - training - valid - test - scoring
    return (f"training {training:.2f} s, validation {valid:.2f} s, test {test:.2f} s, "
            + (f"scoring candidates {scoring:.2f} s, " if scoring else "")
            + f"the rest {rest:.2f} s ({rest / len(trials):.3f} s per trial: sampling, binding, "
            "building, storing)")


def _grid_of(space: Space, chosen, base: dict[str, Any], name: str,
             met_at_defaults: Callable[[], dict[str, Any]]) -> dict[str, list]:
    """Every value of each key of `space` and each choice point of the text (`chosen`) that
    `base` does not bind: the grid. A grid needs the same points in every network; where the
    text's are not, it names one that the defaults (`met_at_defaults()`: their points) do
    not meet."""
    if not chosen.static:
        met = met_at_defaults()
        hidden = next((p.name for p in chosen.points if p.name not in met), None)
        raise NetdslError("grid search needs a fixed, finite set of choices; " + (
            f"{name}'s choice '{hidden}' is met only for some values of other choices"
            if hidden is not None else f"some values of one of {name}'s choices change "
            "which others are met, or their options"))
    values = grid(space) if space else {}
    for point in chosen.points:
        if point.name in space or point.name in base:
            continue
        if point.size is None:
            raise NetdslError(f"grid search needs a fixed, finite set of choices; {name}'s "
                              f"choice '{point.name}' offers real numbers")
        values[point.name] = point.listed()
    return values


def _space_or_none(family: Family, base: dict[str, Any]):
    """The text's space with `base` bound, every option checked for CIFAR-sized images; None
    when one does not bind at that size (the data's images decide, once loaded)."""
    try:
        return family.space(base)
    except NetdslError:
        return None


def _check_space(tuner: str, space: Space, chosen, family: Family, values: dict[str, Any],
                 shape: tuple[int, int, int], stored) -> dict[str, list] | None:
    """Before any trial: the grid a grid search walks (None for another tuner), refusing a
    space it cannot cover; and that the `stored` search (None: a new one) goes on over the
    space it began with (see `check_same_space`). `chosen`: the text's space with `values`
    bound, for images of `shape`."""
    grid_values = _grid_of(space, chosen, values, family.name,
                           lambda: family.bind(values, input_shape=shape).points
                           ) if tuner == "grid" else None
    if stored is not None:
        grid_mode = grid_values is not None
        drawn = distributions(space, grid_mode)
        points = {point.name: point for point in chosen.points if point.name not in values}

        def drawn_now(key: str):  # --space binds what it names, the text draws the rest
            if key in drawn:
                return drawn[key]
            return distribution_of(points[key], grid_mode) if key in points else None
        check_same_space(stored, drawn_now)
    return grid_values


def _size_of(space: Space, chosen, base: dict[str, Any]) -> int | None:
    """How many different points (networks and recipes) the search can draw, at most: the
    text's networks times the values --space draws; None when endless or not known (a key of
    --space binds a choice point of a text whose points depend on each other)."""
    drawn = keys(space)
    free = [point.size for point in chosen.points
            if point.name not in base and point.name not in drawn]
    bounds = [*([chosen.count] if chosen.count is not None and
                not any(point.name in drawn for point in chosen.points) else []),
              *([math.prod(free)] if chosen.static and None not in free else [])]
    text, nni = min(bounds, default=None), size(space)
    return None if text is None or nni is None else text * nni


def _listing(space: Space, chosen, base: dict[str, Any], grid_mode: bool
             ) -> dict[str, Sequence] | None:
    """`Search.listing`: the values the tuner draws each free choice point of the text from
    (`distribution_of`), where they list every network of the space; else None."""
    from optuna.distributions import CategoricalDistribution

    if space or not chosen.static:
        return None
    listing = {}
    for point in chosen.points:
        if point.name in base:
            continue
        if point.size is None or point.size > LISTED_NETWORKS:
            return None
        by_place = not isinstance(distribution_of(point, grid_mode), CategoricalDistribution)
        listing[point.name] = (range(point.size) if point.options and by_place
                               else point.listed())
    return listing


def _tried_all(search: Search) -> bool:
    """Whether every point of a finite space has been tried (trained, failed, or training)."""
    return search.size is not None and tried(search.study, search.setting) >= search.size


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


def _peak_memory_mb(device) -> float:
    """Peak resident memory of this process (CPU, or no device: a table search's) or peak
    allocated device memory (CUDA)."""
    import resource

    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
