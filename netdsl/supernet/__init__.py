"""Weight sharing over a family's space: the single-path supernet (`network`) and its file
(`file`), and differentiable search (`differentiable`: DARTS, GDAS, beta-DARTS, DrNAS). Loads
no torch until one of them is used: the command line reads `METHODS` from here."""
from importlib import import_module
from typing import Any

# differentiable search's, beside spos (the supernet)
METHODS = ("darts", "gdas", "beta-darts", "drnas")

_WHERE = {"FORMAT": "file", "check_saved": "file", "load_supernet": "file",
          "saved_form": "file", "weights_for": "file", "Supernet": "network"}

__all__ = ["METHODS", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'netdsl.supernet' has no attribute '{name}'")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
