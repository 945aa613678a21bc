"""Random and mutated DSL text: netdsl either accepts it or raises NetdslError, nothing else."""
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import netdsl
from netdsl import NetdslError

VALID = [
    "prep(64) -> layer1(112,pool,res) -> layer2(256,pool) -> layer3(384,pool,res) -> head(100, w=0.125)",
    "param c = 16\nparam r = true\na(c) -> b(2*c, pool, res=r, extra=1, ks=5) -> head(10)",
    "block twin(c) {\n in: identity\n a: conv(c, ks=1) <- in\n b: conv(c) <- in\n j: cat <- a, b\n}\n"
    "s: conv(8) -> t: twin(4) -> k: add <- s, t/j -> p: avgpool(global) -> flatten -> linear(3)",
    "x: conv(8) * 2 -> y: relu if not false -> z: dropout(0.1) -> g: gelu -> c: celu(alpha=0.5)",
]
TOKENS = ["prep", "layer1", "head", "conv", "bn", "relu", "add", "cat", "identity", "maxpool",
          "linear", "flatten", "mul", "block", "param", "if", "not", "true", "false", "res",
          "pool", "extra", "ks", "w", "global", "(", ")", "{", "}", ",", ":", "=", "->", "<-",
          "*", "/", "//", "+", "-", "..", "\n", " ", "#", "0", "1", "3", "64", "-1", "1e9",
          "0.5", "x", "in", "res2/relu", "../input"]

fuzz = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def accepts_or_explains(text, **params):
    try:
        graph = netdsl.flatten(netdsl.parse(text, **params))
    except NetdslError as e:
        assert e.message and str(e)
        if e.location is not None:
            assert 1 <= e.location.line and 1 <= e.location.column
        return
    assert "input" in graph


@fuzz
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_token_soup(text):
    accepts_or_explains(text)


@fuzz
@given(st.text(alphabet=string.printable + "é→\x00", max_size=80))
def test_random_text(text):
    accepts_or_explains(text)


@fuzz
@given(st.sampled_from(VALID), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 3),
                                                  st.sampled_from(TOKENS + list("(),:=-<>*"))),
                                        min_size=1, max_size=4))
def test_mutated_valid_text(text, edits):
    for position, kind, token in edits:
        position %= len(text) + 1
        if kind == 0:    # delete a character
            text = text[:position] + text[position + 1:]
        elif kind == 1:  # insert a token
            text = text[:position] + token + text[position:]
        elif kind == 2:  # replace a character
            text = text[:position] + token + text[position + 1:]
        else:            # cut the text short
            text = text[:position]
    accepts_or_explains(text)


@fuzz
@given(st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=True), st.booleans(),
                 st.text(max_size=3), st.none()))
def test_any_parameter_value(value):
    accepts_or_explains(VALID[1], c=value)
