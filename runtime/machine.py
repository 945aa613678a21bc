"""The machine a run trains on: the device, the autocast precision its hardware computes well,
its free memory, the allocator setting that saves a CPU run's time, clocks that wait for the
device, and the evidence a result records. Probed here, once, apart from the training loop."""
from __future__ import annotations

import ctypes
import os
import platform
import sys
import time

import torch


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def choose_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The autocast precision to train in, and why. `auto` reads the machine: bf16 autocast is
    about 3x faster than fp32 on a CPU with AMX, 1.6x faster with AVX512-BF16 and 8x slower
    with AVX2 only (2-core machines; docs/speed.md), so it is chosen only where the CPU
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


def tune_for(device: torch.device) -> None:
    """What makes training faster on `device`: cuDNN's autotuning on CUDA (it tunes in the first
    steps, so epoch 1 is slower), malloc keeping freed memory on a CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        keep_freed_memory()


def now(device: torch.device) -> float:
    """A clock reading in seconds, after the device has finished what it was given (CUDA runs
    kernels asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


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
