"""What a command asks to train, its flags read once: the data (`DataWanted`), the training
(`Training`), and when to evaluate."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import netdsl_runtime as runtime


@dataclass(frozen=True)
class DataWanted:
    """The data a command asks for: a dataset (name or image folder; see `runtime.load_images`),
    its download and cache folder (None: the default), a random `train_limit` of its training
    images (0: all), of which a random `valid_split` are held out to evaluate on (0: none), or
    a random `held_out` fraction of them (a differentiable search's architecture's half)."""
    dataset: str
    data_dir: str | None = None
    train_limit: int = 0
    valid_split: int = 0
    held_out: float = 0.0


@dataclass(frozen=True)
class Training:
    """What a command that trains asks for, its flags read once: the values bound by name
    (`bindings`: --set), the recipe and the preset mappings that apply only where the network
    has what they name (`optional`), the data (None: a search that looks its networks up),
    the device by name (auto, cpu, cuda, cuda:N), when to evaluate (every, last, auto) and the
    weights to start from."""
    bindings: dict[str, Any]
    recipe: "runtime.Recipe"
    optional: frozenset
    data: DataWanted | None
    device: str = "auto"
    evaluate: str = "auto"
    init_from: str | None = None


def evaluates_each_epoch(evaluate: str, wanted: bool) -> bool:
    """Whether `evaluate` (the --evaluate text: every, last, auto) asks for every epoch's
    validation accuracy; `auto`: when something reads it (`wanted`: the table, a record, a
    pruner)."""
    return {"every": True, "last": False, "auto": wanted}[evaluate]
