"""Bound network + data + recipe -> fitted, through the trainer (`netdsl_runtime`): what a
command asks to train (wanted.py), the checks before training (checks.py: device, batch; the
memory's are module/memory.py's, which an export shares), saved weights read whole
(weights.py), fitting (fitting.py: the data loaded once, a family bound to it, `fit`, the one
place netdsl trains), the recipe's settings as flags and search keys (settings.py), the
prologue every training command runs in one order (prologue.py) and a run's curves
(curves.py: `netdsl plot RUN.json`). Nothing here imports torch until it trains."""
from ..module.memory import (BYTES_PER_VALUE, TRAINING_COPIES, check_memory, memory_needed,
                             refuse_beyond_free)
from .checks import check_batch, device_from
from .fitting import (Fitted, applicable_recipe, bind_to_data, early_recipe, fit, load_data,
                      train_model, with_classes)
from .prologue import Ready, ready
from .wanted import DataWanted, Training, evaluates_each_epoch
from .weights import load_weights, read_supernet

__all__ = ["BYTES_PER_VALUE", "TRAINING_COPIES", "DataWanted", "Fitted", "Training",
           "applicable_recipe", "bind_to_data", "check_batch", "check_memory", "device_from",
           "early_recipe", "evaluates_each_epoch", "fit", "load_data", "load_weights",
           "memory_needed", "read_supernet", "ready", "Ready", "refuse_beyond_free",
           "train_model", "with_classes"]
