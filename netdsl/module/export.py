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

from ..errors import NetdslError
from ..files import write_atomically
from ..language import Bound

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

    from .memory import check_memory
    from .network import transfer_weights

    suffix = format_of(output)
    # onnxscript: what torch's exporter translates the program with; onnx: checks the file
    absent = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if suffix == ".onnx" and absent:
        raise NetdslError(f"ONNX export needs {' and '.join(absent)}: pip install "
                          f"'netdsl[export]' (or: pip install {' '.join(absent)})")
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
    import onnx
    import torch

    names = ["images"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]
    # The torch.export-based exporter (onnxscript translates it); its optimiser folds each
    # BatchNorm into the conv before it, as inference runs it. verbose=False: no progress lines
    # on the CLI's stdout.
    with warnings.catch_warnings():
        # A layer exported alone with several inputs (_culprit) gives each the one batch Dim on
        # purpose; torch warns, per input after the first, that the name is shared.
        warnings.filterwarnings("ignore", category=UserWarning,
                                message="# The axis name: batch will not be used")
        program = torch.onnx.export(model, inputs, dynamo=True, opset_version=ONNX_OPSET,
                                    input_names=names, output_names=["logits"],
                                    dynamic_shapes=_any_batch(model, inputs),
                                    optimize=True, verbose=False)
    assert program is not None  # dynamo=True's ONNXProgram: None is the legacy exporter's
    proto = program.model_proto
    if hasattr(model, "paths"):
        _name_by_path(proto, model)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def _name_by_path(proto, model) -> None:
    """Rename nodes `node_Conv_12` to `layer1/conv` (`gelu/Erf`, `gelu/Mul_1`... where one
    module makes several nodes) and weights `layer1_conv.weight` to `layer1/conv/weight`;
    weights the exporter made itself (a BatchNorm's shift folded into the conv before it) are
    named after the node that reads them: `layer1/conv/bias`.

    The exporter records in each node's metadata the module stack it came from
    (`pkg.torch.onnx.name_scopes`: `['', 'layer1_bn', '_native_batch_norm...']`); a folded
    conv keeps its BatchNorm's, so a node reading the weight of a module left with no node of
    its own is that module's node."""
    import ast

    parameters = set(model.state_dict())
    weights = {i.name for i in proto.graph.initializer}

    def scope(node) -> str | None:
        for prop in node.metadata_props:
            if prop.key == "pkg.torch.onnx.name_scopes":
                stack = ast.literal_eval(prop.value)
                return stack[1] if len(stack) > 1 and stack[1] in model.paths else None
        return None

    # Kept by position: protobuf makes the node objects afresh at each read.
    child_of = [scope(node) for node in proto.graph.node]
    scoped = set(child_of)
    for position, node in enumerate(proto.graph.node):
        owners = [name.partition(".")[0] for name in node.input if name in parameters]
        folded = [child for child in owners if child not in scoped]
        if folded:
            child_of[position] = folded[0]
    by_module: dict[str, list] = {}
    for child, node in zip(child_of, proto.graph.node):
        if child is not None:
            by_module.setdefault(child, []).append(node)
    for child, nodes in by_module.items():
        seen: dict[str, int] = {}  # GELU is Div, Erf, Add, Mul, Mul: each named apart
        for node in nodes:
            n = seen[node.op_type] = seen.get(node.op_type, -1) + 1
            node.name = model.paths[child] if len(nodes) == 1 else \
                f"{model.paths[child]}/{node.op_type}" + (f"_{n}" if n else "")
    renamed = {name: model.path_of(name) for name in weights if name in parameters}
    for nodes in by_module.values():
        for node in nodes:
            role = _ROLES.get(node.op_type, ())
            for index, name in enumerate(node.input):
                if name in weights and name not in renamed:
                    renamed[name] = f"{node.name}/{role[index] if index < len(role) else index}"
    for initializer in proto.graph.initializer:
        initializer.name = renamed.get(initializer.name, initializer.name)
    for value in proto.graph.value_info:  # the exporter records the weights' shapes there too
        value.name = renamed.get(value.name, value.name)
    for node in proto.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]


_ROLES = {"Conv": ("input", "weight", "bias"), "Gemm": ("input", "weight", "bias"),
          "MatMul": ("input", "weight"), "Mul": ("input", "weight")}  # ONNX inputs by position


def _pt2(model, inputs: tuple) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    program = torch.export.export(model, inputs, dynamic_shapes=_any_batch(model, inputs))
    torch.export.save(program, buffer)
    return buffer.getvalue()


def _any_batch(model, inputs: tuple):
    """torch.export's `dynamic_shapes` leaving every input's batch size (dimension 0) free, one
    size for all, shaped as `model.forward`'s signature wants it (`x`, or `*inputs` for a layer
    exported alone)."""
    import torch

    batch = torch.export.Dim("batch")
    shapes = torch.export.ShapesCollection()
    for tensor in inputs:
        shapes[tensor] = {0: batch}
    return shapes.dynamic_shapes(model, inputs)


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


def _first_line(error: BaseException) -> str:
    while error.__cause__ is not None:  # torch.onnx's error wraps torch.export's, which says why
        error = error.__cause__
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
