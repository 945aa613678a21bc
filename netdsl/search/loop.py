"""`netdsl search`: sample a space, bind and fit each point, store every trial with Optuna.

The loop is Optuna's `study.optimize` over `objective` (objective.py), which binds one trial's
values, skips a network and recipe already trained (twins.py), fits, and records what
happened; here the search is set up (every check before any data moves), run to its budget,
and closed with its lines.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, ArgumentError, NetdslError
from ..train import (Training, check_batch, evaluates_each_epoch, read_supernet, ready,
                     with_classes)
from ..language import DEFAULT_INPUT_SHAPE, Family
from ..rank.scores import BATCH_SIZE as SCORING_BATCH, scoring_batch
from ..train.settings import is_recipe_key
from .interrupts import Interrupts, held
from .objective import objective
from .record import Record
from .options import (SearchOptions, check_options, make_pruner, make_sampler,
                      network_feature)
from .space import keys, load_space
from .state import Search
from .storage import (TrialFailed, counted, open_storage, retry_interrupted, settle,
                      spends_budget)
from .study import TEST_ACCURACY, best_trials, print_best
from ..bench.table import check_resumed, no_images, remember, table_of
from .twins import tried_all
from .values import check_space, check_space_fits, setting_of, size_of, space_or_none, listing_of


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
    prefilter = check_options(options, training, family, space)
    table = _table(options, training, family, base)
    recipe, optional = training.recipe, training.optional
    # At the defaults (each trial's recipe is its own). A table search trains nothing: without
    # images it needs no torch, which was 560 of the 700 MB a lookup search peaked at.
    prepared = ready(family, training, fit_recipe=table is None)

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
    chosen = space_or_none(family, base)
    if chosen is not None:
        grid_values = check_space(options.tuner, space, chosen, family, base,
                                   DEFAULT_INPUT_SHAPE, stored)
    with interrupts.at_once():
        data = (prepared.load(training.data) if training.data
                else no_images(family, prepared.device))
    values = with_classes(family, data, base)
    if chosen is None or (values, data.image_shape) != (base, DEFAULT_INPUT_SHAPE):
        # Every option of the text's choices checked against the data's images, once.
        chosen = family.space(values, input_shape=data.image_shape)
        grid_values = check_space(options.tuner, space, chosen, family, values,
                                   data.image_shape, stored)
    if table is None and not any(is_recipe_key(key) for key in keys(space)):
        check_batch(recipe, data)  # else each trial checks the batch it draws
    interrupts.check()

    # one seeded batch of training images, for a prefilter's scores and the predictor's feature
    batch = (scoring_batch(data, SCORING_BATCH, recipe.seed)
             if (prefilter or options.feature != "flops") and training.data else None)
    sampler = make_sampler(options, recipe.seed, count_before, grid_values, prefilter is not None,
                           network_feature(options.feature, family, data, values, batch,
                                           recipe.seed))
    study = _open_study(options, family, name, storage, sampler, recipe.epochs, table)
    supernet = None
    if options.supernet:
        supernet = read_supernet(options.supernet, family, with_classes(family, data, base),
                                 data.image_shape).to(prepared.device)
    search = Search(family=family, space=space, grid=grid_values, base=base, recipe=recipe,
                    optional=optional, data=data, initial=prepared.initial,
                    objectives=options.objectives, study=study, budget=options.trials,
                    each_epoch=evaluates_each_epoch(training.evaluate,
                                                    wanted=options.pruner != "none"),
                    prefilter=prefilter, batch=batch,
                    supernet=supernet, table=table, size=size_of(space, chosen, base),
                    listing=listing_of(space, chosen, base, grid_values is not None),
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
    if options.table is None and training.data is None and options.metric is None \
            and options.report is None:
        raise ArgumentError(lambda given: f"bad option: {given('dataset')} is needed to train "
                            f"the networks (or {given('table')}, to look them up)")
    if options.table is not None:
        _refuse_training_options(options, training)
    return table_of(options.table, options.metric, family, fixed, options.report)


def _refuse_training_options(options: SearchOptions, training: Training) -> None:
    """`--table` looks networks up: refuse what only a training, or a ranking by a
    supernet, would read (the seed stays: it draws the trials)."""
    from ..rank.aggregate import base_scores
    from ..rank.scores import DATA_FREE
    from .prefilter import parse_prefilter

    if options.training_flags:  # flags, as the command names them
        raise ArgumentError(lambda given: (
            f"bad option: {given('table')} looks each network's {options.metric} up instead "
            f"of training it: it takes no {options.training_flags[0]}"))
    if options.prefilter and training.data is None and not all(
            part in DATA_FREE for part in base_scores([parse_prefilter(options.prefilter)[0]])):
        raise ArgumentError(lambda given: (
            f"bad option: {given('prefilter')} scores images: give {given('dataset')} with "
            f"{given('table')} (or a score read off the network: {', '.join(DATA_FREE)})"))


def _stored_search(options: SearchOptions, name: str, storage, table):
    """The search stored as `name` that this one goes on with, checked to go on with the
    objectives it began with (a table's column, see `check_resumed`; --objectives); None for
    a new search, which --resume refuses."""
    import optuna

    existing = optuna.get_all_study_names(storage)  # summaries would read every trial
    if options.resume and name not in existing:
        raise ArgumentError(lambda given: f"{given('resume')}: no search named '{name}' in "
                            f"{options.storage} (searches: {', '.join(existing) or 'none'})")
    if name not in existing:
        return None
    stored = optuna.load_study(study_name=name, storage=storage)
    check_resumed(stored, table)
    began = stored.user_attrs.get("objectives", "accuracy")
    if began != str(options.objectives) or len(stored.directions) != len(began.split(",")):
        count = len(stored.directions)
        raise ArgumentError(lambda given: (
            f"search '{name}' began with {given('objectives', began)}; it cannot go on with "
            f"{given('objectives', str(options.objectives))} (its trials hold {count} "
            f"value{'s' * (count > 1)} each): give {given('objectives', began)}, or another "
            f"{given('name')} for a new search"))
    return stored


def _open_study(options: SearchOptions, family: Family, name: str, storage, sampler,
                epochs: float, table):
    """The search's Optuna study, new or stored: with `sampler`, the --pruner's pruner for
    `epochs`, a direction per objective, and the text, objectives and table's metric stored
    for the commands that read it later. A trial interrupted (Ctrl-C, or its worker killed
    and seen stale) is queued to run again, once; one still running whose worker died is
    marked failed."""
    import optuna

    directions = options.objectives.directions
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler,
                                pruner=make_pruner(options.pruner, epochs),
                                directions=directions, load_if_exists=True)
    study.set_user_attr("dsl", family.text)
    study.set_user_attr("objectives", str(options.objectives))
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
        if counted(study) >= search.budget or tried_all(search):
            study.stop()

    start = time.perf_counter()
    try:
        # No n_trials: repeated networks drawn again spend no budget; stop_at_budget ends it.
        if not tried_all(search):
            search.study.optimize(lambda trial: objective(trial, search), timeout=timeout,
                                  catch=(TrialFailed,), callbacks=[stop_at_budget])
        test_seconds = _report_test(search)
        failed = _print_end(search, name, time.perf_counter() - start, test_seconds)
        search.interrupts.check()  # pressed as the search ended: it says so all the same
    except KeyboardInterrupt:
        print(f"netdsl: interrupted; run the same command again to continue '{name}'",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else 0


def _refuse_unspent(study, trial) -> None:
    """The loop's guard: a trial of this process that spent no budget must be a repeat drawn
    again (bounded: MAX_REDRAWS in a row) or one turned away at a full budget (which stops
    the search). Any other, one Optuna failed on its own, would be drawn again and again
    without end (a result of two values for one objective did: thousands of trials): the
    search stops, and goes on with it tried again when the command runs again."""
    stored = Record(trial)
    if spends_budget(trial) or stored.redrawn or stored.over_budget:
        return
    raise NetdslError(f"trial {trial.number} failed inside Optuna without an error of its "
                      "own; the search stopped there")


def _failed_all(study) -> int:
    """How many trials the search has spent, when every one of them failed; else 0."""
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False) if spends_budget(t)]
    return len(states) if all(state == TrialState.FAIL for state in states) else 0


def _print_end(search: Search, name: str, elapsed: float, test_seconds: float) -> int:
    """The search's closing lines: trials done, the best, what the accuracy was selected on,
    where this process's `elapsed` seconds went. Returns how many trials failed where every
    one did (else 0)."""
    study = search.study
    print(f"search '{name}': {counted(study)} of {search.budget} trials done")
    if counted(study) < search.budget and tried_all(search):
        print(f"every one of the space's {search.size:,} networks has been tried: nothing "
              "more to search")
    print_best(study)
    failed = _failed_all(study)
    if failed:
        print(f"all {failed} trials failed: netdsl trials --name {name} shows why each did")
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
    return failed


def where_the_time_went(trials, elapsed: float, test: float) -> str:
    """`elapsed` seconds of a search's `trials` split into training (setting layers from the
    data included), evaluating on the validation images, `test` seconds on the test set,
    scoring a prefilter's candidates, and the rest: sampling, binding, building, compiling,
    deduplicating, storing."""
    seconds = lambda key: sum(Record(t).get(key) or 0.0 for t in trials)
    valid, scoring = seconds("valid_time"), seconds("score_time")
    training = seconds("epochs_time") - valid
    rest = elapsed - training - valid - test - scoring
    return (f"training {training:.2f} s, validation {valid:.2f} s, test {test:.2f} s, "
            + (f"scoring candidates {scoring:.2f} s, " if scoring else "")
            + f"the rest {rest:.2f} s ({rest / len(trials):.3f} s per trial: sampling, binding, "
            "building, storing)")


def _report_test(search: Search) -> float:
    """The test accuracy of each network the search chose (its best trial, or Pareto front)
    that this process trained, stored with the search (`study.test_accuracy` reads it): with a
    validation split, the one evaluation on the test set. Returns its seconds."""
    seconds = 0.0
    for trial in best_trials(search.study):
        trained = Record(trial).get("same_as", trial.number)
        if trained in search.kept:
            fitted = search.kept[trained][1]
            search.study.set_user_attr(f"{TEST_ACCURACY}{trained}",
                                       fitted.measure_test(search.data))
            seconds += fitted.test_seconds
    return seconds


def _peak_memory_mb(device) -> float:
    """Peak resident memory of this process (CPU, or no device: a table search's) or peak
    allocated device memory (CUDA)."""
    import resource

    if device is not None and device.type == "cuda":
        import torch

        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
