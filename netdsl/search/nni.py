"""`netdsl trial`: one trial under NNI (its trialCommand). NNI itself is not a dependency: it is
imported when this runs."""
from __future__ import annotations

from ..errors import NetdslError
from ..train import Training, evaluates_each_epoch, ready
from ..language import Family
from .values import fit_point, split_values


def trial_command(family: Family, training: Training) -> int:
    """Take the values from nni.get_next_parameter(), train as `training` asks with them bound,
    report the validation accuracy after every epoch (report_intermediate_result) and at the
    end (report_final_result)."""
    try:
        import nni
    except ImportError:
        raise NetdslError("netdsl trial runs as an NNI trial command and needs `import nni`; "
                          "without NNI, use netdsl search") from None
    values = nni.get_next_parameter() or {}
    base = training.bindings
    split_values(values, family)  # unknown keys fail before any data moves
    prepared = ready(family, training)  # everything that can fail before any data moves
    assert training.data is not None  # the command's --dataset is required
    data = prepared.load(training.data)

    def report(epoch) -> bool:
        nni.report_intermediate_result(epoch.valid_acc)
        return False

    fitted = fit_point(family, data, training.recipe, {**base, **values},
                      optional=training.optional, log=print, should_stop=report,
                      init=prepared.initial,
                      evaluate_each_epoch=evaluates_each_epoch(training.evaluate, wanted=True))
    if fitted.status != "finished":
        raise NetdslError(f"the trial did not finish: {fitted.status}")
    nni.report_final_result(fitted.accuracy)
    return 0
