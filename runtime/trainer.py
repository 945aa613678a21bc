"""The shared trainer: the seed's fast ResNet recipe for any nn.Module, as one loop."""
from __future__ import annotations

import copy
import ctypes
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import DeviceData
from .recipe import Recipe

COLUMNS = ("epoch", "lr", "train time", "train loss", "train acc", "valid time", "valid loss",
           "valid acc", "epoch time")


@dataclass
class Epoch:
    epoch: int
    lr: float            # at the end of the epoch
    train_time: float    # seconds
    train_loss: float
    train_acc: float
    valid_time: float    # seconds
    valid_loss: float
    valid_acc: float
    epoch_time: float    # train_time + valid_time


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

    @property
    def valid_acc(self) -> float | None:
        return self.epochs[-1].valid_acc if self.epochs else None

    @property
    def train_time(self) -> float:
        return sum(e.train_time for e in self.epochs)

    @property
    def total_time(self) -> float:
        return sum(e.epoch_time for e in self.epochs)

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message,
                "precision": self.precision, "precision_reason": self.precision_reason,
                "compile_seconds": self.compile_seconds,
                "epochs": [asdict(e) for e in self.epochs],
                "final": {"valid_acc": self.valid_acc, "train_time": self.train_time,
                          "total_time": self.total_time}}


class OutOfMemory(Exception):
    """The device ran out of memory; the message names the batch size."""


def table_header() -> str:
    return " ".join(f"{name:>12s}" for name in COLUMNS)


def table_row(e: Epoch) -> str:
    # The seed's table: 12-wide columns, the epoch as an integer, the rest to 4 decimals.
    values = [getattr(e, f.name) for f in fields(Epoch)]
    return " ".join([f"{values[0]:>12d}"] + [f"{v:12.4f}" for v in values[1:]])


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def choose_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The autocast precision to train in, and why. `auto` reads the machine: bf16 autocast is
    about 3x faster than fp32 on a CPU with AMX, 1.6x faster with AVX512-BF16 and 8x slower
    with AVX2 only (2-core machines; README "Speed"), so it is chosen only where the CPU
    computes bf16 natively."""
    if precision != "auto":
        return precision, "asked for"
    if device.type == "cuda":
        return "fp16", "CUDA"
    if device.type == "cpu":
        native = [name for name, present in (("AMX", torch.cpu._is_amx_tile_supported()),
                                             ("AVX512-BF16", torch.cpu._is_avx512_bf16_supported()))
                  if present]
        if native:
            return "bf16", f"this CPU computes bf16 natively ({', '.join(native)})"
        return "fp32", "this CPU has no native bf16 (neither AMX nor AVX512-BF16)"
    return "fp32", f"no autocast rule for {device.type}"


AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": None}


def parameter_path(model: nn.Module, name: str) -> str:
    """The node path of parameter `name`: `model.path_of(name)` for models that name their
    nodes by path (netdsl's), else the dotted name with `.` as `/`."""
    path_of = getattr(model, "path_of", None)
    return path_of(name) if callable(path_of) else name.replace(".", "/")


def _lr_groups(model: nn.Module, lr_scale: dict[str, float]) -> list[dict]:
    """One optimizer group per distinct scale; a parameter takes the factor of the longest
    prefix of its path (`layer3` matches `layer3/...`, not `layer30/...`)."""
    groups: dict[float, list[nn.Parameter]] = {}
    matched = set()
    for name, param in model.named_parameters():
        path = parameter_path(model, name)
        hits = [p for p in lr_scale if path == p or path.startswith(p.rstrip("/") + "/")]
        matched.update(hits)
        scale = lr_scale[max(hits, key=len)] if hits else 1.0
        groups.setdefault(scale, []).append(param)
    unused = sorted(set(lr_scale) - matched)
    if unused:
        raise ValueError(f"lr_scale: no parameter under '{unused[0]}'")
    return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory in the process. Training on the CPU allocates
    and frees activations of megabytes every step; by default malloc hands such blocks back to
    the OS and the next step faults them in again page by page: 8% of a step of the
    16/32/64/128 ResNet-9 at batch 512 on a 2-core machine (159 -> 146 ms; compare
    `tests/benchmarks/step_ratio.py --batch 512 --widths 16,32,64,128` with and without
    --keep-freed-memory).
    Process-wide and harmless elsewhere; returns whether it applied (Linux with glibc)."""
    global _memory_kept
    if not _memory_kept and sys.platform == "linux":
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:  # another C library: nothing to tune
            return False
        m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
        _memory_kept = bool(libc.mallopt(m_mmap_max, 0) and libc.mallopt(m_trim_threshold, 1 << 30))
    return _memory_kept


_memory_kept = False


def free_memory(device: torch.device) -> int | None:
    """Bytes free for training on `device`: CUDA's free memory, or the memory Linux says is
    available (MemAvailable); None where it cannot be read."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return kib * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # kernels run asynchronously: wait before reading a clock


def predict(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """fp32 logits of a batch; with `tta` the mean of the image's and its mirror image's."""
    logits = model(x).float()
    if tta:
        logits = (logits + model(x.flip(3)).float()) / 2
    return logits


def evaluate(model: nn.Module, data: DeviceData, recipe: Recipe,
             dtype: torch.dtype | None) -> tuple[float, float]:
    """Mean loss and accuracy on the test set, in eval mode."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    with torch.no_grad(), torch.autocast(data.device.type, dtype=dtype, enabled=dtype is not None):
        for x, y in data.test_batches(recipe.eval_batch_size):
            logits = predict(model, x, recipe.tta)
            loss_sum += F.cross_entropy(logits, y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
    n = len(data.test_y)
    return loss_sum.item() / n, correct.item() / n


def train(model: nn.Module, data: DeviceData, recipe: Recipe | None = None,
          log: Callable[[str], None] | None = print,
          should_stop: Callable[[Epoch], bool] | None = None) -> Result:
    """Train `model` on `data` (already on its device) with `recipe`, printing the seed's table
    through `log` (None: silent). Returns the per-epoch record; a loss that stops being finite
    ends the run with status "diverged", Ctrl-C with status "interrupted". `should_stop`, asked
    after each epoch (the last too), ends the run early with status "stopped" when it answers
    true before the last epoch (a search's pruner; a reporter can answer false)."""
    recipe = recipe or Recipe()
    recipe.check()
    device = data.device
    out = log or (lambda line: None)

    # -- model, precision, optimizer ------------------------------------------------------------
    torch.manual_seed(recipe.seed)
    generator = torch.Generator(device=device).manual_seed(recipe.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # autotunes in the first steps: epoch 1 is slower
    else:
        keep_freed_memory()
    model = model.to(device=device, memory_format=torch.channels_last)
    # Layers whose weights come from the data (whitening): set before training starts.
    for module in model.modules():
        if callable(getattr(module, "initialise_from_images", None)):
            module.initialise_from_images(data.train_images(recipe.whiten_images))
    precision, why = choose_precision(recipe.precision, device)
    dtype = AUTOCAST_DTYPES[precision]
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    optimizer = torch.optim.SGD(_lr_groups(model, recipe.lr_scale), lr=0.0,
                                momentum=recipe.momentum, nesterov=recipe.momentum > 0,
                                weight_decay=recipe.weight_decay)
    ema = None
    if recipe.ema:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema),
            use_buffers=True)
    steps_per_epoch = data.train_size // recipe.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {recipe.batch_size} is larger than the "
                         f"{data.train_size} training images")
    height, width = data.image_shape[1:]
    if recipe.cutout > min(height, width):
        raise ValueError(f"cutout {recipe.cutout} is larger than the {height}x{width} images")
    _check_outputs(model, data)

    step_model, compile_seconds = model, None
    if recipe.compile:
        step_model = torch.compile(model)
        compile_seconds = _warm_up(step_model, model, data, recipe, dtype)
        out(f"compiled in {compile_seconds:.1f} s (not counted in the epochs below)")

    # -- the loop -------------------------------------------------------------------------------
    epochs: list[Epoch] = []
    status, message = "finished", ""
    peak = (f"{recipe.peak:g}" if recipe.peak_epoch is not None else
            f"{recipe.peak:.4g} (5/24 of the {recipe.epochs} epochs: the default)")
    out(f"{precision} ({why}); {steps_per_epoch} steps of {recipe.batch_size} per epoch; "
        f"the learning rate peaks at epoch {peak}")
    out(table_header())
    try:
        for epoch in range(recipe.epochs):
            for module in model.modules():  # a bias that trains for its first epochs only
                if getattr(module, "bias_epochs", None) is not None:
                    module.bias.requires_grad_(epoch < module.bias_epochs)
            _sync(device)
            start = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            for step, (x, y) in enumerate(data.train_batches(recipe.batch_size, recipe.cutout,
                                                             generator)):
                lr = recipe.lr_at(epoch + step / steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    logits = step_model(x)
                    loss = F.cross_entropy(logits.float(), y,
                                           label_smoothing=recipe.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                if ema is not None:
                    ema.update_parameters(model)
                # Summed on the device: reading them here would stall the GPU every step.
                loss_sum += loss.detach() * len(y)
                correct += (logits.argmax(1) == y).sum()
                seen += len(y)
            train_loss = loss_sum.item() / seen  # one sync per epoch
            _sync(device)
            train_time = time.perf_counter() - start
            if not math.isfinite(train_loss):
                status = "diverged"
                message = (f"the training loss became {train_loss} in epoch {epoch + 1}; "
                           "try a lower --peak-lr")
                break

            start = time.perf_counter()
            valid_loss, valid_acc = evaluate(ema.module if ema is not None else step_model,
                                             data, recipe, dtype)
            _sync(device)
            valid_time = time.perf_counter() - start
            record = Epoch(epoch + 1, recipe.lr_at(epoch + 1), train_time, train_loss,
                           correct.item() / seen, valid_time, valid_loss, valid_acc,
                           train_time + valid_time)
            epochs.append(record)
            out(table_row(record))
            if should_stop is not None and should_stop(record) and epoch + 1 < recipe.epochs:
                status, message = "stopped", f"stopped early after epoch {epoch + 1}"
                break
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted after {len(epochs)} epochs"
    except (torch.OutOfMemoryError, RuntimeError) as e:
        # On the CPU running out of memory is a RuntimeError from the allocator.
        if not isinstance(e, torch.OutOfMemoryError) and "can't allocate memory" not in str(e):
            raise
        raise OutOfMemory(f"out of memory on {device} with batch size {recipe.batch_size}; try "
                          f"--batch-size {max(recipe.batch_size // 2, 1)}") from None
    if ema is not None:  # the averaged weights are the ones evaluated: they are the result
        with torch.no_grad():
            for mine, averaged in zip(model.state_dict().values(),
                                      ema.module.state_dict().values()):
                mine.copy_(averaged)
    result = Result(status, epochs, compile_seconds, message, precision, why)
    if status == "finished":
        out(f"Finished Train/Valid in {result.total_time:.2f} seconds")
    return result


def _check_outputs(model: nn.Module, data: DeviceData) -> None:
    """Fail before training, not after an epoch, when the model's outputs do not fit."""
    model.eval()
    with torch.no_grad():
        logits = model(data.normalise(data.test_x[:2]))
    if logits.shape != (2, len(data.classes)):
        raise ValueError(f"the model gives outputs of shape {tuple(logits.shape[1:])} per image; "
                         f"{data.name} has {len(data.classes)} classes")


def _warm_up(step_model: nn.Module, model: nn.Module, data: DeviceData, recipe: Recipe,
             dtype: torch.dtype | None) -> float:
    """Compile for training and for evaluation on one batch each, leaving the weights and the
    BatchNorm statistics as they were. Returns the seconds it took."""
    _sync(data.device)
    start = time.perf_counter()
    state = copy.deepcopy(model.state_dict())
    x, y = next(data.train_batches(recipe.batch_size, recipe.cutout,
                                   torch.Generator(device=data.device).manual_seed(recipe.seed)))
    model.train()
    with torch.autocast(data.device.type, dtype=dtype, enabled=dtype is not None):
        F.cross_entropy(step_model(x).float(), y).backward()
    model.zero_grad(set_to_none=True)
    evaluate(step_model, data, recipe, dtype)
    model.load_state_dict(state)
    _sync(data.device)
    return time.perf_counter() - start


def environment(device: torch.device) -> dict:
    """The evidence a result needs: versions, device, threads."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            with open("/proc/cpuinfo") as f:
                name = next(line.split(":", 1)[1].strip() for line in f
                            if line.startswith("model name"))
        except (OSError, StopIteration):
            pass
    return {"device": str(device), "device_name": name, "torch": torch.__version__,
            "cuda": torch.version.cuda if device.type == "cuda" else None,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
