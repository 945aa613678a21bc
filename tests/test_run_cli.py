"""`netdsl run` as a user runs it, on a small image folder made here."""
import json
import signal
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, netdsl_cli

NET = "a(8, pool) -> b(16, pool) -> head(3, w=0.5)"
FAST = ["--epochs", "2", "--peak-epoch", "1", "--batch-size", "32", "--cutout", "4"]


@pytest.fixture(scope="module")
def folder(image_folder):
    return image_folder


def test_run_prints_the_table_and_writes_the_evidence(folder, tmp_path):
    out = tmp_path / "run.json"
    run = netdsl_cli("run", "-e", NET, "--dataset", str(folder), *FAST, "--json", str(out),
                     cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("epoch"))
    assert lines[header].split() == ["epoch", "lr", "train", "time", "train", "loss", "train",
                                     "acc", "valid", "time", "valid", "loss", "valid", "acc",
                                     "epoch", "time"]
    assert [line.split()[0] for line in lines[header + 1:header + 3]] == ["1", "2"]
    assert lines[header + 3].startswith("Finished Train/Valid in")
    report = json.loads(out.read_text())
    assert report["dsl"] == "a(8, pool)\nb(16, pool)\nhead(3, w=0.5)\n"  # printed from the tree
    assert report["status"] == "finished" and report["dataset"]["image_shape"] == [3, 16, 16]
    assert report["runs"][0]["precision"] in ("fp32", "bf16")  # which, and why:
    assert report["runs"][0]["precision_reason"]
    assert report["hyperparameters"]["peak_epoch"] == 1 and report["hyperparameters"]["seed"] == 0
    assert report["environment"]["torch"] == torch.__version__
    assert report["netdsl_version"] and report["dataset"]["classes"] == 3
    assert len(report["runs"][0]["epochs"]) == 2
    assert report["runs"][0]["final"]["valid_acc"] == report["runs"][0]["epochs"][-1]["valid_acc"]


def test_evaluate_last_records_and_plots_only_the_last_epoch(folder, tmp_path):
    run = netdsl_cli("run", "-e", NET, "--dataset", str(folder), *FAST, "--evaluate", "last",
                     "--json", str(tmp_path / "run.json"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    epochs = json.loads((tmp_path / "run.json").read_text())["runs"][0]["epochs"]
    assert [e["valid_acc"] is None for e in epochs] == [True, False]
    assert epochs[0]["valid_time"] == 0.0 and epochs[1]["valid_time"] > 0
    plot = netdsl_cli("plot", str(tmp_path / "run.json"), "-o", str(tmp_path / "c.svg"),
                      cwd=tmp_path)
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "c.svg").stat().st_size > 0


def test_runs_report_mean_and_std(folder, tmp_path):
    out = tmp_path / "runs.json"
    run = netdsl_cli("run", "-e", NET, "--dataset", str(folder), *FAST, "--runs", "2",
                     "--json", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "epoch 1:" not in run.stderr  # not a terminal: no progress line
    assert "2 runs: valid acc" in run.stdout
    report = json.loads(out.read_text())
    assert [r["hyperparameters"]["seed"] for r in report["runs"]] == [0, 1]
    assert report["summary"]["runs"] == 2


def test_plot_draws_the_curves_of_several_runs(tmp_path):
    """Two records of two runs each, as `run --runs 2 --seed S --json` writes them (written
    here: plotting needs no training): one curve per run, named by its record and seed."""
    from dataclasses import asdict

    from netdsl_runtime import Epoch

    for name, seed in (("first", 0), ("second", 5)):
        runs = [{"status": "finished", "hyperparameters": {"seed": seed + index},
                 "epochs": [asdict(Epoch(epoch=epoch, lr=0.1, train_time=1.0,
                                         train_loss=2.0 / epoch, train_acc=0.3 * epoch,
                                         valid_time=0.5, valid_loss=2.1 / epoch,
                                         valid_acc=0.3 * epoch, epoch_time=1.5))
                            for epoch in (1, 2)]}
                for index in range(2)]
        (tmp_path / f"{name}.json").write_text(json.dumps({"status": "finished", "runs": runs}))
    for image in ("curves.png", "curves.svg"):
        plot = netdsl_cli("plot", "first.json", "second.json", "-o", image, cwd=tmp_path)
        assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    drawn = (tmp_path / "curves.svg").read_text()
    for label in ("first seed 0", "first seed 1", "second seed 5", "second seed 6"):
        assert label in drawn
    (tmp_path / "not-a-run.json").write_text('{"trials": []}')
    bad = netdsl_cli("plot", str(tmp_path / "not-a-run.json"), "-o", str(tmp_path / "x.png"),
                     cwd=tmp_path)
    assert bad.returncode == 2 and "not a `netdsl run --json` record" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "x.png").exists()


def test_the_progress_line_shows_images_loss_and_time_left(monkeypatch, capsys):
    import netdsl as dsl
    import netdsl_runtime as runtime
    import netdsl_runtime.trainer
    from test_runtime import colour_images

    monkeypatch.setattr(runtime.trainer, "PROGRESS_SECONDS", 0.0)  # every step, for the test
    data = runtime.DeviceData(colour_images(), "cpu")
    runtime.train(dsl.compile("a(4, pool) -> head(4)", input_shape=(3, 16, 16)), data,
                  runtime.Recipe(epochs=2, batch_size=64, cutout=0), log=None, progress=True)
    err = capsys.readouterr().err
    assert "epoch 2: " in err and "images" in err and "img/s" in err
    assert "loss " in err and " left" in err


def test_a_family_with_classes_follows_the_dataset(folder, tmp_path):
    out = tmp_path / "run.json"
    run = netdsl_cli("run", str(ROOT / "models" / "resnet9_small.net"), "--set", "prep=4",
                     "--set", "layer1=4", "--set", "layer2=4", "--set", "layer3=4", "--dataset",
                     str(folder),
                     "--epochs", "1", "--peak-epoch", "1", "--batch-size", "32", "--cutout", "0",
                     "--json", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(out.read_text())
    assert report["parameters"]["classes"] == 3 and "param classes = 3" in report["dsl"]
    assert "classes = 10" in (ROOT / "models" / "resnet9_small.net").read_text()


def test_diverging_loss_exits_3_with_the_status_in_json(folder, tmp_path):
    out = tmp_path / "nan.json"
    run = netdsl_cli("run", "-e", NET, "--dataset", str(folder), *FAST, "--peak-lr", "1e12",
                     "--json", str(out), cwd=tmp_path)
    assert run.returncode == 3
    assert "loss became" in run.stdout and "try a lower --peak-lr" in run.stdout
    assert json.loads(out.read_text())["status"] == "diverged"


def test_ctrl_c_writes_what_was_done_and_exits_130(folder, tmp_path):
    out = tmp_path / "stopped.json"
    # `with`: the pipe is closed at the end (left open, it is a ResourceWarning)
    with subprocess.Popen([sys.executable, "-m", "netdsl", "run", "-e", NET, "--dataset",
                           str(folder), "--epochs", "500", "--batch-size", "32", "--json",
                           str(out)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                          env={"NETDSL_DATA": str(tmp_path), "PATH": "/usr/bin:/bin",
                               "PYTHONUNBUFFERED": "1"},
                          # A shell that starts the tests in the background ignores SIGINT,
                          # and children inherit that: give the run Ctrl-C back.
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
                          ) as proc:
        for line in proc.stdout:
            if line.split()[:1] == ["2"]:  # two epochs done
                proc.send_signal(signal.SIGINT)
                break
        proc.stdout.read()
        assert proc.wait(timeout=60) == 130
    report = json.loads(out.read_text())
    assert report["status"] == "interrupted" and len(report["runs"][0]["epochs"]) >= 2


@pytest.fixture
def ctrl_c(monkeypatch):
    """Press Ctrl-C: SIGINT to this process, which Python's handler turns into
    KeyboardInterrupt wherever the run is. A shell that starts the tests in the background
    ignores SIGINT: the handler is Python's for the test."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield lambda *args, **kwargs: signal.raise_signal(signal.SIGINT)
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("moment", ["the network's build", "the run's setup",
                                    "the second epoch"])
def test_ctrl_c_with_quiet_says_so_in_its_one_line(folder, tmp_path, monkeypatch, capsys,
                                                  ctrl_c, moment):
    """Ctrl-C at any moment from the network's build on interrupts the run: --quiet's one line
    says so, --json records it and the epochs done, exit 130. The key is pressed at that
    moment, not some seconds in."""
    import netdsl_runtime as runtime
    import netdsl_runtime.trainer  # noqa: F401 (runtime.trainer, below)
    from netdsl import cli
    from netdsl.language import Bound

    build, step, steps = Bound.module, runtime.trainer._Run.step, []

    def seeded_build(bound, seed=None):  # the run's (the check before the data is unseeded)
        if seed is not None:
            ctrl_c()
        return build(bound, seed)

    def fifth_step(run, *args):  # 96 images, 32 a step: the second epoch's second step
        steps.append(args)
        if len(steps) == 5:
            ctrl_c()
        return step(run, *args)

    if moment == "the network's build":
        monkeypatch.setattr(Bound, "module", seeded_build)
    elif moment == "the run's setup":  # setting layers from the data
        monkeypatch.setattr(runtime.trainer, "initialise_from_data", ctrl_c)
    else:
        monkeypatch.setattr(runtime.trainer._Run, "step", fifth_step)
    monkeypatch.setenv("NETDSL_DATA", str(tmp_path))
    record = tmp_path / "run.json"
    assert cli.main(["run", "-e", NET, "--dataset", str(folder), "--epochs", "20",
                     "--batch-size", "32", "--quiet", "--json", str(record)]) == 130
    data_line, result_line, *_ = capsys.readouterr().out.splitlines()
    assert data_line.startswith(str(folder)) and result_line.startswith("interrupted: valid acc ")
    report = json.loads(record.read_text())
    assert report["status"] == "interrupted"
    assert len(report["runs"][0]["epochs"]) == (moment == "the second epoch")


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nowhere/at/all"], "not one of cifar10, cifar100, mnist, fashion-mnist, svhn, stl10 nor a folder"),
    (["--batch-size", "0"], "batch_size must be"),
    (["--epochs", "3", "--peak-epoch", "9"], "peak_epoch must be between"),
    (["--lr-scale", "layer3"], "'layer3' is not KEY=FACTOR"),
    (["--lr-scale", "zz=2"], "no parameter under 'zz'"),
    (["--device", "cuda"] if not torch.cuda.is_available() else ["--runs", "0"],
     "--device cuda: this torch sees no CUDA device|runs must be at least 1"),
])
def test_bad_flags_are_clear_errors(folder, tmp_path, args, message):
    base = ["run", "-e", NET, "--dataset", str(folder), "--epochs", "2", "--peak-epoch", "1"]
    run = netdsl_cli(*base, *args, cwd=tmp_path)
    assert run.returncode == 2
    assert any(part in run.stderr for part in message.split("|")), run.stderr
    assert "Traceback" not in run.stderr


def test_head_that_does_not_match_the_classes(folder, tmp_path):
    run = netdsl_cli("run", "-e", "a(8, pool) -> head(10)", "--dataset", str(folder), *FAST,
                     cwd=tmp_path)
    assert run.returncode == 2 and "has 3 classes" in run.stderr


def test_weights_saved_by_path_start_a_narrower_network(folder, tmp_path):
    saved = tmp_path / "wide.pt"
    run = netdsl_cli("run", "-e", "a(16, pool) -> b(16, pool) -> head(3, w=0.5)", "--dataset",
                     str(folder), *FAST, "--save-weights", str(saved), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert saved.exists() and set(torch.load(saved)) >= {"a/conv/weight", "b/bn/running_mean"}
    reuse = netdsl_cli("run", "-e", "a(8, pool) -> b(16, pool) -> head(3, w=0.5)", "--dataset",
                       str(folder), *FAST, "--init-from", str(saved), cwd=tmp_path)
    assert reuse.returncode == 0, reuse.stderr
    # a/conv and a/bn are wider in the saved network, b/conv takes more input channels there.
    assert "initial weights: 7 copied, 6 sliced, 0 kept" in reuse.stdout
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not weights")
    bad = netdsl_cli("run", "-e", NET, "--dataset", str(folder), *FAST, "--init-from", str(broken),
                     cwd=tmp_path)
    assert bad.returncode == 2 and "cannot load weights" in bad.stderr


def test_the_peak_follows_epochs_when_only_epochs_is_given(folder, tmp_path):
    run = netdsl_cli("run", "-e", NET, "--dataset", str(folder), "--epochs", "1", "--batch-size",
                     "32", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "peaks at epoch 0.2083 (0.2083 of the 1 epochs)" in run.stdout


def image_folder_of(root, size, mode, classes=("dark", "light"), per_class=(16, 4)):
    """Two classes, dark and light images of `size` x `size` in PIL `mode` (L or RGB)."""
    import numpy as np
    from PIL import Image

    rng = np.random.RandomState(0)
    channels = {"L": (), "RGB": (3,)}[mode]
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.randint(0, 80, (size, size, *channels)) + 150 * c
                image = Image.fromarray(pixels.astype(np.uint8), mode)
                image.save(root / split / name / f"{i}.png")
    return root


def test_the_input_shape_comes_from_the_data(tmp_path):
    """A network that fits 48x48 images but not CIFAR's 32x32 (a 40x40 kernel) trains on a
    48x48 folder; `check` with the default 3,32,32 refuses it, with --input-shape it passes."""
    folder = image_folder_of(tmp_path / "big", 48, "RGB")
    net = "conv(4, ks=40, padding=0) -> relu -> flatten -> linear(2)"
    run = netdsl_cli("run", "-e", net, "--dataset", str(folder), *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "images of 3x48x48" in run.stdout and "Finished Train/Valid" in run.stdout
    assert netdsl_cli("check", "-e", net, cwd=tmp_path).returncode == 2
    assert netdsl_cli("check", "-e", net, "--input-shape", "3,48,48", cwd=tmp_path).returncode == 0


def test_one_channel_images_train_a_one_channel_network(tmp_path):
    """`add <- input, c` needs c to have the input's one channel: valid for grey images only."""
    folder = image_folder_of(tmp_path / "grey", 12, "L")
    net = "c: conv(1) -> sum: add <- input, c -> a(4, pool) -> head(2)"
    run = netdsl_cli("run", "-e", net, "--dataset", str(folder), *FAST, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "images of 1x12x12" in run.stdout and "Finished Train/Valid" in run.stdout
    wrong = netdsl_cli("check", "-e", net, cwd=tmp_path)
    assert wrong.returncode == 2 and "add: inputs must have the same shape" in wrong.stderr
