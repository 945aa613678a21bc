"""The shared trainer: the seed's fast ResNet recipe, airbench's and any between them, for any
nn.Module, as one loop."""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .data import DeviceData
from .machine import AUTOCAST_DTYPES, choose_precision, now, tune_for
from .muon import Muon
from .recipe import Recipe

PROGRESS_FORMAT = "{desc}: {n_fmt}/{total_fmt} images {percentage:3.0f}% {rate_fmt}{postfix}"
PROGRESS_SECONDS = 1.0  # between updates of the progress line's loss and time left
COLUMNS = ("epoch", "lr", "train time", "train loss", "train acc", "valid time", "valid loss",
           "valid acc", "epoch time")


@dataclass
class Epoch:
    epoch: int
    lr: float            # at the end of the epoch
    train_time: float    # seconds
    train_loss: float
    train_acc: float
    valid_time: float    # seconds; 0 when the epoch was not evaluated
    valid_loss: float | None  # None: not evaluated (see `train`'s evaluate_each_epoch)
    valid_acc: float | None
    epoch_time: float    # train_time + valid_time


@dataclass
class Evaluation:
    """The final evaluation with test-time augmentation (`level`: Recipe.tta)."""
    level: int
    valid_loss: float
    valid_acc: float
    seconds: float


@dataclass
class Result:
    """What a run did. `status`: finished, stopped (by `should_stop`), diverged (loss not
    finite) or interrupted."""

    status: str
    epochs: list[Epoch]
    compile_seconds: float | None = None
    message: str = ""
    precision: str = ""          # the autocast precision used: fp16, bf16 or fp32
    precision_reason: str = ""   # why: asked for, or what `auto` read off the device
    init_seconds: float = 0.0    # setting layers from the data (whitening) before training
    tta: Evaluation | None = None  # the final evaluation with test-time augmentation

    @property
    def valid_acc(self) -> float | None:
        """The result's accuracy: with test-time augmentation when it ran, else the last
        epoch's."""
        if self.tta is not None:
            return self.tta.valid_acc
        return self.epochs[-1].valid_acc if self.epochs else None

    @property
    def train_time(self) -> float:
        return sum(e.train_time for e in self.epochs)

    @property
    def valid_time(self) -> float:
        """Seconds spent evaluating: after epochs, and the final test-time-augmented
        evaluation."""
        return sum(e.valid_time for e in self.epochs) + (self.tta.seconds if self.tta else 0.0)

    @property
    def core_time(self) -> float:
        """Seconds as airbench counts them: setting layers from the data, the training steps
        and the final test-time-augmented evaluation; the per-epoch evaluations left out."""
        return self.init_seconds + self.train_time + (self.tta.seconds if self.tta else 0.0)

    @property
    def total_time(self) -> float:
        """Every timed second: `core_time` and the per-epoch evaluations."""
        return self.init_seconds + self.train_time + self.valid_time

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message,
                "precision": self.precision, "precision_reason": self.precision_reason,
                "compile_seconds": self.compile_seconds, "init_seconds": self.init_seconds,
                "epochs": [asdict(e) for e in self.epochs],
                "tta": asdict(self.tta) if self.tta else None,
                "final": {"valid_acc": self.valid_acc, "train_time": self.train_time,
                          "valid_time": self.valid_time, "core_time": self.core_time,
                          "total_time": self.total_time}}


class OutOfMemory(Exception):
    """The device ran out of memory; the message names the batch size."""


def table_header() -> str:
    return " ".join(f"{name:>12s}" for name in COLUMNS)


def table_row(e: Epoch) -> str:
    # The seed's table: 12-wide columns, the epoch as an integer, the rest to 4 decimals; a
    # value not measured (an epoch not evaluated) is a dash.
    values = [getattr(e, f.name) for f in fields(Epoch)]
    return " ".join([f"{values[0]:>12d}"] + [f"{'-':>12s}" if v is None else f"{v:12.4f}"
                                             for v in values[1:]])


def parameter_path(model: nn.Module, name: str) -> str:
    """The node path of parameter `name`: `model.path_of(name)` for models that name their
    nodes by path (netdsl's), else the dotted name with `.` as `/`."""
    path_of = getattr(model, "path_of", None)
    return path_of(name) if callable(path_of) else name.replace(".", "/")


def kind_names(module: nn.Module, parameter: str) -> list[str]:
    """The names `kind_lr_scale` knows a parameter by: CLASS.PARAMETER for its module's class
    and every class that derives from (`BatchNorm2d.bias` matches netdsl's BatchNorm)."""
    return [f"{cls.__name__}.{parameter}" for cls in type(module).__mro__
            if issubclass(cls, nn.Module) and cls is not nn.Module]


def _is_under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or below it (`layer3` takes `layer3/...`, not `layer30/...`)."""
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _longest_prefix(path: str, prefixes) -> str | None:
    """The longest of `prefixes` that `path` is under, or None."""
    hits = [p for p in prefixes if _is_under(path, p)]
    return max(hits, key=len) if hits else None


def _named_parameters(model: nn.Module) -> Iterator[tuple[str, list[str], nn.Parameter]]:
    """(node path, kind names, parameter) of every parameter of `model`."""
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            path = parameter_path(model, f"{module_name}.{name}" if module_name else name)
            yield path, kind_names(module, name), param


def unmatched_entries(model: nn.Module, recipe: Recipe) -> dict[str, list[str]]:
    """The entries of the recipe's mappings (lr_scale, kind_lr_scale, train_epochs) that match
    no parameter of `model`, by field; fields whose entries all match are left out."""
    paths, kinds = set(), set()
    for path, kind_list, _ in _named_parameters(model):
        paths.add(path)
        kinds.update(kind_list)
    under = lambda prefix: any(_is_under(path, prefix) for path in paths)
    unmatched = {"lr_scale": [p for p in recipe.lr_scale if not under(p)],
                 "kind_lr_scale": [k for k in recipe.kind_lr_scale if k not in kinds],
                 "train_epochs": [p for p in recipe.train_epochs if not under(p)]}
    return {name: entries for name, entries in unmatched.items() if entries}


def check_fits(model: nn.Module, recipe: Recipe) -> None:
    """Raise ValueError when `recipe` cannot train `model`: Muon without convolution filters to
    take, or an entry of a mapping that matches no parameter (a typing mistake)."""
    if recipe.optimizer == "muon" and not any(
            param.requires_grad and param.ndim == 4 for param in model.parameters()):
        raise ValueError("optimizer muon: the network has no trained convolution filters "
                         "(4-D parameters) for Muon; use --optimizer sgd")
    for name, entries in unmatched_entries(model, recipe).items():
        what = "of kind" if name == "kind_lr_scale" else "under"
        raise ValueError(f"{name}: no parameter {what} '{entries[0]}'")


def _scaled_parameters(model: nn.Module, recipe: Recipe) -> list[tuple[nn.Parameter, float]]:
    """Each parameter with its learning-rate factor: that of the longest `lr_scale` prefix of
    its path times its `kind_lr_scale`."""
    out = []
    for path, kind_list, param in _named_parameters(model):
        prefix = _longest_prefix(path, recipe.lr_scale)
        kinds = [k for k in kind_list if k in recipe.kind_lr_scale]
        scale = recipe.lr_scale[prefix] if prefix else 1.0
        out.append((param, scale * (recipe.kind_lr_scale[kinds[0]] if kinds else 1.0)))
    return out


def _limited_parameters(model: nn.Module, recipe: Recipe) -> list[tuple[nn.Parameter, float]]:
    """The trained parameters `train_epochs` stops, each with the epochs it trains for."""
    out = []
    for path, _, param in _named_parameters(model):
        prefix = _longest_prefix(path, recipe.train_epochs)
        if prefix is not None and param.requires_grad:  # one the network keeps fixed stays
            out.append((param, recipe.train_epochs[prefix]))
    return out


def _optimizers(model: nn.Module, recipe: Recipe) -> list[torch.optim.Optimizer]:
    """The optimizers of a run: SGD, and Muon for the convolution filters with `--optimizer
    muon`. Each group's `peak` is its learning rate per step at the peak of the schedule (the
    trainer sets `lr` to a fraction of it every step). SGD's is for the mean loss of a batch;
    with `decoupled`, peak_lr and weight_decay are airbench's: per 1024 examples of summed loss
    over 1024 * (1 + 1/(1 - momentum)), and a group at k times the rate gets 1/k of the L2
    coefficient, so that its decay per step does not change with the rate."""
    scaled = [(p, scale) for p, scale in _scaled_parameters(model, recipe) if p.requires_grad]
    muon = recipe.optimizer == "muon"
    filters = [(p, scale) for p, scale in scaled if muon and p.ndim == 4]
    peak_lr, decay = recipe.peak_lr, lambda scale: recipe.weight_decay
    if recipe.decoupled:
        peak_lr = recipe.peak_lr * recipe.batch_size / (1024 * (1 + 1 / (1 - recipe.momentum)))
        decay = lambda scale: (recipe.weight_decay / (recipe.peak_lr * scale)
                               if recipe.peak_lr * scale else 0.0)

    def groups(pairs: list[tuple[nn.Parameter, float]], peak: float, sgd: bool) -> list[dict]:
        by_scale: dict[float, list[nn.Parameter]] = {}
        for param, scale in pairs:
            by_scale.setdefault(scale, []).append(param)
        return [{"params": params, "peak": peak * scale, **({"weight_decay": decay(scale)}
                                                             if sgd else {})}
                for scale, params in by_scale.items()]

    in_muon = {id(p) for p, _ in filters}
    rest = [(p, scale) for p, scale in scaled if id(p) not in in_muon]
    optimizers: list[torch.optim.Optimizer] = []
    if rest:
        optimizers.append(torch.optim.SGD(groups(rest, peak_lr, sgd=True), lr=0.0,
                                          momentum=recipe.momentum,
                                          nesterov=recipe.momentum > 0))
    if filters:
        optimizers.append(Muon(groups(filters, recipe.muon_lr, sgd=False), lr=0.0,
                               momentum=recipe.muon_momentum,
                               nesterov=recipe.muon_momentum > 0))
    return optimizers


def predict(model: nn.Module, x: torch.Tensor, tta: int = 0) -> torch.Tensor:
    """fp32 logits of a batch. Test-time augmentation `tta` 1: the mean of the image's and its
    mirror image's; 2: half that, and a quarter each of the same for the image shifted by one
    pixel up-left and down-right (edges reflected), 6 views in all (airbench's level 2)."""
    logits = model(x).float()
    if tta >= 1:
        logits = (logits + model(x.flip(3)).float()) / 2
    if tta >= 2:
        height, width = x.shape[2:]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        up_left, down_right = padded[:, :, :height, :width], padded[:, :, 2:, 2:]
        shifted = (predict(model, up_left, 1) + predict(model, down_right, 1)) / 2
        logits = (logits + shifted) / 2
    return logits


def validate(model: nn.Module, data: DeviceData, recipe: Recipe,
             dtype: torch.dtype | None, tta: int = 0) -> tuple[float, float]:
    """Mean loss and accuracy on the test set, in eval mode, with test-time augmentation level
    `tta` (see `predict`)."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    with torch.no_grad(), torch.autocast(data.device.type, dtype=dtype, enabled=dtype is not None):
        for x, y in data.test_batches(recipe.eval_batch_size):
            logits = predict(model, x, tta)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    n = len(data.test_y)
    return loss_sum.item() / n, correct.item() / n


def train(model: nn.Module, data: DeviceData, recipe: Recipe | None = None,
          log: Callable[[str], None] | None = print,
          should_stop: Callable[[Epoch], bool] | None = None, progress: bool = False,
          evaluate_each_epoch: bool = True) -> Result:
    """Train `model` on `data` (already on its device) with `recipe`, printing the seed's table
    through `log` (None: silent). Returns the per-epoch record; a loss that stops being finite
    ends the run with status "diverged", Ctrl-C (in its setup too) with status "interrupted".
    `should_stop`, asked after each evaluated epoch (the last too), ends the run early with
    status "stopped" when it answers true before the last epoch (a search's pruner; a reporter
    can answer false).
    `progress` shows a live line on stderr during each epoch (for a terminal: it rewrites
    itself). `evaluate_each_epoch` False evaluates only what the result needs: the last epoch,
    or nothing before the final test-time-augmented evaluation when the recipe has one (on a
    small trial evaluating can cost more than training)."""
    recipe = recipe or Recipe()
    recipe.check()
    device, out = data.device, log or (lambda line: None)
    epochs: list[Epoch] = []
    final: Evaluation | None = None
    run: _Run | None = None
    status, message, step = "finished", "", 0
    bar = _Progress(progress)
    try:
        # Every choice made, every check done, before the loop. Setting layers from the data
        # and compiling take seconds: Ctrl-C then interrupts the run as much as in an epoch.
        run = _Run(model, data, recipe)
        for line in [*run.header(), table_header()]:
            out(line)
        for epoch in range(math.ceil(run.total_steps / run.steps_per_epoch)):
            start = now(device)
            train_loss, train_acc, step = run.train_epoch(epoch, step, bar)
            train_time = now(device) - start
            if not math.isfinite(train_loss):
                status = "diverged"
                message = (f"the training loss became {train_loss} in epoch {epoch + 1}; "
                           "try a lower --peak-lr")
                break
            last = step == run.total_steps
            evaluated = evaluate_each_epoch or last and not recipe.tta
            start = now(device)
            valid_loss, valid_acc = (validate(run.average.evaluated, data, recipe, run.dtype)
                                     if evaluated else (None, None))
            valid_time = now(device) - start if evaluated else 0.0
            record = Epoch(epoch + 1, recipe.lr_at(step / run.steps_per_epoch), train_time,
                           train_loss, train_acc, valid_time, valid_loss, valid_acc,
                           train_time + valid_time)
            epochs.append(record)
            out(table_row(record))
            if evaluated and should_stop is not None and should_stop(record) and not last:
                status, message = "stopped", f"stopped early after epoch {epoch + 1}"
                break
        if status == "finished" and recipe.tta:
            final = run.final_evaluation(out)
    except KeyboardInterrupt:
        status = "interrupted"
        message = (f"interrupted after {len(epochs)} epochs" if run is not None
                   else "interrupted while the run was set up, before its first epoch")
    except (torch.OutOfMemoryError, RuntimeError) as e:
        # On the CPU running out of memory is a RuntimeError from the allocator.
        if not isinstance(e, torch.OutOfMemoryError) and "can't allocate memory" not in str(e):
            raise
        raise OutOfMemory(f"out of memory on {device} with batch size {recipe.batch_size}; try "
                          f"--batch-size {max(recipe.batch_size // 2, 1)}") from None
    finally:
        bar.close()
    if run is None:
        return Result(status, epochs, message=message)
    run.average.keep(run.model)
    result = Result(status, epochs, run.compile_seconds, message, run.precision, run.why,
                    run.init_seconds, final)
    if status == "finished":
        out(f"Finished Train/Valid in {result.total_time:.2f} seconds (setting layers from "
            f"the data, training and the final evaluation: {result.core_time:.2f} s)")
    return result


class _Run:
    """Everything a run decides before its first step: the seeded generator, the model on the
    device, the precision, the optimizers and the step, the steps, the flip schedule, which
    parameters train in which epoch, the weight average and lookahead, the layers set from the
    data, the compiled model. A choice that can be made once is made here, not in the loop."""

    def __init__(self, model: nn.Module, data: DeviceData, recipe: Recipe):
        self.data, self.recipe, device = data, recipe, data.device
        check_fits(model, recipe)
        torch.manual_seed(recipe.seed)  # what draws from torch's generator in a step: dropout
        self.generator = torch.Generator(device=device).manual_seed(recipe.seed)
        tune_for(device)
        self.model = model.to(device=device, memory_format=torch.channels_last)
        self.precision, self.why = choose_precision(recipe.precision, device)
        self.dtype = AUTOCAST_DTYPES[self.precision]
        self.steps_per_epoch = data.train_size // recipe.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"batch_size {recipe.batch_size} is larger than the "
                             f"{data.train_size} training images")
        # 9.9 epochs: the tenth pass stops part way (1e-9: 0.3 * 10 steps is 3, not 3.0000000004)
        self.total_steps = math.ceil(self.steps_per_epoch * recipe.epochs - 1e-9)
        height, width = data.image_shape[1:]
        if recipe.cutout > min(height, width):
            raise ValueError(f"cutout {recipe.cutout} is larger than the {height}x{width} images")
        data.padded(recipe.translate)  # a translation too large for the images fails here
        check_outputs(self.model, data)
        _check_trainable(self.model, data)
        self.flips = _flip_schedule(recipe.flip, data.train_size, self.generator)
        self.set_trained = _trained_per_epoch(self.model, recipe)
        self.optimizers = _optimizers(self.model, recipe)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        start = now(device)
        initialise_from_data(self.model, data.train_images(recipe.whiten_images))
        self.init_seconds = now(device) - start
        self.step_model, self.compile_seconds = self.model, None
        if recipe.compile:
            self.step_model = torch.compile(self.model)
            self.compile_seconds = self._warm_up()
        self.average = (_MovingAverage(self.model, recipe.ema) if recipe.ema
                        else _NoAverage(self.step_model))
        self.lookahead = (_Lookahead(self.model, recipe, self.steps_per_epoch, self.total_steps)
                          if recipe.lookahead else _NoLookahead())

    def header(self) -> list[str]:
        """The lines before the table: compiling's time, the precision, the steps, the peak."""
        recipe = self.recipe
        peak = (f"{recipe.peak:g}" if recipe.peak_epoch is not None else
                f"{recipe.peak:.4g} ({recipe.peak_fraction:.4g} of the {recipe.epochs:g} epochs)")
        compiled = ([] if self.compile_seconds is None else [
            f"compiled in {self.compile_seconds:.1f} s (not counted in the epochs below)"])
        return [*compiled, f"{self.precision} ({self.why}); {self.steps_per_epoch} steps of "
                f"{recipe.batch_size} per epoch; the learning rate peaks at epoch {peak}"]

    def forward_backward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The loss of a batch and its gradients (scaled for fp16); the logits too."""
        with torch.autocast(x.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = self.step_model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        return loss, logits

    def train_epoch(self, epoch: int, step: int, bar: _Progress) -> tuple[float, float, int]:
        """Epoch `epoch`'s steps, from the run's step `step` (the last epoch may stop part
        way): its mean training loss, its training accuracy, and the step reached."""
        recipe, device = self.recipe, self.data.device
        self.set_trained(epoch)
        self.model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, first_step = 0, step
        bar.start(epoch, min(self.steps_per_epoch, self.total_steps - step) * recipe.batch_size)
        for x, y in self.data.train_batches(recipe.batch_size, self.generator,
                                            translate=recipe.translate, cutout=recipe.cutout,
                                            flips=self.flips(epoch)):
            if step == self.total_steps:
                break
            loss, logits = self.step(x, y, recipe.schedule(step / self.steps_per_epoch))
            step += 1
            self.average.update(self.model)
            self.lookahead.after_step(step)
            # Summed on the device: reading them here would stall the GPU every step.
            loss_sum += loss.detach() * len(y)
            correct += (logits.argmax(1) == y).sum()
            seen += len(y)
            bar.update(len(y), loss_sum, seen, step - first_step, self.total_steps - step)
        bar.clear()  # the table's row takes the line
        self.lookahead.after_epoch()
        return loss_sum.item() / seen, correct.item() / seen, step  # one sync per epoch

    def step(self, x: torch.Tensor, y: torch.Tensor, fraction: float) -> tuple[torch.Tensor, ...]:
        """One training step at `fraction` of each group's peak rate: (loss, logits)."""
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = group["peak"] * fraction
        loss, logits = self.forward_backward(x, y)
        for optimizer in self.optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()
        return loss, logits

    def final_evaluation(self, out: Callable[[str], None]) -> Evaluation:
        """The run's result: the test set with test-time augmentation."""
        start = now(self.data.device)
        loss, acc = validate(self.average.evaluated, self.data, self.recipe, self.dtype,
                             tta=self.recipe.tta)
        final = Evaluation(self.recipe.tta, loss, acc, now(self.data.device) - start)
        out(f"test-time augmentation level {final.level} ({TTA_VIEWS[final.level]} views): "
            f"valid loss {loss:.4f}, valid acc {acc:.4f}, {final.seconds:.2f} seconds")
        return final

    def _warm_up(self) -> float:
        """Compile for training (the step's forward and backward) and for evaluation on one
        batch each, leaving the weights and the BatchNorm statistics as they were. Returns the
        seconds it took."""
        start = now(self.data.device)
        state = copy.deepcopy(self.model.state_dict())
        x, y = next(self.data.train_batches(
            self.recipe.batch_size,
            torch.Generator(device=self.data.device).manual_seed(self.recipe.seed),
            translate=self.recipe.translate, cutout=self.recipe.cutout, flips=None))
        self.model.train()
        self.forward_backward(x, y)
        self.model.zero_grad(set_to_none=True)
        validate(self.step_model, self.data, self.recipe, self.dtype, tta=self.recipe.tta)
        self.model.load_state_dict(state)
        return now(self.data.device) - start


def _flip_schedule(flip: str, n: int, generator: torch.Generator
                   ) -> Callable[[int], torch.Tensor | None]:
    """Which training images are mirrored in an epoch: None (each at random, by the batches),
    or one bool per image: `alternate` draws each image's once and inverts it every other
    epoch, `none` never mirrors."""
    if flip == "random":
        return lambda epoch: None
    device = generator.device
    if flip == "alternate":
        chosen = torch.rand(n, device=device, generator=generator) < 0.5
        return lambda epoch: chosen ^ (epoch % 2 == 1)
    unflipped = torch.zeros(n, device=device, dtype=torch.bool)
    return lambda epoch: unflipped


def _trained_per_epoch(model: nn.Module, recipe: Recipe) -> Callable[[int], None]:
    """What sets, at the start of each epoch, which parameters train in it: a bias that trains
    for its layer's first `bias_epochs`, and `train_epochs` by path (no gradient: no step and
    no decay)."""
    layers = [m for m in model.modules() if getattr(m, "bias_epochs", None) is not None]
    limited = [*((m.bias, m.bias_epochs) for m in layers), *_limited_parameters(model, recipe)]

    def set_for(epoch: int) -> None:
        for param, epochs in limited:
            param.requires_grad_(epoch < epochs)
    return set_for


class _NoAverage:
    """The weights evaluated are the model's own (the compiled one, when compiled)."""

    def __init__(self, step_model: nn.Module):
        self.evaluated = step_model

    def update(self, model: nn.Module) -> None:
        pass

    def keep(self, model: nn.Module) -> None:
        pass


class _MovingAverage:
    """A moving average of the weights and BatchNorm statistics, decay `decay` per step: what
    is evaluated, and what the model holds at the end."""

    def __init__(self, model: nn.Module, decay: float):
        self.average = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay),
            use_buffers=True)
        self.evaluated = self.average.module

    def update(self, model: nn.Module) -> None:
        self.average.update_parameters(model)

    def keep(self, model: nn.Module) -> None:
        _copy(model.state_dict().values(), self.average.module.state_dict().values())


@torch.no_grad()
def _copy(targets, sources) -> None:
    """Each tensor of `targets` set to its counterpart in `sources`, in place."""
    for target, source in zip(targets, sources):
        target.copy_(source)


class _NoLookahead:
    def after_step(self, step: int) -> None:
        pass

    def after_epoch(self) -> None:
        pass


class _Lookahead:
    """airbench's lookahead: from epoch `lookahead_from`, every `lookahead_every` steps, the
    weights and BatchNorm statistics are pulled into a moving average with decay
    lookahead^every * (step/total)^3 and copied back; after each epoch the model takes the
    average."""

    def __init__(self, model: nn.Module, recipe: Recipe, steps_per_epoch: int, total_steps: int):
        # The live tensors themselves: copying into them changes the model.
        self.live = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.average: list[torch.Tensor] | None = None  # made at the first update
        self.every, self.total_steps = recipe.lookahead_every, total_steps
        self.base = recipe.lookahead ** recipe.lookahead_every
        self.first_step = recipe.lookahead_from * steps_per_epoch

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        if step % self.every or step <= self.first_step:
            return
        if self.average is None:
            self.average = [t.clone() for t in self.live]
        decay = self.base * (step / self.total_steps) ** 3
        for average, tensor in zip(self.average, self.live):
            average.lerp_(tensor, 1 - decay)
            tensor.copy_(average)

    def after_epoch(self) -> None:
        if self.average is not None:
            _copy(self.live, self.average)


class _Progress:
    """The live line on stderr during each epoch (a terminal's): images done, images per second,
    the loss so far and the time the run has left. One for the run, reset each epoch: a bar
    made per epoch is collected per epoch, and a Ctrl-C that lands in its __del__ would be
    swallowed ("Exception ignored")."""

    def __init__(self, shown: bool):
        self.shown = shown
        self.bar = tqdm(unit="img", unit_scale=True, leave=False, disable=not shown,
                        file=sys.stderr, bar_format=PROGRESS_FORMAT,
                        delay=PROGRESS_SECONDS)  # short epochs: no flicker

    def start(self, epoch: int, images: int) -> None:
        self.bar.set_description_str(f"epoch {epoch + 1}", refresh=False)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.reset(total=images)
        self.started = self.last = time.perf_counter()

    def update(self, images: int, loss_sum: torch.Tensor, seen: int, steps: int,
               steps_left: int) -> None:
        self.bar.update(images)
        if self.shown and time.perf_counter() - self.last > PROGRESS_SECONDS:
            self.last = time.perf_counter()  # the loss read syncs the device: not every step
            per_step = (self.last - self.started) / steps
            self.bar.set_postfix_str(f"loss {loss_sum.item() / seen:.4f}, run "
                                     f"{format_seconds(per_step * steps_left)} left")

    def clear(self) -> None:
        self.bar.clear()

    def close(self) -> None:
        self.bar.close()


class _Reached(Exception):
    """Ends a forward pass at the layer whose input was wanted."""


INIT_CHUNK = 1000  # images per forward pass while setting layers from the data


def initialise_from_data(model: nn.Module, images: torch.Tensor) -> None:
    """Set each layer that has `initialise_from_images` (whitening) from what reaches it when
    the model runs on `images`, not from the images themselves: the model runs (in eval mode,
    no gradients, `INIT_CHUNK` images at a time) up to the first layer not yet set, which is
    then set, and again for the next, so a later one sees what the earlier ones make."""
    pending = [(name, module) for name, module in model.named_modules()
               if callable(getattr(module, "initialise_from_images", None))]
    was_training = model.training
    model.eval()
    try:
        while pending:
            reached: list[tuple[nn.Module, torch.Tensor]] = []

            def stop(module: nn.Module, inputs: tuple) -> None:
                reached.append((module, inputs[0]))
                raise _Reached
            hooks = [module.register_forward_pre_hook(stop) for _, module in pending]
            try:
                with torch.no_grad():
                    for chunk in images.split(INIT_CHUNK):
                        try:
                            model(chunk)
                        except _Reached:
                            pass
            finally:
                for hook in hooks:
                    hook.remove()
            if not reached:  # the forward pass never uses them: nothing to set them from
                return
            module = reached[0][0]
            name = next(name for name, m in pending if m is module)
            try:
                module.initialise_from_images(torch.cat([x for _, x in reached]))
            except torch.linalg.LinAlgError as e:
                raise ValueError(f"{parameter_path(model, name)}: cannot be set from the "
                                 f"training images ({_first_line(e)})") from None
            pending = [(n, m) for n, m in pending if m is not module]
    finally:
        model.train(was_training)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def format_seconds(seconds: float) -> str:
    """2:05 for 125 seconds, 1:02:05 from an hour up."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


TTA_VIEWS = {1: 2, 2: 6}  # forward passes per test image at each level of test-time augmentation


def check_outputs(model: nn.Module, data: DeviceData) -> None:
    """Raise ValueError when the model's outputs are not one per class of `data`: asked
    before the first step (and before zero-cost scores), not met after an epoch."""
    model.eval()
    images = data.test_x[:2]  # a test set of one image has one
    with torch.no_grad():
        logits = model(data.normalise(images))
    classes = len(data.classes)
    if logits.shape != (len(images), classes):
        shape = "x".join(map(str, logits.shape[1:]))
        raise ValueError(f"the model gives {shape} outputs per image but {data.name} has "
                         f"{classes} classes; give it {classes} outputs")


def _check_trainable(model: nn.Module, data: DeviceData) -> None:
    """Raise ValueError when the model's outputs depend on no trained weight: no step could
    change them (and the backward pass of the first would fail)."""
    model.eval()
    with torch.enable_grad():
        logits = model(data.normalise(data.test_x[:2]))
    if not logits.requires_grad:
        raise ValueError("the model's outputs depend on no trained weight (it has none, or "
                         "every path from them to the output is cut, as by an op giving "
                         "zeros): there is nothing to train")
