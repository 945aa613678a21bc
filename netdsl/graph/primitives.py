"""The primitive layers of netdsl, one record each: what the primitive takes in the DSL, how it
checks its inputs and shapes its output, what it costs, how it prints, how it is drawn and which
module it becomes.

An `Op` is a layer described by its class name and constructor arguments, without torch:
parsing and validating a network never allocates weights. The class name is the module's:
torch.nn's class of that name builds it, or netdsl's in netdsl/module/layers.py where torch
has none. Shapes are per image, without the batch: (channels, height, width) or (features,).

Adding a primitive is one `Primitive(...)` in `PRIMITIVES` below (its `example` puts it through
tests/test_primitives.py) and one line of docs/language.md's table; only where torch has no
such module, also its class in netdsl/module/layers.py.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import NetdslError

Shape = tuple[int, ...]
Args = dict[str, Any]

REQUIRED = object()  # marks a primitive parameter that has no default


@dataclass(frozen=True)
class Op:
    """One layer: its class name (`Conv2d`, `BatchNorm`, ...) and its constructor arguments
    under torch's names, in torch's order. Hashable, so equal layers compare equal."""

    type: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> Args:
        return dict(self.args)

    def __repr__(self) -> str:
        primitive = OPS.get(self.type)
        try:
            inner = primitive.repr(primitive.module_args(self.kwargs)) if primitive else ""
        except (KeyError, TypeError, ValueError):  # a hand-built Op lacking what torch shows
            inner = ", ".join(f"{key}={value!r}" for key, value in self.args)
        return f"{self.type}({inner})"


def _nothing(*_: Any) -> int:
    return 0


def _same_shape(a: Args, shapes: list[Shape]) -> Shape:
    return shapes[0]


def _no_repr(a: Args) -> str:
    return ""


def _elementwise(a: Args, out: Shape, shapes: list[Shape]) -> int:
    return math.prod(out)


@dataclass(frozen=True)
class Primitive:
    """A DSL primitive, whole.

    - `name`, `params` ((name, default or REQUIRED)), `inputs` (least and most; None: no
      limit): how it is called in the DSL.
    - `op`: the class name in the graph and the module.
    - `constructor_args(args, input_shapes)`: checks the DSL arguments against the inputs and
      gives the constructor arguments under torch's names; raises NetdslError naming the
      primitive and the argument.
    - `shape(op_args, input_shapes)`, `weights(op_args)`, `flops(op_args, output_shape,
      input_shapes)`: output shape per image, weights (torch's parameters, frozen ones too:
      "parameters" in netdsl are the DSL's `param`s), forward FLOPs per
      image (a multiply-add counts as 2).
    - `repr(op_args)`: torch's extra_repr for those arguments, so listings read like the
      seed's printouts.
    - `colour`: its fill in drawings.
    - `inplace`: it takes `inplace=True` when it is its input's only reader and that input's
      layer allows it (`overwritable`: keeps no copy of its output for the backward pass and
      does not return a view of its input).
    - `names`: (DSL argument, constructor argument) where the two names differ (`c` is
      `out_channels`); `module_defaults`: the constructor's defaults an Op written by hand may
      leave out. With them `dsl_candidates` reads an Op back as DSL arguments (`to_text`).
    - `example`: a call of it, for the tests that walk every primitive; `description`: one line
      on what it computes, for editors.
    """

    name: str
    op: str
    params: tuple[tuple[str, Any], ...]
    constructor_args: Callable[[Args, list[Shape]], tuple[tuple[str, Any], ...]]
    shape: Callable[[Args, list[Shape]], Shape] = _same_shape
    weights: Callable[[Args], int] = _nothing
    flops: Callable[[Args, Shape, list[Shape]], int] = _nothing
    repr: Callable[[Args], str] = _no_repr
    colour: str = "#d9d9d9"
    inputs: tuple[int, int | None] = (1, 1)
    inplace: bool = False
    overwritable: bool = False
    names: tuple[tuple[str, str], ...] = ()
    module_defaults: tuple[tuple[str, Any], ...] = ()
    example: str = ""
    description: str = ""

    @functools.cached_property
    def switches(self) -> frozenset[str]:
        """Parameters that are true or false, so a bare name in a call sets them."""
        return frozenset(name for name, default in self.params if isinstance(default, bool))

    def module_args(self, op_args: Args) -> Args:
        """`op_args` with the constructor's defaults for what an Op written by hand left out:
        what the module is built with."""
        return {**dict(self.module_defaults), **op_args}

    def dsl_candidates(self, op_args: Args) -> list[Args]:
        """DSL arguments that may make an Op with constructor arguments `op_args`, to try in
        turn: each switch alone (a pool's `global`), then every argument read back under its
        DSL name."""
        known = self.module_args(op_args)
        renamed = dict(self.names)
        read_back = {name: known[renamed.get(name, name)] for name, _ in self.params
                     if renamed.get(name, name) in known}
        return [*({name: True} for name in sorted(self.switches)), read_back]

    def infer(self, args: Args, shapes: list[Shape], exclusive: bool) -> Op:
        """The Op for DSL arguments `args` on inputs of `shapes`. `exclusive`: this node may
        overwrite its input (see `inplace`)."""
        op_args = self.constructor_args(args, shapes)
        if self.inplace:
            op_args += (("inplace", exclusive),)
        return Op(self.op, op_args)


# ---- the kinds of value: what the language, its parameters and the search accept -------------

def is_number(value: Any) -> bool:
    """An int or a float, not true or false (Python's bool is an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind_of(value: Any) -> str | None:
    """A parameter's kind from its default: "switch", "whole" or "number"; None for others."""
    if isinstance(value, bool):
        return "switch"
    return "whole" if isinstance(value, int) else "number" if isinstance(value, float) else None


def fits(value: Any, kind: str) -> bool:
    """Whether `value` may be given where `kind` is taken: an integral float (64.0, as a
    search draws it) is a whole number."""
    if isinstance(value, bool):
        return kind == "switch"
    if kind == "whole":  # an infinity or NaN is no integer
        return isinstance(value, int) or isinstance(value, float) and value.is_integer()
    return kind == "number" and isinstance(value, (int, float))


# ---- argument checks: each names the primitive and the argument -------------------------------

def whole(value: Any, what: str, minimum: int = 1) -> int:
    """`value` as an int of at least `minimum`; integral floats (64.0 from a search) pass."""
    if not fits(value, "whole"):
        raise NetdslError(f"{what} must be a whole number, got {value!r}")
    if value < minimum:
        raise NetdslError(f"{what} must be at least {minimum}, got {int(value)}")
    return int(value)


def number(value: Any, what: str) -> float:
    if not is_number(value) or not math.isfinite(value):
        raise NetdslError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def switch(value: Any, what: str) -> bool:
    if not fits(value, "switch"):
        raise NetdslError(f"{what} must be true or false, got {value!r}")
    return value


def _image(shape: Shape, prim: str) -> Shape:
    if len(shape) != 3:
        raise NetdslError(f"{prim} needs an image input (channels, height, width), "
                          f"got shape {format_shape(shape)}")
    return shape


def format_shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape)


def _pair(value: Any) -> tuple:
    return value if isinstance(value, tuple) else (value, value)


def _window(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a sliding window along one dimension (torch's formula)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ---- conv ---------------------------------------------------------------------------------------

def _conv(a: Args, shapes: list[Shape]):
    c_in, h, w = _image(shapes[0], "conv")
    out = whole(a["c"], "conv: output channels")
    ks = whole(a["ks"], "conv: kernel size ks")
    stride = whole(a["stride"], "conv: stride")
    dilation = whole(a["dilation"], "conv: dilation")
    # The default padding keeps the size at stride 1, for any kernel and dilation.
    padding = dilation * (ks - 1) // 2 if a["padding"] is None else whole(
        a["padding"], "conv: padding", 0)
    groups = whole(a["groups"], "conv: groups")
    bias = switch(a["bias"], "conv: bias")
    dirac = switch(a["dirac"], "conv: dirac")
    if c_in % groups or out % groups:
        raise NetdslError(f"conv: groups={groups} must divide the input channels ({c_in}) "
                          f"and the output channels ({out})")
    if dirac and groups != 1:
        raise NetdslError(f"conv: dirac starts filters as the identity and needs groups=1, "
                          f"got {groups}")
    if dilation * (ks - 1) + 1 > min(h, w) + 2 * padding:
        raise NetdslError(f"conv: kernel size {ks} (dilation {dilation}) does not fit the "
                          f"{h}x{w} input")
    return (("in_channels", c_in), ("out_channels", out), ("kernel_size", ks), ("stride", stride),
            ("padding", padding), ("dilation", dilation), ("groups", groups), ("bias", bias),
            ("dirac", dirac))


def _conv_shape(a: Args, shapes: list[Shape]) -> Shape:
    _, h, w = shapes[0]
    return (a["out_channels"], *(_window(size, a["kernel_size"], a["stride"], a["padding"],
                                         a["dilation"]) for size in (h, w)))


def _conv_weights(a: Args) -> int:
    return (a["in_channels"] // a["groups"] * a["kernel_size"] ** 2 * a["out_channels"]
            + (a["out_channels"] if a["bias"] else 0))


def _conv_flops(a: Args, out: Shape, shapes: list[Shape]) -> int:
    size = math.prod(out)
    return 2 * size * (a["in_channels"] // a["groups"]) * a["kernel_size"] ** 2 + (
        size if a["bias"] else 0)


def _conv_repr(a: Args) -> str:
    # torch's _ConvNd.extra_repr: padding shown only when non-zero, dilation when not 1,
    # groups when not 1.
    text = (f"{a['in_channels']}, {a['out_channels']}, kernel_size={_pair(a['kernel_size'])}, "
            f"stride={_pair(a['stride'])}")
    if a["padding"] != 0:
        text += f", padding={_pair(a['padding'])}"
    if a["dilation"] != 1:
        text += f", dilation={_pair(a['dilation'])}"
    if a["groups"] != 1:
        text += f", groups={a['groups']}"
    if not a["bias"]:
        text += ", bias=False"
    return text  # dirac is how the weights start, not the layer: torch prints no trace of it


# ---- whitening ----------------------------------------------------------------------------------

def _whiten(a: Args, shapes: list[Shape]):
    c, h, w = _image(shapes[0], "whiten")
    ks = whole(a["ks"], "whiten: kernel size ks")
    if ks > min(h, w):
        raise NetdslError(f"whiten: kernel size {ks} does not fit the {h}x{w} input")
    epochs = None if a["bias_epochs"] is None else whole(a["bias_epochs"], "whiten: bias_epochs", 0)
    return (("in_channels", c), ("kernel_size", ks), ("bias_epochs", epochs))


def _whiten_shape(a: Args, shapes: list[Shape]) -> Shape:
    c, h, w = shapes[0]
    k = a["kernel_size"]
    return (2 * c * k * k, h - k + 1, w - k + 1)


def _as_conv(a: Args) -> Args:
    """A whitening layer's arguments as the convolution it is: 2*C*k*k filters, with a bias."""
    return {**a, "out_channels": 2 * a["in_channels"] * a["kernel_size"] ** 2, "groups": 1,
            "bias": True}


# ---- normalisation and activations -------------------------------------------------------------

def _bn(a: Args, shapes: list[Shape]):
    shape = shapes[0]
    if len(shape) not in (1, 3):
        raise NetdslError(f"bn needs an image or a flat input, got shape {format_shape(shape)}")
    return (("num_features", shape[0]), ("eps", number(a["eps"], "bn: eps")),
            ("momentum", number(a["momentum"], "bn: momentum")),
            ("scale", switch(a["scale"], "bn: scale")))


def _no_args(a: Args, shapes: list[Shape]):
    return ()


def _celu(a: Args, shapes: list[Shape]):
    return (("alpha", number(a["alpha"], "celu: alpha")),)


def _inplace_repr(a: Args) -> str:
    return "inplace=True" if a["inplace"] else ""


# ---- pooling ------------------------------------------------------------------------------------

def _pool(prim: str):
    def check(a: Args, shapes: list[Shape]):
        c, h, w = _image(shapes[0], prim)
        if switch(a["global"], f"{prim}: global"):
            if h != w:
                raise NetdslError(f"{prim}(global) needs a square input, got {h}x{w}")
            k, stride, padding = h, h, 0
        else:
            k = whole(a["k"], f"{prim}: kernel size k")
            stride = k if a["stride"] is None else whole(a["stride"], f"{prim}: stride")
            padding = whole(a["padding"], f"{prim}: padding", 0)
            if 2 * padding > k:  # torch's own limit: padding at most half the kernel
                raise NetdslError(f"{prim}: padding {padding} is more than half the kernel "
                                  f"size {k}")
        if k > min(h, w) + 2 * padding:
            raise NetdslError(f"{prim}: kernel size {k} is larger than the {h}x{w} input")
        window: tuple[tuple[str, int | bool], ...] = (
            ("kernel_size", k), ("stride", stride), ("padding", padding))
        if prim == "avgpool":  # whether padded zeros count in the mean (NAS-Bench-201: no)
            window += (("count_include_pad", switch(a["pad_counts"], "avgpool: pad_counts")),)
        return window
    return check


def _pool_shape(a: Args, shapes: list[Shape]) -> Shape:
    c, h, w = shapes[0]
    return (c, *(_window(size, a["kernel_size"], a["stride"], a["padding"])
                 for size in (h, w)))


def _pool_flops(a: Args, out: Shape, shapes: list[Shape]) -> int:
    return math.prod(out) * a["kernel_size"] ** 2


# ---- joins, reshapes, the head ------------------------------------------------------------------

def _add(a: Args, shapes: list[Shape]):
    if len(set(shapes)) != 1:
        raise NetdslError("add: inputs must have the same shape, got "
                          + ", ".join(format_shape(s) for s in shapes))
    return ()


def _cat(a: Args, shapes: list[Shape]):
    for shape in shapes:
        _image(shape, "cat")
    if len({s[1:] for s in shapes}) != 1:
        raise NetdslError("cat: inputs must have the same height and width, got "
                          + ", ".join(format_shape(s) for s in shapes))
    return ()


def _mix(a: Args, shapes: list[Shape]):
    if len(set(shapes)) != 1:
        raise NetdslError(f"choice '{a['point']}': a differentiable search adds its options' "
                          "outputs, which must have one shape; they give "
                          + ", ".join(format_shape(s) for s in shapes))
    return (("point", a["point"]), ("selects", a["selects"]))


def _linear(a: Args, shapes: list[Shape]):
    shape = shapes[0]
    if len(shape) != 1:
        raise NetdslError(f"linear needs a flat input, got shape {format_shape(shape)}: "
                          "put flatten before it")
    return (("in_features", shape[0]), ("out_features", whole(a["out"], "linear: output features")),
            ("bias", switch(a["bias"], "linear: bias")))


def _dropout(a: Args, shapes: list[Shape]):
    p = number(a["p"], "dropout: p")
    if not 0 <= p < 1:
        raise NetdslError(f"dropout: p must be in [0, 1), got {p}")
    return (("p", p),)


_POOL_PARAMS = (("k", 2), ("stride", None), ("padding", 0), ("global", False))
_POOL_NAMES = (("k", "kernel_size"),)
_POOL_DEFAULTS = (("stride", None), ("padding", 0))
_ACTIVATION, _POOLING, _JOIN = "#bebada", "#fb8072", "#80b1d3"  # fills shared by a family of ops

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in (
    Primitive("conv", "Conv2d", (("c", REQUIRED), ("ks", 3), ("stride", 1), ("padding", None),
                                 ("dilation", 1), ("groups", 1), ("bias", False),
                                 ("dirac", False)), _conv,
              shape=_conv_shape, weights=_conv_weights, flops=_conv_flops,
              repr=_conv_repr, colour="#8dd3c7", overwritable=True,
              names=(("c", "out_channels"), ("ks", "kernel_size")),
              module_defaults=(("dilation", 1), ("groups", 1), ("bias", True), ("dirac", False)),
              example="conv(6, ks=3, stride=2, bias)",
              description=("2-d convolution to c channels; the default padding keeps the size, "
                           "no bias")),
    # Weights computed from training images before training (see module/layers.py Whiten).
    Primitive("whiten", "Whiten", (("ks", 2), ("bias_epochs", None)), _whiten,
              shape=_whiten_shape, weights=lambda a: _conv_weights(_as_conv(a)),
              flops=lambda a, out, shapes: _conv_flops(_as_conv(a), out, shapes),
              repr=lambda a: (f"{a['in_channels']}, {2 * a['in_channels'] * a['kernel_size'] ** 2}"
                              f", kernel_size=({a['kernel_size']}, {a['kernel_size']})"
                              + ("" if a["bias_epochs"] is None
                                 else f", bias_epochs={a['bias_epochs']}")),
              colour="#d9f0a3", overwritable=True, names=(("ks", "kernel_size"),),
              module_defaults=(("bias_epochs", None),), example="whiten(ks=2, bias_epochs=1)",
              description=("a fixed convolution set before training from the images' patch "
                           "covariance")),
    Primitive("bn", "BatchNorm", (("eps", 1e-5), ("momentum", 0.1), ("scale", True)), _bn,
              weights=lambda a: 2 * a["num_features"],  # scale and shift
              flops=lambda a, out, shapes: 2 * math.prod(out),
              repr=lambda a: (f"{a['num_features']}, eps={a['eps']}, momentum={a['momentum']}, "
                              "affine=True, track_running_stats=True"
                              + ("" if a["scale"] else ", scale=False")),
              colour="#ffffb3", overwritable=True,
              module_defaults=(("eps", 1e-5), ("momentum", 0.1), ("scale", True)),
              example="bn(eps=0.001, scale=false)",
              description="batch normalisation over channels (images) or features (flat)"),
    Primitive("relu", "ReLU", (), _no_args, flops=_elementwise, repr=_inplace_repr,
              colour=_ACTIVATION, inplace=True, example="relu",
              description="max(x, 0)"),
    Primitive("gelu", "GELU", (), _no_args, flops=_elementwise,
              repr=lambda a: "approximate='none'", colour=_ACTIVATION, example="gelu",
              description="the Gaussian error linear unit"),
    Primitive("celu", "CELU", (("alpha", 1.0),), _celu, flops=_elementwise,
              repr=lambda a: f"alpha={a['alpha']}" + (", inplace=True" if a["inplace"] else ""),
              colour=_ACTIVATION, inplace=True, example="celu(alpha=0.5)",
              description="the continuously differentiable exponential linear unit"),
    Primitive("silu", "SiLU", (), _no_args, flops=_elementwise, repr=_inplace_repr,
              colour=_ACTIVATION, inplace=True, example="silu",
              description="x * sigmoid(x)"),
    Primitive("maxpool", "MaxPool2d", _POOL_PARAMS, _pool("maxpool"), shape=_pool_shape,
              flops=_pool_flops, repr=lambda a: (
                  f"kernel_size={a['kernel_size']}, stride={a['stride']}, "
                  f"padding={a['padding']}, dilation=1, ceil_mode=False"),
              colour=_POOLING, overwritable=True, names=_POOL_NAMES,
              module_defaults=_POOL_DEFAULTS, example="maxpool(3, stride=2, padding=1)",
              description="the maximum over k x k windows; global: over the whole image"),
    Primitive("avgpool", "AvgPool2d", _POOL_PARAMS + (("pad_counts", True),), _pool("avgpool"),
              shape=_pool_shape, flops=_pool_flops,
              repr=lambda a: (f"kernel_size={a['kernel_size']}, stride={a['stride']}, "
                              f"padding={a['padding']}"),
              colour=_POOLING, overwritable=True,
              names=_POOL_NAMES + (("pad_counts", "count_include_pad"),),
              module_defaults=_POOL_DEFAULTS + (("count_include_pad", True),),
              example="avgpool(3, stride=1, padding=1, pad_counts=false)",
              description="the mean over k x k windows; global: over the whole image"),
    Primitive("identity", "Identity", (), _no_args, colour="#eeeeee", example="identity",
              description="its input, unchanged"),
    # Zeros of its input's shape: the "none" edge of NAS-Bench-201's cells.
    Primitive("zero", "Zero", (), _no_args, colour="#eeeeee", example="zero",
              description="zeros of its input's shape"),
    Primitive("add", "Add", (), _add, inputs=(2, None), colour=_JOIN, overwritable=True,
              flops=lambda a, out, shapes: math.prod(out) * (len(shapes) - 1), example="add",
              description="the sum of its inputs, of one shape"),
    Primitive("cat", "Cat", (), _cat, inputs=(2, None), colour=_JOIN, overwritable=True,
              shape=lambda a, shapes: (sum(s[0] for s in shapes), *shapes[0][1:]), example="cat",
              description="its inputs joined along the channels"),
    Primitive("flatten", "Flatten", (), _no_args, colour="#fdb462",
              shape=lambda a, shapes: (math.prod(shapes[0]),), example="flatten",
              description="each image as one vector"),
    Primitive("linear", "Linear", (("out", REQUIRED), ("bias", False)), _linear,
              shape=lambda a, shapes: (a["out_features"],),
              weights=lambda a: a["in_features"] * a["out_features"] + (
                  a["out_features"] if a["bias"] else 0),
              flops=lambda a, out, shapes: 2 * a["in_features"] * a["out_features"] + (
                  a["out_features"] if a["bias"] else 0),
              repr=lambda a: (f"in_features={a['in_features']}, "
                              f"out_features={a['out_features']}, bias={a['bias']}"),
              colour="#b3de69", overwritable=True, names=(("out", "out_features"),),
              module_defaults=(("bias", True),), example="linear(5, bias)",
              description="a fully connected layer to out features, without bias by default"),
    # Mul hides its weight in listings, as Page's Mul did; `--format json` shows it.
    Primitive("mul", "Mul", (("w", REQUIRED),),
              lambda a, shapes: (("weight", number(a["w"], "mul: w")),),
              flops=_elementwise, colour="#fccde5", overwritable=True,
              names=(("w", "weight"),), example="mul(0.25)",
              description="its input times the constant w"),
    Primitive("dropout", "Dropout", (("p", 0.5),), _dropout,
              repr=lambda a: f"p={a['p']}, inplace=False", example="dropout(0.2)",
              description="zeroes each value with probability p while training"),
)}

# A mixed choice's outputs weighed by its options' probabilities (differentiable search).
# Binding makes it, the text cannot write it: it is in OPS, not in PRIMITIVES.
MIX = Primitive("mix", "Mix", (("point", REQUIRED), ("selects", REQUIRED)), _mix,
                inputs=(1, None), colour=_JOIN,
                flops=lambda a, out, shapes: 2 * math.prod(out) * len(shapes),
                repr=lambda a: f"point={a['point']!r}",
                description="a choice's options, each output times its probability, summed")

OPS: dict[str, Primitive] = {p.op: p for p in (*PRIMITIVES.values(), MIX)}  # by class name


def primitive_of(op: Op) -> Primitive:
    try:
        return OPS[op.type]
    except KeyError:
        raise NetdslError(f"unknown op type '{op.type}' (known: {', '.join(OPS)})") from None


def output_shape(op: Op, shapes: list[Shape]) -> Shape:
    """The shape `op` gives for inputs of `shapes`, per image."""
    primitive = primitive_of(op)
    return primitive.shape(primitive.module_args(op.kwargs), shapes)


def weight_count(op: Op) -> int:
    """Weights of the layer (torch's parameters), frozen ones too (BatchNorm: its scale and
    shift)."""
    primitive = primitive_of(op)
    return primitive.weights(primitive.module_args(op.kwargs))


def flop_count(op: Op, out_shape: Shape, shapes: list[Shape]) -> int:
    """Floating-point operations per image in the forward pass; a multiply-add counts as 2."""
    primitive = primitive_of(op)
    return primitive.flops(primitive.module_args(op.kwargs), out_shape, shapes)
