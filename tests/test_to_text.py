"""`netdsl.to_text(graph)`: DSL text for any resolved graph (a Graph, Page's nested dict, the
JSON of `show --format json`) that parses back to the identical graph, with the built-in
blocks wherever the nodes are theirs."""
import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netdsl
from conftest import MODELS, ROOT
from netdsl import NetdslError
from netdsl.graph import Graph, Op
from test_bind import generated_families


def assert_round_trip(graph, input_shape=(3, 32, 32)):
    text = netdsl.to_text(graph, input_shape=input_shape)
    again = netdsl.load(text).bind(input_shape=input_shape).graph
    assert again == graph and list(again) == list(graph), text
    return text


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_round_trips(path):
    assert_round_trip(netdsl.load(path).bind().graph)


def test_resnet9_prints_as_its_one_liner():
    text = assert_round_trip(netdsl.load(ROOT / "models/resnet9.net").bind().graph)
    assert text == ("prep(64)\nlayer1(128, pool, res)\nlayer2(256, pool)\n"
                    "layer3(512, pool, res)\nhead(10)\n")


def test_the_json_of_show_and_a_nested_dict_round_trip():
    bound = netdsl.load(ROOT / "models/branches.net").bind()
    shown = subprocess.run([sys.executable, "-m", "netdsl", "show", "models/branches.net",
                            "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    text = netdsl.to_text(shown.stdout)
    assert netdsl.load(text).bind().graph == bound.graph
    assert netdsl.to_text(json.loads(shown.stdout)) == text
    assert netdsl.load(netdsl.to_text(bound.nested)).bind().graph == bound.graph
    assert "block mix1_block() {" in text and "mix2: mix1_block" in text  # one block, twice


def test_a_hand_built_graph_with_a_skip_and_a_fork():
    """Page's nested dict written by hand: explicit inputs, a branch read twice."""
    nested = {"input": (None, []),
              "a": {"conv": Op("Conv2d", (("in_channels", 3), ("out_channels", 8),
                                          ("kernel_size", 3), ("stride", 1), ("padding", 1),
                                          ("bias", False))),
                    "relu": Op("ReLU", (("inplace", False),))},
              "b": (Op("Conv2d", (("in_channels", 8), ("out_channels", 8), ("kernel_size", 1),
                                  ("stride", 1), ("padding", 0), ("bias", False))), ["a/relu"]),
              "sum": (Op("Add"), ["a/relu", "b"])}
    graph = netdsl.flatten(nested)
    text = netdsl.to_text(graph)
    again = netdsl.load(text).bind().graph
    assert list(again) == list(graph)
    assert all(again[p][1] == graph[p][1] for p in graph)
    assert "sum: add <- a/relu, b" in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_families(), st.data())
def test_random_graphs_round_trip(generated, data):
    text, names = generated
    values = data.draw(st.fixed_dictionaries({}, optional={
        "w": st.integers(1, 12), "deep": st.booleans(),
        **{name: st.integers(-3, 12) for name in names[1:]}}))
    assert_round_trip(netdsl.load(text).bind(values).graph)


def test_a_graph_with_an_op_the_language_cannot_make_is_an_error():
    bound = netdsl.load("a(4) -> head(2)").bind().graph
    graph = Graph({**bound, "a/conv": (Op("Conv3d", (("in_channels", 3),)), bound["a/conv"][1])})
    with pytest.raises(NetdslError, match="unknown op type .Conv3d."):
        netdsl.to_text(graph)
