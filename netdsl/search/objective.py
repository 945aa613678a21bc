"""One trial (`objective`): its values drawn, its network bound, a repeat's result taken or
its network trained, ranked by a supernet or looked up."""
from __future__ import annotations

import json
import math
import time
import traceback
from typing import TYPE_CHECKING, Any

from ..errors import NetdslError
from ..train import Fitted, bind_to_data, check_batch, fit
from ..language import Bound
from ..language.records import plain
from ..train.settings import apply, recipe_flags
from ..rank.aggregate import aggregated, base_scores
from ..rank.scores import score
from .record import Record, record
from .state import Search
from .space import sample, suggest
from .storage import TrialFailed, spends_budget
from .study import TEST_ACCURACY, pareto_front
from .twins import WAIT_SECONDS, earlier_result, fingerprints
from .values import split_values

if TYPE_CHECKING:
    from ..bench.table import Table
    from ..supernet import Supernet


def objective(trial, search: Search):
    """One trial: sample, bind, skip what was trained already or is being trained by another
    worker, fit, record. Any error inside becomes this trial's recorded failure."""
    search.interrupts.check()  # a Ctrl-C held since the last trial: this one is tried again
    search.mine.append(trial.number)
    if _budget_full(search, trial):
        record(trial, over_budget=True)
        record(trial, error=f"not run: the search's budget of {search.budget} trials "
                            "was taken by other workers")
        search.study.stop()
        raise TrialFailed("over budget")
    record(trial, setting=search.setting)
    values = sample(trial, search.space, grid_mode=search.grid is not None)
    record(trial, values=plain(values))
    try:
        return _checked(_train_trial(trial, search, values), search)
    except NetdslError as e:
        record(trial, error=e.message if e.location is None else str(e))
        print(f"trial {trial.number} failed: {e.message}")
        raise TrialFailed(str(e)) from None
    except Exception as e:  # whatever else a trial raises is its failure, not the search's
        import optuna

        if isinstance(e, (optuna.TrialPruned, TrialFailed)):  # recorded already
            raise
        record(trial, error=f"{type(e).__name__}: {e}")
        record(trial, traceback=traceback.format_exc())
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
        running = sum(t.state == TrialState.RUNNING and not Record(t).redrawn
                      for t in earlier)
        if spent >= search.budget or spent + running < search.budget:
            return spent >= search.budget
        search.interrupts.check()
        time.sleep(WAIT_SECONDS)
        optuna.storages.fail_stale_trials(search.study)  # a killed worker's trial ends


def _train_trial(trial, search: Search, values: dict[str, Any]):
    """One trial's result from its `values`: its network bound and recorded, then the result
    of an earlier trial of the same network and recipe where there is one, else its network
    ranked by the supernet, looked up in the table, or trained."""
    bound, recipe, key = _bind_trial(trial, search, values)
    earlier = earlier_result(trial, search, key)
    if earlier is not None:
        return earlier
    if search.supernet is not None:
        return _rank_by_supernet(trial, search, search.supernet, bound, recipe, values)
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
    stored = Record(trial)
    queued = stored.retry_of is not None or stored.untried_draw is not None
    if search.prefilter is not None and not queued:  # a queued trial's values are fixed
        _prefilter(trial, search, search.prefilter, {**search.base, **bindings}, recipe)
    bound = bind_to_data(search.family, search.data, {**search.base, **bindings},
                         lambda point: suggest(trial, point, grid_mode=search.grid is not None),
                         ignore_unknown=True)
    take_seconds = getattr(search.study.sampler, "take_seconds", None)
    if take_seconds is not None:  # the predictor's features of its candidates, this trial's
        record(trial, score_time=Record(trial).get("score_time", 0.0)
                            + take_seconds())
    record(trial, values=plain({**values, **bound.choices}))  # the text's choices too
    key = search.fingerprint(bound, recipe)
    record(trial, dsl=bound.text)
    record(trial, flags=" ".join(recipe_flags(recipe)))
    # Set before looking, so of two trials drawing one network at once at least one sees the
    # other: while it may draw again, a trial that sees a twin training, whatever its number,
    # draws again (both may; neither trains it twice). Past that it waits only for a twin
    # numbered before it, so two never wait for each other.
    record(trial, fingerprint=key)
    record(trial, flops=bound.flops)
    return bound, recipe, key


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
    record(trial, train_time=result.train_time)
    record(trial, epochs_time=result.total_time)
    record(trial, valid_time=result.valid_time)
    record(trial, curve=fitted.curve)
    if result.status == "interrupted":
        raise KeyboardInterrupt
    if result.status == "diverged":
        raise NetdslError("the training loss stopped being finite")
    if result.status == "stopped":
        raise optuna.TrialPruned()
    accuracy = fitted.accuracy
    assert accuracy is not None  # a training that finished evaluated its last epoch
    print(f"trial {trial.number}: accuracy {accuracy:.4f}, "
          f"{result.train_time:.1f} s, {json.dumps({**values, **bound.choices})}")
    scores: tuple[float, ...] = (accuracy,) if not search.multi else (
        accuracy, result.train_time if search.objectives.second == "time" else bound.flops)
    if search.data.report is not None:
        keep_if_best(search, trial.number, scores, fitted)
    return scores[0] if not search.multi else scores


def _rank_by_supernet(trial, search: Search, supernet: Supernet, bound: Bound, recipe,
                      values: dict[str, Any]):
    """The trial's score without training: its network's accuracy with the weights of
    `supernet` (the search's), BatchNorm recalibrated."""
    start = time.perf_counter()
    with search.interrupts.at_once():
        accuracy = supernet.accuracy(bound, search.data, recipe)
    seconds = time.perf_counter() - start
    record(trial, supernet=True)
    record(trial, valid_time=seconds)
    record(trial, epochs_time=seconds)
    print(f"trial {trial.number}: accuracy {accuracy:.4f} with the supernet's weights, "
          f"{seconds:.1f} s, {json.dumps({**values, **bound.choices})}")
    return accuracy if not search.multi else (accuracy, bound.flops)


def _prefilter(trial, search: Search, prefilter: tuple[str, int], values: dict[str, Any],
               recipe) -> None:
    """Draw the prefilter's candidates (`prefilter`: the search's proxy and how many) from the
    strategy, score each on the search's batch with weights initialised as training would
    (`recipe`'s seed), and fix the trial's choices to the best-scored one (`best_candidate`: a
    new network before one tried); the candidates' choices and scores are stored with the
    trial."""
    from .prefilter import Prefiltered, best_candidate

    proxy, count = prefilter
    sampler = search.study.sampler
    assert isinstance(sampler, Prefiltered)  # a search with a prefilter samples through it
    candidates = [score(bind_to_data(search.family, search.data, values,
                                     sampler.candidate_chooser(search.study, trial)),
                        search.data, search.batch, base_scores([proxy]), recipe.seed)
                  for _ in range(count)]
    # an aggregate (az_nas) ranks the trial's candidates among themselves
    for candidate, value in zip(candidates, aggregated(proxy, [c.scores for c in candidates])):
        candidate.scores[proxy] = value
    # A candidate some trial has tried would be drawn again: a new one ranks first. (Best of
    # all, evolution's children of one parent chose a repeat 6 times in 7 at 50 trials.)
    tried = fingerprints(search)
    chosen = best_candidate([c.scores[proxy] for c in candidates],
                            [search.fingerprint(c.bound, recipe) not in tried for c in candidates])
    sampler.choose(trial, candidates[chosen].bound.choices)
    record(trial, score_time=sum(c.seconds for c in candidates))
    record(trial, prefilter=plain({
        "proxy": proxy, "chosen": chosen,
        "candidates": [{"choices": c.bound.choices, **c.to_dict()["scores"],
                        **({"undefined": "; ".join(c.undefined.values())} if c.undefined
                           else {})}
                       for c in candidates]}))


def keep_if_best(search: Search, number: int, scores: tuple[float, ...], fitted: Fitted) -> None:
    """Keep trial `number`'s trained network while it is among this process's best (the most
    accurate; for two objectives, its Pareto front), for the test report at the end; let the
    others' weights go."""
    search.kept[number] = scores, fitted
    numbers = list(search.kept)
    points = [search.kept[n][0] for n in numbers]
    best = (pareto_front(points) if search.multi
            else [max(range(len(points)), key=lambda i: points[i][0])])
    search.kept = {numbers[i]: search.kept[numbers[i]] for i in best}


def look_up_trial(trial, table: Table, bound: Bound, values: dict[str, Any], multi: bool):
    """The trial's score without training: its network's metric in the table (and its FLOPs,
    for two objectives); its seconds, the lookup's."""
    start = time.perf_counter()
    value = table.look_up(bound)
    reported = table.look_up_report(bound)
    record(trial, train_time=time.perf_counter() - start)
    if reported is not None:  # a study's attribute, where no sampler reads it
        trial.study.set_user_attr(f"{TEST_ACCURACY}{trial.number}", reported)
    print(f"trial {trial.number}: {table.metric} {value:g} from the table, "
          f"{json.dumps({**values, **bound.choices})}")
    return value if not multi else (value, bound.flops)
