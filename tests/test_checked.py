"""Every value that passes a check runs, and nothing runs wrong without a word: whitening from
its own input, bound values that print as text that parses back, presets on networks they
serve, ranges checked at parse time, bad data files, bad records, hand-written graphs, weights
of another network, and search workers that do not spend the budget on repeats."""
import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import netdsl
import netdsl_runtime as runtime
from conftest import clear_error, netdsl_cli
from netdsl import NetdslError
from netdsl.cli import build_parser
from netdsl.graph import Graph, Op
from netdsl.commands.flags import recipe_of
from test_datasets import make_mnist, write_idx

FAST = ["--epochs", "1", "--batch-size", "32", "--cutout", "0"]
NO_BN = "a: conv(4) -> relu -> head(3)"


# ---- whitening is set from what reaches it -------------------------------------------------------

def whitening_inverse(x: torch.Tensor, k: int) -> torch.Tensor:
    """(C + eps I)^-1 for C the covariance of the k x k patches of `x` (N, C, H, W), by hand in
    float64: what F^T F must be for whitening filters F = eigenvectors / sqrt(eigenvalue + eps),
    whatever the eigenvectors' signs or order."""
    x = x.double()
    n, c, h, w = x.shape
    patches = torch.stack([x[:, :, i:i + k, j:j + k].reshape(n, c * k * k)
                           for i in range(h - k + 1) for j in range(w - k + 1)], 1)
    patches = patches.reshape(-1, c * k * k)
    covariance = patches.T @ patches / len(patches)
    return torch.linalg.inv(covariance + runtime_eps() * torch.eye(c * k * k, dtype=x.dtype))


def runtime_eps() -> float:
    from netdsl.module.layers import Whiten

    return Whiten.EPS


def check_whitening(layer, x: torch.Tensor) -> None:
    filters = layer.weight.detach().double().flatten(1)
    half = len(filters) // 2
    assert torch.equal(filters[half:], -filters[:half])
    expected = whitening_inverse(x, layer.kernel_size[0])
    got = filters[:half].T @ filters[:half]
    assert torch.allclose(got, expected, rtol=1e-3, atol=1e-3 * expected.abs().max())


@pytest.mark.parametrize("text, path", [
    ("w: whiten -> relu -> head(3)", "w"),
    ("c: conv(3) -> w: whiten -> relu -> head(3)", "w"),
    ("c: conv(6) -> w: whiten -> relu -> head(3)", "w"),
    ("w1: whiten -> g: gelu -> w2: whiten(ks=1) -> head(3)", "w2"),
])
def test_each_whitening_layer_is_set_from_its_own_input(text, path):
    torch.manual_seed(0)
    model = netdsl.compile(text).eval()
    images = torch.randn(40, 3, 12, 12)
    runtime.initialise_from_data(model, images)
    with torch.no_grad():  # what reaches the layer, now that the layers before it are set
        x = images
        for node_path, module in model.named_nodes():
            if node_path == path:
                break
            x = module(x)
    check_whitening(model.node(path), x)
    if text.startswith("c: conv(3)"):  # as many channels as the images, which give others
        with pytest.raises(AssertionError):
            check_whitening(model.node(path), images)


def test_a_whitening_layer_after_a_conv_trains_with_few_whitening_images(tmp_path, image_folder):
    """It crashed (`shape '[-1, 32]' is invalid`): it was set from the raw images."""
    run = netdsl_cli("run", "-e", "c: conv(8) -> w: whiten -> relu -> head(3)", "--dataset",
                     str(image_folder), *FAST, "--whiten-images", "50", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert re.match(r"finished: valid acc [01]\.\d{4}, ", run.stdout.splitlines()[-1])


# ---- bound values print as text that parses back -------------------------------------------------

def test_a_value_past_the_languages_numbers_is_refused_when_binding():
    family = netdsl.load("param w = 0.5\na: conv(4) -> head(10, w=w)")
    with pytest.raises(NetdslError, match="parameter 'w' must be at most 2\\*\\*62"):
        family.bind({"w": 5e18})


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.floats(-2.0 ** 62, 2.0 ** 62), st.integers(-2 ** 62, 2 ** 62)))
def test_every_value_that_binds_prints_as_text_that_binds_to_the_same_network(value):
    family = netdsl.load("param w = 0.5\na: conv(4) -> head(10, w=w)")
    bound = family.bind({"w": value})
    again = netdsl.load(bound.text).bind()
    assert again.fingerprint == bound.fingerprint
    assert again.parameters["w"] == value


# ---- presets on networks they serve --------------------------------------------------------------

def test_a_presets_by_kind_entries_apply_where_the_network_has_them(tmp_path, image_folder):
    """airbench94 on a network without BatchNorm; the header says what did not apply."""
    run = netdsl_cli("run", "-e", NO_BN, "--recipe", "airbench94", "--dataset",
                     str(image_folder), "--batch-size", "32", "--tta", "0", "--json", "r.json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "not applied (the network has nothing they name): kind_lr_scale " \
           "BatchNorm2d.bias" in run.stdout
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["runs"][0]["hyperparameters"]["kind_lr_scale"] == {}


@pytest.mark.parametrize("args, words", [
    # No convolution: Muon's own error, not one about a BatchNorm the preset names.
    (["-e", "a: flatten -> linear(3)", "--recipe", "airbench94_muon"], ["optimizer muon"]),
    # A user's own entry that matches nothing stays a mistake.
    (["-e", NO_BN, "--recipe", "airbench94", "--kind-lr-scale", "BatchNorm.bais=2"],
     ["no parameter of kind 'BatchNorm.bais'"]),
    (["-e", NO_BN, "--lr-scale", "layer9=2"], ["no parameter under 'layer9'"]),
    (["-e", NO_BN, "--unset", "kind_lr_scale/BatchNorm2d.bias"],
     ["kind_lr_scale has no entry 'BatchNorm2d.bias'"]),
    (["-e", NO_BN, "--unset", "momentum"], ["'momentum' is not one of the recipe's mappings"]),
])
def test_recipe_errors_come_before_any_data_loads(tmp_path, args, words):
    clear_error(netdsl_cli("run", *args, "--dataset", "nowhere", cwd=tmp_path), *words)


def test_unset_drops_a_presets_entry(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", "a: conv(4) -> bn -> relu -> head(3)", "--recipe",
                     "airbench94", "--unset", "kind_lr_scale/BatchNorm2d.bias", "--dataset",
                     str(image_folder), "--batch-size", "32", "--tta", "0", "--json", "r.json",
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["hyperparameters"]["kind_lr_scale"] == {}


def test_a_recipe_files_own_entry_is_the_users(tmp_path):
    (tmp_path / "mine.toml").write_text('base = "airbench94"\n'
                                        'kind_lr_scale = { "Conv2d.bias" = 2 }\n')
    clear_error(netdsl_cli("run", "-e", NO_BN, "--recipe", "mine.toml", "--dataset", "nowhere",
                           cwd=tmp_path), "no parameter of kind 'Conv2d.bias'")


def test_tomls_dotted_key_is_one_kind(tmp_path):
    path = tmp_path / "dotted.toml"
    path.write_text("kind_lr_scale = { BatchNorm2d.bias = 64 }\n")
    assert runtime.load_recipe(path).kind_lr_scale == {"BatchNorm2d.bias": 64.0}
    path.write_text("lr_scale = { layer1.conv = 2 }\n")
    with pytest.raises(runtime.RecipeError, match='write a path as one quoted key'):
        runtime.load_recipe(path)


def test_a_recipe_file_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfepochs = 3\n")
    assert runtime.load_recipe(path).epochs == 3


def test_the_peak_given_is_the_peak_used(tmp_path):
    """A recipe's peak_epoch silently beat --peak-fraction, while the JSON recorded the
    fraction."""
    from netdsl.train.settings import apply

    (tmp_path / "at.toml").write_text("peak_epoch = 2\n")
    args = build_parser().parse_args(["run", "-e", NO_BN, "--dataset", "x", "--recipe",
                                 str(tmp_path / "at.toml"), "--peak-fraction", "0.5"])
    recipe, _ = recipe_of(args)
    assert recipe.peak_epoch is None and recipe.peak == recipe.epochs * 0.5
    recipe = apply(runtime.load_recipe(tmp_path / "at.toml"), {"peak_fraction": 0.5})
    assert recipe.peak_epoch is None and recipe.peak == recipe.epochs * 0.5
    (tmp_path / "on.toml").write_text('base = "airbench94"\npeak_epoch = 2\n')
    (tmp_path / "off.toml").write_text('base = "airbench94"\npeak_fraction = 0.1\n')
    assert runtime.load_recipe(tmp_path / "on.toml").peak == 2
    assert runtime.load_recipe(tmp_path / "off.toml").peak == pytest.approx(0.99)


# ---- ranges that match what runs -----------------------------------------------------------------

@pytest.mark.parametrize("flags, words", [
    (["--epochs", "1e-12"], ["epochs must be at least 0.001"]),
    (["--epochs", "1e308"], ["epochs must be below 100000"]),
    (["--seed", str(2 ** 32)], ["seed must be below 4294967296"]),
    (["--seed", str(2 ** 64)], ["seed must be below"]),
    (["--seed", str(2 ** 32 - 1), "--runs", "2"], ["must stay below 2**32"]),
    (["--device", "cpu:7"], ["--device cpu:7", "the CPU is one device"]),
])
def test_values_that_would_crash_are_refused_at_parse_time(tmp_path, flags, words):
    clear_error(netdsl_cli("run", "-e", NO_BN, *flags, "--dataset", "nowhere", cwd=tmp_path),
                *words)


def test_a_recipe_files_values_have_the_same_ranges(tmp_path):
    for text, words in (("epochs = 1e-12", "epochs must be at least"),
                        (f"seed = {2 ** 63}", "seed must be below")):
        (tmp_path / "r.toml").write_text(text + "\n")
        with pytest.raises(runtime.RecipeError, match=words):
            runtime.load_recipe(tmp_path / "r.toml")


def test_the_smallest_epochs_trains_a_step(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", NO_BN, "--dataset", str(image_folder), *FAST[2:], "--epochs",
                     "0.001", "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith("finished: valid acc 0.")


def test_quiet_says_a_diverged_run_has_no_accuracy(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", NO_BN, "--dataset", str(image_folder), *FAST, "--peak-lr",
                     "1e30", "--quiet", cwd=tmp_path)
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and "diverged: valid acc none" in run.stdout


# ---- bad data files ------------------------------------------------------------------------------

def damage(raw, how):
    images = raw / "train-images-idx3-ubyte"
    labels = raw / "train-labels-idx1-ubyte"
    if how == "magic":
        images.write_bytes(b"\x00\x00\x99\x03" + images.read_bytes()[4:])
        return images
    if how == "empty":
        labels.write_bytes(b"")
        return labels
    if how == "int32":  # IDX type 0x0C: int32 elements
        array = np.zeros((60, 28, 28), ">i4")
        images.write_bytes(b"\x00\x00\x0c\x03" + np.array(array.shape, ">u4").tobytes()
                           + array.tobytes())
        return images
    if how == "truncated":
        images.write_bytes(images.read_bytes()[:1000])
        return images
    if how == "labels":  # 11: out of MNIST's 10 classes
        write_idx(labels, np.full(60, 11))
        return labels
    write_idx(labels, np.zeros(30))  # fewer labels than images
    return labels


@pytest.mark.parametrize("how, words", [
    ("magic", ["not an MNIST-format image file"]),
    ("empty", ["not an MNIST-format label file"]),
    ("int32", ["not an MNIST-format image file", "torch.int32"]),
    ("truncated", ["not an MNIST-format image file"]),
    ("labels", ["labels from 11 to 11", "10 classes"]),
    ("count", ["60 images but", "30 labels"]),
])
def test_bad_mnist_files_are_named_before_training(tmp_path, how, words):
    make_mnist(tmp_path, "MNIST")
    bad = damage(tmp_path / "MNIST" / "raw", how)
    run = netdsl_cli("run", "-e", "a: conv(4) -> head(10)", "--dataset", "mnist", "--data-dir",
                     str(tmp_path), *FAST, cwd=tmp_path)
    clear_error(run, *words)
    assert bad.name in run.stderr
    assert "Offline?" not in run.stderr and "epoch" not in run.stdout


def test_blank_images_are_a_clear_error(tmp_path):
    make_mnist(tmp_path, "MNIST")
    write_idx(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte", np.zeros((60, 28, 28)))
    run = netdsl_cli("run", "-e", "w: whiten -> head(10)", "--dataset", "mnist", "--data-dir",
                     str(tmp_path), *FAST, cwd=tmp_path)
    clear_error(run, "channel 0 of every training image has the one value 0")


def test_a_test_set_of_one_image(tmp_path):
    make_mnist(tmp_path, "MNIST", n=(60, 1))
    run = netdsl_cli("run", "-e", "a: conv(4) -> head(10)", "--dataset", "mnist", "--data-dir",
                     str(tmp_path), *FAST, "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    data_line, result_line = run.stdout.splitlines()
    assert "60 training, 1 test images" in data_line
    # One image is classified right or wrong: an accuracy of 0 or 1.
    assert result_line.startswith(("finished: valid acc 0.0000,", "finished: valid acc 1.0000,"))


# ---- records that are not runs -------------------------------------------------------------------

@pytest.mark.parametrize("record, words", [
    ({"runs": [{"status": "finished"}]}, ["run 1 is not a `netdsl run --json` record"]),
    ({"runs": [{"epochs": [{"epoch": 1, "train_loss": "x", "valid_loss": 1, "valid_acc": 0.5}]}]},
     ["each epoch needs the numbers"]),
    ({"runs": [{"epochs": [{"epoch": 1, "train_loss": None, "valid_loss": 1,
                            "valid_acc": 0.5}]}]}, ["each epoch needs the numbers"]),
    ({"runs": []}, ["no epochs to plot"]),
    ({"runs": [{"epochs": []}]}, ["no epochs to plot"]),
    ([1, 2], ["it has no list of runs"]),
])
def test_plot_refuses_what_is_not_a_run_record(tmp_path, record, words):
    (tmp_path / "r.json").write_text(json.dumps(record))
    clear_error(netdsl_cli("plot", "r.json", "-o", "c.png", cwd=tmp_path), "r.json", *words)
    assert not (tmp_path / "c.png").exists()


def test_plot_draws_a_record_without_hyperparameters(tmp_path):
    row = {"epoch": 1, "train_loss": 1.0, "valid_loss": 1.1, "valid_acc": 0.5}
    (tmp_path / "r.json").write_text(json.dumps({"runs": [{"epochs": [row]},
                                                          {"epochs": [row]}]}))
    run = netdsl_cli("plot", "r.json", "-o", "c.svg", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "r run 2" in (tmp_path / "c.svg").read_text()


# ---- export --------------------------------------------------------------------------------------

def test_export_refuses_an_input_too_large_for_memory(tmp_path):
    run = netdsl_cli("export", "-e", "a: conv(4) -> head(10)", "--input-shape", "3,100000,100000",
                     "-o", "x.onnx", cwd=tmp_path)
    clear_error(run, "needs about", "for a forward pass", "3x100000x100000")


def test_export_refuses_the_weights_of_a_larger_network(tmp_path):
    small, large = "a: conv(4) -> head(10)", "a: conv(4) -> b: conv(4) -> head(10)"
    torch.save(netdsl.compile(large).path_state_dict(), tmp_path / "large.pt")
    clear_error(netdsl_cli("export", "-e", small, "--weights", "large.pt", "-o", "s.pt2",
                           cwd=tmp_path), "they hold b/weight, which this network has not")
    assert not (tmp_path / "s.pt2").exists()


def test_suffixes_in_capitals_are_the_same_formats(tmp_path):
    for command in (["export", "-o", "N.PT2"], ["draw", "-o", "N.DOT"]):
        run = netdsl_cli(command[0], "-e", "a: conv(4) -> head(10)", *command[1:], cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert (tmp_path / command[-1]).stat().st_size > 0


# ---- hand-written graphs -------------------------------------------------------------------------

CONV = Op("Conv2d", (("in_channels", 3), ("out_channels", 4), ("kernel_size", 3), ("stride", 1),
                     ("padding", 1), ("bias", False)))
RELU = Op("ReLU", (("inplace", False),))


def nested(depth):
    node = {"x": (RELU, [-1])}
    for _ in range(depth):
        node = {"n": node}
    return {"input": (None, []), **node}


def hand(**nodes):
    """Nodes written by hand, made a Graph inside the test (where making it may fail)."""
    return lambda: Graph(nodes)


@pytest.mark.parametrize("network, shape, words", [
    (hand(input=(None, []), a=(CONV, ["b"]), b=(RELU, ["a"])), (3, 32, 32), "cycle: a -> b"),
    (hand(a=(CONV, [])), (3, 32, 32), "this one has 0"),
    (hand(input=(None, []), other=(None, []), a=(CONV, ["input"])), (3, 32, 32),
     "this one has 2: input, other"),
    (hand(input=(None, []), a=(Op("Conv2d", (("in_channels", 5),) + CONV.args[1:]),
                               ["input"])), (3, 32, 32), "takes 5 input channels"),
    (hand(input=(None, []), a=(CONV, ["input"]), b=(Op("BatchNorm", (("num_features", 7),)),
                                                    ["a"])), (3, 32, 32),
     "node 'b': BatchNorm takes 7 input channels, but 'a' gives 4"),
    (hand(input=(None, []), a=(Op("MaxPool2d", (("kernel_size", 0),)), ["input"])),
     (3, 32, 32), "kernel_size must be a whole number >= 1"),
    (lambda: nested(3000), (3, 32, 32), "nests too deeply"),
    (lambda: {"input": (None, []), "a": "conv"}, (3, 32, 32), "node 'a': expected (Op or None"),
    (hand(input=(None, []), a=(RELU, "input")), (3, 32, 32), "node 'a': expected"),
    (hand(input=(None, []), a=("conv", ["input"])), (3, 32, 32), "node 'a': expected"),
    (hand(input=(None, []), a=(RELU, ["input"]), **{"a/b": (RELU, ["a"])}), (3, 32, 32),
     "'a' is a node and also the group of 'a/b'"),
    (hand(input=(None, []), a=(RELU, ["input"])), (3, 32), "input_shape must be"),
    (hand(input=(None, []), a=(Op("Add", ()), ["input"])), (3, 32, 32),
     "Add takes 2 or more inputs, got 1"),
    (lambda: [{"name": "input", "op": None, "args": {}, "inputs": []},
              {"name": "a", "op": "ReLU", "args": {}, "inputs": ["input"]},
              {"name": "a", "op": "ReLU", "args": {}, "inputs": ["input"]}], (3, 32, 32),
     "record 2 names 'a'"),
])
def test_to_text_says_what_is_wrong_with_a_hand_written_graph(network, shape, words):
    with pytest.raises(NetdslError) as error:
        netdsl.to_text(network(), input_shape=shape)
    assert words in str(error.value)


def test_to_text_follows_inputs_written_after_their_reader():
    graph = hand(input=(None, []), b=(Op("BatchNorm", (("num_features", 4),)), ["a"]),
                 a=(CONV, ["input"]))()
    text = netdsl.to_text(graph)
    assert netdsl.graph_of(netdsl.parse(text))["b"][1] == ["a"]


# ---- diff ----------------------------------------------------------------------------------------

def test_diff_refuses_a_value_neither_network_declares(tmp_path):
    (tmp_path / "a.net").write_text("param w = 4\na: conv(w) -> head(10)\n")
    (tmp_path / "b.net").write_text("param w = 4\na: conv(w) -> head(10)\n")
    clear_error(netdsl_cli("diff", "a.net", "b.net", "--set", "typo=3", cwd=tmp_path),
                "--set typo: neither network declares it (they declare: w)")
    assert netdsl_cli("diff", "a.net", "b.net", "--set", "w=3", cwd=tmp_path).returncode == 0


# ---- search --------------------------------------------------------------------------------------

def test_a_bad_storage_is_reported_before_any_data_loads(tmp_path):
    (tmp_path / "space.json").write_text('{"w": {"_type": "choice", "_value": [4]}}')
    run = netdsl_cli("search", "-e", "param w = 4\na: conv(w) -> head(10)", "--space",
                     "space.json", "--trials", "1", "--storage", "sqlite:///no/such/dir/x.db",
                     "--dataset", "nowhere", cwd=tmp_path)
    clear_error(run, "cannot open storage")


def test_a_search_space_with_a_byte_order_mark_reads(tmp_path, image_folder):
    (tmp_path / "space.json").write_bytes(
        b'\xef\xbb\xbf{"w": {"_type": "choice", "_value": [4]}}')
    run = netdsl_cli("search", "-e", "param w = 4\na: conv(w) -> head(3)", "--space",
                     "space.json", "--trials", "1", "--dataset", str(image_folder), *FAST,
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # The one trial trained the one choice the file offers.
    assert re.search(r'^trial 0: accuracy [01]\.\d{4}, .*\{"w": 4\}$', run.stdout, re.M)


def test_a_repeated_network_is_drawn_again_without_spending_budget(tmp_path, image_folder):
    """Four networks in the space, a budget of four: four distinct networks train."""
    (tmp_path / "space.json").write_text('{"w": {"_type": "choice", "_value": [2, 3, 4, 5]}}')
    run = netdsl_cli("search", "-e", "param w = 4\na: conv(w) -> head(3)", "--space",
                     "space.json", "--trials", "4", "--tuner", "random", "--dataset",
                     str(image_folder), *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(netdsl_cli("trials", "--json", cwd=tmp_path).stdout)
    counted = [r for r in rows if not r["redrawn"]]
    assert sorted(r["values"]["w"] for r in counted) == [2, 3, 4, 5]
    assert all(r["same_as"] is not None for r in rows if r["redrawn"])
    assert [r["state"] for r in counted] == ["complete"] * 4
