"""The prologue of every command that trains or scores (run, search, trial, supernet, score),
in one order: the device named, the recipe fitted to the network at its defaults, every output
checked writable, the initial weights read whole; only then, from what that made
(`Ready.load`), the data. Whatever can fail without the data fails before it moves (`netdsl
trial` once loaded the data before it read --init-from: a bad weights file failed minutes
in)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..files import check_writable
from ..language import Family
from .checks import device_from
from .fitting import early_recipe, load_data
from .wanted import DataWanted, Training
from .weights import load_weights

if TYPE_CHECKING:
    import netdsl_runtime as runtime


@dataclass(frozen=True)
class Ready:
    """A training's checks done: its `device` (None for a search that looks its networks up
    and loads no data), its `recipe` (fitted to the network where asked), its `initial`
    weights by node path (--init-from; None without)."""
    device: Any
    recipe: runtime.Recipe
    initial: dict[str, Any] | None

    def load(self, wanted: DataWanted, log: Callable[[str], None] | None = print
             ) -> runtime.DeviceData:
        """The data `wanted`, on the device, split by the recipe's seed."""
        return load_data(wanted, self.device, seed=self.recipe.seed, log=log)


def ready(family: Family, training: Training, *,
          outputs: Sequence[tuple[str, str | None]] = (), fit_recipe: bool = True) -> Ready:
    """`training`'s prologue up to its data: the device, the recipe made to fit `family`'s
    network at its defaults (`fit_recipe` False: a supernet's, whose options differ, or a
    table search's, which trains nothing), each of `outputs` (flag, path) writable, the
    initial weights read and checked whole."""
    device = device_from(training.device) if training.data is not None else None
    recipe = (early_recipe(family, training.bindings, training.recipe, training.optional)
              if fit_recipe else training.recipe)
    for flag, path in outputs:
        if path:
            check_writable(Path(path), flag)
    return Ready(device, recipe, load_weights(training.init_from))
