"""`netdsl export`: a network (with trained weights, or freshly initialised) as a file other tools
open: ONNX (Netron, onnxruntime), a `torch.export` program (.pt2) or TorchScript (.ts.pt).

In the ONNX file every node and weight is named by its DSL path (`layer1/residual/res2/conv`,
`layer1/residual/res2/conv/weight`), so Netron shows the network's own names; .pt2 and .ts.pt
keep the module's names (`layer1_residual_res2_conv.weight`: torch allows no `/` in them).
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

from .errors import NetdslError
from .files import write_atomically
from .language import Bound

FORMATS = {".onnx": "ONNX", ".pt2": "torch.export", ".ts.pt": "TorchScript"}
ONNX_OPSET = 18
EXAMPLE_BATCH = 2  # images the exporters trace the network with


def format_of(path: Path) -> str:
    """The export format a file name asks for, by its suffix."""
    name = path.name.lower()  # .ONNX is .onnx, as `draw -o X.SVG` is .svg
    suffix = ".ts.pt" if name.endswith(".ts.pt") else Path(name).suffix
    if suffix not in FORMATS:
        raise NetdslError(f"cannot export to '{path}': the name must end in "
                          f"{', '.join(FORMATS)}")
    return suffix


def export(bound: Bound, output: Path, weights: dict[str, Any] | None = None) -> Path:
    """Write `bound`'s network to `output` (format from its suffix), with `weights` (path-keyed,
    from --save-weights) when given; the file appears whole or not at all."""
    import torch

    from .fit import check_memory
    from .module.network import transfer_weights

    suffix = format_of(output)
    if suffix == ".onnx" and importlib.util.find_spec("onnx") is None:
        raise NetdslError("ONNX export needs the onnx package: pip install 'netdsl[export]' "
                          "(or: pip install onnx)")
    check_memory(bound, EXAMPLE_BATCH, torch.device("cpu"), training=False)
    model = bound.module().eval()
    if weights is not None:
        report = transfer_weights(weights, model)
        missing = sorted(path for path, how in report.items() if how != "copied")
        extra = [path for path in weights if path not in report]
        if missing or extra:
            problem = (f"{missing[0]} ({report[missing[0]]})" if missing else
                       f"they hold {extra[0]}, which this network has not")
            raise NetdslError(f"the weights are not this network's: {problem}; export them "
                              "with the network they were saved from")
    example = (torch.randn(EXAMPLE_BATCH, *bound.input_shape),)
    try:
        data = _EXPORTERS[suffix](model, example)
    except Exception as e:  # exporters fail in many ways: find the layer that cannot go
        raise NetdslError(_culprit(bound, model, suffix, e)) from None
    return write_atomically(output, data)


def _onnx(model, inputs: tuple) -> bytes:
    import io

    import onnx
    import torch

    buffer = io.BytesIO()
    names = ["images"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]
    # The TorchScript-based exporter names each node after its module (/layer1_conv/Conv):
    # what lets the nodes be renamed to DSL paths below.
    torch.onnx.export(model, inputs, buffer, dynamo=False, opset_version=ONNX_OPSET,
                      input_names=names, output_names=["logits"],
                      dynamic_axes={name: {0: "batch"} for name in [*names, "logits"]})
    proto = onnx.load_from_string(buffer.getvalue())
    if hasattr(model, "paths"):
        _name_by_path(proto, model)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def _name_by_path(proto, model) -> None:
    """Rename nodes `/layer1_conv/Conv` to `layer1/conv` (`gelu/Erf`, `gelu/Mul_1`... where one
    module makes several nodes) and weights `layer1_conv.weight` to `layer1/conv/weight`;
    weights the exporter made itself (a BatchNorm folded into the conv before it) are named
    after the node that reads them: `layer1/conv/bias`."""
    by_module: dict[str, list] = {}
    for node in proto.graph.node:
        child = node.name.strip("/").split("/")[0]
        if child in model.paths:
            by_module.setdefault(child, []).append(node)
    for child, nodes in by_module.items():
        seen: dict[str, int] = {}  # GELU is Div, Erf, Add, Mul, Mul: each named apart
        for node in nodes:
            n = seen[node.op_type] = seen.get(node.op_type, -1) + 1
            node.name = model.paths[child] if len(nodes) == 1 else \
                f"{model.paths[child]}/{node.op_type}" + (f"_{n}" if n else "")
    named = {node.name for nodes in by_module.values() for node in nodes}
    weights = {i.name for i in proto.graph.initializer}
    renamed = {name: model.path_of(name) for name in weights if "." in name}
    for node in proto.graph.node:
        if node.name in named:
            role = _ROLES.get(node.op_type, ())
            for index, name in enumerate(node.input):
                if name in weights and name not in renamed:
                    renamed[name] = f"{node.name}/{role[index] if index < len(role) else index}"
    for initializer in proto.graph.initializer:
        initializer.name = renamed.get(initializer.name, initializer.name)
    for node in proto.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]


_ROLES = {"Conv": ("input", "weight", "bias"), "Gemm": ("input", "weight", "bias"),
          "MatMul": ("input", "weight"), "Mul": ("input", "weight")}  # ONNX inputs by position


def _pt2(model, inputs: tuple) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    batch = torch.export.Dim("batch")  # any batch size, as the ONNX file takes
    program = torch.export.export(model, inputs, dynamic_shapes=tuple({0: batch} for _ in inputs))
    torch.export.save(program, buffer)
    return buffer.getvalue()


def _torchscript(model, inputs: tuple) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.14 deprecates TorchScript (docs/commands.md says so); asked for, it is meant
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit")
        # Traced: the forward is a loop over the graph, the same for every input.
        torch.jit.save(torch.jit.trace(model, inputs), buffer)
    return buffer.getvalue()


_EXPORTERS = {".onnx": _onnx, ".pt2": _pt2, ".ts.pt": _torchscript}


def _culprit(bound: Bound, model, suffix: str, error: Exception) -> str:
    """Why the export failed, naming the first layer the format cannot hold (each layer is
    exported alone, in graph order, to find it)."""
    import torch

    class Alone(torch.nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.layer = layer

        def forward(self, *inputs):
            return self.layer(*inputs)

    for path, (op, inputs) in bound.graph.items():
        if op is None:
            continue
        example = tuple(torch.randn(EXAMPLE_BATCH, *bound.shapes[i]) for i in inputs)
        try:
            _EXPORTERS[suffix](Alone(model.node(path)).eval(), example)
        except Exception as e:
            return f"{FORMATS[suffix]} cannot hold {path} ({op.type}): {_first_line(e)}"
    return f"{FORMATS[suffix]} export failed: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
