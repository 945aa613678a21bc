"""The shared trainer, the folder runtime/, installed as the package `netdsl_runtime` (a
top-level name of netdsl's own: `runtime` is another PyPI project's). It trains any nn.Module
on a dataset kept whole on the device, with the seed's fast ResNet recipe, airbench's, or any
recipe between; it knows nothing of netdsl's language.

    import netdsl_runtime as runtime
    images = runtime.load_images("cifar10")             # uint8 arrays in host memory, once
    data = runtime.DeviceData(images, "cuda")            # on the device, once
    for model in models:                                 # any number of runs on the same data
        result = runtime.train(model, data, runtime.Recipe(epochs=10))
    runtime.load_recipe("airbench94")                    # a preset (runtime/recipes/) or a file

`Recipe` loads without torch (a command line can describe it cheaply); everything else
imports torch on first use.
"""
from importlib import import_module
from typing import Any

from .recipe import PRECISIONS, Recipe, RecipeError, load_recipe, presets

_LAZY = {
    "bilevel": ("ArchitectureSteps", "Searched", "search", "unrolled_gradients"),
    "data": ("DeviceData",),
    "images": ("DataError", "Images", "default_data_dir", "load_images"),
    "machine": ("AUTOCAST_DTYPES", "choose_precision", "default_device", "environment",
                "free_memory", "now"),
    "muon": ("Muon",),
    "trainer": ("train",),
    "results": ("COLUMNS", "Epoch", "Evaluation", "OutOfMemory", "Result", "table_header",
                "table_row"),
    "groups": ("check_fits", "unmatched_entries"),
    "evaluation": ("check_outputs", "predict", "validate"),
    "init": ("initialise_from_data",),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["PRECISIONS", "Recipe", "RecipeError", "load_recipe", "presets", *_WHERE]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'netdsl_runtime' has no attribute '{name}'")
    value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
