"""Repeats: a trial whose network and recipe another trial trained, is training or failed on
takes that result, or is drawn again (spending no budget); a sampler that keeps repeating is
given an untried network; a space whose every point is tried ends the search."""
from __future__ import annotations

import itertools
import math
import time
from typing import TYPE_CHECKING

from ..errors import NetdslError
from ..train import bind_to_data
from .record import Record, attrs, record
from .storage import TrialFailed, tried
from .values import LISTED_NETWORKS

if TYPE_CHECKING:
    from .state import Search


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


def _queue_untried(search: Search, seed: int) -> bool:
    """Queue a network no trial has tried, drawn at random (seeded by `seed`), as the next
    trial's values; False where the space's networks cannot be listed (`Search.listing`) or
    none untried was found."""
    if search.listing is None:
        return False
    import random

    tried = fingerprints(search)
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
            search.study.enqueue_trial(values, user_attrs=attrs(untried_draw=True))
            return True
    return False


def earlier_result(trial, search: Search, key: str):
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
        record(trial, **{attr: Record(earlier).get(attr)})
    record(trial, same_as=earlier.number)
    print(f"trial {trial.number}: same network and recipe as trial {earlier.number}")
    if earlier.state == TrialState.FAIL:
        raise NetdslError(f"same network and recipe as trial {earlier.number}, which "
                          f"failed: {Record(earlier).error}")
    return earlier.values[0] if not search.multi else tuple(earlier.values)


def _first_twin(search: Search, trial, key: str, any_running: bool = False):
    """The first other trial with the same network and recipe that trained, failed on its own,
    or is training (numbered before this one, unless `any_running`); None if there is none."""
    from optuna.trial import TrialState

    twins = [t for t in search.study.get_trials(deepcopy=False)
             if Record(t).fingerprint == key and t.number != trial.number
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
        twin = _first_twin(search, trial, Record(twin).fingerprint)
    return twin


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
    record(trial, same_as=twin.number, redrawn=True)
    print(f"trial {trial.number}: same network and recipe as trial {twin.number}; "
          "drawn again")
    if twin.state == TrialState.COMPLETE:  # its result, which the sampler learns from
        return twin.values[0] if not search.multi else tuple(twin.values)
    message = (f"not trained: the same network and recipe as trial {twin.number}, which "
               f"{'is training' if twin.state == TrialState.RUNNING else 'failed'}; "
               "drawn again")
    record(trial, error=message)
    raise TrialFailed(message)


def _holds_network(trial) -> bool:
    """Whether `trial` trained its network, failed on its own or is training it (not a
    repeat drawn again, not interrupted)."""
    from optuna.trial import TrialState

    stored = Record(trial)
    return not stored.redrawn and (
        trial.state in (TrialState.COMPLETE, TrialState.RUNNING)
        or trial.state == TrialState.FAIL and stored.error is not None)


def fingerprints(search: Search) -> set[str]:
    """The network and recipe of every trial that holds one (`_holds_network`)."""
    return {Record(t).fingerprint for t in search.study.get_trials(deepcopy=False)
            if _holds_network(t)}


def tried_all(search: Search) -> bool:
    """Whether every point of a finite space has been tried (trained, failed, or training)."""
    return search.size is not None and tried(search.study, search.setting) >= search.size
