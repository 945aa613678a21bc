"""Every failure is a clear error (exit 2, the problem named, no traceback) or a recorded trial,
and nothing is lost: the bad and careless inputs found when the project was tried."""
import json
import math
import os

import numpy as np
import optuna
import pytest
import torch

import netdsl
from conftest import ROOT, clear_error, netdsl_cli
import netdsl_runtime as runtime
from netdsl import NetdslError
from netdsl.commands.flags import flag_mention
from netdsl.errors import ArgumentError
from netdsl.train import train_model
from netdsl.module.network import transfer_weights
from netdsl.bench.nb201 import edges

NET = "a(8, pool) -> head(3, w=0.5)"
FAST = ["--epochs", "1", "--batch-size", "32", "--cutout", "0"]
FAMILY = "param prep = 4\na(prep, pool) -> head(3)"


def trials_json(cwd, *storage):
    run = netdsl_cli("trials", "--json", *storage, cwd=cwd)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def space(tmp_path, entries):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(entries))
    return path


# ---- trials fail alone --------------------------------------------------------------------------

def test_an_error_inside_a_trial_is_recorded_and_not_retried(tmp_path, image_folder):
    """A cutout larger than the images raised inside torch and ended the whole search."""
    grid = space(tmp_path, {"cutout": {"_type": "choice", "_value": [0, 40]}})
    args = ["search", "-e", FAMILY, "--space", str(grid), "--dataset", str(image_folder),
            "--trials", "2", "--tuner", "grid", *FAST[:4]]
    run = netdsl_cli(*args, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = {r["values"]["cutout"]: r for r in trials_json(tmp_path)}
    assert rows[40]["state"] == "fail"
    assert "cutout 40 is larger than the 16x16" in rows[40]["error"]
    assert rows[0]["state"] == "complete"
    # One line for the failure, no traceback from Optuna.
    assert f"trial {rows[40]['number']} failed: cutout 40" in run.stdout
    assert "Traceback" not in run.stderr
    again = netdsl_cli(*args[:8], "3", *args[9:], cwd=tmp_path)  # a larger budget
    assert again.returncode == 0, again.stderr
    assert sum(r["values"]["cutout"] == 40 for r in trials_json(tmp_path)) == 1  # not retried


def test_any_exception_in_a_trial_becomes_its_error(tmp_path, image_folder, monkeypatch, capsys):
    from netdsl import cli
    from netdsl.search import loop, objective

    def broken_fit(*args, **kwargs):
        raise RuntimeError("boom: something torch did not like")
    monkeypatch.setattr(objective, "fit", broken_fit)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETDSL_DATA", str(tmp_path))
    grid = space(tmp_path, {"prep": {"_type": "choice", "_value": [4, 8]}})
    assert cli.main(["search", "-e", FAMILY, "--space", str(grid), "--dataset",
                     str(image_folder), "--trials", "2", *FAST]) == loop.EXIT_FAILED
    study = optuna.load_study(study_name="search", storage="sqlite:///netdsl.db")
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert study.trials[0].user_attrs["error"] == "RuntimeError: boom: something torch did not like"
    assert "broken_fit" in study.trials[0].user_attrs["traceback"]  # the whole story is stored
    assert "trial 0 failed: RuntimeError: boom" in capsys.readouterr().out


# ---- runs check before they train ------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--json", "--save-weights"])
def test_an_unwritable_output_fails_before_training(tmp_path, image_folder, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), *FAST, flag,
                     str(blocker / "out"), cwd=tmp_path)
    clear_error(run, flag, "cannot write there")
    assert "epoch" not in run.stdout  # nothing trained, nothing lost


def test_a_network_too_large_for_memory_is_refused_before_allocating(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", "prep(1000000000) -> head(3)", "--dataset", str(image_folder),
                     *FAST, cwd=tmp_path)
    clear_error(run, "needs about", "batch size 32", "--batch-size 16")


def test_running_out_of_cpu_memory_names_the_batch_size():
    class Greedy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(3 * 8 * 8, 2)

        def forward(self, x):
            if self.training:
                raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: "
                                   "can't allocate memory: you tried to allocate 108 GB")
            return self.linear(x.flatten(1))
    rng = np.random.RandomState(0)
    images = runtime.Images("tiny", ["a", "b"], rng.randint(0, 255, (64, 8, 8, 3), np.uint8),
                            rng.randint(0, 2, 64), rng.randint(0, 255, (8, 8, 8, 3), np.uint8),
                            rng.randint(0, 2, 8))
    data = runtime.DeviceData(images, "cpu")
    with pytest.raises(runtime.OutOfMemory, match="batch size 32; try batch_size=16"):
        runtime.train(Greedy(), data, runtime.Recipe(epochs=1, batch_size=32, cutout=0), log=None)
    # netdsl's one place of training words it for whoever called: a command names the flag
    with pytest.raises(ArgumentError) as raised:
        train_model(Greedy(), data, runtime.Recipe(epochs=1, batch_size=32, cutout=0), log=None)
    assert "try batch_size=16" in str(raised.value)
    assert "try --batch-size 16" in raised.value.words(flag_mention)


# ---- the language's limits ---------------------------------------------------------------------

def test_expansion_that_makes_no_nodes_is_still_bounded():
    text = ("block r0() { relu if false }\n"
            + "".join(f"block r{i}() {{ r{i - 1}() * 10 }}\n" for i in range(1, 11)) + "r10()")
    with pytest.raises(NetdslError, match="more than 200,000 steps"):
        netdsl.load(text).bind()


def test_many_unlabelled_nodes_are_named_in_linear_time():
    # 10,000 took 18 s and 20,000 113 s when each name was found by counting up from relu_1.
    net = netdsl.load("\n".join(["conv(4)"] + ["relu"] * 15000)).bind()
    assert list(net.graph)[-2:] == ["relu_14998", "relu_14999"]
    with pytest.raises(NetdslError, match="more than 20000 nodes"):
        netdsl.load("\n".join(["relu"] * 20001)).bind()


def test_a_text_past_the_size_limit_is_refused_before_parsing(tmp_path):
    with pytest.raises(NetdslError, match="1,000,001 characters"):
        netdsl.load("relu\n" * 200000 + "r")
    clear_error(netdsl_cli("check", "/dev/zero", cwd=tmp_path), "/dev/zero", "more than 1,000,000")


def test_a_number_literal_too_long_to_convert_is_located():
    with pytest.raises(NetdslError, match="number too large") as error:
        netdsl.load("a(" + "9" * 5000 + ") -> head(2)")
    assert error.value.location.column == 3


def test_a_user_block_may_not_replace_a_built_in_one():
    with pytest.raises(NetdslError, match="'stage' is a built-in block"):
        netdsl.load("block stage(c) { conv(c) }\nstage(4)")


# ---- data --------------------------------------------------------------------------------------

def test_a_damaged_cache_is_rebuilt_and_stale_partial_files_removed(tmp_path, image_folder, capfd):
    first = runtime.load_images(str(image_folder), tmp_path)
    (cache,) = tmp_path.glob("*.npz")
    cache.write_bytes(b"PK\x03\x04 not a zip file at all")
    dead = tmp_path / f"{cache.stem}.999999999.abc.part"  # no such process
    live = tmp_path / f"{cache.stem}.{os.getpid()}.abc.part"  # being written by this process
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    again = runtime.load_images(str(image_folder), tmp_path)
    assert "does not load" in capfd.readouterr().err
    assert np.array_equal(first.train_x, again.train_x)
    assert not dead.exists() and live.exists()
    assert np.array_equal(runtime.load_images(str(image_folder), tmp_path).test_x, first.test_x)


def test_a_cache_folder_that_cannot_be_made_is_a_clear_error(tmp_path, image_folder):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), "--data-dir",
                     str(blocker / "cache"), *FAST, cwd=tmp_path)
    clear_error(run, "cannot make the cache folder")


# ---- inputs that raised tracebacks ---------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["--cutout", "33"], ["cutout 33 is larger than the 16x16 images"]),
    (["--device", "meta"], ["--device meta", "cpu or cuda"]),
    (["--train-limit", "-5"], ["--train-limit", "'-5'"]),
])
def test_bad_run_options_are_clear_errors(tmp_path, image_folder, args, words):
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), *FAST[:4], *args,
                     cwd=tmp_path)
    clear_error(run, *words)


@pytest.mark.parametrize("content, words", [
    (b"just some text\n", ["not a file saved by --save-weights"]),
    ("torch", ["no weights saved by --save-weights"]),
])
def test_init_from_something_that_is_not_weights(tmp_path, image_folder, content, words):
    path = tmp_path / "w.pt"
    if content == "torch":
        torch.save({"a/conv/weight": "not a tensor"}, path)
    else:
        path.write_bytes(content)
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), *FAST, "--init-from",
                     str(path), cwd=tmp_path)
    clear_error(run, *words)


def test_a_kernel_of_another_size_is_not_cropped_into_place():
    wide = netdsl.compile("c: conv(4, ks=3) -> head(2)")
    narrow = netdsl.compile("c: conv(4, ks=1) -> head(2)")
    report = transfer_weights(wide.path_state_dict(), narrow)
    assert report["c/weight"] == "kept" and report["linear/weight"] == "copied"


@pytest.mark.parametrize("entries, words", [
    ({"prep": {"_type": "choice", "_value": ["a", "b"]}}, ["'prep' takes whole numbers", "'a'"]),
    ({"prep": {"_type": "choice", "_value": [True, False]}}, ["'prep' takes whole numbers"]),
    ({"flip": {"_type": "uniform", "_value": [0, 1]}}, ["'flip' takes one of a fixed set"]),
    ({"tta": {"_type": "uniform", "_value": [0, 2]}}, ["'tta'", "whole number"]),
    ({"epochs": {"_type": "choice", "_value": [2, "x"]}}, ["'epochs'", "finite number"]),
    ({"batch_size": {"_type": "choice", "_value": [64, "x"]}}, ["'batch_size'", "whole number"]),
])
def test_choices_of_the_wrong_kind_fail_before_any_data_loads(tmp_path, entries, words):
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(space(tmp_path, entries)),
                     "--dataset", "/nowhere", "--trials", "2", cwd=tmp_path)
    clear_error(run, *words)


def test_a_search_space_that_is_not_utf8(tmp_path):
    path = tmp_path / "space.json"
    path.write_bytes(b'{"prep": {"_type": "choice", "_value": [4]}} \xff\xfe')
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(path), "--dataset", "/nowhere",
                     "--trials", "2", cwd=tmp_path)
    clear_error(run, "not UTF-8")


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:///:memory:"])
def test_in_memory_storage_is_refused(tmp_path, image_folder, url):
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(space(tmp_path, {
        "prep": {"_type": "choice", "_value": [4]}})), "--dataset", str(image_folder),
        "--trials", "1", "--storage", url, *FAST, cwd=tmp_path)
    clear_error(run, "in memory and would keep nothing")


def test_a_storage_url_names_its_file_through_any_driver_and_escape(tmp_path, image_folder):
    """`sqlite+pysqlite:///` is a file, not memory; `%2E` is the `.` SQLite opens, so the
    guard against writing over an input sees it."""
    grid = space(tmp_path, {"prep": {"_type": "choice", "_value": [4]}})
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(grid), "--dataset",
                     str(image_folder), "--trials", "1", "--storage",
                     "sqlite+pysqlite:///driver.db", *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert len(trials_json(tmp_path, "--storage", "sqlite:///driver.db")) == 1
    clear_error(netdsl_cli("search", "-e", FAMILY, "--space", str(grid), "--dataset",
                           "/nowhere", "--trials", "1", "--storage", "sqlite:///space%2Ejson",
                           cwd=tmp_path), "--storage space.json is --space")
    before = (tmp_path / "driver.db").read_bytes()
    clear_error(netdsl_cli("trials", "--storage", "sqlite:///driver%2Edb", "--csv", "driver.db",
                           cwd=tmp_path), "--csv driver.db is the storage")
    assert (tmp_path / "driver.db").read_bytes() == before


def test_a_read_only_storage_is_a_clear_error(tmp_path, image_folder):
    grid = space(tmp_path, {"prep": {"_type": "choice", "_value": [4]}})
    base = ["search", "-e", FAMILY, "--space", str(grid), "--dataset", str(image_folder), *FAST]
    assert netdsl_cli(*base, "--trials", "1", cwd=tmp_path).returncode == 0
    read_only = f"sqlite:///file:{tmp_path / 'netdsl.db'}?mode=ro&uri=true"
    run = netdsl_cli(*base, "--trials", "2", "--storage", read_only, cwd=tmp_path)
    clear_error(run, "readonly", "is it writable?")


def test_views_of_a_mistyped_storage_say_so_and_create_nothing(tmp_path):
    run = netdsl_cli("trials", "--storage", "sqlite:///netdls.db", cwd=tmp_path)
    clear_error(run, "no storage at sqlite:///netdls.db")
    assert not (tmp_path / "netdls.db").exists()


def test_a_negative_timeout_is_refused(tmp_path, image_folder):
    run = netdsl_cli("search", "-e", FAMILY, "--space", str(space(tmp_path, {
        "prep": {"_type": "choice", "_value": [4]}})), "--dataset", str(image_folder),
        "--trials", "1", "--timeout", "-1", *FAST, cwd=tmp_path)
    clear_error(run, "--timeout must be a positive number")


# ---- networks, weights and records that raised tracebacks --------------------------------------

@pytest.mark.parametrize("network", [
    "avgpool(16) -> flatten",  # no weight at all: 3 outputs from the 3 channels
    "conv(3) -> zero -> avgpool(16) -> flatten",  # a weight, cut from the output
])
def test_a_network_with_nothing_to_train_is_refused_before_training(tmp_path, image_folder,
                                                                    network):
    run = netdsl_cli("run", "-e", network, "--dataset", str(image_folder), *FAST, "--json",
                     "r.json", cwd=tmp_path)
    clear_error(run, "outputs depend on no trained weight", "nothing to train")
    assert "epoch" not in run.stdout and not (tmp_path / "r.json").exists()


def saved_weights(path, **changes):
    """NET's initial weights saved as --save-weights saves them, with `changes` made."""
    weights = netdsl.compile(NET, input_shape=(3, 16, 16)).path_state_dict()
    torch.save({**weights, **changes}, path)
    return weights


def test_init_from_weights_that_are_not_finite_says_so(tmp_path, image_folder):
    weights = saved_weights(tmp_path / "w.pt")
    name = next(name for name, tensor in weights.items() if tensor.is_floating_point())
    saved_weights(tmp_path / "w.pt", **{name: torch.full_like(weights[name], math.nan)})
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), *FAST, "--init-from",
                     "w.pt", cwd=tmp_path)
    clear_error(run, "w.pt: the file holds non-finite weights", f"'{name}' has nan or inf")
    assert "peak-lr" not in run.stderr + run.stdout


@pytest.mark.parametrize("kept", [4099, 0.5])  # bytes: 4099 made torch seek before the start
def test_init_from_a_truncated_file_says_so(tmp_path, image_folder, kept):
    big = {"a/conv/weight": torch.zeros(256, 256, 3, 3)}  # 2.4 MB
    torch.save(big, tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "w.pt").write_bytes(data[:kept if isinstance(kept, int) else len(data) // 2])
    run = netdsl_cli("run", "-e", NET, "--dataset", str(image_folder), *FAST, "--init-from",
                     "w.pt", cwd=tmp_path)
    clear_error(run, "cannot load weights from w.pt: the file is truncated or corrupt")


def test_plotting_a_record_nested_too_deeply_is_a_clear_error(tmp_path):
    (tmp_path / "deep.json").write_text('{"runs": ' + "[" * 100_000 + "]" * 100_000 + "}")
    clear_error(netdsl_cli("plot", "deep.json", "-o", "c.png", cwd=tmp_path),
                "deep.json: not a `netdsl run --json` record (JSON nested too deeply")


@pytest.mark.parametrize("source", ["\u0660", "\u00b2"])  # Arabic-Indic zero, superscript 2
def test_nb201_edges_come_from_ascii_digits(source):
    arch = f"|nor_conv_3x3~{source}|+|none~0|none~1|+|none~0|none~1|none~2|"
    with pytest.raises(NetdslError, match="column 2: 'nor_conv_3x3~.' must come from an "
                       "earlier node, ~0 to ~0"):
        edges(arch)


def test_nb201_edge_numbers_are_read_as_numbers():
    padded = "|nor_conv_3x3~00|+|none~000|none~01|+|none~0|none~1|none~2|"
    assert edges(padded) == edges(
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_nb201_and_set_binding_one_edge_both_ways_is_refused(tmp_path):
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    run = netdsl_cli("show", str(ROOT / "models" / "nb201.net"), "--set", "e1_0=none",
                     "--nb201", arch, cwd=tmp_path)
    clear_error(run, "--set e1_0=... and --nb201 both bind edge e1_0")
