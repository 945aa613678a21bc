"""`netdsl supernet FILE --dataset D -o super.pt`: a family's supernet trained by the shared
trainer through `fit`, and saved."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import EXIT_OF_STATUS, NetdslError
from ..files import write_atomically
from ..train import (TRAINING_COPIES, Training, applicable_recipe, evaluates_each_epoch, ready,
                     refuse_beyond_free, train_model, with_classes)
from ..language import Family
from ..supernet.file import saved_form
from ..supernet.network import Supernet


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
        print(f"netdsl: {result.message}; {output} not written")
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
