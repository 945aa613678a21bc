"""What `netdsl space` counts and `netdsl check` checks: points fixed by --set are no choice,
distinct networks rather than combinations where the survey can tell, every value it says it
bound, ranges and inputs' combinations never listed, repeated choices bound once per class."""
import itertools
import json
import math
import os
import random

import pytest

import netdsl
from conftest import clear_error, netdsl_cli
from netdsl import NetdslError
from netdsl.language import Family
from netdsl.language.choices import Combinations, drawn_at_random

NESTED = """\
param n = range(1, 4)
block t(c) {
    x: choice(conv(c), identity)
}
a: conv(8) -> s: t(8) * n
"""

REPEATED = """\
block b(c) {
    mix: choice(conv_bn(c), conv_bn(c, ks=5), identity, zero, relu)
}
stem: conv(8) -> x: b(8) * N
"""


def bindings_of(family: Family, monkeypatch) -> list:
    """Every binding `family` makes from now on, by its values: how a survey spends its time."""
    made, bind = [], Family.bind

    def counted(self, *args, **kwargs):
        made.append(args[0] if args else None)
        return bind(self, *args, **kwargs)

    monkeypatch.setattr(Family, "bind", counted)
    return made


# ---- --set: a point it fixes is no choice (item 3) ------------------------------------------

def test_a_point_set_is_no_choice_and_the_count_drops(tmp_path):
    space = netdsl.load("models/nb201.net").space({"e1_0": "none"})
    assert (space.count, space.distinct, space.fixed) == (3125, True, ("e1_0",))
    assert "e1_0" not in {p.name for p in space.points}
    run = netdsl_cli("space", "models/nb201.net", "--set", "e1_0=none", cwd=os.getcwd())
    assert run.stdout.splitlines()[0] == \
        "models/nb201.net: 5 choice points (--set fixes e1_0), 3,125 networks"
    nni = json.loads(netdsl_cli("space", "models/nb201.net", "--set", "e1_0=none", "--format",
                                "nni", cwd=os.getcwd()).stdout)
    assert "e1_0" not in nni and len(nni) == 5


def test_a_point_met_only_once_another_set_makes_it_appear_can_be_set(tmp_path):
    (tmp_path / "nested.net").write_text(NESTED)
    sets = ["--set", "n=3", "--set", "s_2/x=identity"]
    for command in ("check", "space", "show"):
        run = netdsl_cli(command, "nested.net", *sets, cwd=tmp_path)
        assert run.returncode == 0, (command, run.stderr)
    space = netdsl.load(NESTED).space({"n": 3, "s_2/x": "identity"})
    assert space.static and space.count == 4 and [p.name for p in space.points] == ["s/x",
                                                                                    "s_1/x"]
    # a value for a point the defaults do not meet is still refused where nothing meets it
    clear_error(netdsl_cli("check", "nested.net", "--set", "s_2/x=identity", cwd=tmp_path),
                "unknown parameter 's_2/x'")


def test_a_grid_searches_a_space_that_set_made_finite(tmp_path, image_folder):
    text = ("param n = range(1, 3)\nparam lr = logrange(0.01, 1)\n"
            "block t(c) {\n    x: choice(conv(c), identity)\n}\n"
            "a: conv(8) -> s: t(8) * n -> head(3)\n")
    run = netdsl_cli("search", "-e", text, "--set", "n=3", "--set", "s_2/x=identity", "--set",
                     "lr=0.1", "--dataset", str(image_folder), "--trials", "2", "--name", "g",
                     "--tuner", "grid", "--epochs", "1", "--batch-size", "32", "--cutout", "0",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "g", "--json", cwd=tmp_path).stdout)
    assert len(rows) == 2 and all(r["values"]["s_2/x"] == "identity" for r in rows)
    assert len({(r["values"]["s/x"], r["values"]["s_1/x"]) for r in rows}) == 2


def test_a_set_point_that_a_draw_does_not_reach_fails_no_trial(tmp_path, image_folder):
    # n's default reaches s_2, so --set s_2/x is checked before the search; a grid over n
    # then draws networks without s_2, which take no s_2/x and still train
    text = ("param n = choice(3, 1, 2)\nblock t(c) {\n    x: choice(conv(c), identity)\n}\n"
            "a: conv(8) -> s: t(8) * n -> head(3)\n")
    run = netdsl_cli("search", "-e", text, "--set", "s_2/x=identity", "--set", "s/x=identity",
                     "--set", "s_1/x=identity", "--dataset", str(image_folder), "--trials", "3",
                     "--name", "g", "--tuner", "grid", "--epochs", "1", "--batch-size", "32",
                     "--cutout", "0", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "g", "--json", cwd=tmp_path).stdout)
    assert sorted(r["values"]["n"] for r in rows) == [1, 2, 3]
    assert all(r["state"] == "complete" for r in rows), rows


# ---- check: what it says it bound (item 4) ---------------------------------------------------

def test_check_binds_every_value_of_a_range_it_says_fits(tmp_path):
    # groups=2 only at w = 18, which 32 evenly spaced values of 1..64 missed
    text = "param w = range(1, 64)\na: conv(8, groups=1 + (w // 18) * (19 // (w + 1)))"
    clear_error(netdsl_cli("check", "-e", text, cwd=tmp_path), "with w = 18", "groups=2")
    run = netdsl_cli("check", "-e", "param w = range(1, 1000000)\na: conv(w)", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert ("every value bound fits, but not every value was bound: w: 256 of its 1,000,000 "
            "values (the first 64, the last 64, 128 evenly spaced between)") in run.stdout
    ok = netdsl_cli("check", "-e", "param w = range(1, 300, step=2)\na: conv(w)", cwd=tmp_path)
    assert ok.stdout.endswith("1 choice point, every option fits\n"), ok.stdout


def test_a_logrange_is_checked_up_to_its_end_and_not_past_it():
    # exp(log(0.1)) is 0.10000000000000002, which the point itself refuses
    space = netdsl.load("param lr = logrange(0.01, 0.1)\na: conv(8)").space()
    assert space.points[0].high == 0.1


# ---- the count: networks, not combinations (item 5) -----------------------------------------

@pytest.mark.parametrize("text, count", [
    ("param w = choice(8, 16)\nparam unused = choice(1, 2)\na: conv(w)", 2),
    ("param w = choice(8, 8.0)\na: conv(w)", 1),
    ("param a = choice(1, 2)\nparam b = choice(1, 2)\nx: conv(a + b)", 3),  # 1+2 is 2+1
    (NESTED.replace("param n", "param unused = choice(1, 2)\nparam n"), 2 + 4 + 8 + 16),
    ("param op = choice(relu, identity)\nblock t(c) {\n    x: choice(conv(c), op)\n}\n"
     "a: conv(8) -> s: t(8) -> m: choice(t(8), zero)", 2 * 2 * 3 - 2),  # op unused twice
])
def test_the_space_counts_distinct_networks(text, count):
    family = netdsl.load(text)
    space = family.space()
    assert (space.count, space.distinct, space.exact) == (count, True, True)
    assert space.counted() == f"{count} network{'s' * (count != 1)}"


CELL = """\
block cell(c) {
    in: identity
    a: conv(c) <- in
    b: relu <- in
    s: add <- choice(in, a, b, k=2)
}
stem: conv(8) -> x: cell(8) * 3
"""
EDGES = """\
param e1 = choice(conv_bn, skip, none)
param e2 = choice(conv_bn, skip, none)
block skip(c) {
    identity
}
block none(c) {
    zero
}
block cell(c) {
    in: identity
    n1: e1(c) <- in
    n2: e2(c) <- n1
    out: add <- n1, n2
}
stem: conv(8) -> x: cell(8) * 2 -> head(3)
"""


@pytest.mark.parametrize("text, factorizes", [
    (REPEATED.replace("N", "3"), True),
    (CELL, True),
    (EDGES, True),
    ("param w1 = choice(4, 8)\nparam w2 = choice(4, 8)\na: conv(w1) -> b: conv(w2) -> head(3)",
     True),  # b is both points', but w1's conv and w2's head tell them apart
    ("param a = choice(1, 2)\nparam b = choice(1, 2)\nx: conv(a + b)", False),
    (EDGES.replace("n2: e2(c) <- n1", "n2: e2(c) <- n1\n    m: choice(relu, zero) <- n2"),
     True),
])
def test_the_count_without_a_walk_is_the_networks_bound_one_by_one(text, factorizes,
                                                                   monkeypatch):
    from netdsl.language import survey

    family = netdsl.load(text)
    every = {family.bind(dict(zip(family.choice_points, values))).fingerprint
             for values in itertools.product(*(p.values()
                                               for p in family.choice_points.values()))}
    monkeypatch.setattr(survey, "MAX_EXPANSIONS", 0)  # no walk: what the probes tell
    space = family.space()
    assert space.distinct == factorizes
    assert space.count == len(every) if factorizes else space.count > len(every)


def test_nb201s_networks_are_counted_without_binding_each(monkeypatch):
    family = netdsl.load("models/nb201.net")
    made = bindings_of(family, monkeypatch)
    space = family.space()
    assert (space.count, space.distinct, space.exact) == (5 ** 6, True, True)
    assert len(made) <= 1 + 6 * 4 + 1  # the defaults, each other op of each edge, all at once


def test_a_space_too_large_to_tell_apart_counts_combinations(tmp_path):
    space = netdsl.load("param w = range(1, 1000000)\na: conv(w)").space()
    assert (space.count, space.distinct, space.exact) == (10 ** 6, False, True)
    run = netdsl_cli("space", "-e", "param w = range(1, 1000000)\na: conv(w)", cwd=tmp_path)
    assert run.stdout.splitlines()[0] == "<-e>: 1 choice point, 1,000,000 combinations"
    counted = json.loads(netdsl_cli("space", "-e", "param w = range(1, 1000000)\na: conv(w)",
                                    "--format", "json", cwd=tmp_path).stdout)
    assert counted["combinations"] == 10 ** 6 and "networks" not in counted


# ---- ranges and combinations are arithmetic (items 11 and 12) --------------------------------

def test_a_range_of_a_billion_values_is_never_listed(monkeypatch, tmp_path):
    text = "param w = range(1, 1000000000)\na: conv(8) -> b: conv(w)"
    family = netdsl.load(text)
    point = family.choice_points["w"]
    values = point.values()
    assert not isinstance(values, list) and len(values) == point.size == 10 ** 9
    assert (values[0], values[17], values[-1]) == (1, 18, 10 ** 9) and 500 in values
    assert point.nni() == {"_type": "randint", "_value": [1, 10 ** 9 + 1]}
    assert 1 <= drawn_at_random(random.Random(0))(point) <= 10 ** 9
    made = bindings_of(family, monkeypatch)
    assert family.space().count == 10 ** 9 and len(made) <= 1 + 256
    clear_error(netdsl_cli("space", "-e", "param w = range(3, 1000000000, step=4)\na: conv(w)",
                           "--format", "nni", cwd=tmp_path), "250,000,000 values", "more than")


def test_inputs_combinations_are_made_from_their_place_never_listed(tmp_path):
    refs = [f"p{i}" for i in range(40)]
    text = ("a: conv(8)\n" + "".join(f"{r}: relu <- a\n" for r in refs)
            + f"s: add <- choice({', '.join(refs)}, k=20)")
    family = netdsl.load(text)
    point = family.choice_points["s<-"]
    assert point.size == math.comb(40, 20) and point.default == ",".join(refs[:20])
    last = ",".join(refs[20:])
    assert point.values()[-1] == last and point.values().index(last) == point.size - 1
    bound = family.bind({"s<-": 12345678901})
    assert bound.graph["s"][1] == point.values()[12345678901].split(",")
    assert family.bind({"s<-": last}).choices["s<-"] == last
    assert "any 20 of p0, p1" in point.describe_options()
    run = netdsl_cli("show", "-e", text, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("n, k", [(1, 1), (5, 2), (6, 3), (7, 7), (8, 1)])
def test_combinations_are_itertools_order_by_place_and_back(n, k):
    refs = [f"r{i}" for i in range(n)]
    options = Combinations(refs, k)
    listed = [",".join(c) for c in itertools.combinations(refs, k)]
    assert list(options) == listed and len(options) == len(listed)
    assert [options.index(label) for label in listed] == list(range(len(listed)))
    assert "r1,r0" not in options and "r0,nowhere" not in options


# ---- repeated choices: one binding per class, not per instance (item 13) --------------------

@pytest.mark.parametrize("repeats", [10, 300])
def test_a_choice_repeated_in_a_block_is_bound_once_per_class(repeats, monkeypatch):
    family = netdsl.load(REPEATED.replace("N", str(repeats)))
    made = bindings_of(family, monkeypatch)
    space = family.space()
    assert len(space.points) == repeats and space.count == 5 ** repeats and space.distinct
    assert len(made) <= 1 + 4 + 1  # the defaults, the first instance's other options, all


def test_instances_in_other_shapes_are_each_checked(tmp_path):
    # each instance halves the image: the kernel of 5 fits the first two, not the third
    text = ("block b(c) {\n    d: conv(c, stride=2)\n    mix: choice(conv(c), conv(c, ks=5, "
            "padding=0))\n}\nstem: conv(8) -> x: b(8) * 4 -> head(3)")
    clear_error(netdsl_cli("check", "-e", text, cwd=tmp_path),
                "with x_2/mix = conv(c, ks=5, padding=0)", "does not fit the 4x4 input")


# ---- diff --set takes item choices (item 25) --------------------------------------------------

def test_diff_sets_an_item_choice_by_its_path(tmp_path):
    (tmp_path / "a.net").write_text("a: conv(8) -> mix: choice(relu, zero)\n")
    (tmp_path / "b.net").write_text("a: conv(8) -> mix: zero\n")
    same = netdsl_cli("diff", "a.net", "b.net", "--set", "mix=zero", cwd=tmp_path)
    assert same.returncode == 0 and "the same network" in same.stdout, same.stderr
    clear_error(netdsl_cli("diff", "a.net", "b.net", "--set", "nothing=1", cwd=tmp_path),
                "--set nothing: neither network declares it", "mix")


def test_a_point_set_only_where_another_choice_meets_it_still_errs_when_bound():
    with pytest.raises(NetdslError, match="unknown parameter 's_2/x'"):
        netdsl.load(NESTED).bind({"s_2/x": "identity"})
