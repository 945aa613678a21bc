"""A training recipe: every hyperparameter of `runtime.train`, each written once with its help,
unit and valid range.

The command line's flags, the keys a search space may set, `netdsl best --flags`, the JSON
record and `Recipe.check` are all read off these fields (`dataclasses.fields` and their
metadata), so a new setting is one field here. No torch: describing a recipe loads nothing.
"""
from __future__ import annotations

import math
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

PRECISIONS = ("auto", "fp16", "bf16", "fp32")
PEAK_FRACTION = 5 / 24  # the seed's peak: epoch 5 of 24, kept in proportion to --epochs


def setting(default: Any, help: str, *, unit: str = "", low: float | None = None,
            below: float | None = None, choices: tuple[str, ...] | None = None,
            speed_only: bool = False) -> Any:
    """A Recipe field: `help` says what it is, `unit` what it counts, `low` the least value
    (inclusive), `below` the bound it must stay under, `choices` the words it takes;
    `speed_only`: it changes how fast a run goes, not what the network learns (two runs that
    differ only there are the same trial)."""
    metadata = {"help": help, "unit": unit, "low": low, "below": below, "choices": choices,
                "speed_only": speed_only}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Recipe:
    """Hyperparameters of a run. Defaults are the seed's (Page's DAWNBench recipe)."""

    epochs: int = setting(24, "passes over the training images", unit="epochs", low=1)
    batch_size: int = setting(512, "images per step", unit="images", low=1)
    peak_lr: float = setting(0.4, "learning rate per step at the peak, for the mean loss of a "
                             "batch; it rises linearly from 0 and falls to 0 at the last epoch, "
                             "set every step", low=0)
    peak_epoch: float | None = setting(None, "where the learning rate peaks, may be fractional "
                                       "(default: 5/24 of the epochs, the seed's 5 of 24)",
                                       unit="epochs", low=0)
    weight_decay: float = setting(5e-4, "L2 coefficient added to every parameter's gradient",
                                  low=0)
    momentum: float = setting(0.9, "Nesterov momentum", low=0, below=1)
    cutout: int = setting(8, "side of the square zeroed in each training image; 0 = off",
                          unit="pixels", low=0)
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing", low=0, below=1)
    lr_scale: dict[str, float] = setting({}, "learning-rate factor for every parameter under a "
                                         "node path prefix, e.g. layer3=2 (the longest prefix "
                                         "wins)", low=0)
    ema: float = setting(0.0, "decay per step of a moving average of the weights and BatchNorm "
                         "statistics, which is what gets evaluated (and saved); 0 = off",
                         low=0, below=1)
    tta: bool = setting(False, "test-time augmentation: mean logits of each image and its "
                        "mirror image")
    seed: int = setting(0, "seeds the weights' initialisation, the order and the augmentation",
                        low=0)
    precision: str = setting("auto", "autocast dtype; auto: fp16 on CUDA, bf16 on a CPU with "
                             "native bf16 (AMX or AVX512-BF16), fp32 on other CPUs",
                             choices=PRECISIONS, speed_only=True)
    compile: bool = setting(False, "torch.compile the network first; its time is reported "
                            "apart from the epochs", speed_only=True)
    eval_batch_size: int = setting(1000, "images per evaluation step", unit="images", low=1,
                                   speed_only=True)
    whiten_images: int = setting(5000, "training images whose patches set the filters of a "
                                 "whitening layer before training (a module with "
                                 "initialise_from_images)", unit="images", low=1)

    def check(self) -> None:
        """Raise ValueError naming the first field with a bad value."""
        for f in fields(self):
            check_value(f, getattr(self, f.name))
        if self.peak_epoch is not None and self.peak_epoch > self.epochs:
            raise ValueError(f"peak_epoch must be between 0 and epochs ({self.epochs}), "
                             f"got {self.peak_epoch}")

    @property
    def peak(self) -> float:
        """The epoch where the rate peaks: peak_epoch, or 5/24 of the epochs when unset."""
        return self.epochs * PEAK_FRACTION if self.peak_epoch is None else self.peak_epoch

    def lr_at(self, epoch: float) -> float:
        """Piecewise linear: 0 at epoch 0, peak_lr at the peak, 0 at the last epoch."""
        peak = self.peak
        if epoch <= peak:
            return self.peak_lr * epoch / peak if peak else self.peak_lr
        return self.peak_lr * max(self.epochs - epoch, 0) / (self.epochs - peak)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as set; the JSON record's "hyperparameters"."""
        return asdict(self)


def kind(f) -> type:
    """The value type of a Recipe field: int, float, bool, str or dict (optional ones too)."""
    hint = typing.get_type_hints(Recipe)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = typing.get_origin(hint) or hint
    return dict if base is dict else args[0] if args else base


def check_value(f, value: Any) -> None:
    """Raise ValueError if `value` does not fit field `f`'s type and range."""
    name, meta, want = f.name, f.metadata, kind(f)
    if value is None and f.default is None:
        return
    if want is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must map node paths to factors, got {value!r}")
        for key, factor in value.items():
            _check_number(f"{name} {key}", factor, float, meta)
        return
    if want is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return
    if want is str:
        if value not in meta["choices"]:
            raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
        return
    _check_number(name, value, want, meta)


def _check_number(name: str, value: Any, want: type, meta) -> None:
    whole = want is int
    if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or (
            not math.isfinite(value)):
        what = "a whole number" if whole else "a finite number"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if meta["low"] is not None and value < meta["low"]:
        raise ValueError(f"{name} must be at least {meta['low']}, got {value}")
    if meta["below"] is not None and value >= meta["below"]:
        raise ValueError(f"{name} must be below {meta['below']}, got {value}")
