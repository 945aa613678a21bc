"""Every writer of a record (`run --json`, a search's stored trials, `trials --json`/`--csv`,
`score --json`) with a family that has every kind of choice, and a finished training never
lost to its record."""
import csv
import json

import pytest
import torch

from conftest import netdsl_cli

# Every kind of choice point: a value, an op (a block by name), a whole-number range, a
# logrange, an item and an item's inputs.
EVERY_KIND = """\
param w = choice(4, 8)
param e = choice(conv_bn_relu, skip)
param d = range(1, 2)
param lr = logrange(0.01, 0.1)
block conv_bn_relu(c) {
    conv(c) -> bn -> relu
}
block skip(c) {
    identity
}
p: conv(w) -> a: e(w) -> m: choice(conv(w), identity) -> s: add <- choice(p, a, m, k=2) -> head(3)
"""
FAST = ["--epochs", "1", "--batch-size", "16", "--cutout", "0"]
OPS = {"conv_bn_relu", "skip"}


@pytest.fixture
def every_kind(tmp_path):
    path = tmp_path / "every.net"
    path.write_text(EVERY_KIND)
    return path


def test_run_records_an_op_valued_parameter_by_its_name_and_saves_the_weights(
        tmp_path, image_folder, every_kind):
    run = netdsl_cli("run", str(every_kind), "--set", "e=skip", "--dataset", str(image_folder),
                     *FAST, "--json", "run.json", "--save-weights", "w.pt", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["parameters"]["e"] == "skip" and record["runs"][0]["values"]["e"] == "skip"
    assert record["parameters"]["w"] == 4 and record["parameters"]["lr"] == 0.01
    assert torch.load(tmp_path / "w.pt", weights_only=True)


@pytest.mark.parametrize("failing", ["record", "weights"])
def test_an_output_that_cannot_be_written_does_not_lose_the_other(
        tmp_path, image_folder, every_kind, monkeypatch, failing):
    """The record and the weights of a finished training are written each whatever becomes of
    the other; the failure is still raised."""
    from netdsl import cli
    from netdsl.commands import run

    def fail(*args, **kwargs):
        raise TypeError("a value no record can hold")

    monkeypatch.setattr(*((run, "to_json", fail) if failing == "record"
                          else (torch, "save", fail)))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match="no record can hold"):
        cli.main(["run", str(every_kind), "--dataset", str(image_folder), *FAST,
                  "--json", "run.json", "--save-weights", "w.pt", "--quiet"])
    assert (tmp_path / "w.pt").exists() == (failing == "record")
    assert (tmp_path / "run.json").exists() == (failing == "weights")


def test_search_trials_and_score_write_every_kind_of_choice(tmp_path, image_folder, every_kind):
    search = netdsl_cli("search", str(every_kind), "--dataset", str(image_folder), *FAST,
                        "--trials", "3", "--tuner", "random", "--prefilter", "naswot:2",
                        cwd=tmp_path)
    assert search.returncode == 0, search.stderr
    rows = json.loads(netdsl_cli("trials", "--json", cwd=tmp_path).stdout)
    complete = [r for r in rows if r["state"] == "complete"]
    assert complete and all(r["values"]["e"] in OPS for r in complete)
    assert all(set(r["values"]) == {"w", "e", "d", "lr", "m", "s<-"} for r in complete)
    assert netdsl_cli("trials", "--csv", "t.csv", cwd=tmp_path).returncode == 0
    with open(tmp_path / "t.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    for cell in cells:  # JSON, as --json gives it, not Python's repr
        assert json.loads(cell["values"]) == rows[int(cell["number"])]["values"]
        assert json.loads(cell["prefilter"]) == rows[int(cell["number"])]["prefilter"]
    best = netdsl_cli("best", cwd=tmp_path)
    retrain = netdsl_cli("run", "-e", best.stdout, "--dataset", str(image_folder), *FAST,
                         "--json", "best.json", cwd=tmp_path)
    assert retrain.returncode == 0, retrain.stderr
    scored = netdsl_cli("score", str(every_kind), "--dataset", str(image_folder), "--sample",
                        "3", "--batch-size", "8", "--json", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert all(n["choices"]["e"] in OPS for n in json.loads(scored.stdout)["networks"])
