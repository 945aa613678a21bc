"""The modern recipe: presets and recipe files as data, and each of airbench's parts in the one
training loop (fractional epochs, schedule shape, decoupled rates, rate multipliers by kind,
lookahead, translation, alternating flip, 6-view test-time augmentation, Muon)."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim.optimizer import register_optimizer_step_post_hook

import netdsl
import netdsl_runtime as runtime
from conftest import ROOT, netdsl_cli
from netdsl_runtime.muon import Muon, orthogonalise
from netdsl_runtime.recipe import Recipe, RecipeError, load_recipe, presets
from netdsl_runtime.groups import optimizers
from test_runtime import colour_images


@pytest.fixture(scope="module")
def data():
    return runtime.DeviceData(colour_images(), "cpu")


# ---- presets and files ----------------------------------------------------------------------

def test_presets_travel_with_the_project_and_seed_is_the_default():
    assert {"seed", "airbench94", "airbench94_muon"} <= set(presets())
    assert load_recipe("seed") == Recipe()


def test_the_airbench94_preset_is_the_published_recipe():
    recipe = load_recipe("airbench94")
    assert (recipe.epochs, recipe.batch_size, recipe.momentum, recipe.label_smoothing) == (
        9.9, 1024, 0.85, 0.2)
    assert (recipe.peak_lr, recipe.weight_decay, recipe.decoupled) == (11.5, 0.0153, True)
    assert recipe.kind_lr_scale == {"BatchNorm2d.bias": 64.0}
    assert (recipe.translate, recipe.flip, recipe.cutout, recipe.tta) == (2, "alternate", 0, 2)
    assert (recipe.lookahead, recipe.lookahead_every, recipe.lookahead_from) == (0.95, 5, 3)
    # the triangle: 0.2 -> 1 at 23% -> 0.07
    assert recipe.schedule(0) == pytest.approx(0.2)
    assert recipe.schedule(0.23 * 9.9) == pytest.approx(1)
    assert recipe.schedule(9.9) == pytest.approx(0.07)
    assert recipe.schedule(0.115 * 9.9) == pytest.approx(0.6)
    muon = load_recipe("airbench94_muon")
    assert (muon.optimizer, muon.batch_size, muon.epochs, muon.muon_lr) == ("muon", 2000, 8, 0.24)
    assert muon.schedule(0) == 1 and muon.schedule(4) == pytest.approx(0.5)


def test_flags_override_a_preset_field_by_field(tmp_path):
    from netdsl.cli import build_parser
    from netdsl.commands.flags import recipe_of

    def parse(*flags):
        return recipe_of(build_parser().parse_args(
            ["run", "-e", "a(4) -> head(2)", "--dataset", "x", *flags]))[0]
    recipe = parse("--recipe", "airbench94", "--epochs", "5", "--kind-lr-scale", "Whiten.bias=2")
    assert recipe.epochs == 5 and recipe.peak_lr == 11.5 and recipe.tta == 2
    assert recipe.kind_lr_scale == {"BatchNorm2d.bias": 64.0, "Whiten.bias": 2.0}
    assert recipe.peak == pytest.approx(5 * 0.23)  # the peak follows the epochs
    mine = tmp_path / "mine.toml"
    mine.write_text('base = "airbench94"\nepochs = 4  # a short run\nlookahead = 0\n')
    assert parse("--recipe", str(mine)) == Recipe(**{**load_recipe("airbench94").__dict__,
                                                     "epochs": 4.0, "lookahead": 0.0})


@pytest.mark.parametrize("text, message", [
    ("epochs = 4\nwarmup = 2\n", "unknown key 'warmup'"),
    ('batch_size = "big"\n', "key 'batch_size': batch_size must be a whole number, got 'big' "
                             "(allowed: a whole number >= 1)"),
    ("momentum = 1.5\n", "key 'momentum': momentum must be below 1, got 1.5 (allowed: a number "
                         ">= 0 and < 1)"),
    ('flip = "sideways"\n', "(allowed: random, alternate, none)"),
    ("tta = 3\n", "key 'tta': tta must be below 3"),
    ('base = "nonesuch"\n', "key 'base' must name a preset"),
    ("epochs = [\n", "not TOML"),
    ("epochs = 2\npeak_epoch = 3\n", "peak_epoch must be between 0 and epochs"),
])
def test_a_bad_recipe_file_names_the_file_the_key_and_the_range(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_the_cli_refuses_a_bad_recipe_before_any_data_loads(tmp_path):
    (tmp_path / "bad.toml").write_text("epochs = 4\nlearning_rate = 2\n")
    # The dataset does not exist either: the recipe's error must come first.
    done = netdsl_cli("run", str(ROOT / "models/airbench94.net"), "--recipe",
                      str(tmp_path / "bad.toml"), "--dataset", str(tmp_path / "no-such-data"),
                      cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"--recipe: {tmp_path / 'bad.toml'}: unknown key 'learning_rate'" in done.stderr
    done = netdsl_cli("run", str(ROOT / "models/airbench94.net"), "--recipe", "airbench95",
                      "--dataset", "cifar10", cwd=tmp_path)
    assert done.returncode == 2 and "neither a preset (airbench94, airbench94_muon, seed)" in \
        done.stderr


# ---- the parts in the loop ------------------------------------------------------------------

def test_fractional_epochs_train_part_of_the_last_pass(data):
    steps = []
    hook = register_optimizer_step_post_hook(lambda *args: steps.append(1))
    try:
        result = runtime.train(netdsl.compile("a(4, pool) -> head(4)", input_shape=(3, 16, 16)),
                               data, Recipe(epochs=1.5, batch_size=64, cutout=0), log=None)
    finally:
        hook.remove()
    assert len(steps) == math.ceil(1.5 * 512 // 64) == 12 and len(result.epochs) == 2
    assert result.epochs[-1].lr == 0  # the schedule ends where the steps do


def test_decoupled_rates_step_as_airbench_steps():
    """One step of our mean-loss SGD with --decoupled equals one step of the reference's
    summed-loss SGD with its lr, decay and 64x BatchNorm-bias groups (ref_airbench.py)."""
    torch.manual_seed(0)
    ours = netdsl.compile("c: conv(8) -> bn -> relu -> pool: maxpool(global) -> flatten -> "
                          "linear(3)", input_shape=(3, 8, 8))
    theirs = netdsl.compile("c: conv(8) -> bn -> relu -> pool: maxpool(global) -> flatten -> "
                            "linear(3)", input_shape=(3, 8, 8))
    theirs.load_state_dict(ours.state_dict())
    recipe = Recipe(batch_size=32, decoupled=True, peak_lr=11.5, weight_decay=0.0153,
                    momentum=0.85, kind_lr_scale={"BatchNorm2d.bias": 64.0})
    x, y = torch.randn(32, 3, 8, 8), torch.randint(0, 3, (32,))
    (optimizer,) = optimizers(ours, recipe)
    for group in optimizer.param_groups:
        group["lr"] = group["peak"]  # the schedule's peak
    F.cross_entropy(ours(x), y).backward()
    optimizer.step()

    kilostep = 1024 * (1 + 1 / (1 - 0.85))
    lr, wd = 11.5 / kilostep, 0.0153 * 32 / kilostep
    bn_bias = [p for n, p in theirs.named_parameters() if n.endswith("bn.bias")]
    others = [p for n, p in theirs.named_parameters() if not n.endswith("bn.bias")]
    reference = torch.optim.SGD([dict(params=bn_bias, lr=64 * lr, weight_decay=wd / (64 * lr)),
                                 dict(params=others, lr=lr, weight_decay=wd / lr)],
                                momentum=0.85, nesterov=True)
    F.cross_entropy(theirs(x), y, reduction="sum").backward()
    reference.step()
    for (name, mine), expected in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(mine, expected, atol=1e-6), name


def test_lookahead_pulls_the_weights_into_its_average_and_ends_on_it(data):
    """The kept weights are the average computed by hand from the weights after each step:
    from step > lookahead_from epochs, every `every` steps: a = w (first), then
    a += (1 - rho) * (w - a) with rho = decay^every * (step/total)^3."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
    steps = []
    hook = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: steps.append([p.detach().clone()
                                                      for p in model.parameters()]))
    recipe = Recipe(epochs=2, batch_size=64, cutout=0, lookahead=0.9, lookahead_every=2,
                    lookahead_from=0.5)
    try:
        runtime.train(model, data, recipe, log=None)
    finally:
        hook.remove()
    total, average = len(steps), None
    for step, weights in enumerate(steps, 1):
        if step % 2 or step <= 0.5 * 8:
            continue
        if average is None:
            average = weights
        else:
            rho = 0.9 ** 2 * (step / total) ** 3
            average = [a + (1 - rho) * (w - a) for a, w in zip(average, weights)]
    assert total == 16
    for kept, expected, last in zip(model.parameters(), average, steps[-1]):
        assert torch.allclose(kept, expected, atol=1e-6)
    assert not torch.allclose(next(model.parameters()), steps[-2][0], atol=1e-4)


def test_translation_and_given_flips_make_exactly_the_images_asked_for(data):
    flips = torch.arange(data.train_size) % 3 == 0
    x, y = next(data.train_batches(64, torch.Generator().manual_seed(0), translate=0, cutout=0,
                                   flips=flips))
    order = torch.randperm(data.train_size, generator=torch.Generator().manual_seed(0))[:64]
    images = data.normalise(data.train_x[order])
    expected = torch.where(flips[order][:, None, None, None], images.flip(3), images)
    assert torch.equal(x, expected) and torch.equal(y, data.train_y[order])
    shifted, _ = next(data.train_batches(64, torch.Generator().manual_seed(0), translate=2,
                                         cutout=0, flips=flips))
    padded = data.normalise(data.padded(2)[order])
    for image, source, flip in zip(shifted, padded, flips[order]):
        windows = [source[:, dy:dy + 16, dx:dx + 16] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(image, w.flip(2) if flip else w) for w in windows)
    with pytest.raises(ValueError, match="translate 16 is not smaller than the 16x16 images"):
        data.padded(16)


def test_alternating_flip_mirrors_every_image_the_other_way_each_epoch(data, monkeypatch):
    seen = []
    batches = runtime.DeviceData.train_batches

    def recording(self, *args, flips, **kwargs):
        seen.append(None if flips is None else flips.clone())
        return batches(self, *args, flips=flips, **kwargs)
    monkeypatch.setattr(runtime.DeviceData, "train_batches", recording)
    runtime.train(netdsl.compile("a(4, pool) -> head(4)", input_shape=(3, 16, 16)), data,
                  Recipe(epochs=3, batch_size=64, cutout=0, flip="alternate"), log=None)
    first, second, third = seen
    assert 0.35 < first.float().mean() < 0.65  # each image drawn once, about half mirrored
    assert torch.equal(second, ~first) and torch.equal(third, first)
    seen.clear()
    runtime.train(netdsl.compile("a(4, pool) -> head(4)", input_shape=(3, 16, 16)), data,
                  Recipe(epochs=1, batch_size=64, cutout=0, flip="none"), log=None)
    assert not seen[0].any()


def test_tta_level_2_weighs_six_views_half_and_quarters():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),
                                torch.nn.LazyLinear(5))
    x = torch.randn(2, 3, 8, 8)
    model(x)
    mirror = lambda v: (model(v) + model(v.flip(3))) / 2
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    expected = (mirror(x) / 2 + mirror(padded[:, :, :8, :8]) / 4
                + mirror(padded[:, :, 2:, 2:]) / 4)
    assert torch.allclose(runtime.predict(model, x, 2), expected, atol=1e-5)
    assert torch.allclose(runtime.predict(model, x, 1), mirror(x), atol=1e-6)


def test_the_result_is_the_final_tta_evaluation_and_is_timed_apart(data):
    lines = []
    result = runtime.train(netdsl.compile("a(8, pool) -> head(4)", input_shape=(3, 16, 16)),
                           data, Recipe(epochs=2, batch_size=64, cutout=0, tta=2),
                           log=lines.append)
    assert result.tta.level == 2 and result.valid_acc == result.tta.valid_acc
    assert lines[-2].startswith("test-time augmentation level 2 (6 views): valid loss")
    assert result.core_time == pytest.approx(result.init_seconds + result.train_time
                                             + result.tta.seconds)
    assert result.to_dict()["final"]["valid_acc"] == result.tta.valid_acc


# ---- Muon -----------------------------------------------------------------------------------

def test_newton_schulz_takes_singular_values_near_one():
    torch.manual_seed(0)
    for shape in ((16, 72), (72, 16)):
        matrix = torch.randn(*shape)
        before = torch.linalg.svdvals(matrix)
        singular = torch.linalg.svdvals(orthogonalise(matrix))
        # three steps of the quintic iteration: a spread of 2x becomes one within (0.6, 1.2)
        assert before.max() / before.min() > 2
        assert singular.min() > 0.6 and singular.max() < 1.2, shape


def test_muon_keeps_each_filter_bank_at_its_norm_and_moves_it():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(8, 4, 3, 3))
    optimizer = Muon([weight], lr=0.1, momentum=0.6)
    before = weight.detach().clone()
    weight.grad = torch.randn_like(weight)
    optimizer.step()
    moved = (weight - before * 8 ** 0.5 / before.norm()).reshape(8, -1)
    assert torch.linalg.svdvals(moved / 0.1).max() < 1.2 and moved.norm() > 0
    with pytest.raises(ValueError, match="not parameters of shape \\(8,\\)"):
        Muon([torch.nn.Parameter(torch.zeros(8))], lr=0.1, momentum=0.6)


def test_the_muon_recipe_trains_and_needs_conv_filters(data):
    recipe = Recipe(epochs=3, batch_size=64, cutout=0, optimizer="muon", peak_epoch=0,
                    decoupled=True, peak_lr=6.5, weight_decay=0.0157, momentum=0.85)
    torch.manual_seed(0)
    net = netdsl.compile("a(8, pool) -> b(16, pool) -> head(4)", input_shape=(3, 16, 16))
    (sgd, muon) = optimizers(net, recipe)
    assert all(p.ndim == 4 for g in muon.param_groups for p in g["params"])
    assert all(p.ndim < 4 for g in sgd.param_groups for p in g["params"])
    result = runtime.train(net, data, recipe, log=None)
    assert result.status == "finished"
    assert max(e.valid_acc for e in result.epochs) > 0.9  # chance is 0.25
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
    with pytest.raises(ValueError, match="no trained convolution filters"):
        runtime.train(linear, data, recipe, log=None)


def test_train_epochs_freezes_a_node_path_after_its_epochs(data):
    """`train_epochs` by node path: group b trains for one epoch, then stays; `a` never trains
    (0); the head trains throughout; a prefix that names nothing is an error."""
    torch.manual_seed(0)
    net = netdsl.compile("a(8, pool) -> b(8, pool) -> head(4)", input_shape=(3, 16, 16))
    weights = []
    hook = register_optimizer_step_post_hook(lambda *args: weights.append(
        {name: p.detach().clone() for name, p in net.named_parameters()}))
    try:
        runtime.train(net, data, Recipe(epochs=3, batch_size=128, cutout=0,
                                        train_epochs={"b": 1.0, "a/conv": 0.0}), log=None)
    finally:
        hook.remove()
    first, after_one, last = weights[0], weights[3], weights[-1]  # 4 steps per epoch
    assert torch.equal(first["a_conv.weight"], last["a_conv.weight"])
    assert not torch.equal(first["b_conv.weight"], after_one["b_conv.weight"])
    assert torch.equal(after_one["b_conv.weight"], last["b_conv.weight"])
    assert not torch.equal(after_one["linear.weight"], last["linear.weight"])
    with pytest.raises(ValueError, match="train_epochs: no parameter under 'c'"):
        runtime.train(net, data, Recipe(epochs=1, batch_size=128, train_epochs={"c": 1.0}),
                      log=None)
