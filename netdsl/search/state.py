"""`Search`: what every trial of one search shares, and what this process keeps of its trials
while it runs (the trials it ran, its best trained networks, its repeats in a row)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from ..language import Bound, Family
from .interrupts import Interrupts
from .space import Space
from .values import fingerprint

if TYPE_CHECKING:
    import optuna

    from netdsl_runtime import DeviceData, Recipe

    from ..bench.table import NoImages, Table
    from ..supernet import Supernet
    from ..train import Fitted
    from .options import Objectives


@dataclass(kw_only=True)
class Search:
    """What every trial of one search shares."""

    family: Family
    space: Space                  # --space, NNI's form ({} without one)
    grid: dict[str, list] | None  # the grid, for the grid tuner
    base: dict[str, Any]          # bindings from --set
    recipe: Recipe                # from the flags
    optional: frozenset[str]      # its entries that apply where a network has what they name
    data: DeviceData | NoImages   # the images on the device; a table search's stand-in
    initial: dict[str, Any] | None  # --init-from's weights by node path
    objectives: Objectives
    study: optuna.Study
    budget: int                   # trials the whole search may spend, all workers together
    each_epoch: bool              # evaluate after every epoch (a pruner reads them), else last
    prefilter: tuple[str, int] | None = None  # (proxy, candidates per trial)
    batch: tuple[Any, Any] | None = None  # the prefilter's scoring batch: (images, labels)
    supernet: Supernet | None = None  # ranks instead of training
    table: Table | None = None    # looks up instead of training
    mine: list[int] = field(default_factory=list)  # numbers of the trials this process ran
    # With a validation split: this process's best trained networks by trial number, with
    # their scores, until the end measures the chosen one's test accuracy.
    kept: dict[int, tuple[tuple[float, ...], Fitted]] = field(default_factory=dict)
    redraws: int = 0              # this process's draws in a row that repeated a network
    size: int | None = None       # the space's points (networks and recipes), if finite
    # Each free choice point's values as the tuner draws them, where every network of the
    # space is one value of each (no --space; the same points whatever is chosen; none a
    # real range); else None.
    listing: dict[str, Sequence] | None = None
    interrupts: Interrupts = field(default_factory=Interrupts)  # Ctrl-C, held between steps
    setting: str = ""             # setting_of(...): which stored trials drew from this space

    @property
    def multi(self) -> bool:
        return self.objectives.multi

    def fingerprint(self, bound: Bound, recipe) -> str:
        """A trial's network and recipe as one hash; a lookup's value depends on the network
        alone, so a table search's leaves the recipe out (resumed with another --seed, it
        finds the lookups it made)."""
        return fingerprint(bound, recipe if self.table is None else None)
