"""What netdsl stores with each trial (Optuna's user attributes), every key named once here: a
search writes them through `record` and `attrs`, which take only these names, and reads them
as `Record(trial).key` (None where the trial has none), so a misspelt key fails where it is
written or read instead of reading as None."""
from __future__ import annotations

from typing import Any

KEYS = {
    "setting": "setting_of(...): which run of a search drew the trial",
    "values": "the values drawn, in NNI's form, the text's choices among them",
    "dsl": "the bound network's DSL text",
    "flags": "the trainer flags that give its recipe back",
    "fingerprint": "its network and recipe, hashed (a table search's: the network alone)",
    "flops": "its network's FLOPs per image",
    "train_time": "seconds training (a lookup's, for a table search)",
    "epochs_time": "seconds of its epochs, evaluation included",
    "valid_time": "seconds evaluating on the validation images",
    "score_time": "seconds scoring a prefilter's candidates or the predictor's features",
    "curve": "each epoch's validation accuracy",
    "prefilter": "the prefilter's candidates, their scores and the one chosen",
    "supernet": "true: ranked with a supernet's weights, not trained",
    "same_as": "the trial whose network and recipe it repeats",
    "redrawn": "true: a repeat drawn again, spending no budget",
    "retry_of": "the interrupted trial whose values it tries again",
    "untried_draw": "true: an untried network queued for a sampler that kept repeating",
    "over_budget": "true: turned away, the budget spent by other workers",
    "error": "why it failed (a failure without one was interrupted)",
    "traceback": "an unexpected exception's traceback",
}


def _checked(key: str) -> str:
    if key not in KEYS:
        raise AttributeError(f"no trial attribute '{key}' (netdsl/search/record.py lists them)")
    return key


def record(trial, **values: Any) -> None:
    """Store `values` with `trial`, each under its key."""
    for key, value in values.items():
        trial.set_user_attr(_checked(key), value)


def attrs(**values: Any) -> dict[str, Any]:
    """`values` as the user attributes of a trial to queue (`study.enqueue_trial`)."""
    return {_checked(key): value for key, value in values.items()}


class Record:
    """A trial's stored attributes by key: `Record(trial).fingerprint`."""
    __slots__ = ("_attrs",)

    def __init__(self, trial) -> None:
        self._attrs = trial.user_attrs

    def __getattr__(self, key: str) -> Any:
        return self._attrs.get(_checked(key))

    def get(self, key: str, default: Any = None) -> Any:
        """The attribute `key` (named at run time), `default` where the trial has none."""
        return self._attrs.get(_checked(key), default)
