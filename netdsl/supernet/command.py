"""`netdsl supernet FILE --dataset D -o super.pt`: a family's supernet trained by the shared
trainer through `fit`, and saved."""
from __future__ import annotations

import io
from pathlib import Path

import torch

from ..errors import EXIT_DIVERGED, EXIT_INTERRUPTED, NetdslError
from ..files import check_writable, write_atomically
from ..fit import (TRAINING_COPIES, applicable_recipe, device_from, evaluates_each_epoch,
                   load_data, refuse_beyond_free, train_model, with_classes)
from ..language import Family
from ..settings import recipe_from_args
from .file import saved_form
from .network import Supernet


def supernet_command(args, family: Family) -> int:
    """Train the family's supernet with the shared trainer and recipe, networks drawn per step
    as --sampling says, and save it."""
    recipe, optional = recipe_from_args(args)
    device = device_from(args.device)
    if args.init_from:
        raise NetdslError("bad option: netdsl supernet trains from its own initial weights; "
                          "--init-from starts a network from a supernet (netdsl run)")
    if not family.choice_points:
        raise NetdslError(f"supernet: {family.name} declares no choice(...) to share weights "
                          "between")
    check_writable(Path(args.output), "-o")
    data = load_data(args.dataset, device, data_dir=args.data_dir, train_limit=args.train_limit,
                     valid_split=args.valid_split, seed=recipe.seed)
    supernet = Supernet(family, with_classes(family, data, dict(args.set)), data.image_shape,
                        seed=recipe.seed, sampling=args.sampling)
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
          + ("one network drawn at random" if args.sampling == "uniform" else
             f"{supernet.networks_per_step()} networks dealt each option fairly")
          + " (the table's valid acc: the default network's, its BatchNorm statistics those "
          "of the networks drawn)")
    result = train_model(supernet, data, recipe,
                         evaluate_each_epoch=evaluates_each_epoch(args.evaluate, wanted=True))
    if result.status != "finished":
        print(f"netdsl: {result.message}; {args.output} not written")
        return {"diverged": EXIT_DIVERGED, "interrupted": EXIT_INTERRUPTED}[result.status]
    supernet.eval()
    accuracy = supernet.accuracy(supernet.active, data, recipe)
    print(f"{len(supernet.drawn):,} different networks trained; the default network with the "
          f"supernet's weights, BatchNorm recalibrated: valid acc {accuracy:.4f}")
    buffer = io.BytesIO()
    torch.save(saved_form(supernet), buffer)
    write_atomically(Path(args.output), buffer.getvalue())
    print(f"wrote {args.output}")
    return 0
