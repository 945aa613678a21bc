"""Choices written in a .net file: values, ranges, shared ops, items and inputs; the space they
describe (`netdsl space`); searching them (evolution too); NAS-Bench-201 in the language."""
import json
import math
import os
import re
import subprocess
import sys

import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
import netdsl.bench.nb201
from conftest import clear_error, kill_search_in_its_first_trial, netdsl_cli
from netdsl import NetdslError
from netdsl.search.evolution import RegularizedEvolution
from netdsl.search.storage import spends_budget

EVERY_KIND = """\
param w = choice(4, 8, default=8)
param lr = logrange(0.01, 1)
param depth = range(1, 2)
param op = choice(relu, identity, zero)
block twin(c) {
    in: identity
    x: choice(conv(c), conv(c, ks=5), identity)
    y: conv(c) <- in
    s: add <- choice(x, y, in, k=2)
}
a: conv(w) -> b: op -> t: twin(w) * depth -> mix: choice(conv_bn(w), zero, default=1)
head(3)
"""


def error(text, **values):
    with pytest.raises(NetdslError) as caught:
        netdsl.load(text).bind(values)
    return caught.value


# ---- the choices ---------------------------------------------------------------------------

def test_every_choice_has_a_stable_name_a_default_and_binds_by_name():
    family = netdsl.load(EVERY_KIND)
    bound = family.bind()
    assert bound.choices == {"w": 8, "lr": 0.01, "depth": 1, "op": "relu", "t/x": "conv(c)",
                             "t/s<-": "x,y", "mix": "zero"}
    picked = family.bind({"w": 4, "depth": 2, "op": "zero", "t/x": 2, "t_1/x": "conv(c, ks=5)",
                          "t_1/s<-": "y,in", "mix": "conv_bn(w)"})
    assert picked.choices["t/x"] == "identity" and picked.choices["t_1/x"] == "conv(c, ks=5)"
    graph = picked.graph
    assert graph["b"][0].type == "Zero" and graph["t/x"][0].type == "Identity"
    assert graph["t_1/x"][0].kwargs["kernel_size"] == 5
    assert graph["t_1/s"][1] == ["t_1/y", "t_1/in"]
    assert graph["mix/conv"][0].kwargs["out_channels"] == 4  # conv_bn: a group, its nodes
    assert graph["pool"][1] == ["mix/relu"]  # head(3) reads the group mix at its output


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_a_bound_network_has_no_choice_left_and_its_text_is_the_same_network(data):
    family = netdsl.load(EVERY_KIND)

    def draw(point):
        if point.size is None:
            return data.draw(st.floats(point.low, point.high))
        return data.draw(st.sampled_from(point.values()))

    bound = family.bind(chooser=draw)
    assert "choice(" not in bound.text and "range(" not in bound.text
    again = netdsl.load(bound.text).bind()
    assert again.graph == bound.graph and not again.choices


def test_a_family_of_parameter_choices_prints_its_own_statements():
    bound = netdsl.load("param w = choice(4, 8)\nparam op = choice(relu, zero)\n"
                        "a: conv(w) -> b: op").bind(w=8, op="zero")
    assert bound.text == "param w = 8\nparam op = zero\na: conv(w)\nb: op\n"


@pytest.mark.parametrize("text, values, words, line, column", [
    ("param w = choice()\na: conv(w)", {}, "needs at least one option", 1, 11),
    ("param w = choice(4, true)\na: conv(w)", {}, "of one kind", 1, 11),
    ("param w = choice(relu, 4)\na: conv(w)", {}, "not both", 1, 11),
    ("param w = choice(4, 4)\na: conv(w)", {}, "listed twice", 1, 11),
    ("param w = choice(4, 8, default=5)\na: conv(w)", {}, "default: choice 'w' takes", 1, 11),
    ("param w = range(8, 4)\na: conv(w)", {}, "is empty", 1, 11),
    ("param w = logrange(0, 4)\na: conv(w)", {}, "low above 0", 1, 11),
    ("param w = logrange(1, 4, step=1)\na: conv(w)", {}, "takes no 'step='", 1, 11),
    ("param w = pick(1, 4)\na: conv(w)", {}, "drawn from choice(...)", 1, 11),
    ("param w = choice(conv_bn(4), zero)\na: conv(4)", {}, "by name, without arguments", 1, 18),
    ("param w = choice(4, 8)\na: conv(w)", {"w": 6}, "choice 'w' takes one of 4, 8, got 6", 1, 11),
    ("param w = range(4, 16, step=4)\na: conv(w)", {"w": 6}, "steps of 4", 1, 11),
    ("a: conv(4) -> choice(relu, zero)", {}, "a choice needs a label", 1, 15),
    ("a: conv(4) -> m: choice(relu, 4)", {}, "takes calls", 1, 31),
    ("a: conv(4) -> m: choice(relu, nothing)", {}, "neither a primitive nor a block", 1, 31),
    ("a: conv(4) -> m: choice(relu, zero, default=2)", {}, "default=2 but there are 2", 1, 18),
    ("a: conv(4) -> m: choice(relu, zero)", {"m": "gelu"}, "choice 'm' takes one of relu, zero",
     1, 18),
    ("a: conv(4) -> s: add <- choice(a, nowhere)", {"s<-": "nowhere"},
     "'s' uses 'nowhere', which is not in the network", 1, 22),
    ("a: conv(4) -> s: add <- choice(a, input, k=3)", {}, "choice of 3 inputs from 2 paths", 1,
     25),
    ("a: conv(4) -> s: add <- pick(a, input)", {}, "the only call after '<-' is choice", 1, 25),
    ("a: conv(4) -> m: range(1, 2)", {}, "what a param is drawn from", 1, 18),
    ("block choice(c) {\n    conv(c)\n}\nchoice(4)", {}, "writes a choice", 1, 7),
    ("a: conv(choice(4, 8))", {}, "is a call, not a value", 1, 9),
    ("a: conv(4) -> m: choice(relu, zero, default=-1)", {}, "default must be at least 0", 1, 37),
    ("a: conv(4) -> m: choice(relu, zero, default=0.5)", {}, "default must be a whole", 1, 37),
    ("a: conv(4) -> s: add <- choice(a, input, k=0)", {}, "k must be at least 1", 1, 25),
    ("a: conv(4) -> s: add <- choice(a, input, k=1.5)", {}, "k must be a whole number", 1, 25),
])
def test_bad_choices_are_located_errors(text, values, words, line, column):
    e = error(text, **values)
    assert words in e.message and (e.location.line, e.location.column) == (line, column), str(e)


def test_an_option_that_does_not_fit_names_the_choice_and_the_option():
    family = netdsl.load("a: conv(8) -> mix: choice(conv(8), conv(16)) -> s: add <- mix, a")
    family.bind()  # the default fits
    with pytest.raises(NetdslError) as caught:
        family.space()
    message = str(caught.value)
    assert "with mix = conv(16)" in message and "16x32x32, 8x32x32" in message
    assert caught.value.location.line == 1


# ---- the space -----------------------------------------------------------------------------

def test_the_space_counts_exactly_through_blocks_repeats_and_dependent_choices():
    # w: 2 values; depth 1..2 twins, each with x (3) and s<- (3 pairs); mix: 2. The twins'
    # points exist only as depth makes them: 2 * (9 + 9 * 9) * 2 networks. op: 3, lr: a range.
    family = netdsl.load(EVERY_KIND.replace("param lr = logrange(0.01, 1)\n", ""))
    space = family.space()
    assert space.exact and not space.static
    assert space.count == 2 * (9 + 9 * 9) * 2 * 3
    assert {p.name for p in space.points} == {"w", "depth", "op", "t/x", "t/s<-", "t_1/x",
                                              "t_1/s<-", "mix"}
    # Every network it counts is a different one.
    seen = set()
    for w in (4, 8):
        for depth in (1, 2):
            for x in range(3 ** depth):
                for s in range(3 ** depth):
                    picks = {"w": w, "depth": depth, "t/x": x % 3, "t/s<-": s % 3}
                    if depth == 2:
                        picks.update({"t_1/x": x // 3, "t_1/s<-": s // 3})
                    seen.add(family.bind(picks).fingerprint)
    assert len(seen) == 2 * (9 + 81)
    assert netdsl.load(EVERY_KIND).space().count is None  # logrange: endless


def test_a_space_too_large_to_walk_is_an_upper_bound_and_says_so(monkeypatch):
    from netdsl.language import survey

    monkeypatch.setattr(survey, "MAX_EXPANSIONS", 20)
    space = netdsl.load(EVERY_KIND.replace("param lr = logrange(0.01, 1)\n", "")).space()
    assert not space.exact and space.count >= 2 * (9 + 81) * 2 * 3
    assert space.counted() == f"at most {space.count:,} combinations"


def test_netdsl_space_lists_points_and_counts(tmp_path):
    run = netdsl_cli("space", "models/nb201.net", cwd=os.getcwd())
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == "models/nb201.net: 6 choice points, 15,625 networks"
    assert "e3_2  op      nor_conv_3x3, nor_conv_1x1, avg_pool_3x3, skip_connect, none" in \
        run.stdout
    nni = json.loads(netdsl_cli("space", "models/nb201.net", "--format", "nni",
                                cwd=os.getcwd()).stdout)
    assert list(nni) == list(netdsl.bench.nb201.EDGES)
    assert nni["e1_0"] == {"_type": "choice", "_value": list(netdsl.bench.nb201.OPS)}
    ranges = netdsl_cli("space", "-e", "param w = range(8, 64, step=8)\nparam lr = logrange("
                        "0.01, 1)\na: conv(w)", "--format", "nni", cwd=tmp_path)
    assert json.loads(ranges.stdout) == {"w": {"_type": "quniform", "_value": [8, 64, 8]},
                                         "lr": {"_type": "loguniform", "_value": [0.01, 1.0]}}
    clear_error(netdsl_cli("space", "-e", "a: conv(8) -> m: choice(conv(8), conv(4)) -> "
                           "s: add <- m, a", cwd=tmp_path), "with m = conv(4)")


# ---- NAS-Bench-201 -------------------------------------------------------------------------

# Weight counts of NB201's own TinyNetwork(C=16, N=5, classes=10), from the authors' code:
# `python tests/benchmarks/nb201_reference.py AutoDL-Projects` (it also compares outputs).
NB201_COUNTS = {
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "nor_conv_3x3~2|": 1_531_546,
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|": 73_306,
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "skip_connect~2|": 587_386,
    "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|avg_pool_3x3~0|none~1|"
    "nor_conv_1x1~2|": 101_306,
}


@pytest.mark.parametrize("arch", NB201_COUNTS)
def test_nb201_strings_convert_both_ways_with_the_authors_weight_counts(arch):
    text = netdsl.bench.nb201.to_text(arch)
    bound = netdsl.load(text).bind()
    assert bound.weight_count == NB201_COUNTS[arch]
    assert netdsl.bench.nb201.from_bound(bound) == arch
    assert netdsl.bench.nb201.from_bound(netdsl.bench.nb201.family().bind(netdsl.bench.nb201.edges(arch))) == arch
    assert netdsl.bench.nb201.to_text(netdsl.bench.nb201.from_bound(bound)) == text


def test_nb201_cells_are_wired_as_the_authors_wire_them():
    bound = netdsl.bench.nb201.family().bind(netdsl.bench.nb201.edges(
        "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_3x3~1|zero_x~2|"
        .replace("zero_x", "nor_conv_3x3")), C=4, N=1)
    graph = bound.graph
    # node 1 = op(in); node 2 = op(in) + op(node 1); node 3 = the sum of one op of each.
    assert graph["cell1/n1/relu"][1] == ["cell1/in"]
    assert graph["cell1/n2"][1] == ["cell1/e2_0/avgpool", "cell1/e2_1/identity"]
    assert graph["cell1/e2_1/identity"][1] == ["cell1/n1/bn"]
    assert graph["cell1/n3"][1] == ["cell1/e3_0/zero", "cell1/e3_1/bn", "cell1/e3_2/bn"]
    assert [graph[f"cell1/e3_{i}/relu"][1] for i in (1, 2)] == [["cell1/n1/bn"], ["cell1/n2"]]
    pool = graph["cell1/e2_0/avgpool"][0].kwargs
    assert (pool["kernel_size"], pool["stride"], pool["padding"],
            pool["count_include_pad"]) == (3, 1, 1, False)
    # ReLU -> Conv (no bias) -> BatchNorm; the reduction's shortcut is pool -> 1x1 conv.
    assert [graph[f"reduce1/conv_a/{n}"][0].type for n in ("relu", "conv", "bn")] == [
        "ReLU", "Conv2d", "BatchNorm"]
    assert graph["reduce1/conv_a/conv"][0].kwargs["stride"] == 2
    assert graph["reduce1/conv_a/conv"][0].kwargs["bias"] is False
    assert graph["reduce1/shortcut"][1] == ["reduce1/pool"]
    assert bound.shapes["reduce2/add"] == (16, 8, 8) and bound.output_shape == (10,)


@pytest.mark.parametrize("arch, words", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "2 nodes"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "column 2: unknown op 'conv'"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 edges"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "~0 to ~1"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "takes node 0 twice"),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "expected |op~i|"),
])
def test_bad_nb201_strings_name_what_and_where(arch, words):
    with pytest.raises(NetdslError, match=words.replace("|", r"\|").replace("~", "~")):
        netdsl.bench.nb201.edges(arch)


def test_the_nb201_flag_binds_and_shows_both_ways(tmp_path):
    arch = next(iter(NB201_COUNTS))
    run = netdsl_cli("show", "models/nb201.net", "--nb201", arch, "--format", "dsl",
                     cwd=os.getcwd())
    assert run.returncode == 0 and run.stdout == netdsl.bench.nb201.to_text(arch)
    back = netdsl_cli("show", "-e", run.stdout, "--format", "nb201", cwd=tmp_path)
    assert back.stdout.strip() == arch
    clear_error(netdsl_cli("check", "models/nb201.net", "--nb201", "|x~0|", cwd=os.getcwd()),
                "NB201 architecture")


# ---- searching the text's choices ------------------------------------------------------------

CHOICES = ("param prep = choice(4, 8)\nparam op = choice(relu, identity, zero)\n"
           "a(prep, pool) -> x: op -> b(8, pool) -> head(3)")
FAST = ["--epochs", "1", "--batch-size", "32", "--cutout", "0"]


def test_evolution_mutates_one_choice_of_a_tournament_winner():
    """On a toy objective: after the population fills, every trial is a member of the P newest
    finished trials before it with exactly one value changed."""
    names = [f"e{i}" for i in range(6)]
    study = optuna.create_study(direction="maximize",
                                sampler=RegularizedEvolution(population=5, tournament=2, seed=1))
    study.optimize(lambda t: sum(len(t.suggest_categorical(n, ["a", "bb", "ccc"]))
                                 for n in names), n_trials=40)
    trials = study.trials
    for index, trial in enumerate(trials[5:], start=5):
        population = trials[index - 5:index]
        changed = [sum(trial.params[n] != p.params[n] for n in names) for p in population]
        assert 1 in changed, (trial.number, changed)
    assert study.best_value > sum(len(t.params) for t in trials[:5]) / 5 * 2  # it climbs


def test_search_takes_the_files_choices_without_a_space(tmp_path, image_folder):
    run = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials", "4",
                     "--name", "t", "--tuner", "evolution", "--population", "2",
                     "--tournament", "1", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    assert all(set(r["values"]) == {"prep", "op"} for r in rows)
    assert all("choice(" not in r["dsl"] for r in rows)
    grid = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials", "6",
                      "--name", "g", "--tuner", "grid", *FAST, cwd=tmp_path)
    assert grid.returncode == 0, grid.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "g", "--json", cwd=tmp_path).stdout)
    assert sorted((r["values"]["prep"], r["values"]["op"]) for r in rows) == sorted(
        (p, o) for p in (4, 8) for o in ("relu", "identity", "zero"))
    clear_error(netdsl_cli("search", "-e", "a: conv(4) -> head(3)", "--dataset",
                           str(image_folder), "--trials", "2", *FAST, cwd=tmp_path),
                "nothing to search")
    clear_error(netdsl_cli("search", "-e", "param lr = logrange(0.1, 1)\n" + CHOICES,
                           "--dataset", str(image_folder), "--trials", "2", "--tuner", "grid",
                           *FAST, cwd=tmp_path), "choice 'lr' offers real numbers")


def test_a_killed_evolution_resumes(tmp_path, image_folder):
    kill_search_in_its_first_trial(
        "-e", CHOICES, "--dataset", str(image_folder), "--trials", "4", "--name", "t",
        "--tuner", "evolution", "--population", "2", "--tournament", "1", "--epochs", "20000",
        "--batch-size", "32", cwd=tmp_path)
    run = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials", "4",
                     "--name", "t", "--tuner", "evolution", "--population", "2",
                     "--tournament", "1", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    retry = next(r for r in rows if r["retry_of"] == 0)
    assert retry["values"] == rows[0]["values"] and retry["state"] == "complete"
    assert sum(r["state"] == "complete" and not r["redrawn"] for r in rows) == 4


def test_two_evolution_workers_never_train_one_network_twice(tmp_path, image_folder):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    command = [sys.executable, "-m", "netdsl", "search", "-e", CHOICES, "--dataset",
               str(image_folder), "--trials", "5", "--name", "two", "--storage", url,
               "--tuner", "evolution", "--population", "2", "--tournament", "1", *FAST]
    env = {"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin"}
    workers = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in outputs]
    trials = optuna.load_study(study_name="two", storage=url).get_trials()
    assert sum(spends_budget(t) for t in trials) == 5, (
        [(t.number, t.state.name, t.user_attrs.get("same_as"), t.user_attrs.get("redrawn"),
          t.user_attrs.get("over_budget"), t.user_attrs.get("error")) for t in trials], outputs)
    trained = [t.user_attrs["fingerprint"] for t in trials
               if t.state.name == "COMPLETE" and t.user_attrs.get("same_as") is None]
    assert len(trained) == len(set(trained)) == 5, (
        [(t.number, t.state.name, t.user_attrs.get("fingerprint"), t.user_attrs.get("same_as"),
          t.user_attrs.get("redrawn"), t.datetime_start, t.datetime_complete) for t in trials],
        outputs)


def test_check_binds_every_option_and_draw_outlines_what_was_chosen(tmp_path):
    ok = netdsl_cli("check", "models/nb201.net", cwd=os.getcwd())
    assert ok.returncode == 0 and "6 choice points, every option fits" in ok.stdout
    clear_error(netdsl_cli("check", "-e", "a: conv(8) -> m: choice(conv(8), conv(4)) -> "
                           "s: add <- m, a", cwd=tmp_path), "with m = conv(4)", "4x32x32")
    text = "a: conv(8) -> m: choice(conv(8), relu) -> n: relu -> s: add <- choice(m, a, k=2)"
    run = netdsl_cli("draw", "-e", text, "--choices", "-o", "c.dot", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    outlined = [line for line in (tmp_path / "c.dot").read_text().splitlines()
                if "#4575b4" in line]
    assert [line.split('label="')[1].split("\\n")[0] for line in outlined] == ["m", "s"]


def test_a_range_of_tiny_numbers_keeps_its_values_apart():
    # the decimals worked exactly, not rounded: rounding to 12 decimals made every value 0
    family = netdsl.load("param lr = range(1e-300, 1e-299, step=1e-301)\na: conv(8)")
    point = family.space().points[0]
    assert point.size == 91 and point.check(5e-300) == 5e-300
    assert family.bind(lr=1e-299).parameters["lr"] == 1e-299


STEPPED = ("param w = choice(8, 16)\nparam s = range(0.1, 0.5, step=0.1)\n"
           "conv(w) -> relu -> dropout(s) -> avgpool(global) -> flatten -> linear(10)")


def test_a_stepped_range_binds_and_is_looked_up_by_the_values_written(tmp_path):
    """0.1 + 2 * 0.1 is 0.30000000000000004 in floats, as Optuna draws it: binding it is the
    0.3 a table's row holds; a row that spells it so is the same network."""
    from netdsl.bench.table import load_table

    def write_table(path, rows):
        path.write_text("".join(f"{w},{s},{value}\n" for w, s, value in
                                [("w", "s", "accuracy"), *rows]))
        return path

    family = netdsl.load(STEPPED)
    point = family.space().points[1]
    assert point.listed() == [0.1, 0.2, 0.3, 0.4, 0.5] and point.values()[2] == 0.3
    assert point.check(0.1 + 2 * 0.1) == 0.3 and point.check(0.3) == 0.3
    bound = family.bind(w=16, s=0.1 + 2 * 0.1)
    assert bound.choices == {"w": 16, "s": 0.3}
    rows = [(w, s, 10 * w + i) for w in (8, 16) for i, s in enumerate(("0.1", "0.2", "0.3",
                                                                        "0.4", "0.5"))]
    path = write_table(tmp_path / "t.csv", rows)
    table = load_table(str(path), "accuracy", family, family.space(), {})
    assert table.look_up(bound) == 162
    twice = write_table(tmp_path / "u.csv", rows + [(16, "0.30000000000000004", 1)])
    with pytest.raises(NetdslError, match="rows 9 and 12: two values of accuracy for one "
                                          "network, 162 and 1: w=16, s=0.3"):
        load_table(str(twice), "accuracy", family, family.space(), {})


@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler, optuna.samplers.TPESampler])
@pytest.mark.parametrize("declared", ["range(0.1, 0.5, step=0.1)", "range(0, 1, step=0.3)",
                                      "range(0.7, 1.3, step=0.15)", "range(0, 10, step=3)"])
def test_a_tuner_draws_a_stepped_range_s_listed_values_exactly(declared, sampler):
    """What a tuner draws through `suggest` is one of the listed values, bit for bit; a high
    off the step draws up to the last step, and no warning (an error here) says Optuna moved
    it."""
    from netdsl.search.space import suggest

    point = netdsl.load(f"param v = {declared}\na: conv(8)").space().points[0]
    listed = point.listed()
    study = optuna.create_study(sampler=sampler(seed=0))
    drawn = []
    for _ in range(40):
        trial = study.ask()
        drawn.append(suggest(trial, point))
        study.tell(trial, drawn[-1])
    assert set(drawn) <= set(listed) and len(set(drawn)) > 1  # 0.3, never 0.30000000000000004


@pytest.mark.parametrize("declared, values, nni", [
    ("range(1, 4)", [1, 2, 3, 4], {"_type": "randint", "_value": [1, 5]}),
    ("range(8, 32, step=8)", [8, 16, 24, 32], {"_type": "quniform", "_value": [8, 32, 8]}),
    ("range(3, 12, step=4)", [3, 7, 11], {"_type": "choice", "_value": [3, 7, 11]}),
    ("range(0.1, 0.5, step=0.1)", [0.1, 0.2, 0.3, 0.4, 0.5],
     {"_type": "quniform", "_value": [0.1, 0.5, 0.1]}),
    ("choice(true, false)", [True, False], {"_type": "choice", "_value": [True, False]}),
])
def test_a_finite_range_lists_its_values_and_writes_what_nni_draws_the_same(declared, values,
                                                                            nni):
    point = netdsl.load(f"param v = {declared}\na: conv(8)").space().points[0]
    assert list(point.values()) == values and point.size == len(values) and point.nni() == nni


# ---- select on a validation split, report on the test set -----------------------------------

def test_a_validation_split_is_held_out_of_the_training_images_seeded():
    import numpy as np

    from netdsl_runtime.images import Images

    train_x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    images = Images("toy", ["a", "b"], train_x, np.arange(10) % 2,
                    np.full((3, 1, 1, 1), 99, np.uint8), np.zeros(3, dtype=np.int64))
    split = images.held_out(4, seed=1)
    held, kept = set(split.test_x.ravel()), set(split.train_x.ravel())
    assert len(held) == 4 and len(kept) == 6 and held | kept == set(range(10))
    assert (split.report_x == 99).all() and len(split.report_y) == 3  # the test set waits
    assert set(images.held_out(4, seed=1).test_x.ravel()) == held
    assert set(images.held_out(4, seed=2).test_x.ravel()) != held


def test_run_and_search_select_on_the_split_and_report_the_test_set(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", "a(8, pool) -> head(3)", "--dataset", str(image_folder),
                     "--valid-split", "24", "--json", "r.json", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["dataset"]["train"] == 72 and record["dataset"]["valid"] == 24
    assert record["dataset"]["test"] == 24 and record["dataset"]["valid_seed"] == 0
    assert 0 <= record["runs"][0]["test_acc"] <= 1 and "test acc" in run.stdout
    search = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder),
                        "--valid-split", "24", "--trials", "2", "--name", "t", *FAST,
                        "--epochs", "2", cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    assert "(test accuracy" in search.stdout.splitlines()[-2]
    # Only the chosen network is evaluated on the test set.
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: r["accuracy"])
    assert [r["number"] for r in rows if r["test_accuracy"] is not None] == [best["number"]]
    assert 0 <= best["test_accuracy"] <= 1
    assert netdsl_cli("best", "--name", "t", cwd=tmp_path).returncode == 0
    # No pruner reads the first epoch's accuracy: only the last is evaluated.
    trials = optuna.load_study(study_name="t", storage="sqlite:///" + str(
        tmp_path / "netdsl.db")).get_trials()
    assert all(t.user_attrs["curve"][0] is None and t.user_attrs["curve"][1] is not None
               and t.user_attrs["valid_time"] > 0 for t in trials if t.state.name == "COMPLETE")
    assert re.search(r"training \S+ s, validation \S+ s, test \S+ s, the rest",
                     search.stdout.splitlines()[-1])
    assert "selected on the test set" not in search.stdout
    clear_error(netdsl_cli("run", "-e", "a(8) -> head(3)", "--dataset", str(image_folder),
                           "--valid-split", "96", *FAST, cwd=tmp_path),
                "leaves none of the 96 training images")


def test_the_predictors_feature_is_any_score_of_one_network(tmp_path, image_folder):
    """--feature naswot in a trained search: the model reads each candidate's naswot on the
    search's scoring batch, its seconds counted in the trial's; the feature is the predictor's
    alone, a score of one network, and one that reads images needs them."""
    import torch

    from netdsl.rank.scores import BATCH_SIZE, score, scoring_batch
    from netdsl.search.options import network_feature
    from netdsl.train import DataWanted, load_data

    space = tmp_path / "space.json"  # CHOICES alone has 6 networks: the model needs 10 first
    space.write_text(json.dumps({"peak_lr": {"_type": "loguniform", "_value": [0.01, 1.0]}}))
    run = netdsl_cli("search", "-e", CHOICES, "--space", str(space), "--dataset",
                     str(image_folder), "--trials", "11", "--tuner", "predictor", "--feature",
                     "naswot", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--json", cwd=tmp_path).stdout)
    assert len([r for r in rows if r["state"] == "complete" and not r["redrawn"]]) == 11
    assert "scoring candidates" in run.stdout.splitlines()[-1]
    family = netdsl.load(CHOICES)
    data = load_data(DataWanted(str(image_folder)), torch.device("cpu"), seed=0)
    batch = scoring_batch(data, BATCH_SIZE, 0)
    values = {"prep": 8, "op": "relu"}
    bound = family.bind(values, input_shape=data.image_shape)
    assert network_feature("naswot", family, data, {}, batch, 0)(values) == \
        score(bound, data, batch, ["naswot"], 0).scores["naswot"]
    assert network_feature("flops", family, data, {}, None, 0)(values) == \
        pytest.approx(math.log1p(bound.flops))
    assert network_feature("weights", family, data, {}, None, 0)(values) == \
        pytest.approx(math.log1p(bound.weight_count))
    for args, said in [(["--tuner", "tpe", "--feature", "naswot"],
                        "--feature naswot is the predictor's: give --tuner predictor"),
                       (["--tuner", "predictor", "--feature", "az_nas"],
                        "the feature is a score of one network")]:
        clear_error(netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder),
                               "--trials", "2", *args, *FAST, cwd=tmp_path), said)


def test_the_predictor_tunes_a_trained_search_of_choices_and_settings(tmp_path, image_folder):
    """--tuner predictor works where each trial trains: the file's choices and a log-uniform
    learning rate from --space, past its 10 random draws; each of its trials is a network and
    rate no trial had, and says how long its candidates' FLOPs took."""
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"peak_lr": {"_type": "loguniform", "_value": [0.01, 1.0]}}))
    run = netdsl_cli("search", "-e", CHOICES, "--space", str(space), "--dataset",
                     str(image_folder), "--trials", "12", "--tuner", "predictor", *FAST,
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "scoring candidates" in run.stdout.splitlines()[-1]
    rows = json.loads(netdsl_cli("trials", "--json", cwd=tmp_path).stdout)
    trained = [r for r in rows if r["state"] == "complete" and not r["redrawn"]]
    assert len(trained) == 12
    assert len({json.dumps(r["values"], sort_keys=True) for r in trained}) == 12
    assert all(0.01 <= r["values"]["peak_lr"] <= 1.0 for r in trained)
