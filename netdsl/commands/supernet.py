"""`netdsl supernet FILE --dataset D -o super.pt`: a family's supernet trained by the shared
trainer through `fit`, and saved; with `--method darts|gdas|beta-darts|drnas`, its choices
searched by gradient instead (runtime's bilevel loop)."""
from __future__ import annotations

import io
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import EXIT_OF_STATUS, NetdslError
from ..files import write_atomically
from ..train import (TRAINING_COPIES, Training, applicable_recipe, evaluates_each_epoch, ready,
                     refuse_beyond_free, train_model, with_classes)
from ..bench.table import table_of
from ..language import Family
from ..language.choices import MIXED_KINDS
from ..supernet.file import saved_form
from ..supernet.network import Supernet
from .flags import why_stopped

if TYPE_CHECKING:
    import netdsl_runtime as runtime


def supernet_command(family: Family, training: Training, output: str,
                     sampling: str = "uniform") -> int:
    """Train the family's supernet as `training` asks, networks drawn per step as `sampling`
    says (uniform, fair), and save it to `output`."""
    recipe, optional = training.recipe, training.optional
    if training.init_from:
        raise NetdslError("bad option: netdsl supernet trains from its own initial weights; "
                          "--init-from starts a network from a supernet (netdsl run)")
    if not family.choice_points:
        raise NetdslError(f"supernet: {family.name} declares no choice(...) to share weights "
                          "between")
    if training.data is None:
        raise NetdslError("bad option: netdsl supernet trains on images: give --dataset")
    prepared = ready(family, training, outputs=[("-o", output)], fit_recipe=False)
    device, data = prepared.device, prepared.load(training.data)
    supernet = Supernet(family, with_classes(family, data, training.bindings), data.image_shape,
                        seed=recipe.seed, sampling=sampling)
    if 2 * supernet.networks_per_step() > recipe.batch_size:  # BatchNorm needs 2 images
        raise NetdslError(f"supernet --sampling fair: each step trains "
                          f"{supernet.networks_per_step()} networks on at least 2 images "
                          f"each; --batch-size {recipe.batch_size} is too small")
    refuse_beyond_free(TRAINING_COPIES * supernet.value_count(), device,
                       "supernet: its layers need", "bind smaller values (--set)")
    supernet.allocate(recipe.seed)
    recipe = applicable_recipe(supernet, recipe, optional, print)
    print(f"supernet of {family.name}: {len(supernet.layers)} layers, "
          f"{sum(p.numel() for p in supernet.parameters()):,} weights; each step trains "
          + ("one network drawn at random" if sampling == "uniform" else
             f"{supernet.networks_per_step()} networks dealt each option fairly")
          + " (the table's valid acc: the default network's, its BatchNorm statistics those "
          "of the networks drawn)")
    result = train_model(supernet, data, recipe,
                         evaluate_each_epoch=evaluates_each_epoch(training.evaluate, wanted=True))
    if result.status != "finished":
        print(f"netdsl: {why_stopped(result.status, result.message)}; {output} not written")
        return EXIT_OF_STATUS[result.status]
    supernet.eval()
    accuracy = supernet.accuracy(supernet.active, data, recipe)
    print(f"{len(supernet.drawn):,} different networks trained; the default network with the "
          f"supernet's weights, BatchNorm recalibrated: valid acc {accuracy:.4f}")
    buffer = io.BytesIO()
    torch.save(saved_form(supernet), buffer)
    write_atomically(Path(output), buffer.getvalue())
    print(f"wrote {output}")
    return 0


def differentiable_command(family: Family, training: Training, method: str,
                           steps: "runtime.ArchitectureSteps", arch_split: float,
                           record: str | None = None, table: str | None = None,
                           metric: str | None = None) -> int:
    """Search `family`'s op, item and inputs choices by gradient with `method` (darts, gdas,
    beta-darts, drnas; see supernet.differentiable): weights train on the training images less
    the `arch_split` fraction that the architecture trains on. Prints the network found as --set
    values and as text, and its value in `table`'s column `metric`; `record` gets the JSON."""
    import netdsl_runtime as runtime

    from ..supernet.differentiable import MixedSupernet

    if training.data is None:
        raise NetdslError(f"bad option: --method {method} trains on images: give --dataset")
    if training.init_from:
        raise NetdslError("bad option: a differentiable search starts from its own initial "
                          "weights; --init-from starts a network from a supernet (netdsl run)")
    if training.data.valid_split:
        raise NetdslError(f"bad option: --method {method} holds out --arch-split of the "
                          "training images for the architecture; --valid-split is not taken")
    numbers = [point for point in family.space(training.bindings).points
               if point.kind not in MIXED_KINDS and point.name not in training.bindings]
    if numbers:
        point = numbers[0]
        raise NetdslError(f"--method {method}: choice '{point.name}' offers numbers "
                          f"({point.describe_options()}), which no mixture of outputs "
                          f"searches; fix it, e.g. --set {point.name}={point.default}")
    truth = table_of(table, metric, family, training.bindings)
    prepared = ready(family, training, outputs=[("--json", record)], fit_recipe=False)
    wanted = replace(training.data, held_out=arch_split)
    data = prepared.load(wanted)
    values = with_classes(family, data, training.bindings)
    model = MixedSupernet(family, values, data.image_shape, method, seed=training.recipe.seed)
    architecture = model.architecture[0].to(prepared.device)
    refuse_beyond_free(TRAINING_COPIES * sum(p.numel() for p in model.parameters()),
                       prepared.device, f"--method {method}: the network of every option needs",
                       "bind smaller values (--set)")
    recipe = applicable_recipe(model, training.recipe, training.optional, print)
    if recipe.precision == "auto" and prepared.device.type == "cpu":
        recipe = replace(recipe, precision="fp32")
        print("fp32: bf16 autocast broke supernets' training on the CPU (docs/ranking.md); "
              "--precision bf16 to use it")
    print(f"{method} over {family.name}: {len(model.points)} choice points, "
          f"{sum(p.numel() for p in model.parameters()):,} weights in "
          f"{len(model.network.paths):,} nodes")
    searched = runtime.search(model, architecture, data, recipe, steps)
    if not searched.epochs:
        print(f"netdsl: {why_stopped(searched.status, searched.message)}; nothing found")
        return EXIT_OF_STATUS[searched.status]
    found = architecture.found()
    bound = family.bind({**values, **found}, input_shape=data.image_shape)
    value = None if truth is None else truth.look_up(bound)
    print(f"found after {len(searched.epochs)} epochs ({searched.seconds:.1f} s of steps): "
          + " ".join(f"--set {name}={option}" for name, option in found.items()))
    print(bound.text.rstrip())
    if truth is not None:
        print(f"{truth.metric} of {truth.path}: {value:g}")
    if record:
        write_atomically(Path(record), (json.dumps(_record(
            family, method, searched, model, found, bound, truth, value), indent=1)
            + "\n").encode())
        print(f"wrote {record}")
    if searched.status != "finished":
        print(f"netdsl: {why_stopped(searched.status, searched.message)}; the network found is "
              "its last epoch's")
    return EXIT_OF_STATUS[searched.status]


def _record(family: Family, method: str, searched, model, found: dict, bound,
            truth, value: float | None) -> dict:
    """The JSON of a differentiable search: its probabilities per epoch (`alphas`, each point
    -> one per option in `points`' order), the network `found`, and its `table` value."""
    return {"file": family.name, "method": method, "status": searched.status,
            "seconds": searched.seconds,
            "points": {point.name: [str(option) for option in point.values()]
                       for point in model.points},
            "epochs": [asdict(epoch) for epoch in searched.epochs],
            "alphas": searched.probabilities, "found": found,
            "set": [f"{name}={option}" for name, option in found.items()],
            "text": bound.text,
            **({} if truth is None else {"table": {"path": truth.path, "metric": truth.metric,
                                                   "value": value}})}
