"""Page's graph form: flattening, listings, JSON and the summary."""
import json

import pytest

import netdsl
from netdsl import Op, flatten, parse
from conftest import MODELS


# Page's cifar10-fast (the version the seed used), kept here as the oracle for `flatten`.
def page_path_iter(nested_dict, pfx=()):
    for name, val in nested_dict.items():
        if isinstance(val, dict):
            yield from page_path_iter(val, (*pfx, name))
        else:
            yield ((*pfx, name), val)


def page_normpath(path):
    parts = []
    for p in path.split("/"):
        if p == "..":
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def page_build_graph(net):
    flattened = [("/".join(path), (node if isinstance(node, tuple) else (node, [-1])))
                 for (path, node) in page_path_iter(net)]

    def resolve_input(rel_path, path, idx):
        if isinstance(rel_path, str):
            return page_normpath("/".join((path, "..", rel_path)))
        return flattened[idx + rel_path][0]

    return {path: (node[0], [resolve_input(rel, path, idx) for rel in node[1]])
            for idx, (path, node) in enumerate(flattened)}


DAG = """
block twin(c) {
    in: identity
    a: conv(c, ks=1) <- in
    b: conv(c) <- in
    both: cat <- a, b
}
stem: conv(8) -> t: twin(4) -> deep: stage(8, res) -> skip: add <- t/both, deep/residual/add
"""


@pytest.mark.parametrize("nested", [parse(DAG)] + [netdsl.load(m).bind().nested for m in MODELS],
                         ids=["dag"] + [m.stem for m in MODELS])
def test_flatten_resolves_paths_exactly_as_pages_build_graph(nested):
    assert dict(flatten(nested)) == page_build_graph(nested)


def test_nested_form_is_pages():
    net = parse("a(8, res) -> head(10)")
    assert net["input"] == (None, [])
    assert set(net["a"]) == {"conv", "bn", "relu", "residual"}
    assert isinstance(net["a"]["conv"], Op)
    assert net["a"]["residual"]["add"] == (Op("Add"), ["in", "res2/relu"])


def test_flatten_takes_hand_built_graphs_and_names_bad_inputs():
    conv = Op("Conv2d", (("in_channels", 3), ("out_channels", 4), ("kernel_size", 3),
                         ("stride", 1), ("padding", 1), ("groups", 1), ("bias", False)))
    graph = flatten({"input": (None, []), "block": {"c": conv, "d": (Op("Add"), ["c", "../input"])}})
    assert graph["block/d"] == (Op("Add"), ["block/c", "input"])
    with pytest.raises(netdsl.NetdslError, match="'x' uses 'nowhere'"):
        flatten({"input": (None, []), "x": (conv, ["nowhere"])})


def test_json_lists_resolved_nodes_with_torch_argument_names():
    nodes = json.loads(netdsl.to_json(flatten(parse("a(16, pool, res) -> head(10)"))))
    assert nodes[0] == {"name": "input", "op": None, "args": {}, "inputs": []}
    by_name = {n["name"]: n for n in nodes}
    assert by_name["a/conv"] == {"name": "a/conv", "op": "Conv2d", "inputs": ["input"], "args": {
        "in_channels": 3, "out_channels": 16, "kernel_size": 3, "stride": 1, "padding": 1,
        "dilation": 1, "groups": 1, "bias": False, "dirac": False}}
    assert by_name["a/bn"]["args"]["num_features"] == 16
    assert by_name["a/residual/add"]["inputs"] == ["a/residual/in", "a/residual/res2/relu"]
    assert by_name["linear"]["args"] == {"in_features": 16, "out_features": 10, "bias": False}
    assert by_name["logits"]["op"] == "Mul" and by_name["logits"]["args"] == {"weight": 0.125}
    assert {n["op"] for n in nodes} == {None, "Conv2d", "BatchNorm", "ReLU", "MaxPool2d",
                                        "Identity", "Add", "Flatten", "Linear", "Mul"}


def test_summary_shapes_parameters_and_flops():
    text = netdsl.load("a: conv(8) -> b: bn -> s(4, pool)").bind().summary()
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    # conv 3->8, 3x3, on 32x32: 216 weights; 2 FLOPs per multiply-add
    assert rows["a"][1:] == ["Conv2d", "8x32x32", "216", f"{2 * 3 * 9 * 8 * 32 * 32:,}"]
    assert rows["b"][1:4] == ["BatchNorm", "8x32x32", "16"]
    assert rows["s/pool"][2] == "4x16x16"
    stage = 8 * 9 * 4 + 8  # s/conv weights + s/bn scale and shift
    assert rows["s"][:2] == ["s", "(total)"] and rows["s"][2] == f"{stage:,}"
    assert rows["total"][1] == f"{216 + 16 + stage:,}"


# ---- one order: execution ----------------------------------------------------------------------

FORWARD = ["a: conv(4) -> h: linear(10) <- p -> p: flatten <- a",
           "a: conv(4) -> f: flatten <- p -> p: maxpool(2) <- a -> linear(10) <- f"]


@pytest.mark.parametrize("text", FORWARD + [DAG], ids=["head", "pool", "dag"])
def test_a_bound_graph_is_in_execution_order_and_its_output_is_the_modules(text):
    import torch

    bound = netdsl.load(text).bind()
    order = list(bound.graph)
    assert order[0] == "input" and list(bound.shapes) == order
    for index, (path, (_, inputs)) in enumerate(bound.graph.items()):
        assert all(order.index(source) < index for source in inputs), path
    assert list(flatten(bound.nested)) == order
    module = netdsl.compile(text).eval()
    assert tuple(module(torch.zeros(2, 3, 32, 32)).shape[1:]) == bound.output_shape


def test_a_graph_written_by_hand_is_ordered_once_and_keeps_its_order():
    """Made from nodes in any order: the input first, each node after its inputs, each node's
    readers listed; it cannot be changed afterwards, so the module and every listing read the
    same order."""
    import torch

    relu, add = Op("ReLU", ()), Op("Add", ())
    graph = netdsl.Graph({"sum": (add, ["a", "b"]), "b": (relu, ["a"]), "a": (relu, ["input"]),
                          "input": (None, [])})
    assert list(graph) == ["input", "a", "b", "sum"] and graph.output == "sum"
    assert graph.readers == {"input": ["a"], "a": ["b", "sum"], "b": ["sum"], "sum": []}
    with pytest.raises(TypeError):
        graph["c"] = (relu, ["sum"])
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(netdsl.compile(graph)(x), 2 * x.relu())
    assert netdsl.shapes(graph, (3, 4, 4))["sum"] == (3, 4, 4)


@pytest.mark.parametrize("text", FORWARD, ids=["head", "pool"])
def test_a_network_written_before_its_inputs_prints_back(text):
    nested = netdsl.parse(text)
    again = netdsl.graph_of(netdsl.to_text(nested))
    assert dict(again) == dict(flatten(nested))


def test_a_head_written_before_its_input_trains_for_the_datasets_classes(tmp_path):
    """It was refused: "the network gives 4096 outputs per image", the last node written."""
    from conftest import netdsl_cli
    from test_datasets import make_mnist

    make_mnist(tmp_path, "MNIST")
    run = netdsl_cli("run", "-e", FORWARD[0], "--dataset", "mnist", "--data-dir", str(tmp_path),
                     "--epochs", "1", "--batch-size", "20", "--cutout", "0", "--quiet",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("finished: valid acc")
