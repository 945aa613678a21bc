"""`netdsl run`: load the data onto the device once, fit the family's network one or more times,
print the seed's table, and write the evidence as JSON and the weights."""
from __future__ import annotations

import io
import statistics
import sys
from dataclasses import replace
from typing import Any

from netdsl_runtime.recipe import SEEDS

from .. import __version__
from ..errors import EXIT_OF_STATUS, NetdslError
from ..files import write_each
from ..train import Training, bind_to_data, evaluates_each_epoch, fit, ready
from ..language import Family
from ..language.records import to_json
from .flags import why_stopped


def run_command(family: Family, training: Training, runs: int = 1,
                json_file: str | None = None, weights_file: str | None = None,
                quiet: bool = False) -> int:
    """Train `family`'s network `runs` times (seeds seed, seed+1, ...) as `training` asks,
    printing the seed's table (one line a run when `quiet`); write the record to `json_file`
    and the last run's weights to `weights_file`. The exit code: 0, or diverged or
    interrupted."""
    import netdsl_runtime as runtime

    assert training.data is not None  # run's --dataset is required
    # -- the network and the recipe, checked before any data moves ----------------------------
    if runs < 1:
        raise NetdslError(f"bad option: runs must be at least 1, got {runs}")
    if training.recipe.seed + runs > SEEDS:
        raise NetdslError(f"bad option: the runs' seeds {training.recipe.seed} to "
                          f"{training.recipe.seed + runs - 1} must stay below 2**32")
    prepared = ready(family, training, outputs=[("--json", json_file),
                                                ("--save-weights", weights_file)])
    recipe, optional, initial, device = (prepared.recipe, training.optional, prepared.initial,
                                         prepared.device)
    data = prepared.load(training.data)
    bound = bind_to_data(family, data, training.bindings)

    # -- runs -----------------------------------------------------------------------------------
    report: dict[str, Any] = {
        "netdsl_version": __version__, "dsl": bound.text, "source": family.name,
        "parameters": bound.parameters,
        "hyperparameters": recipe.to_dict() | {"runs": runs,
                                               "train_limit": training.data.train_limit},
        "dataset": {"name": data.name, "train": data.train_size,
                    **({"valid": len(data.eval_y), "valid_seed": recipe.seed,
                        "test": len(data.report.eval_y)} if data.report is not None
                       else {"test": len(data.eval_y)}),
                    "classes": len(data.classes), "image_shape": list(data.image_shape)},
        "environment": runtime.environment(device), "runs": []}
    status = "finished"
    for index in range(runs):
        run_recipe = replace(recipe, seed=recipe.seed + index)
        if runs > 1:
            print(f"run {index + 1} of {runs}, seed {run_recipe.seed}")
        fitted = fit(bound, data, run_recipe, optional=optional, init=initial,
                     log=None if quiet else print,
                     progress=not quiet and sys.stderr.isatty(),
                     evaluate_each_epoch=evaluates_each_epoch(
                         training.evaluate, wanted=not quiet or json_file is not None))
        if quiet:
            accuracy = "none" if fitted.accuracy is None else f"{fitted.accuracy:.4f}"
            test = "" if fitted.test_accuracy is None else f", test acc {fitted.test_accuracy:.4f}"
            print(f"{fitted.status}: valid acc {accuracy}{test}, "
                  f"{fitted.result.core_time:.1f} s")
        report["runs"].append(fitted.to_dict())
        status = fitted.status
        if status != "finished":
            print(f"netdsl: {why_stopped(status, fitted.result.message)}")
            break
    finished = [r for r in report["runs"] if r["status"] == "finished"]
    report["status"] = status
    report["summary"] = _summary(finished)
    if len(finished) > 1:
        s = report["summary"]
        print(f"{len(finished)} runs: valid acc {s['valid_acc_mean']:.4f} "
              f"+- {s['valid_acc_std']:.4f}, "
              f"train time {s['train_time_mean']:.2f} +- {s['train_time_std']:.2f} s")
    _save(report, fitted.model if status == "finished" else None, json_file, weights_file)
    return EXIT_OF_STATUS[status]


def _save(report: dict[str, Any], model, json_file: str | None, weights_file: str | None
          ) -> None:
    """The trained weights (of a finished run: `model`), then the record: each written
    whatever becomes of the other, so that a record that cannot be written never loses a
    finished training's weights."""
    def weights() -> bytes:
        import torch

        buffer = io.BytesIO()
        torch.save(model.path_state_dict(), buffer)
        return buffer.getvalue()

    outputs = []
    if weights_file and model is not None:
        outputs.append((weights_file, weights))
    if json_file:
        outputs.append((json_file, lambda: to_json(report).encode()))
    write_each(outputs)


def _summary(runs: list[dict]) -> dict[str, float]:
    if not runs:
        return {}
    acc = [r["final"]["valid_acc"] for r in runs]
    seconds = [r["final"]["train_time"] for r in runs]
    spread = (lambda v: statistics.stdev(v)) if len(runs) > 1 else (lambda v: 0.0)
    return {"runs": len(runs), "valid_acc_mean": statistics.fmean(acc),
            "valid_acc_std": spread(acc), "train_time_mean": statistics.fmean(seconds),
            "train_time_std": spread(seconds)}
