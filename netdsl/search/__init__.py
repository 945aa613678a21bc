"""Search: NNI search spaces (space.py); a search's values and `fit_point` (values.py), its
options, sampler and pruner (options.py), one trial (objective.py), repeats (twins.py) and
the loop (loop.py); the storage and its budget policy (storage.py), the stored search's views
(study.py: trials, best, plot) and the NNI trial (nni.py)."""
from .values import check_space_fits, fingerprint, fit_point, split_values

__all__ = ["check_space_fits", "fingerprint", "fit_point", "split_values"]
