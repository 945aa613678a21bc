"""Every primitive, from its record alone (its `example` call): the shape, parameter count and
printout the record computes are those of the module torch builds, its graph prints back as
the same DSL, and each export format holds it or names it."""
import pytest
import torch

import netdsl
from conftest import ROOT
from netdsl import NetdslError
from netdsl.graph import PRIMITIVES

INPUT_SHAPE = (3, 8, 8)


def network(primitive) -> str:
    """A network ending in `primitive`'s example, fed what it takes: two images for a join, a
    flat input where an image does not fit."""
    if primitive.inputs[0] >= 2:
        return f"a: identity -> b: relu <- input -> x: {primitive.example} <- a, b"
    try:
        netdsl.load(f"x: {primitive.example}").bind(input_shape=INPUT_SHAPE)
        return f"x: {primitive.example}"
    except NetdslError:
        return f"f: flatten -> x: {primitive.example}"


@pytest.fixture(params=sorted(PRIMITIVES), ids=str)
def primitive(request):
    return PRIMITIVES[request.param]


def test_the_record_says_what_torch_builds(primitive):
    assert primitive.example, f"{primitive.name} needs an example call in its record"
    assert primitive.description, (f"{primitive.name} needs a line on what it computes "
                                   "(editors show it)")
    bound = netdsl.load(network(primitive)).bind(input_shape=INPUT_SHAPE)
    module = bound.module().eval()
    layer = module.node("x")
    assert repr(bound.graph["x"][0]) == repr(layer)
    assert bound.costs["x"][0] == sum(p.numel() for p in layer.parameters())
    with torch.no_grad():
        out = module(torch.randn(2, *INPUT_SHAPE))
    assert tuple(out.shape[1:]) == bound.shapes["x"] == bound.output_shape


def test_its_graph_prints_back_as_the_same_network(primitive):
    bound = netdsl.load(network(primitive)).bind(input_shape=INPUT_SHAPE)
    text = netdsl.to_text(bound)
    assert netdsl.load(text).bind(input_shape=INPUT_SHAPE).graph == bound.graph, text


@pytest.mark.parametrize("suffix", [".onnx", ".pt2", ".ts.pt"])
def test_each_export_format_holds_it_or_names_it(primitive, suffix, tmp_path):
    from netdsl.module.export import FORMATS, export

    bound = netdsl.load(network(primitive)).bind(input_shape=INPUT_SHAPE)
    try:
        written = export(bound, tmp_path / f"x{suffix}")
    except NetdslError as e:  # a format that cannot hold the layer says which and why
        assert str(e).startswith(f"{FORMATS[suffix]} cannot hold x ({primitive.op})"), e
        return
    assert written.stat().st_size > 0


def test_each_primitive_has_its_line_in_the_language_reference():
    reference = (ROOT / "docs" / "language.md").read_text()
    for name in PRIMITIVES:
        assert f"| `{name}" in reference, name
