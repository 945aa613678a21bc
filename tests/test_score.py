"""Zero-cost scores (`runtime.proxies`, `netdsl score`) and the search's prefilter."""
import json
import math

import optuna
import pytest
import torch
from torch import nn

import netdsl
from conftest import clear_error, netdsl_cli
from netdsl_runtime import proxies
from netdsl_runtime.proxies import Undefined

CHOICES = ("param prep = choice(4, 8)\nparam op = choice(relu, identity, zero)\n"
           "a(prep, pool) -> x: op -> b(8, pool) -> head(3)")
FAST = ["--epochs", "1", "--batch-size", "32", "--cutout", "0"]


def linear_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))


def batch(n=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, generator=generator), torch.arange(n) % 3


# ---- each proxy against its definition, on a net small enough to work out by hand -----------

def test_grad_norm_and_snip_are_the_papers_sums():
    x, y = batch()
    net = linear_net()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    weight = net[1].weight
    assert proxies.grad_norm(linear_net(), x, y) == pytest.approx(weight.grad.norm().item())
    assert proxies.snip(linear_net(), x, y) == pytest.approx(
        (weight.detach() * weight.grad).abs().sum().item())


def test_synflow_of_a_linear_layer_is_the_sum_of_its_absolute_weights():
    """R = sum_j (sum_i |W_ji| * 1 + |b_j|), so w * dR/dw summed over W is sum |W|."""
    x, y = batch()
    net = linear_net()
    assert proxies.synflow(net, x, y) == pytest.approx(net[1].weight.abs().sum().item())
    assert (net[1].weight < 0).any()  # the network scored is untouched: a copy was made absolute


def test_naswot_is_the_log_determinant_of_the_agreement_kernel():
    x, y = batch(n=6)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(inplace=True), nn.Linear(16, 3))
    with torch.no_grad():
        codes = (net[1](net[0](x)) > 0).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert proxies.naswot(net, x, y) == pytest.approx(torch.linalg.slogdet(kernel)[1].item())
    same = x[:1].repeat(6, 1, 1, 1)  # one code six times: no two images told apart
    with pytest.raises(Undefined, match="kernel is singular"):  # log |det K| = -inf
        proxies.naswot(net, same, y)


def test_meco_sums_each_outputs_least_eigenvalue_of_its_channels_correlation():
    """By hand with numpy, the authors' formula: each module's output on the first image, its
    C channels correlated over the H*W places, a correlation not defined (a channel constant
    over the image) 0, the least eigenvalue, summed; the logits add nothing."""
    import numpy as np

    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():  # channel 3 constant: its correlations are not defined
        conv.weight[3].zero_()
    net = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))
    x = torch.randn(5, 3, 4, 4)
    with torch.no_grad():
        maps = [conv(x[:1])]
        maps.append(torch.relu(maps[0]))
    expected = 0.0
    for feature in maps:
        rows = feature[0].reshape(4, -1).double().numpy()
        centred = rows - rows.mean(1, keepdims=True)
        norms = np.sqrt((centred ** 2).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            correlation = centred @ centred.T / np.outer(norms, norms)
        correlation[~np.isfinite(correlation)] = 0.0
        expected += np.linalg.eigvalsh(correlation)[0]
    assert proxies.meco(net, x, None) == pytest.approx(expected)
    with pytest.raises(Undefined, match="no module outputs a feature map"):
        proxies.meco(linear_net(), batch()[0], None)


def test_az_nas_parts_are_the_authors_formulas_on_maps_worked_out_by_hand():
    """Expressivity and progressivity from the eigenvalues of each map's channel covariance
    (numpy); trainability 2 - s - 1/s of the pulled-back Jacobian: a stage tripling one
    channel has s = 3 exactly (the +-1 gradients square to 1), a 2x2 average pool s = 1/2
    (each of the four unshuffled channels a quarter), and one that passes the gradient
    through unchanged -inf."""
    import numpy as np

    def entropy(feature):
        rows = feature.detach().permute(0, 2, 3, 1).reshape(-1, feature.shape[1]).double()
        rows = (rows - rows.mean(0)).numpy()
        eigenvalues = np.linalg.eigvalsh(rows.T @ rows / len(rows))
        share = eigenvalues / eigenvalues.sum()
        return float((-share * np.log(share + 1e-8)).sum())

    generator = torch.Generator().manual_seed(0)
    first = torch.randn(4, 3, 4, 4, requires_grad=True)
    second = torch.nn.functional.conv2d(first, torch.randn(5, 3, 1, 1)).tanh()
    parts = proxies.az_nas_of([first, second], generator)
    assert parts["expressivity"] == pytest.approx(entropy(first) + entropy(second))
    assert parts["progressivity"] == pytest.approx(entropy(second) - entropy(first))

    one = torch.randn(2, 1, 4, 4, requires_grad=True)
    assert proxies.az_nas_of([one, 3 * one], generator)["trainability"] == pytest.approx(
        2 - 3 - 1 / 3, rel=1e-5)
    pooled = torch.nn.functional.avg_pool2d(one, 2)
    assert proxies.az_nas_of([one, pooled], generator)["trainability"] == pytest.approx(
        2 - 0.5 - 1 / 0.5, rel=1e-5)
    assert proxies.az_nas_of([one, one * 1.0], generator)["trainability"] == -math.inf
    # a stage cut off by zero ops passes nothing back: s = 0, about -1e6
    assert proxies.az_nas_of([one, torch.zeros(2, 1, 4, 4)], generator)["trainability"] == \
        pytest.approx(2 - 1 / 1e-6)
    with pytest.raises(Undefined, match="fewer than two stages"):
        proxies.az_nas_of([one], generator)


def test_az_nas_reads_each_stage_of_nb201_and_is_seeded():
    """The authors' 3N + 3 maps: the stem's, then each cell's and reduction's; the weights
    and the noise drawn by the seed, so a network scores the same twice."""
    from netdsl.bench import nb201
    from netdsl.rank.scores import stage_outputs

    bound = nb201.family().bind({"C": 4, "N": 2})
    stages = stage_outputs(bound)
    assert stages == ["stem_bn", "cell1/n3", "cell1_1/n3", "reduce1/add", "cell2/n3",
                      "cell2_1/n3", "reduce2/add", "cell3/n3", "cell3_1/n3"]
    x = torch.randn(8, 3, 32, 32)

    def parts(seed):
        network = bound.module(seed=5)
        return proxies.az_nas_parts(network, x, [network.node(p) for p in stages], seed)
    assert parts(0) == parts(0)
    assert parts(0)["trainability"] != parts(1)["trainability"]
    assert all(math.isfinite(v) for v in parts(0).values())


def test_rank_aggregation_sums_the_log_ranks_of_its_parts_ties_shared():
    from netdsl.rank.aggregate import aggregated, base_scores, split_names

    table = [{"a": 1.0, "b": 3.0}, {"a": 2.0, "b": 1.0}, {"a": 2.0, "b": math.nan}]
    # ranks of a: 1, 2.5, 2.5 (tied); of b: 3, 2, 1 (not defined ranks last)
    assert aggregated("rank(a,b)", table) == pytest.approx(
        [math.log(1 / 3) + math.log(3 / 3), math.log(2.5 / 3) + math.log(2 / 3),
         math.log(2.5 / 3) + math.log(1 / 3)])
    assert split_names("naswot, rank(az_nas,meco),flops") == ["naswot", "rank(az_nas,meco)",
                                                               "flops"]
    assert base_scores(["rank(az_nas,meco)", "flops"]) == [
        "flops", "expressivity", "progressivity", "trainability", "meco"]


def test_undefined_scores_say_why():
    x, y = batch()
    with pytest.raises(Undefined, match="no ReLU-like nonlinearity"):
        proxies.naswot(linear_net(), x, y)
    dead = netdsl.compile("a: conv(4) -> z: zero -> flatten -> linear(3)", input_shape=(3, 2, 2))
    with pytest.raises(Undefined, match="no path carries the input"):
        proxies.synflow(dead, x, y)
    weightless = nn.Sequential(nn.AvgPool2d(2), nn.Flatten())  # 3 outputs, nothing to train
    cut = netdsl.compile("a: conv(3) -> z: zero -> avgpool(2) -> flatten", input_shape=(3, 2, 2))
    for net in (weightless, cut):
        for proxy in (proxies.grad_norm, proxies.snip):
            with pytest.raises(Undefined, match="no convolution or linear weight reaches"):
                proxy(net, x, y)
        with pytest.raises(Undefined, match="no synaptic flow"):
            proxies.synflow(net, x, y)


# ---- netdsl score ---------------------------------------------------------------------------

def test_score_samples_a_space_seeded(tmp_path, image_folder):
    args = ["score", "-e", CHOICES, "--dataset", str(image_folder), "--sample", "4",
            "--batch-size", "16", "--json"]
    run = netdsl_cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert len(report["networks"]) == 4
    assert len({n["fingerprint"] for n in report["networks"]}) == 4  # four different networks
    for network in report["networks"]:
        assert set(network["scores"]) == {"weights", "flops", "grad_norm", "snip", "synflow",
                                          "naswot", "meco", "expressivity", "progressivity",
                                          "trainability"}
        assert set(network["choices"]) == {"prep", "op"}
        if network["choices"]["op"] == "zero":  # nothing reaches the head's weights
            assert network["scores"]["synflow"] is None
            assert "no path" in network["undefined"]["synflow"]
    again = json.loads(netdsl_cli(*args, cwd=tmp_path).stdout)["networks"]
    assert [(n["fingerprint"], n["scores"]) for n in again] == [
        (n["fingerprint"], n["scores"]) for n in report["networks"]]  # seeded: the same
    table = netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), "--set",
                       "op=zero", "--proxy", "synflow,weights", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[1].split()[:3] == ["#", "synflow", "weights"]
    assert lines[2].split()[:2] == ["0", "nan"]
    assert lines[3].startswith("network 0: synflow is not defined: no synaptic flow")


def log_ranks(*columns):
    """AZ-NAS's aggregate by hand: the sum over the columns of log(rank / m), a score not
    defined (null) ranked last."""
    from scipy.stats import rankdata

    columns = [[-math.inf if v is None else v for v in column] for column in columns]
    return [sum(values) for values in zip(*[
        [math.log(r / len(column)) for r in rankdata(column)] for column in columns])]


def test_az_nas_and_a_combination_rank_the_networks_scored_together(tmp_path, image_folder):
    run = netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), "--sample", "4",
                     "--batch-size", "16", "--proxy", "az_nas,rank(naswot,weights)", "--json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["proxies"] == ["az_nas", "rank(naswot,weights)"]
    scores = [n["scores"] for n in report["networks"]]
    parts = ["flops", "expressivity", "progressivity", "trainability"]
    assert all(set(s) == {*parts, "naswot", "weights", "az_nas", "rank(naswot,weights)"}
               for s in scores)
    assert [s["az_nas"] for s in scores] == pytest.approx(
        log_ranks(*[[s[p] for s in scores] for p in parts]))
    assert [s["rank(naswot,weights)"] for s in scores] == pytest.approx(
        log_ranks([s["naswot"] for s in scores], [s["weights"] for s in scores]))
    table = netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), "--sample", "4",
                       "--batch-size", "16", "--proxy", "az_nas", cwd=tmp_path)
    assert "ranked over the 4 networks" in table.stdout
    clear_error(netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), "--proxy",
                           "rank(naswot,jacov)", cwd=tmp_path), "no score named 'jacov'")


@pytest.mark.parametrize("args, words", [
    (["--proxy", "jacov"], ["no score named 'jacov'", "synflow"]),
    (["--sample", "0"], ["--sample must be at least 1"]),
    (["--batch-size", "500"], ["--batch-size 500 is more than the 96 training images"]),
])
def test_score_refuses_bad_options(tmp_path, image_folder, args, words):
    clear_error(netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), *args,
                           cwd=tmp_path), *words)


OVERFLOWS = "conv(4) -> " + "mul(1e15) -> " * 5 + "avgpool(16) -> flatten -> linear(3)"


# AZ-NAS compares the outputs of top-level blocks: these networks have none
AZ = {"expressivity", "progressivity", "trainability"}


@pytest.mark.parametrize("network, undefined", [
    # no weights, and no feature map left for meco to correlate
    ("avgpool(16) -> flatten", {"grad_norm", "snip", "synflow", "naswot", "meco", *AZ}),
    ("conv(3) -> zero -> avgpool(16) -> flatten",
     {"grad_norm", "snip", "synflow", "naswot", *AZ}),
    ("conv(4) -> zero -> relu -> avgpool(16) -> flatten -> linear(3)",
     {"synflow", "naswot", *AZ}),
    (OVERFLOWS, {"grad_norm", "snip", "naswot", *AZ}),  # 1e75 times the input: inf, then nan
])
def test_every_score_is_a_number_or_null_with_its_reason(tmp_path, image_folder, network,
                                                        undefined):
    run = netdsl_cli("score", "-e", network, "--dataset", str(image_folder), "--json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    not_json = lambda constant: pytest.fail(f"{constant} is not JSON")
    [scored] = json.loads(run.stdout, parse_constant=not_json)["networks"]
    assert {name for name, value in scored["scores"].items() if value is None} == undefined
    assert set(scored["undefined"]) == undefined and all(scored["undefined"].values())
    assert all(math.isfinite(v) for v in scored["scores"].values() if v is not None)


def test_a_nan_in_the_table_has_its_reason_below(tmp_path, image_folder):
    run = netdsl_cli("score", "-e", OVERFLOWS, "--dataset", str(image_folder), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    row = next(line for line in lines if line.split()[:1] == ["0"])
    reasons = [line for line in lines if line.startswith("network 0: ")]
    assert row.split().count("nan") == len(reasons) == 6
    assert "network 0: grad_norm is not defined: it came out nan" in run.stdout
    assert "network 0: trainability is not defined: AZ-NAS compares the feature maps of " \
        "consecutive stages: fewer than two stages given" in run.stdout


@pytest.mark.parametrize("command", [["score"], ["run", *FAST]])
def test_outputs_that_are_not_the_classes_are_refused_by_score_as_by_run(tmp_path, image_folder,
                                                                        command):
    clear_error(netdsl_cli(*command, "-e", "a(4) -> head(2)", "--dataset", str(image_folder),
                           cwd=tmp_path), "the model gives 2 outputs per image but", "3 classes")


def test_a_sampled_network_whose_outputs_are_not_the_classes_is_named(tmp_path, image_folder):
    sample = netdsl_cli("score", "-e", "param k = choice(3, 2)\na(4) -> head(k)", "--dataset",
                        str(image_folder), "--sample", "2", cwd=tmp_path)
    clear_error(sample, "(k=2): the model gives 2 outputs per image")


def test_score_refuses_a_seed_out_of_range_naming_the_range(tmp_path, image_folder):
    clear_error(netdsl_cli("score", "-e", "a(4) -> head(3)", "--dataset", str(image_folder),
                           "--seed", str(2 ** 64), cwd=tmp_path),
                "--seed", "not a seed", "from 0 to 4294967295")


def test_score_sample_needs_choices_and_stops_at_the_space(tmp_path, image_folder):
    clear_error(netdsl_cli("score", "-e", "a(4) -> head(3)", "--dataset", str(image_folder),
                           "--sample", "3", cwd=tmp_path), "declares no choice")
    run = netdsl_cli("score", "-e", CHOICES, "--dataset", str(image_folder), "--sample", "10",
                     "--proxy", "weights", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "space holds 6 networks; scoring them all" in run.stdout
    assert len(run.stdout.splitlines()) == 3 + 6  # data, note, header, a row each


# ---- the search's prefilter ----------------------------------------------------------------

@pytest.mark.parametrize("tuner", ["random", "evolution"])
def test_a_prefiltered_search_trains_the_best_scored_candidate(tmp_path, image_folder, tuner):
    run = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials", "3",
                     "--name", "t", "--prefilter", "weights:3", "--tuner", tuner,
                     "--population", "2", "--tournament", "1", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "scoring candidates" in run.stdout.splitlines()[-1]
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    trained = [r for r in rows if r["state"] == "complete" and not r["redrawn"]]
    assert len(trained) == 3
    for row in trained:
        prefilter = row["prefilter"]
        assert prefilter["proxy"] == "weights" and len(prefilter["candidates"]) == 3
        scores = [c["weights"] for c in prefilter["candidates"]]
        assert scores[prefilter["chosen"]] == max(scores)
        assert row["values"] == prefilter["candidates"][prefilter["chosen"]]["choices"]
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'netdsl.db'}")
    assert all(t.params == t.user_attrs["values"] for t in study.trials
               if t.state.name == "COMPLETE" and not t.user_attrs.get("redrawn"))


def test_a_prefilter_by_az_nas_ranks_each_trials_candidates_among_themselves(tmp_path,
                                                                             image_folder):
    run = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials", "2",
                     "--name", "t", "--prefilter", "az_nas:3", "--tuner", "random", *FAST,
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    for row in [r for r in rows if r["state"] == "complete" and not r["redrawn"]]:
        candidates = row["prefilter"]["candidates"]
        by_hand = log_ranks(*[[c[p] for c in candidates] for p in (
            "flops", "expressivity", "progressivity", "trainability")])
        assert [c["az_nas"] for c in candidates] == pytest.approx(by_hand)
        assert row["values"] == candidates[row["prefilter"]["chosen"]]["choices"]
        assert by_hand[row["prefilter"]["chosen"]] == max(by_hand)


def test_a_candidate_whose_score_is_not_defined_ranks_last():
    from netdsl.search.prefilter import best_candidate

    assert best_candidate([math.nan, -5.0, math.nan, -7.0]) == 1
    assert best_candidate([math.nan, math.nan]) == 0  # none defined: the first drawn


@pytest.mark.parametrize("args, words", [
    (["--prefilter", "synflow"], ["give PROXY:K"]),
    (["--prefilter", "synflow:1"], ["at least 2"]),
    (["--prefilter", "magic:4"], ["no score named 'magic'"]),
    (["--prefilter", "synflow:\u00b2"], ["give PROXY:K"]),  # a digit to str.isdigit, not to int
    (["--prefilter", "synflow:4", "--tuner", "grid"], ["a grid trains every network"]),
])
def test_bad_prefilters_are_refused(tmp_path, image_folder, args, words):
    clear_error(netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials",
                           "2", *args, *FAST, cwd=tmp_path), *words)


def test_a_prefilter_has_a_bound_on_its_candidates():
    from netdsl.search.prefilter import MAX_CANDIDATES, parse_prefilter

    assert parse_prefilter(f"synflow:{MAX_CANDIDATES}") == ("synflow", MAX_CANDIDATES)
    with pytest.raises(netdsl.NetdslError, match="at most 1000 candidates per trial"):
        parse_prefilter("synflow:100000000")


def test_a_prefilter_ranks_a_candidate_without_weights_last_and_trains_another(tmp_path,
                                                                              image_folder):
    """One option has no weight to score or train: its candidates are nan, with the reason, and
    never chosen over one with weights; the search runs through."""
    family = "m: choice(conv(3), avgpool(1)) -> avgpool(16) -> flatten"
    run = netdsl_cli("search", "-e", family, "--dataset", str(image_folder), "--trials", "3",
                     "--name", "t", "--prefilter", "grad_norm:4", "--tuner", "random", *FAST,
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    # A trial queued with its network fixed (an untried one, after repeats) scores nothing.
    rows = [row for row in rows if row["prefilter"] is not None]
    candidates = [c for row in rows for c in row["prefilter"]["candidates"]]
    weightless = [c for c in candidates if c["grad_norm"] is None]
    assert weightless and len(weightless) < len(candidates)
    assert all("no convolution or linear weight reaches" in c["undefined"] for c in weightless)
    for row in rows:
        prefilter = row["prefilter"]
        if any(c["grad_norm"] is not None for c in prefilter["candidates"]):
            assert row["state"] == "complete"
            assert prefilter["candidates"][prefilter["chosen"]]["grad_norm"] is not None
