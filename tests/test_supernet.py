"""The weight-sharing supernet: one module for a family's space, trained by the shared trainer a
drawn network per step, ranking networks with its weights, starting one from them."""
import json
import re

import pytest
import torch

import netdsl
import netdsl_runtime as runtime
from conftest import clear_error, netdsl_cli
from netdsl.train import load_weights
from netdsl.module.network import transfer_weights
from netdsl.supernet import Supernet, saved_form, weights_for

CHOICES = ("param prep = choice(4, 8)\nparam op = choice(relu, identity, zero)\n"
           "a(prep, pool) -> x: op -> b(8, pool) -> head(3)")
FAST = ["--epochs", "2", "--batch-size", "32", "--cutout", "0"]
VALUES = {"prep": 4, "op": "relu"}


def supernet(seed=0):
    net = Supernet(netdsl.load(CHOICES), {}, (3, 16, 16), seed=seed)
    net.allocate(seed)
    return net


def test_every_network_runs_on_the_widest_layers_it_shares():
    """prep 4 and 8 share one conv at `a/conv`, made for 8 filters; a network with 4 runs on
    its first 4, exactly as the standalone network started from those weights."""
    net = supernet()
    conv = "a/conv#Conv2d3x3@stage>conv_bn"  # the stage a's conv_bn made it
    assert net.layers[conv].weight.shape[0] == 8
    assert [key for key in net.layers if key.startswith("a/conv")] == [conv]
    assert sorted(key for key in net.layers if key.startswith("x#")) == [
        "x#Identity@", "x#ReLU@", "x#Zero@"]  # the op choice: a layer per option
    x = torch.randn(5, 3, 16, 16)
    saved = saved_form(net)
    for prep in (4, 8):
        for op in ("relu", "identity", "zero"):
            inherited = net.network(net.bind({"prep": prep, "op": op})).eval()
            bound = netdsl.load(CHOICES).bind({"prep": prep, "op": op}, input_shape=(3, 16, 16))
            standalone = bound.module().eval()
            report = transfer_weights(weights_for(saved, bound, standalone), standalone)
            assert "kept" not in report.values()
            assert ("sliced" in report.values()) == (prep == 4)
            with torch.no_grad():
                assert torch.allclose(inherited(x), standalone(x), atol=1e-6)


def test_training_draws_networks_seeded_and_trains_the_shared_layers(image_folder):
    data = runtime.DeviceData(runtime.load_images(str(image_folder)), "cpu")
    recipe = runtime.Recipe(epochs=2, batch_size=16, cutout=0, precision="fp32")
    first, again = supernet(seed=3), supernet(seed=3)
    before = {k: v.clone() for k, v in first.state_dict().items()}
    runtime.train(first, data, recipe, log=None, evaluate_each_epoch=False)
    runtime.train(again, data, recipe, log=None, evaluate_each_epoch=False)
    assert first.drawn == again.drawn and len(first.drawn) > 1
    assert all(torch.equal(first.state_dict()[k], again.state_dict()[k]) for k in before)
    conv = "layers.a/conv#Conv2d3x3@stage>conv_bn.weight"
    assert not torch.equal(before[conv], first.state_dict()[conv])


def test_fair_sampling_trains_every_option_of_every_point_on_equal_shares_of_each_batch():
    """op has 3 options, prep 2: each step runs 3 networks, each on a third of the batch; over
    them op takes each option once and prep each option once or twice (its order again)."""
    net = Supernet(netdsl.load(CHOICES), {}, (3, 16, 16), seed=1, sampling="fair")
    net.allocate(1)
    assert net.networks_per_step() == 3
    seen_orders = set()
    for _ in range(6):
        dealt = net.dealt()
        ops = [bound.choices["op"] for bound in dealt]
        preps = [bound.choices["prep"] for bound in dealt]
        assert sorted(ops) == ["identity", "relu", "zero"]
        assert sorted(preps[:2]) == [4, 8] and preps[2] == preps[0]
        seen_orders.add(tuple(ops))
    assert len(seen_orders) > 1  # a new order each step
    net.train()
    shares = []
    original = net.run
    net.run = lambda bound, x, training: shares.append(len(x)) or original(bound, x, training)
    out = net(torch.randn(7, 3, 16, 16))
    assert out.shape == (7, 3) and sorted(shares) == [2, 2, 3]
    assert len(net.drawn) >= 2
    fixed = Supernet(netdsl.load(CHOICES), VALUES, (3, 16, 16), sampling="fair")
    assert fixed.networks_per_step() == 1  # --set fixed every point: its one network
    assert [bound.choices for bound in fixed.dealt()] == [VALUES]


def test_fair_sampling_is_refused_where_options_cannot_be_dealt(tmp_path, image_folder):
    ranged = "param w = logrange(0.1, 1)\na(4) -> head(3, w=w)"
    with pytest.raises(netdsl.NetdslError, match="'w' is a range of real numbers"):
        Supernet(netdsl.load(ranged), {}, (3, 16, 16), sampling="fair")
    small = [arg if arg != "32" else "4" for arg in FAST]  # 3 networks need 6 images a step
    clear_error(netdsl_cli("supernet", "-e", CHOICES, "--dataset", str(image_folder), *small,
                           "--sampling", "fair", "-o", "s.pt", cwd=tmp_path),
                "each step trains 3 networks", "--batch-size 4 is too small")
    assert not (tmp_path / "s.pt").exists()
    made = netdsl_cli("supernet", "-e", CHOICES, "--dataset", str(image_folder), *FAST,
                      "--sampling", "fair", "-o", "s.pt", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "3 networks dealt each option fairly" in made.stdout and (tmp_path / "s.pt").exists()


def test_each_option_of_a_choice_has_its_own_layers_and_widths_share_them():
    """NAS-Bench-201's edge: the BatchNorm after a 3x3 and after a 1x1 convolution is one node
    path but two layers, one per block chosen (as in the paper); the two widths share each."""
    text = ("block k3(c) { conv(c, ks=3) -> bn }\nblock k1(c) { conv(c, ks=1) -> bn }\n"
            "param op = choice(k3, k1)\nparam c = choice(4, 8)\ne: op(c) -> head(3)")
    net = Supernet(netdsl.load(text), {}, (3, 16, 16))
    net.allocate(0)
    norms = sorted(key for key in net.layers if key.startswith("e/bn#"))
    assert norms == ["e/bn#BatchNorm@k1", "e/bn#BatchNorm@k3"]
    assert all(net.layers[key].weight.shape == (8,) for key in norms)
    assert sorted(key for key in net.layers if key.startswith("e/conv#")) == [
        "e/conv#Conv2d1x1@k1", "e/conv#Conv2d3x3@k3"]
    for op in ("k3", "k1"):  # k1 at 8 is not among the defaults' neighbours, yet fits
        for c in (4, 8):
            out = net.network(net.bind({"op": op, "c": c}))(torch.randn(2, 3, 16, 16))
            assert out.shape == (2, 3)


def test_supernet_ranks_a_search_and_starts_the_winner(tmp_path, image_folder):
    made = netdsl_cli("supernet", "-e", CHOICES, "--dataset", str(image_folder), *FAST,
                      "-o", "s.pt", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "different networks trained" in made.stdout and (tmp_path / "s.pt").exists()
    search = netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials",
                        "3", "--name", "t", "--supernet", "s.pt", *FAST, cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    assert search.stdout.count("with the supernet's weights") == 3
    rows = json.loads(netdsl_cli("trials", "--name", "t", "--json", cwd=tmp_path).stdout)
    assert all(r["train_time"] is None and 0 <= r["accuracy"] <= 1 for r in rows
               if r["state"] == "complete")  # ranked, not trained
    best = netdsl_cli("best", "--name", "t", cwd=tmp_path).stdout
    run = netdsl_cli("run", "-e", best, "--dataset", str(image_folder), *FAST, "--init-from",
                     "s.pt", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "initial weights: " in run.stdout and " 0 copied" not in run.stdout


def test_a_supernet_of_another_space_or_family_is_refused(tmp_path, image_folder):
    assert netdsl_cli("supernet", "-e", CHOICES, "--dataset", str(image_folder), *FAST, "-o",
                      "s.pt", cwd=tmp_path).returncode == 0
    other = CHOICES.replace("choice(relu, identity, zero)", "choice(relu, zero)")
    clear_error(netdsl_cli("search", "-e", other, "--dataset", str(image_folder), "--trials",
                           "2", "--supernet", "s.pt", *FAST, cwd=tmp_path),
                "s.pt: a supernet of another space: choice point 'op' offers")
    wider = CHOICES.replace("b(8, pool)", "b(16, pool)")
    clear_error(netdsl_cli("search", "-e", wider, "--dataset", str(image_folder), "--trials",
                           "2", "--supernet", "s.pt", *FAST, cwd=tmp_path),
                "a supernet of another family")
    assert netdsl_cli("run", "-e", "a(4) -> head(3)", "--dataset", str(image_folder), *FAST,
                      "--save-weights", "w.pt", cwd=tmp_path).returncode == 0
    clear_error(netdsl_cli("search", "-e", CHOICES, "--dataset", str(image_folder), "--trials",
                           "2", "--supernet", "w.pt", *FAST, cwd=tmp_path), "not a supernet")
    torch.save({"format": "netdsl-supernet-1", "layers": {}}, tmp_path / "old.pt")
    for command in (["search", "--trials", "2", "--supernet"], ["run", "--init-from"]):
        clear_error(netdsl_cli(*command, "old.pt", "-e", CHOICES, "--dataset",
                               str(image_folder), *FAST, cwd=tmp_path),
                    "old.pt: a supernet saved as netdsl-supernet-1", "train it again")


@pytest.mark.parametrize("args, words", [
    (["-e", "a(4) -> head(3)"], ["declares no choice"]),
    (["-e", CHOICES, "--init-from", "x.pt"], ["--init-from starts a network"]),
])
def test_bad_supernets_are_refused(tmp_path, image_folder, args, words):
    clear_error(netdsl_cli("supernet", *args, "--dataset", str(image_folder), *FAST, "-o",
                           "s.pt", cwd=tmp_path), *words)
    assert not (tmp_path / "s.pt").exists()


def test_a_supernet_too_large_for_memory_is_refused_before_allocating(monkeypatch, tmp_path,
                                                                     image_folder):
    from netdsl import cli

    monkeypatch.setattr(runtime, "free_memory", lambda device: 1000)
    allocated = []
    monkeypatch.setattr(Supernet, "allocate", lambda self, seed: allocated.append(seed))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["supernet", "-e", CHOICES, "--dataset", str(image_folder), *FAST, "-o",
                     "s.pt"]) == 2
    assert allocated == [] and not (tmp_path / "s.pt").exists()


LAYER = "layers.a/conv#Conv2d3x3@stage>conv_bn.weight"


@pytest.mark.parametrize("entry, value, words", [
    ("layers", None, "its 'layers' (the layers' tensors by name) is missing"),
    ("layers", 5, "its 'layers' (the layers' tensors by name) is of type int, not dict"),
    ("values", "C=8", "its 'values' (the values it was bound with) is of type str, not dict"),
    ("points", ["op"], "its 'points' (each choice point's options) is of type list, not dict"),
    ("points", {"op": "relu"}, "its 'points' (each choice point's options) holds 'op' of type "
     "str, not list"),
    ("default", 3, "its 'default' (the default network's fingerprint) is of type int"),
    (LAYER, "weights", f"its 'layers' (the layers' tensors by name) holds '{LAYER}' of type "
     "str, not Tensor"),
])
def test_a_damaged_supernet_file_is_refused_naming_the_entry(tmp_path, entry, value, words):
    saved = saved_form(supernet())
    where = saved["layers"] if entry == LAYER else saved
    if value is None:
        del where[entry]
    else:
        where[entry] = value
    torch.save(saved, tmp_path / "s.pt")
    with pytest.raises(netdsl.NetdslError, match=re.escape(f"s.pt: a damaged supernet file: "
                                                           f"{words}")):
        load_weights(str(tmp_path / "s.pt"))


def test_search_and_run_refuse_a_damaged_supernet_file(tmp_path, image_folder):
    saved = saved_form(supernet())
    del saved["layers"]
    torch.save(saved, tmp_path / "s.pt")
    for command in (["search", "--trials", "1", "--supernet"], ["run", "--init-from"]):
        clear_error(netdsl_cli(*command, "s.pt", "-e", CHOICES, "--dataset", str(image_folder),
                               *FAST, cwd=tmp_path),
                    "s.pt: a damaged supernet file: its 'layers'", "is missing")
