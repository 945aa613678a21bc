"""A training recipe: every hyperparameter of `runtime.train`, each written once with its help,
unit and valid range.

The command line's flags, the keys a search space may set, `netdsl best --flags`, the JSON
record and `Recipe.check` are all read off these fields (`dataclasses.fields` and their
metadata), so a new setting is one field here. No torch: describing a recipe loads nothing.
"""
from __future__ import annotations

import math
import os
import sys
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

PRECISIONS = ("auto", "fp16", "bf16", "fp32")
OPTIMIZERS = ("sgd", "muon")
FLIPS = ("random", "alternate", "none")
PRESETS_DIR = Path(__file__).parent / "recipes"
DEFAULT_PRESET = "seed"  # runtime/recipes/seed.toml: Recipe()'s defaults, written out
SEEDS = 2 ** 32  # seeds are below this: numpy's generators (Optuna's samplers) take no more


def setting(default: Any, help: str, *, unit: str = "", low: float | None = None,
            above: float | None = None, below: float | None = None,
            choices: tuple[str, ...] | None = None, speed_only: bool = False,
            entry: str = "") -> Any:
    """A Recipe field: `help` says what it is, `unit` what it counts, `low` the least value
    (inclusive), `above` a bound it must exceed, `below` the bound it must stay under,
    `choices` the words it takes; `speed_only`: it changes how fast a run goes, not what the
    network learns (two runs that differ only there are the same trial); `entry`, for a
    mapping, what its keys are."""
    metadata = {"help": help, "unit": unit, "low": low, "above": above, "below": below,
                "choices": choices, "speed_only": speed_only, "entry": entry}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Recipe:
    """Hyperparameters of a run. Defaults are the seed's (Page's DAWNBench recipe); the
    presets in runtime/recipes/ (`load_recipe`) give the others."""

    epochs: float = setting(24.0, "passes over the training images; may be fractional (9.9: "
                            "nine passes and 90% of a tenth)", unit="epochs", low=1e-3,
                            below=1e5)
    batch_size: int = setting(512, "images per step", unit="images", low=1)
    optimizer: str = setting("sgd", "sgd: Nesterov SGD for every parameter; muon: Muon "
                             "(orthogonalised momentum) for the convolution filters, SGD for "
                             "the rest", choices=OPTIMIZERS)
    peak_lr: float = setting(0.4, "SGD's learning rate at the peak of the schedule, per step "
                             "for the mean loss of a batch (with --decoupled: airbench's form)",
                             low=0)
    decoupled: bool = setting(False, "airbench's form of peak_lr and weight_decay: per 1024 "
                              "examples of summed loss, both divided by 1024 * (1 + 1/(1 - "
                              "momentum)); the decay per step then follows the schedule but "
                              "not the rate or its multipliers")
    peak_epoch: float | None = setting(None, "where the learning rate peaks, may be fractional "
                                       "(default: peak_fraction of the epochs)",
                                       unit="epochs", low=0)
    peak_fraction: float = setting(5 / 24, "where the learning rate peaks, as a fraction of "
                                   "the epochs, when peak_epoch is not given (the seed's 5 of "
                                   "24)", low=0, below=1)
    lr_start: float = setting(0.0, "the learning rate at the first step, as a fraction of the "
                              "peak; it rises linearly to the peak", low=0)
    lr_end: float = setting(0.0, "the learning rate at the last step, as a fraction of the "
                            "peak; it falls linearly from the peak", low=0)
    weight_decay: float = setting(5e-4, "L2 coefficient added to every SGD parameter's "
                                  "gradient (with --decoupled: airbench's form)", low=0)
    momentum: float = setting(0.9, "SGD's Nesterov momentum", low=0, below=1)
    muon_lr: float = setting(0.24, "Muon's step at the peak of the schedule (--optimizer "
                             "muon): each filter is kept at norm sqrt(out channels) and moved "
                             "this far along its orthogonalised momentum", low=0)
    muon_momentum: float = setting(0.6, "Muon's Nesterov momentum", low=0, below=1)
    lr_scale: dict[str, float] = setting({}, "learning-rate factor for every parameter under a "
                                         "node path prefix, e.g. layer3=2 (the longest prefix "
                                         "wins)", low=0, entry="PREFIX")
    kind_lr_scale: dict[str, float] = setting({}, "learning-rate factor by kind of parameter, "
                                              "MODULE.PARAMETER, e.g. BatchNorm2d.bias=64 (a "
                                              "module class or any class it derives from); "
                                              "multiplies with lr_scale", low=0,
                                              entry="CLASS.PARAMETER")
    train_epochs: dict[str, float] = setting({}, "parameters under a node path prefix train "
                                             "in the epochs that start before this one, then "
                                             "stay as they are, e.g. group1=3; 0 = frozen (the "
                                             "longest prefix wins)", unit="epochs", low=0,
                                             entry="PREFIX")
    label_smoothing: float = setting(0.0, "cross-entropy label smoothing", low=0, below=1)
    translate: int = setting(4, "random translation of each training image by up to this many "
                             "pixels each way, edges reflected (the seed's random crop of a "
                             "4-pixel padded image); 0 = off", unit="pixels", low=0)
    flip: str = setting("random", "horizontal mirroring of training images: random (each "
                        "image at each epoch with probability 1/2), alternate (each image "
                        "chosen once at random, then mirrored every other epoch), none",
                        choices=FLIPS)
    cutout: int = setting(8, "side of the square zeroed in each training image; 0 = off",
                          unit="pixels", low=0)
    ema: float = setting(0.0, "decay per step of a moving average of the weights and BatchNorm "
                         "statistics, which is what gets evaluated (and saved); 0 = off",
                         low=0, below=1)
    lookahead: float = setting(0.0, "lookahead decay per step: every lookahead_every steps "
                               "the weights and BatchNorm statistics are pulled into a moving "
                               "average with decay lookahead^every * (step/total steps)^3 and "
                               "copied back, and again after each epoch; 0 = off", low=0,
                               below=1)
    lookahead_every: int = setting(5, "steps between lookahead updates", unit="steps", low=1)
    lookahead_from: float = setting(3.0, "the epoch lookahead starts at", unit="epochs", low=0)
    tta: int = setting(0, "test-time augmentation of the final evaluation: 0 none, 1 the mean "
                       "logits of the image and its mirror image, 2 also both shifted by one "
                       "pixel up-left and down-right (6 views weighted 1/2, 1/4, 1/4)",
                       low=0, below=3)
    seed: int = setting(0, "seeds the weights' initialisation, the order and the augmentation",
                        low=0, below=SEEDS)
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
        """The epoch where the rate peaks: peak_epoch, or peak_fraction of the epochs."""
        return self.epochs * self.peak_fraction if self.peak_epoch is None else self.peak_epoch

    def schedule(self, epoch: float) -> float:
        """The learning rate at `epoch` as a fraction of the peak: piecewise linear from
        lr_start at epoch 0 to 1 at the peak to lr_end at the last epoch."""
        peak = self.peak
        if epoch < peak:
            return self.lr_start + (1 - self.lr_start) * epoch / peak
        if peak >= self.epochs:
            return 1.0
        done = min((epoch - peak) / (self.epochs - peak), 1.0)
        return 1 + (self.lr_end - 1) * done

    def lr_at(self, epoch: float) -> float:
        """SGD's learning rate at `epoch`, in peak_lr's units."""
        return self.peak_lr * self.schedule(epoch)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as set; the JSON record's "hyperparameters"."""
        return asdict(self)


class RecipeError(ValueError):
    """A recipe file or preset that cannot be used; the message names the file and the key."""


def presets() -> list[str]:
    """The names of the recipes that travel with the project (runtime/recipes/NAME.toml)."""
    return sorted(path.stem for path in PRESETS_DIR.glob("*.toml"))


def load_recipe(name_or_path: str | os.PathLike) -> Recipe:
    """A preset by name (`seed`, `airbench94`, ...) or a TOML file of Recipe fields; fields it
    does not set keep the seed's defaults, or those of the preset named by its `base` key.
    Unknown keys, wrong types and values out of range raise RecipeError naming the file and
    the key."""
    return read_recipe(name_or_path)[0]


def read_recipe(name_or_path: str | os.PathLike) -> tuple[Recipe, frozenset[tuple[str, str]]]:
    """`load_recipe`'s recipe, and the entries of its mappings (lr_scale, kind_lr_scale,
    train_epochs) that a preset set rather than the file: (field, entry) pairs. A preset's
    entries apply where a network has what they name; a user's must match."""
    text = str(name_or_path)
    is_preset = text in presets()
    path = PRESETS_DIR / f"{text}.toml" if is_preset else Path(text)
    if not path.is_file():
        raise RecipeError(f"recipe '{text}': neither a preset ({', '.join(presets())}) nor a "
                          "file")
    try:
        with open(path, "rb") as f:
            values = tomllib.loads(f.read().decode("utf-8-sig"))  # a byte-order mark is no key
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"{path}: cannot read it: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"{path}: not TOML: {e}") from None
    recipe, inherited = Recipe(), frozenset[tuple[str, str]]()
    base = values.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or base not in presets() or base == path.stem and (
                path.parent == PRESETS_DIR):
            raise RecipeError(f"{path}: key 'base' must name a preset ({', '.join(presets())}), "
                              f"got {base!r}")
        recipe, inherited = read_recipe(base)
    known = {f.name: f for f in fields(Recipe)}
    for key, value in values.items():
        if key not in known:
            raise RecipeError(f"{path}: unknown key '{key}'; a recipe sets "
                              f"{', '.join(known)} (and 'base')")
        value = values[key] = as_field_type(known[key], value)
        try:
            check_value(known[key], value)
        except ValueError as e:
            raise RecipeError(f"{path}: key '{key}': {e}{allowed(known[key])}") from None
    try:
        recipe = updated(recipe, values)
        recipe.check()
    except ValueError as e:
        raise RecipeError(f"{path}: {e}") from None
    if is_preset:
        return recipe, frozenset((name, entry) for name in MAPPINGS
                                 for entry in getattr(recipe, name))
    # A mapping the file sets replaces the preset's whole: its entries are the file's.
    return recipe, frozenset((name, entry) for name, entry in inherited if name not in values)


def updated(recipe: Recipe, values: dict[str, Any]) -> Recipe:
    """`recipe` with `values` set. peak_epoch and peak_fraction say one thing two ways, and the
    one given holds: peak_fraction given without peak_epoch clears the recipe's peak_epoch
    (given together, peak_epoch holds, as it always does when set)."""
    if "peak_fraction" in values and "peak_epoch" not in values:
        values = {**values, "peak_epoch": None}
    return replace(recipe, **values)


def _flat(table: dict, joiner: str, prefix: str = "") -> dict:
    """TOML's dotted keys as the one key they spell: {BatchNorm2d = {bias = 64}} is
    {"BatchNorm2d.bias": 64}."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, joiner, f"{prefix}{key}{joiner}"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def as_field_type(f, value: Any) -> Any:
    """`value` as field `f`'s type where that loses nothing: TOML's or JSON's 24 for a
    fractional field is 24.0, 64.0 for a whole one is 64 (so equal recipes compare and hash
    equal); anything else is left for `check_value` to refuse."""
    want = kind(f)
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if want is float and number(value):
        return float(value)
    if want is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if want is dict and isinstance(value, dict):
        if "." in f.metadata["entry"]:  # CLASS.PARAMETER: a TOML dotted key spells one entry
            value = _flat(value, ".")
        return {k: float(v) if number(v) else v for k, v in value.items()}
    return value


def allowed(f) -> str:
    """`f`'s valid values in words, for an error: " (allowed: ...)"; "" when any fits."""
    meta, want = f.metadata, kind(f)
    if meta["choices"]:
        return f" (allowed: {', '.join(meta['choices'])})"
    if want is bool:
        return " (allowed: true, false)"
    bounds = [f">= {meta['low']:g}" if meta["low"] is not None else "",
              f"> {meta['above']:g}" if meta["above"] is not None else "",
              f"< {meta['below']:g}" if meta["below"] is not None else ""]
    what = {int: "a whole number", float: "a number", dict: "a table of numbers"}[want]
    return f" (allowed: {what} {' and '.join(b for b in bounds if b)})".replace(" )", ")")


def kind(f) -> type:
    """The value type of a Recipe field: int, float, bool, str or dict (optional ones too)."""
    hint = typing.get_type_hints(Recipe)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = typing.get_origin(hint) or hint
    return dict if base is dict else args[0] if args else base


MAPPINGS = tuple(f.name for f in fields(Recipe) if kind(f) is dict)  # set entry by entry


def check_value(f, value: Any) -> None:
    """Raise ValueError if `value` does not fit field `f`'s type and range."""
    name, meta, want = f.name, f.metadata, kind(f)
    if value is None and f.default is None:
        return
    if want is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must map node paths to factors, got {value!r}")
        for key, factor in value.items():
            if isinstance(factor, dict):
                raise ValueError(f"{name}: '{key}' holds a table; write a path as one quoted "
                                 f"key, e.g. \"{key}/conv\" = 2")
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
    if meta["above"] is not None and value <= meta["above"]:
        raise ValueError(f"{name} must be above {meta['above']}, got {value}")
    if meta["below"] is not None and value >= meta["below"]:
        raise ValueError(f"{name} must be below {meta['below']}, got {value}")
