"""The primitive layers of netdsl: what each takes in the DSL, how it shapes its output, and the
operation it becomes in the graph.

An `Op` is a layer described by torch's class name and constructor arguments, without torch:
parsing and validating a network never allocates weights. `netdsl.compile` turns Ops into
modules. Shapes are per image, without the batch: (channels, height, width) or (features,).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import NetdslError

Shape = tuple[int, ...]

REQUIRED = object()  # marks a primitive parameter that has no default


@dataclass(frozen=True)
class Op:
    """One layer: torch's class name (`Conv2d`, `BatchNorm`, ...) and its constructor arguments
    under torch's names, in torch's order. Hashable, so equal layers compare equal."""

    type: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def __repr__(self) -> str:
        return f"{self.type}({_REPRS.get(self.type, _no_repr)(self.kwargs)})"


def _pair(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value, value)


def _conv_repr(a: dict) -> str:
    # torch's _ConvNd.extra_repr: padding shown only when non-zero, groups only when not 1.
    text = (f"{a['in_channels']}, {a['out_channels']}, kernel_size={_pair(a['kernel_size'])}, "
            f"stride={_pair(a['stride'])}")
    if a["padding"] != 0:
        text += f", padding={_pair(a['padding'])}"
    if a["groups"] != 1:
        text += f", groups={a['groups']}"
    if not a["bias"]:
        text += ", bias=False"
    return text


def _no_repr(a: dict) -> str:
    return ""


# Each repr is torch's for the same constructor arguments, so graph listings read like the seed's
# printouts. Mul hides its weight as Page's Mul did; `--format json` shows it.
_REPRS: dict[str, Callable[[dict], str]] = {
    "Conv2d": _conv_repr,
    "BatchNorm": lambda a: (f"{a['num_features']}, eps={a['eps']}, momentum={a['momentum']}, "
                            "affine=True, track_running_stats=True"),
    "ReLU": lambda a: "inplace=True" if a["inplace"] else "",
    "GELU": lambda a: "approximate='none'",
    "CELU": lambda a: f"alpha={a['alpha']}" + (", inplace=True" if a["inplace"] else ""),
    "MaxPool2d": lambda a: (f"kernel_size={a['kernel_size']}, stride={a['stride']}, "
                            "padding=0, dilation=1, ceil_mode=False"),
    "AvgPool2d": lambda a: f"kernel_size={a['kernel_size']}, stride={a['stride']}, padding=0",
    "Linear": lambda a: (f"in_features={a['in_features']}, out_features={a['out_features']}, "
                         f"bias={a['bias']}"),
    "Dropout": lambda a: f"p={a['p']}, inplace=False",
}


# ---- argument checks: each names the primitive and the argument -------------------------------

def whole(value: Any, what: str, minimum: int = 1) -> int:
    """`value` as an int of at least `minimum`; integral floats (64.0 from a search) pass."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise NetdslError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise NetdslError(f"{what} must be at least {minimum}, got {int(value)}")
    return int(value)


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NetdslError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def switch(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise NetdslError(f"{what} must be true or false, got {value!r}")
    return value


def _image(shape: Shape, prim: str) -> Shape:
    if len(shape) != 3:
        raise NetdslError(f"{prim} needs an image input (channels, height, width), "
                          f"got shape {format_shape(shape)}")
    return shape


def format_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


# ---- the primitives -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Primitive:
    """A DSL primitive: its parameters (name, default or REQUIRED), how many inputs it takes, and
    `infer(args, input_shapes, exclusive) -> Op`, which checks the arguments against the inputs.
    `exclusive` is true when this node is the only reader of its input, so an in-place
    activation is safe."""

    name: str
    params: tuple[tuple[str, Any], ...]
    infer: Callable[[dict, list[Shape], bool], Op]
    inputs: tuple[int, int | None] = (1, 1)  # least and most inputs; None: no limit

    @functools.cached_property
    def switches(self) -> frozenset[str]:
        """Parameters that are true or false, so a bare name in a call sets them."""
        return frozenset(name for name, default in self.params if isinstance(default, bool))


def _conv(a, shapes, exclusive):
    c_in, h, w = _image(shapes[0], "conv")
    out = whole(a["c"], "conv: output channels")
    ks = whole(a["ks"], "conv: kernel size ks")
    stride = whole(a["stride"], "conv: stride")
    padding = ks // 2 if a["padding"] is None else whole(a["padding"], "conv: padding", 0)
    groups = whole(a["groups"], "conv: groups")
    bias = switch(a["bias"], "conv: bias")
    if c_in % groups or out % groups:
        raise NetdslError(f"conv: groups={groups} must divide the input channels ({c_in}) "
                          f"and the output channels ({out})")
    if ks > min(h, w) + 2 * padding:
        raise NetdslError(f"conv: kernel size {ks} does not fit the {h}x{w} input")
    return Op("Conv2d", (("in_channels", c_in), ("out_channels", out), ("kernel_size", ks),
                         ("stride", stride), ("padding", padding), ("groups", groups),
                         ("bias", bias)))


def _bn(a, shapes, exclusive):
    shape = shapes[0]
    if len(shape) not in (1, 3):
        raise NetdslError(f"bn needs an image or a flat input, got shape {format_shape(shape)}")
    return Op("BatchNorm", (("num_features", shape[0]), ("eps", number(a["eps"], "bn: eps")),
                            ("momentum", number(a["momentum"], "bn: momentum"))))


def _activation(type_: str, *extra: str):
    def infer(a, shapes, exclusive):
        args = tuple((key, number(a[key], f"{type_.lower()}: {key}")) for key in extra)
        if type_ in ("ReLU", "CELU"):
            args += (("inplace", exclusive),)
        return Op(type_, args)
    return infer


def _pool(type_: str):
    def infer(a, shapes, exclusive):
        prim = "maxpool" if type_ == "MaxPool2d" else "avgpool"
        c, h, w = _image(shapes[0], prim)
        if switch(a["global"], f"{prim}: global"):
            if h != w:
                raise NetdslError(f"{prim}(global) needs a square input, got {h}x{w}")
            k = stride = h
        else:
            k = whole(a["k"], f"{prim}: kernel size k")
            stride = k if a["stride"] is None else whole(a["stride"], f"{prim}: stride")
        if k > min(h, w):
            raise NetdslError(f"{prim}: kernel size {k} is larger than the {h}x{w} input")
        return Op(type_, (("kernel_size", k), ("stride", stride)))
    return infer


def _identity(a, shapes, exclusive):
    return Op("Identity")


def _add(a, shapes, exclusive):
    if len(set(shapes)) != 1:
        raise NetdslError("add: inputs must have the same shape, got "
                          + ", ".join(format_shape(s) for s in shapes))
    return Op("Add")


def _cat(a, shapes, exclusive):
    for shape in shapes:
        _image(shape, "cat")
    if len({s[1:] for s in shapes}) != 1:
        raise NetdslError("cat: inputs must have the same height and width, got "
                          + ", ".join(format_shape(s) for s in shapes))
    return Op("Cat")


def _flatten(a, shapes, exclusive):
    return Op("Flatten")


def _linear(a, shapes, exclusive):
    shape = shapes[0]
    if len(shape) != 1:
        raise NetdslError(f"linear needs a flat input, got shape {format_shape(shape)}: "
                          "put flatten before it")
    out = whole(a["out"], "linear: output features")
    return Op("Linear", (("in_features", shape[0]), ("out_features", out),
                         ("bias", switch(a["bias"], "linear: bias"))))


def _mul(a, shapes, exclusive):
    return Op("Mul", (("weight", number(a["w"], "mul: w")),))


def _dropout(a, shapes, exclusive):
    p = number(a["p"], "dropout: p")
    if not 0 <= p < 1:
        raise NetdslError(f"dropout: p must be in [0, 1), got {p}")
    return Op("Dropout", (("p", p),))


_POOL_PARAMS = (("k", 2), ("stride", None), ("global", False))

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in (
    Primitive("conv", (("c", REQUIRED), ("ks", 3), ("stride", 1), ("padding", None),
                       ("groups", 1), ("bias", False)), _conv),
    Primitive("bn", (("eps", 1e-5), ("momentum", 0.1)), _bn),
    Primitive("relu", (), _activation("ReLU")),
    Primitive("gelu", (), _activation("GELU")),
    Primitive("celu", (("alpha", 1.0),), _activation("CELU", "alpha")),
    Primitive("maxpool", _POOL_PARAMS, _pool("MaxPool2d")),
    Primitive("avgpool", _POOL_PARAMS, _pool("AvgPool2d")),
    Primitive("identity", (), _identity),
    Primitive("add", (), _add, inputs=(2, None)),
    Primitive("cat", (), _cat, inputs=(2, None)),
    Primitive("flatten", (), _flatten),
    Primitive("linear", (("out", REQUIRED), ("bias", False)), _linear),
    Primitive("mul", (("w", REQUIRED),), _mul),
    Primitive("dropout", (("p", 0.5),), _dropout),
)}


# ---- shape and cost ---------------------------------------------------------------------------

def output_shape(op: Op, shapes: list[Shape]) -> Shape:
    """The shape `op` gives for inputs of `shapes`, per image."""
    a = op.kwargs
    if op.type in ("Conv2d", "MaxPool2d", "AvgPool2d"):
        padding = a.get("padding", 0)
        c, h, w = shapes[0]
        h, w = ((size + 2 * padding - a["kernel_size"]) // a["stride"] + 1 for size in (h, w))
        return (a.get("out_channels", c), h, w)
    if op.type == "Linear":
        return (a["out_features"],)
    if op.type == "Flatten":
        return (math.prod(shapes[0]),)
    if op.type == "Cat":
        return (sum(s[0] for s in shapes), *shapes[0][1:])
    return shapes[0]


# ---- cost ---------------------------------------------------------------------------------------

def parameter_count(op: Op) -> int:
    """Trainable parameters of the layer (BatchNorm: its scale and shift)."""
    a = op.kwargs
    if op.type == "Conv2d":
        return (a["in_channels"] // a["groups"] * a["kernel_size"] ** 2 * a["out_channels"]
                + (a["out_channels"] if a["bias"] else 0))
    if op.type == "Linear":
        return a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)
    if op.type == "BatchNorm":
        return 2 * a["num_features"]
    return 0


def flop_count(op: Op, out_shape: Shape, n_inputs: int = 1) -> int:
    """Floating-point operations per image in the forward pass; a multiply-add counts as 2."""
    a = op.kwargs
    size = math.prod(out_shape)
    if op.type == "Conv2d":
        return 2 * size * (a["in_channels"] // a["groups"]) * a["kernel_size"] ** 2 + (
            size if a["bias"] else 0)
    if op.type == "Linear":
        return 2 * a["in_features"] * a["out_features"] + (a["out_features"] if a["bias"] else 0)
    if op.type == "BatchNorm":
        return 2 * size
    if op.type in ("MaxPool2d", "AvgPool2d"):
        return size * a["kernel_size"] ** 2
    if op.type == "Add":
        return size * (n_inputs - 1)
    if op.type in ("ReLU", "GELU", "CELU", "Mul"):
        return size
    return 0
