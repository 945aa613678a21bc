"""Data package: the model files (installed as netdsl.models, so `netdsl.nb201` finds its space)."""
