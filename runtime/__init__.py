"""runtime: the shared trainer. It trains any nn.Module on a dataset kept whole on the device,
with the seed's fast ResNet recipe; it knows nothing of netdsl's language.

    images = runtime.load_images("cifar10")             # uint8 arrays in host memory, once
    data = runtime.DeviceData(images, "cuda")            # on the device, once
    for model in models:                                 # any number of runs on the same data
        result = runtime.train(model, data, runtime.Recipe(epochs=10))
"""
from .data import DataError, DeviceData, Images, default_data_dir, load_images
from .train import (COLUMNS, Epoch, OutOfMemory, Recipe, Result, default_device, environment,
                    evaluate, table_header, table_row, train)

__all__ = ["COLUMNS", "DataError", "DeviceData", "Epoch", "Images", "OutOfMemory", "Recipe",
           "Result", "default_data_dir", "default_device", "environment", "evaluate",
           "load_images", "table_header", "table_row", "train"]
