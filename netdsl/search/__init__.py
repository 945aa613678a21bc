"""Search: NNI search spaces (space.py), the Optuna search loop and `fit_point` (loop.py), the
storage and its budget policy (storage.py), the stored search's views (study.py: trials,
best, plot) and the NNI trial (nni.py)."""
from .loop import check_space_fits, fingerprint, fit_point, split_values

__all__ = ["check_space_fits", "fingerprint", "fit_point", "split_values"]
