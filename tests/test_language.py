"""The DSL: what text means, and how bad text is reported."""
import pytest

import netdsl
from netdsl import NetdslError, flatten, parse

DESIGN = ("prep(64) -> layer1(112,pool,res) -> layer2(256,pool) -> layer3(384,pool,res) "
          "-> head(100, w=0.125)")


def kinds(text, **params):
    return {path: (op.type if op else None) for path, (op, _) in flatten(parse(text, **params)).items()}


def error(text, **params) -> NetdslError:
    with pytest.raises(NetdslError) as info:
        parse(text, **params)
    return info.value


# ---- the built-in stage and head -----------------------------------------------------------------

def test_stage_names_its_nodes_in_the_seed_order():
    graph = flatten(parse("s(16, pool, res, extra=2)"))
    assert list(graph)[1:] == [
        "s/conv", "s/bn", "s/relu", "s/pool",
        "s/residual/in", "s/residual/res1/conv", "s/residual/res1/bn", "s/residual/res1/relu",
        "s/residual/res2/conv", "s/residual/res2/bn", "s/residual/res2/relu", "s/residual/add",
        "s/extra/conv", "s/extra/bn", "s/extra/relu", "s/extra_1/conv", "s/extra_1/bn",
        "s/extra_1/relu"]
    assert graph["s/residual/add"][1] == ["s/residual/in", "s/residual/res2/relu"]


def test_input_channels_come_from_the_previous_stage():
    graph = flatten(parse("a(16) -> b(48, ks=5)"))
    conv = graph["b/conv"][0].kwargs
    assert (conv["in_channels"], conv["out_channels"], conv["kernel_size"], conv["padding"]) == (
        16, 48, 5, 2)
    assert graph["a/conv"][0].kwargs["in_channels"] == 3


def test_ks_reaches_every_conv_of_the_stage():
    graph = flatten(parse("a(8, res, extra=1, ks=5)"))
    sizes = {p: op.kwargs["kernel_size"] for p, (op, _) in graph.items() if op and op.type == "Conv2d"}
    assert set(sizes.values()) == {5} and len(sizes) == 4


def test_head_pools_over_what_is_left_and_scales_the_logits():
    graph = flatten(parse(DESIGN))
    assert repr(graph["pool"][0]) == ("MaxPool2d(kernel_size=4, stride=4, padding=0, dilation=1, "
                                      "ceil_mode=False)")
    assert graph["linear"][0].kwargs == {"in_features": 384, "out_features": 100, "bias": False}
    assert graph["logits"][0].kwargs == {"weight": 0.125}
    # On 64x64 images there is 8x8 left after three pools.
    big = flatten(parse(DESIGN, input_shape=(3, 64, 64)))
    assert big["pool"][0].kwargs["kernel_size"] == 8


def test_design_example_gives_the_seed_operations_listing(seed_operations):
    listing = netdsl.operations(parse(DESIGN))
    assert [line.strip(" ,[]") for line in listing.splitlines()] == seed_operations


def test_chains_may_span_lines_with_comments():
    text = """
    # a comment line
    prep(64)            # trailing comment
      -> layer1(128,
                pool)   # arguments may wrap inside parentheses

    layer2(256)         # a line break also joins
    """
    assert [p for p in kinds(text) if p.endswith("/conv")] == [
        "prep/conv", "layer1/conv", "layer2/conv"]


# ---- primitives, blocks, references ----------------------------------------------------------

def test_any_dag_from_primitives_and_blocks():
    text = """
    block twin(c) {
        in: identity
        a: conv(c, ks=1) <- in
        b: conv(c, ks=3) <- in
        both: cat <- a, b
    }
    stem: conv(8) -> t: twin(4) -> g: gelu -> e: celu(alpha=0.5)
    skip: add <- e, t/both/../both       # paths may climb with ..
    mp: maxpool(2) -> ap: avgpool(global) -> f: flatten -> d: dropout(0.2) -> l: linear(10, bias=true) -> m: mul(2)
    """
    graph = flatten(parse(text))
    assert graph["t/in"][1] == ["stem"]
    assert graph["t/a"][1] == ["t/in"] and graph["t/b"][1] == ["t/in"]
    assert graph["t/both"][1] == ["t/a", "t/b"]
    assert graph["skip"][1] == ["e", "t/both"]
    assert netdsl.shapes(graph, (3, 32, 32))["t/both"] == (8, 32, 32)
    assert [op.type for op, _ in graph.values() if op][-5:] == [
        "AvgPool2d", "Flatten", "Dropout", "Linear", "Mul"]
    types = {p: op.type for p, (op, _) in graph.items() if op}
    assert types["g"] == "GELU" and types["e"] == "CELU" and types["d"] == "Dropout"
    assert graph["l"][0].kwargs["bias"] is True


def test_inputs_on_a_block_call_feed_its_first_node():
    graph = flatten(parse("a: conv(8) -> b: conv(8) -> r: residual(8) <- a"))
    assert graph["r/in"][1] == ["a"]


def test_unlabelled_primitives_are_named_after_themselves():
    assert list(kinds("conv(8) -> relu -> conv(8) -> relu"))[1:] == [
        "conv", "relu", "conv_1", "relu_1"]


def test_repeat_and_condition():
    assert list(kinds("x: conv(8) * 3 -> y: relu if false -> z: relu if not false"))[1:] == [
        "x", "x_1", "x_2", "z"]
    assert list(kinds("x: conv(8) * 0 -> relu"))[1:] == ["relu"]


def test_forward_references_are_ordered_and_cycles_rejected():
    graph = flatten(parse("a: conv(8) -> b: add <- a, c -> c: conv(8) <- a"))
    assert list(graph) == ["input", "a", "c", "b"]
    e = error("a: conv(8) <- b\nb: conv(8) <- a")
    assert "cycle: a -> b -> a" in e.message and e.location.line == 1


def test_relu_works_in_place_only_when_that_is_safe():
    graph = flatten(parse("a: conv(8) -> r: relu -> s: relu -> t: add <- s, a"))
    assert graph["r"][0].kwargs["inplace"] is False  # `a` is read again by `t`
    graph = flatten(parse("a: conv(8) -> r: relu -> s: relu"))
    assert graph["r"][0].kwargs["inplace"] is True
    assert graph["s"][0].kwargs["inplace"] is False  # r's output is kept for r's backward


# ---- parameters -------------------------------------------------------------------------------

FAMILY = """
param width = 16
param deep = false
param scale = 0.5
a(width) -> b(2 * width, pool, res=deep) -> head(10, w=scale)
"""


def test_parameters_have_defaults_and_bind_by_keyword():
    graph = flatten(parse(FAMILY))
    assert graph["b/conv"][0].kwargs["out_channels"] == 32 and "b/residual/add" not in graph
    graph = flatten(parse(FAMILY, width=8, deep=True, scale=0.25))
    assert graph["b/conv"][0].kwargs["out_channels"] == 16 and "b/residual/add" in graph
    assert graph["logits"][0].kwargs["weight"] == 0.25
    assert flatten(parse(FAMILY, params={"width": 4}))["a/conv"][0].kwargs["out_channels"] == 4


def test_integral_floats_from_a_search_are_whole_numbers():
    assert flatten(parse(FAMILY, width=64.0))["a/conv"][0].kwargs["out_channels"] == 64


def test_binding_errors_name_the_parameter():
    assert "unknown parameter 'depth'" in error(FAMILY, depth=3).message
    assert "width, deep, scale" in error(FAMILY, depth=3).message
    assert "takes true or false" in error(FAMILY, deep=1).message
    assert "takes a number" in error(FAMILY, width=True).message
    assert "whole number" in error(FAMILY, width=12.5).message


def test_parameters_can_use_earlier_parameters():
    text = "param c = 8\nparam c2 = c * 2 + 1\nparam half = c // 3\nx: conv(c2) -> y: conv(half)"
    graph = flatten(parse(text))
    assert graph["x"][0].kwargs["out_channels"] == 17 and graph["y"][0].kwargs["out_channels"] == 2


def test_block_parameters_default_and_flag():
    text = """
    block unit(c, ks=3, act=true) {
        conv: conv(c, ks=ks)
        relu: relu if act
    }
    a: unit(8) -> b: unit(8, ks=1, act=false) -> c: unit(4, act)
    """
    kinds_ = kinds(text)
    assert "a/relu" in kinds_ and "b/relu" not in kinds_ and "c/relu" in kinds_


# ---- errors: what and where -------------------------------------------------------------------

@pytest.mark.parametrize("text, message, line, column", [
    ("prep(64) ->\n  layer1(128, pool", "expected", 2, 19),
    ("prep(64) -> layer1(128, pool) ->", "came too early", 1, 33),
    ("prep(64) $ layer1(128)", "unexpected character '$'", 1, 10),
    ("x: conv3(64)", "unknown block 'conv3'", 1, 4),
    ("prep(64) -> layer1(128, size=3)", "stage has no parameter 'size'", 1, 25),
    ("prep(64, 128, true, true, 2, 3, 9)", "stage takes at most 5 arguments", 1, 30),
    ("prep(64) -> layer1(0)", "output channels must be at least 1, got 0", 1, 13),
    ("prep(-64)", "output channels must be at least 1, got -64", 1, 1),
    ("prep(6.5)", "whole number", 1, 1),
    ("x: conv(8) -> y: add <- x, nothere", "'y' uses 'nothere', which is not in the network", 1, 22),
    ("a: conv(8) -> b: conv(16) -> c: add <- a, b", "add: inputs must have the same shape, got "
     "8x32x32, 16x32x32", 1, 33),
    ("a: conv(8) -> a: relu", "the name 'a' is already used", 1, 15),
    ("x: add", "add takes at least 2 inputs, got 1", 1, 4),
    ("a: conv(8) -> b: conv(8) <- a, input", "conv takes 1 input, got 2", 1, 26),
    ("block b(c) { b(c) }\nb(1)", "calls itself", 1, 14),
    ("conv(8) * 100000", "more than 1000", 1, 1),
    ("conv(1/0)", "division by zero", 1, 8),
    ("conv(8) -> maxpool(64)", "larger than the 32x32 input", 1, 12),
    ("param w = 2\nparam w = 3\nconv(w)", "declared twice", 2, 7),
    ("block conv(c) { x: relu }", "is a primitive", 1, 7),
    ("x: conv(8) <- ../input", "an input in '../input' climbs above the network", 1, 12),
    ("head(10) -> conv(8)", "conv needs an image input", 1, 13),
    ("", "defines no layers", None, None),
    ("conv(" + "-" * 5000 + "8)", "nest too deeply", None, None),
])
def test_errors_say_what_and_where(text, message, line, column):
    e = error(text)
    assert message in e.message
    if line is not None:
        assert (e.location.line, e.location.column) == (line, column)
        assert str(e).startswith(f"<string>:{line}:{column}: ")
        caret = str(e).splitlines()[2]
        assert caret.index("^") == 4 + column - 1
