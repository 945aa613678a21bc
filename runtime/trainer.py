"""The shared trainer: the seed's fast ResNet recipe, airbench's and any between them, for any
nn.Module, as one loop (`train`, with its run state `_Run`): results (results.py), parameter
groups (groups.py), evaluation and TTA (evaluation.py), averaging and lookahead (averaging.py)
and layers set from the data (init.py) are their own files."""
from __future__ import annotations

import copy
import math
import sys
import time
from typing import Callable, cast

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .averaging import Lookahead, MovingAverage, NoAverage, NoLookahead
from .data import DeviceData
from .evaluation import TTA_VIEWS, check_outputs, check_trainable, validate
from .groups import check_fits, limited_parameters, optimizers
from .init import initialise_from_data
from .machine import AUTOCAST_DTYPES, choose_precision, now, tune_for
from .recipe import Recipe
from .results import Epoch, Evaluation, OutOfMemory, Result, format_seconds, table_header, table_row


PROGRESS_FORMAT = "{desc}: {n_fmt}/{total_fmt} images {percentage:3.0f}% {rate_fmt}{postfix}"


PROGRESS_SECONDS = 1.0  # between updates of the progress line's loss and time left


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
                message = f"the training loss became {train_loss} in epoch {epoch + 1}"
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
        half = max(recipe.batch_size // 2, 1)
        raise OutOfMemory(lambda mention: f"out of memory on {device} with batch size "
                          f"{recipe.batch_size}; try {mention('batch_size', half)}") from None
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
        # torch's stub offers memory_format only alone; Module.to takes it with device too
        self.model = model.to(device=device,  # type: ignore[call-overload]
                              memory_format=torch.channels_last)
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
        check_trainable(self.model, data)
        self.flips = _flip_schedule(recipe.flip, data.train_size, self.generator)
        self.set_trained = _trained_per_epoch(self.model, recipe)
        self.optimizers = optimizers(self.model, recipe)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.dtype == torch.float16)
        start = now(device)
        initialise_from_data(self.model, data.train_images(recipe.whiten_images))
        self.init_seconds = now(device) - start
        self.step_model, self.compile_seconds = self.model, None
        if recipe.compile:
            self.step_model = torch.compile(self.model)
            self.compile_seconds = self._warm_up()
        self.average = (MovingAverage(self.model, recipe.ema) if recipe.ema
                        else NoAverage(self.step_model))
        self.lookahead = (Lookahead(self.model, recipe, self.steps_per_epoch, self.total_steps)
                          if recipe.lookahead else NoLookahead())

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
    # A layer with bias_epochs (Whiten, a Conv2d) holds a bias Parameter and an int there:
    # nn.Module's stub types every attribute it does not declare as Tensor | Module.
    limited: list[tuple[torch.Tensor, float]] = [
        *((cast(torch.Tensor, m.bias), cast(int, m.bias_epochs)) for m in layers),
        *limited_parameters(model, recipe)]

    def set_for(epoch: int) -> None:
        for param, epochs in limited:
            param.requires_grad_(epoch < epochs)
    return set_for


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
