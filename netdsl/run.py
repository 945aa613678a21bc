"""`netdsl run`: where the language meets the trainer. Parses the network, loads the data onto
the device once, trains one or more runs with `runtime`, prints the seed's table and writes the
evidence as JSON."""
from __future__ import annotations

import argparse
import io
import json
import pickle
import statistics
from pathlib import Path
from typing import Any

from . import __version__
from ._api import parameters, parse
from ._files import write_atomically
from .errors import NetdslError
from .graph import flatten, shapes

EXIT_DIVERGED = 3      # the loss stopped being finite
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


def add_arguments(run: argparse.ArgumentParser) -> None:
    """`netdsl run`'s flags: data, recipe and device, --runs and --json."""
    add_training_arguments(run)
    run.add_argument("--runs", type=int, default=1, metavar="N",
                     help="repeat with seeds seed, seed+1, ...; prints mean and std")
    run.add_argument("--json", metavar="FILE", help="write per-epoch records, final metrics and "
                     "the evidence (DSL text, hyperparameters, versions, device) here")
    run.add_argument("--save-weights", metavar="FILE.pt",
                     help="save the trained weights, keyed by node path (the last run's)")


def add_training_arguments(run: argparse.ArgumentParser) -> None:
    """The flags of every command that trains: data, recipe (the seed's defaults), device."""
    data = run.add_argument_group("data")
    data.add_argument("--dataset", required=True, metavar="NAME|PATH",
                      help="cifar10, cifar100 (downloaded into --data-dir once), or an image "
                      "folder PATH/{train,test}/<class>/*.png|jpg (decoded once, then cached)")
    data.add_argument("--data-dir", metavar="DIR", help="download and cache folder (default: "
                      "$NETDSL_DATA, else ~/.cache/netdsl)")
    data.add_argument("--train-limit", type=int, default=0, metavar="N",
                      help="train on a random N of the training images (default: all)")

    recipe = run.add_argument_group("recipe (defaults: the seed's)")
    recipe.add_argument("--epochs", type=int, default=24, metavar="N",
                        help="passes over the training images (default: 24)")
    recipe.add_argument("--batch-size", type=int, default=512, metavar="N",
                        help="images per step (default: 512)")
    recipe.add_argument("--peak-lr", type=float, default=0.4, metavar="LR",
                        help="learning rate per step at --peak-epoch, for the mean loss of a "
                        "batch; it rises linearly from 0 and falls to 0 at the last epoch, "
                        "updated every step (default: 0.4)")
    recipe.add_argument("--peak-epoch", type=float, default=5, metavar="EPOCH",
                        help="epoch (may be fractional) where the rate peaks (default: 5)")
    recipe.add_argument("--weight-decay", type=float, default=5e-4, metavar="WD",
                        help="L2 coefficient added to every gradient (default: 5e-4)")
    recipe.add_argument("--momentum", type=float, default=0.9, metavar="M",
                        help="Nesterov momentum (default: 0.9)")
    recipe.add_argument("--cutout", type=int, default=8, metavar="PIXELS",
                        help="side of the square zeroed in each training image, pixels; 0 = off "
                        "(default: 8)")
    recipe.add_argument("--label-smoothing", type=float, default=0.0, metavar="EPS",
                        help="cross-entropy label smoothing (default: 0)")
    recipe.add_argument("--lr-scale", action="append", default=[], metavar="PREFIX=FACTOR",
                        help="multiply the learning rate of every parameter under a node path "
                        "prefix, e.g. --lr-scale layer3=2 (repeatable)")
    recipe.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                        help="evaluate an exponential moving average of the weights, updated "
                        "every step with this decay, e.g. 0.99 (default: off)")
    recipe.add_argument("--tta", action="store_true",
                        help="test-time augmentation: mean logits of each image and its mirror")
    recipe.add_argument("--seed", type=int, default=0, metavar="N",
                        help="random seed (default: 0)")

    device = run.add_argument_group("device")
    device.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1")
    device.add_argument("--precision", choices=("auto", "fp16", "bf16", "fp32"), default="auto",
                        help="autocast dtype; auto: fp16 on CUDA, bf16 on the CPU")
    device.add_argument("--compile", action="store_true",
                        help="torch.compile the network; compile time is reported apart")
    run.add_argument("--init-from", metavar="FILE.pt",
                     help="start from saved weights (--save-weights) of this or a wider "
                     "network: copied by node path, the first channels kept where it is wider")


def _scales(items: list[str]) -> dict[str, float]:
    scales = {}
    for item in items:
        prefix, sep, value = item.partition("=")
        try:
            scales[prefix.strip().strip("/")] = float(value)
        except ValueError:
            sep = ""
        if not sep or not prefix.strip():
            raise NetdslError(f"--lr-scale {item}: expected PREFIX=FACTOR, e.g. layer3=2")
    return scales


def recipe_and_device(args: argparse.Namespace):
    """The runtime.Recipe and torch.device the flags ask for; bad values are NetdslErrors."""
    import runtime  # torch and torchvision load here, not for show/draw/check
    import torch

    try:
        recipe = runtime.Recipe(
            epochs=args.epochs, batch_size=args.batch_size, peak_lr=args.peak_lr,
            peak_epoch=args.peak_epoch, weight_decay=args.weight_decay, momentum=args.momentum,
            cutout=args.cutout, label_smoothing=args.label_smoothing,
            lr_scale=_scales(args.lr_scale), ema=args.ema, tta=args.tta, seed=args.seed,
            precision=args.precision, compile=args.compile)
        recipe.check()
        device = runtime.default_device() if args.device == "auto" else torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: this torch sees no CUDA device; use --device cpu")
    except (ValueError, RuntimeError) as e:
        raise NetdslError(f"bad option: {e}") from None
    return recipe, device


def load_data(args: argparse.Namespace, text: str, source: str, bindings: dict[str, Any], device):
    """Load the dataset once and put it on `device`. A family declaring `classes` gets the
    dataset's class count in `bindings` unless bound already; a head that does not fit the
    dataset is an error here, before any training. Returns the runtime.DeviceData and the
    network's graph for its images."""
    import runtime

    try:
        images = runtime.load_images(args.dataset, args.data_dir)
    except runtime.DataError as e:
        raise NetdslError(str(e)) from None
    if args.train_limit:
        images = images.subset(args.train_limit, seed=args.seed)
    if "classes" in parameters(text, source=source) and "classes" not in bindings:
        bindings["classes"] = len(images.classes)  # the family's head follows the dataset
    _, height, width, channels = images.test_x.shape
    image_shape = (channels, height, width)
    graph = flatten(parse(text, bindings, source=source, input_shape=image_shape))
    outputs = shapes(graph, image_shape)[list(graph)[-1]]
    if outputs != (len(images.classes),):
        raise NetdslError(f"the network gives {'x'.join(map(str, outputs))} outputs per image but "
                          f"{images.name} has {len(images.classes)} classes; give the head "
                          f"{len(images.classes)} classes")
    data = runtime.DeviceData(images, device)
    print(f"{images.name}: {len(images.train_y):,} training and {len(images.test_y):,} test "
          f"images, {len(images.classes)} classes, on {device}")
    return data, graph


def load_weights(path: str | None):
    """The path-keyed weights saved by --save-weights, or None."""
    if path is None:
        return None
    import torch

    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NetdslError(f"cannot load weights from {path}: {reason}") from None
    if not isinstance(weights, dict):
        raise NetdslError(f"{path} holds no weights saved by --save-weights")
    return weights


def run_command(args: argparse.Namespace, text: str, source: str) -> int:
    import runtime
    import torch

    # -- the network and the recipe, checked before any data moves ----------------------------
    bindings = dict(args.set)
    recipe, device = recipe_and_device(args)
    if args.runs < 1:
        raise NetdslError(f"bad option: runs must be at least 1, got {args.runs}")
    parse(text, bindings, source=source)  # syntax and shapes, before loading any data
    initial = load_weights(args.init_from)
    data, graph = load_data(args, text, source, bindings, device)

    # -- runs ---------------------------------------------------------------------------------------
    from ._compile import Network, transfer_weights

    report: dict[str, Any] = {
        "netdsl_version": __version__, "dsl": text, "source": source, "parameters": bindings,
        "hyperparameters": vars(recipe) | {"runs": args.runs, "train_limit": args.train_limit},
        "dataset": {"name": data.name, "train": data.train_size, "test": len(data.test_y),
                    "classes": len(data.classes)},
        "environment": runtime.environment(device), "runs": []}
    status = "finished"
    for index in range(args.runs):
        recipe.seed = args.seed + index
        if args.runs > 1:
            print(f"run {index + 1} of {args.runs}, seed {recipe.seed}")
        torch.manual_seed(recipe.seed)  # the weights' initialisation follows the seed too
        model = Network(graph)
        if initial is not None:
            reused = transfer_weights(initial, model)
            print(f"weights from {args.init_from}: " + ", ".join(
                f"{sum(v == kind for v in reused.values())} {kind}"
                for kind in ("copied", "sliced", "kept")))
        try:
            result = runtime.train(model, data, recipe)
        except (runtime.OutOfMemory, ValueError) as e:
            raise NetdslError(str(e)) from None
        report["runs"].append({"seed": recipe.seed} | result.to_dict())
        status = result.status
        if status != "finished":
            print(f"netdsl: {result.message}")
            break
    finished = [r for r in report["runs"] if r["status"] == "finished"]
    report["status"] = status
    report["summary"] = _summary(finished)
    if len(finished) > 1:
        s = report["summary"]
        print(f"{len(finished)} runs: valid acc {s['valid_acc_mean']:.4f} +- {s['valid_acc_std']:.4f}, "
              f"train time {s['train_time_mean']:.2f} +- {s['train_time_std']:.2f} s")
    if args.json:
        _write_json(Path(args.json), report)
    if args.save_weights and status == "finished":
        buffer = io.BytesIO()
        torch.save(model.path_state_dict(), buffer)
        write_atomically(Path(args.save_weights), buffer.getvalue())
        print(f"wrote {args.save_weights}")
    return {"finished": 0, "diverged": EXIT_DIVERGED, "interrupted": EXIT_INTERRUPTED}[status]


def _summary(runs: list[dict]) -> dict[str, float]:
    if not runs:
        return {}
    acc = [r["final"]["valid_acc"] for r in runs]
    seconds = [r["final"]["train_time"] for r in runs]
    spread = (lambda v: statistics.stdev(v)) if len(runs) > 1 else (lambda v: 0.0)
    return {"runs": len(runs), "valid_acc_mean": statistics.fmean(acc),
            "valid_acc_std": spread(acc), "train_time_mean": statistics.fmean(seconds),
            "train_time_std": spread(seconds)}


def _write_json(path: Path, report: dict) -> None:
    write_atomically(path, json.dumps(report, indent=1).encode())
    print(f"wrote {path}")
