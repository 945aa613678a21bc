"""A family is parsed once and bound many times; a bound network prints itself as DSL text from
the syntax tree, and that text is the same network."""
import lark
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import netdsl
from conftest import MODELS
from netdsl import NetdslError


def assert_prints_exactly(bound):
    """The printed text parses to the same graph, and prints again to the same text."""
    again = netdsl.load(bound.text).bind(input_shape=bound.input_shape)
    assert again.graph == bound.graph
    assert again.text == bound.text
    assert again.fingerprint == bound.fingerprint


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_prints_back_to_itself(path):
    assert_prints_exactly(netdsl.load(path).bind())


def values_for(family):
    """Random values of each parameter's kind, or of its choice; whole numbers stay small
    enough to build."""
    kinds = {"whole": st.integers(1, 24), "number": st.floats(0.01, 4, allow_nan=False),
             "switch": st.booleans()}
    points = family.choice_points
    return st.fixed_dictionaries({}, optional={
        name: st.sampled_from(points[name].values()) if name in points else kinds[p.kind]
        for name, p in family.parameters.items()})


FAMILIES = [netdsl.load(path) for path in MODELS]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_bindings_of_every_model_print_back(data):
    family = data.draw(st.sampled_from(FAMILIES))
    values = data.draw(values_for(family))
    try:
        bound = family.bind(values)
    except NetdslError:  # e.g. more classes than a choice allows: not this test's concern
        assume(False)
    assert_prints_exactly(bound)
    printed = netdsl.load(bound.text).bind(input_shape=bound.input_shape)
    assert printed.fingerprint == bound.fingerprint
    if not any(point.kind in ("item", "inputs") for point in bound.points.values()):
        # a family that chooses items prints its graph (Bound.text), without parameters
        assert printed.parameters == bound.parameters


def expressions(names):
    """Integer-valued expressions over the parameters `names`, with every operator."""
    leaves = st.integers(0, 9).map(str) | st.sampled_from(names)
    return st.recursive(leaves, lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "//"]), inner).map(
            # a divisor that is never zero, still written with //
            lambda t: (f"({t[0]} // (1 + {t[2]} * 0))" if t[1] == "//"
                       else f"({t[0]} {t[1]} {t[2]})")),
        inner.map(lambda e: f"-{e}")), max_leaves=6)


@st.composite
def generated_families(draw):
    """A family with whole-number parameters defined by expressions over earlier ones, a
    switch, a block with defaults, repeats, a condition and named inputs."""
    lines = ["param w = 4", "param deep = false"]
    names = ["w"]
    for i in range(draw(st.integers(0, 3))):
        lines.append(f"param p{i} = {draw(expressions(names))}")
        names.append(f"p{i}")
    lines.append("block pair(c, twice=false) {\n    a: conv(c)\n    b: relu if twice\n}")
    lines.append(f"stem: conv(w + 4 * {draw(st.sampled_from(names))} * 0) -> relu")
    for i, name in enumerate(draw(st.lists(st.sampled_from(names), max_size=3))):
        repeat = draw(st.sampled_from(["", " * 2", f" * (1 + {name} * 0)"]))
        lines.append(f"s{i}: pair(w, twice=not deep){repeat}")
    lines.append("side: conv(w) <- stem\nsum: add <- side, stem")
    lines.append("head(3, w=0.5 * 2 - 1 // 2)")
    return "\n".join(lines), names


@settings(max_examples=80, deadline=None)
@given(generated_families(), st.data())
def test_random_bindings_of_generated_families_print_back(generated, data):
    text, names = generated
    family = netdsl.load(text)
    values = data.draw(st.fixed_dictionaries({}, optional={
        "w": st.integers(1, 12), "deep": st.booleans(),
        **{name: st.integers(-3, 12) for name in names[1:]}}))
    bound = family.bind(values)
    assert_prints_exactly(bound)
    assert all(bound.parameters[name] == value for name, value in values.items())


@pytest.mark.parametrize("text", ["param w = 4 -> a(w, pool) -> head(3)",
                                  "param w = (4 +\n 4)\na(w, pool) -> head(3)"])
def test_texts_a_regex_broke_bind_to_what_they_mean(text):
    bound = netdsl.load(text).bind(w=16)
    assert bound.text == "param w = 16\na(w, pool)\nhead(3)\n"
    assert bound.graph["a/conv"][0].kwargs["out_channels"] == 16
    assert_prints_exactly(bound)


@pytest.mark.parametrize("expression, value", [
    ("10 - (4 - 3)", 9), ("10 - 4 - 3", 3), ("-(2 + 3)", -5), ("(1 + 2) * 3", 9),
    ("2 * (3 // 2)", 2), ("7 // 2 * 2", 6), ("- -2", 2), ("1.5e-3 * 1000", 1.5),
])
def test_expressions_print_with_the_parentheses_they_need(expression, value):
    family = netdsl.load(f"param v = {expression}\nparam s = not not true\na(4) -> head(2, w=v)")
    assert family.defaults()["v"] == value
    printed = netdsl.load(family.bind().text)
    assert printed.defaults() == family.defaults()
    assert printed.bind().text == family.bind().text


def test_a_family_is_parsed_once(monkeypatch):
    family = netdsl.load("models/resnet9.net")

    def no_parsing(*args, **kwargs):
        raise AssertionError("text parsed again")
    monkeypatch.setattr(lark.Lark, "parse", no_parsing)
    for width in (16, 32, 48):
        assert family.bind(prep=width).graph["prep/conv"][0].kwargs["out_channels"] == width


@pytest.mark.parametrize("value, switch, whole, number", [
    (True, True, False, False), (8, False, True, True), (64.0, False, True, True),
    (2.5, False, False, True), (float("inf"), False, False, True),
    (float("nan"), False, False, True), ("64", False, False, False), (None, False, False, False),
])
def test_one_rule_for_the_kinds_of_value(value, switch, whole, number):
    """The language's arguments, a family's parameters and the search's choices take values by
    this one rule: true/false is no number, and 64.0 (a search's draw) is a whole number."""
    from netdsl.graph import fits

    assert [fits(value, kind) for kind in ("switch", "whole", "number")] == [switch, whole, number]
    family = netdsl.load("param w = 4\nparam deep = false\na: conv(w) -> relu if deep")
    if whole:
        assert family.bind(w=value).graph["a"][0].kwargs["out_channels"] == int(value)
    elif switch:
        with pytest.raises(NetdslError, match="parameter 'w' takes a number"):
            family.bind(w=value)
