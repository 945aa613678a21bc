"""The shared trainer on small data it makes itself (no network, no downloads)."""
import subprocess
import sys
import urllib.error

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import netdsl
import netdsl_runtime as runtime
from netdsl_runtime.recipe import PRECISIONS
from netdsl_runtime import images as runtime_images
from netdsl_runtime.groups import _scaled_parameters

TINY = "a(8, pool) -> b(16, pool) -> head(4, w=0.5)"


def colour_images(n_train=512, n_test=128, classes=4, size=16, seed=0):
    """Each class a colour, plus noise: learnable in a few epochs, and crop, flip and cutout
    keep the colour."""
    rng = np.random.RandomState(seed)
    colours = rng.randint(0, 256, (classes, 3))

    def make(n):
        y = rng.randint(0, classes, n)
        x = colours[y][:, None, None, :] + rng.normal(0, 40, (n, size, size, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)
    return runtime.Images("colours", [f"c{i}" for i in range(classes)], *make(n_train),
                          *make(n_test))


@pytest.fixture(scope="module")
def data():
    return runtime.DeviceData(colour_images(), "cpu")


def quick(**changes):
    return runtime.Recipe(**{"epochs": 4, "batch_size": 64, "peak_epoch": 1, "cutout": 4,
                             **changes})


# ---- the recipe and the table ---------------------------------------------------------------

def test_schedule_is_the_seeds():
    recipe = runtime.Recipe()
    assert [round(recipe.lr_at(e), 4) for e in (0, 1, 5, 6, 23, 24)] == [
        0.0, 0.08, 0.4, 0.3789, 0.0211, 0.0]


def test_table_has_the_seeds_columns_and_widths():
    seed_header = ("       epoch           lr   train time   train loss    train acc   valid time"
                   "   valid loss    valid acc   epoch time")
    seed_row = ("           1       0.0800       5.4308       4.3200       0.0666       0.4296"
                "       3.8676       0.1033       5.8605")
    assert runtime.table_header() == seed_header
    assert runtime.table_row(runtime.Epoch(1, 0.08, 5.4308, 4.32, 0.0666, 0.4296, 3.8676,
                                           0.1033, 5.8605)) == seed_row


@pytest.mark.parametrize("change, message", [
    ({"epochs": 0}, "epochs must be"), ({"batch_size": -1}, "batch_size"),
    ({"peak_epoch": 30}, "peak_epoch"), ({"peak_lr": float("nan")}, "peak_lr"),
    ({"cutout": -2}, "cutout"), ({"precision": "fp8"}, "precision"), ({"ema": 1.0}, "below 1"),
])
def test_bad_recipes_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        runtime.Recipe(**change).check()


# ---- data on the device ---------------------------------------------------------------------

def test_normalisation_uses_the_training_statistics(data):
    x = data.normalise(data.train_x)
    assert torch.allclose(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-3)
    assert torch.allclose(x.std((0, 2, 3)), torch.ones(3), atol=1e-2)
    assert data.train_x.dtype == torch.uint8 and data.eval_x.dtype == torch.uint8


def test_augmentation_crops_flips_and_cuts_out(data):
    batches = list(data.train_batches(64, torch.Generator().manual_seed(1), translate=4, cutout=0,
                                      flips=None))
    assert len(batches) == 512 // 64 and batches[0][0].shape == (64, 3, 16, 16)
    assert batches[0][0].is_contiguous(memory_format=torch.channels_last)
    # Every image is a 16x16 window of its padded image, mirrored or not.
    order = torch.randperm(512, generator=torch.Generator().manual_seed(1))[:64]
    flips = 0
    for x, index in zip(batches[0][0], order):
        padded = data.normalise(data.padded(4)[index][None])[0]
        windows = [padded[:, dy:dy + 16, dx:dx + 16] for dy in range(9) for dx in range(9)]
        plain = any(torch.allclose(x, w) for w in windows)
        mirrored = any(torch.allclose(x, w.flip(2)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 16 <= flips <= 48  # about half
    cut = next(data.train_batches(64, torch.Generator().manual_seed(1), translate=4, cutout=5,
                                 flips=None))[0]
    zero_squares = (cut == 0).all(1).sum((1, 2))
    assert (zero_squares >= 25).all()


def test_same_seed_same_batches(data):
    first = [x for x, _ in data.train_batches(64, torch.Generator().manual_seed(3), translate=4,
                                              cutout=4, flips=None)]
    again = [x for x, _ in data.train_batches(64, torch.Generator().manual_seed(3), translate=4,
                                              cutout=4, flips=None)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


# ---- training -------------------------------------------------------------------------------

def test_trains_any_module_and_learns(data):
    lines = []
    result = runtime.train(netdsl.compile(TINY, input_shape=(3, 16, 16)), data, quick(),
                           log=lines.append)
    assert result.status == "finished" and len(result.epochs) == 4
    assert result.valid_acc > 0.9  # chance is 0.25
    assert lines[1] == runtime.table_header() and lines[-1].startswith("Finished Train/Valid in")
    assert lines[0].startswith(result.precision + " (") and result.precision in PRECISIONS
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
    assert runtime.train(plain, data, quick(), log=None).valid_acc > 0.9


def test_one_dataset_many_models(data):
    before = data.train_x.data_ptr()
    for width in (4, 8):
        net = netdsl.compile(f"a({width}, pool) -> head(4)", input_shape=(3, 16, 16))
        assert runtime.train(net, data, quick(epochs=1, peak_epoch=0.5), log=None).epochs
    assert data.train_x.data_ptr() == before


def test_seed_makes_runs_repeatable(data):
    def run():
        torch.manual_seed(123)  # the model's initialisation is the caller's
        net = netdsl.compile(TINY, input_shape=(3, 16, 16))
        return runtime.train(net, data, quick(epochs=2, seed=7), log=None)
    assert run().epochs[-1].train_loss == run().epochs[-1].train_loss


def test_loss_that_explodes_ends_the_run_as_diverged(data):
    result = runtime.train(netdsl.compile(TINY, input_shape=(3, 16, 16)), data,
                           quick(peak_lr=1e12), log=None)
    assert result.status == "diverged" and "loss became" in result.message
    assert "--" not in result.message  # the library took no flags: the command names them


def test_ctrl_c_keeps_the_finished_epochs(data):
    class StopInEpoch3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.calls = netdsl.compile(TINY, input_shape=(3, 16, 16)), 0

        def forward(self, x):
            self.calls += self.training
            if self.calls > 2 * (512 // 64) + 1:
                raise KeyboardInterrupt
            return self.net(x)
    result = runtime.train(StopInEpoch3(), data, quick(), log=None)
    assert result.status == "interrupted" and len(result.epochs) == 2


def test_out_of_memory_names_the_batch_size(data):
    class Greedy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = netdsl.compile(TINY, input_shape=(3, 16, 16))

        def forward(self, x):
            if self.training:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
            return self.net(x)
    with pytest.raises(runtime.OutOfMemory, match="batch size 64; try batch_size=32"):
        runtime.train(Greedy(), data, quick(), log=None)


def test_outputs_that_do_not_fit_the_classes_fail_before_training(data):
    with pytest.raises(ValueError, match="4 classes"):
        runtime.train(netdsl.compile("a(4) -> head(10)", input_shape=(3, 16, 16)), data, quick())


def test_lr_scale_groups_parameters_by_node_path():
    net = netdsl.compile("layer1(4) -> layer10(4) -> layer3(4, res) -> head(4)")
    recipe = runtime.Recipe(lr_scale={"layer3": 2.0, "layer3/residual": 3.0})
    by_id = {id(p): name for name, p in net.named_parameters()}
    scales = {by_id[id(p)]: scale for p, scale in _scaled_parameters(net, recipe)}
    assert {name for name, scale in scales.items() if scale == 2.0} == {
        "layer3_conv.weight", "layer3_bn.weight", "layer3_bn.bias"}
    assert all(name.startswith("layer3_residual") for name, scale in scales.items()
               if scale == 3.0)
    assert not any(name.startswith("layer3") for name, scale in scales.items() if scale == 1.0)
    with pytest.raises(ValueError, match="no parameter under 'layer4'"):
        runtime.check_fits(net, runtime.Recipe(lr_scale={"layer4": 2.0}))


def test_kind_lr_scale_multiplies_by_module_class_and_its_bases():
    net = netdsl.compile("layer1(4, pool) -> head(4)")
    recipe = runtime.Recipe(lr_scale={"layer1": 2.0}, kind_lr_scale={"BatchNorm2d.bias": 64.0})
    by_id = {id(p): name for name, p in net.named_parameters()}
    scales = {by_id[id(p)]: scale for p, scale in _scaled_parameters(net, recipe)}
    # netdsl's BatchNorm derives from torch's BatchNorm2d: the kind matches through the base.
    assert scales["layer1_bn.bias"] == 128.0 and scales["layer1_bn.weight"] == 2.0
    assert scales["linear.weight"] == 1.0
    with pytest.raises(ValueError, match="no parameter of kind 'Conv2d.bias'"):
        runtime.check_fits(net, runtime.Recipe(kind_lr_scale={"Conv2d.bias": 2.0}))


def test_ema_weights_are_the_moving_average_evaluated_and_kept(data):
    """After training with --ema, the model holds the average computed by hand from the
    weights after each step: ema = w_1, then ema += (1 - decay) * (w_t - ema)."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
    steps = []
    hook = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: steps.append(
            [p.detach().clone() for p in model.parameters()]))
    try:
        result = runtime.train(model, data, quick(epochs=2, ema=0.8), log=None)
    finally:
        hook.remove()
    assert result.status == "finished" and len(steps) == 2 * (512 // 64)
    average = steps[0]
    for weights in steps[1:]:
        average = [a + 0.2 * (w - a) for a, w in zip(average, weights)]
    for kept, expected, last in zip(model.parameters(), average, steps[-1]):
        assert torch.allclose(kept, expected, atol=1e-6)
        assert not torch.allclose(kept, last, atol=1e-4)  # not simply the last step's weights
    # What was evaluated after the last epoch is what the model now holds.
    _, acc = runtime.validate(model, data, quick(), None)
    assert acc == result.valid_acc


def test_the_final_tta_evaluation_is_of_the_ema_weights(data):
    """With both, the test-time-augmented result is the averaged model's, not the last
    step's."""
    torch.manual_seed(0)
    model = netdsl.compile(TINY, input_shape=(3, 16, 16))
    result = runtime.train(model, data, quick(epochs=2, ema=0.8, tta=1, precision="fp32"),
                           log=None)
    assert result.tta is not None and result.valid_acc == result.tta.valid_acc
    loss, acc = runtime.validate(model, data, quick(), None, tta=1)  # the model holds the EMA
    assert (loss, acc) == pytest.approx((result.tta.valid_loss, result.tta.valid_acc))


def test_a_run_stopped_after_an_epoch_says_so(data):
    asked = []
    result = runtime.train(netdsl.compile(TINY, input_shape=(3, 16, 16)), data, quick(),
                           log=None, should_stop=lambda epoch: asked.append(epoch.epoch) or True)
    assert result.status == "stopped" and asked == [1] and len(result.epochs) == 1
    assert result.to_dict()["status"] == "stopped" and result.message == \
        "stopped early after epoch 1"


@pytest.mark.parametrize("tta", [0, 1])
def test_evaluating_only_for_the_result_skips_the_other_epochs(data, tta, monkeypatch):
    """A search without a pruner needs only the result: the epochs before the last are not
    evaluated, nor the last when test-time augmentation gives the result; the run is the same
    run (same weights, same accuracy) as one evaluated every epoch."""
    def trained(each_epoch):
        torch.manual_seed(0)
        model = netdsl.compile(TINY, input_shape=(3, 16, 16))
        lines, asked = [], []
        result = runtime.train(model, data, quick(epochs=3, tta=tta, precision="fp32"),
                               log=lines.append, evaluate_each_epoch=each_epoch,
                               should_stop=lambda epoch: asked.append(epoch.epoch) or False)
        return result, lines, asked, model

    calls = []
    validate = runtime.trainer.validate
    monkeypatch.setattr(runtime.trainer, "validate",
                        lambda *a, **k: calls.append(k.get("tta", 0)) or validate(*a, **k))
    every, _, asked_every, model_every = trained(True)
    assert calls == [0, 0, 0] + [tta] * (tta > 0) and asked_every == [1, 2, 3]
    calls.clear()
    last, lines, asked, model = trained(False)
    assert calls == ([tta] if tta else [0])
    assert [e.valid_acc is None for e in last.epochs] == [True, True, bool(tta)]
    assert all(e.valid_time == 0.0 for e in last.epochs[:2])
    assert asked == ([] if tta else [3])  # should_stop sees evaluated epochs only
    assert last.valid_acc == every.valid_acc
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model_every.parameters()))
    assert last.total_time == pytest.approx(last.init_seconds + last.train_time
                                            + last.valid_time)
    row = next(line for line in lines if line.split()[0] == "1")
    assert row.split()[5:8] == ["0.0000", "-", "-"]  # no seconds spent, nothing measured

def test_tta_averages_the_mirror_image(data):
    net = netdsl.compile(TINY, input_shape=(3, 16, 16)).eval()
    loss, _ = runtime.validate(net, data, quick(), None, tta=1)
    x = data.normalise(data.eval_x)
    with torch.no_grad():
        logits = (net(x) + net(x.flip(3))) / 2
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, data.eval_y).item(),
                                 rel=1e-5)


def test_compile_is_timed_apart_and_does_not_train(data, monkeypatch):
    def run(compile):
        torch.manual_seed(0)
        net = netdsl.compile("a(4, pool) -> head(4)", input_shape=(3, 16, 16))
        lines = []
        result = runtime.train(net, data, quick(epochs=1, peak_epoch=1, compile=compile),
                               log=lines.append)
        return result, lines
    plain, _ = run(False)
    # On the run's clock, torch compiling (in the first forward and backward: the warm-up's)
    # takes 100 s, and nothing else any time.
    clock, forward_backward = [0.0], runtime.trainer._Run.forward_backward

    def compiling(run, x, y):
        clock[0] += 100 * (clock[0] == 0)
        return forward_backward(run, x, y)
    monkeypatch.setattr(runtime.trainer, "now", lambda device: clock[0])
    monkeypatch.setattr(runtime.trainer._Run, "forward_backward", compiling)
    compiled, lines = run(True)
    assert compiled.status == "finished" and plain.compile_seconds is None
    # Reported on a line of its own before the table, and not inside the epoch's time.
    assert lines[0] == "compiled in 100.0 s (not counted in the epochs below)"
    assert lines[2] == runtime.table_header()
    assert compiled.compile_seconds == 100 and compiled.epochs[0].train_time == 0
    # The warm-up steps left the weights and BatchNorm statistics as they were: the first
    # epoch trains from the same start as without compiling.
    assert compiled.epochs[0].train_loss == pytest.approx(plain.epochs[0].train_loss, rel=1e-3)


# ---- loading --------------------------------------------------------------------------------

def write_folder(root, sizes=None, classes=("cat", "ant", "bee"), per_class=4):
    from PIL import Image

    for split in ("train", "test"):
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                size = (sizes or {}).get((split, name, i), 8)
                image = np.full((size, size, 3), 40 * c, dtype=np.uint8)
                Image.fromarray(image).save(root / split / name / f"{i}.png")
    return root


def test_image_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "pics")
    images = runtime.load_images(str(folder), tmp_path / "cache")
    assert images.classes == ["ant", "bee", "cat"]  # sorted: label = index
    assert images.train_x.shape == (12, 8, 8, 3) and images.train_x.dtype == np.uint8
    assert images.train_x[images.train_y == 2].max() == 0  # "cat" was written black
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1

    def no_decoding(path):
        raise AssertionError("decoded again")
    monkeypatch.setattr(runtime_images, "_decode", no_decoding)
    again = runtime.load_images(str(folder), tmp_path / "cache")
    assert np.array_equal(again.train_x, images.train_x)
    monkeypatch.undo()
    (folder / "test" / "ant" / "extra.png").write_bytes((folder / "test/ant/0.png").read_bytes())
    assert len(runtime.load_images(str(folder), tmp_path / "cache").test_y) == 13


@pytest.mark.parametrize("breakage, message", [
    (lambda root: __import__("shutil").rmtree(root / "test"), "no test/ folder"),
    (lambda root: (root / "test" / "dog").mkdir(), "different class folders"),
    (lambda root: (root / "train" / "ant" / "3.png").write_bytes(b"not a png"), "cannot decode"),
])
def test_bad_image_folders_say_what_is_wrong(tmp_path, breakage, message):
    folder = write_folder(tmp_path / "pics")
    breakage(folder)
    if message == "different class folders":
        from PIL import Image
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "test/dog/0.png")
    with pytest.raises(runtime.DataError, match=message):
        runtime.load_images(str(folder), tmp_path / "cache")


def test_images_of_different_sizes_are_named(tmp_path):
    folder = write_folder(tmp_path / "pics", sizes={("train", "bee", 2): 9})
    with pytest.raises(runtime.DataError, match="bee/2.png"):
        runtime.load_images(str(folder), tmp_path / "cache")


def test_offline_cifar_says_how_to_proceed(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise urllib.error.URLError("no route to host")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "download", offline)
    with pytest.raises(runtime.DataError) as info:
        runtime.load_images("cifar10", tmp_path)
    assert "cifar-10-python.tar.gz" in str(info.value) and str(tmp_path) in str(info.value)
    assert "dataset='PATH'" in str(info.value)  # load_images's argument (the CLI: --dataset)


def test_runtime_never_imports_the_language():
    probe = subprocess.run([sys.executable, "-c", "import sys, netdsl_runtime; "
                            "print(any(m.split('.')[0] == 'netdsl' for m in sys.modules))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "False"
