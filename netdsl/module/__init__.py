"""From a checked graph to what people use: the nn.Module (network.py, built from the classes in
layers.py), weight transfer by node path, and the drawing (draw.py). Only network.py and
layers.py import torch; import them directly, so drawing stays free of it."""
