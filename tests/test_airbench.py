"""What the airbench94 network needs from the language and the trainer: a whitening layer set
from the data, convolutions started as the identity, BatchNorm with its scale fixed at 1, and a
bias that trains for the first epochs only."""
import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

import netdsl
import netdsl_runtime as runtime
from conftest import ROOT
from netdsl import NetdslError
from netdsl.module.layers import Whiten


def test_the_airbench94_net_costs_what_was_published():
    net = netdsl.load(ROOT / "models/airbench94.net").bind()
    # 118 M multiply-adds forward, 236 MFLOP; about 2 M parameters (the whitening's 288 frozen).
    assert net.flops == 236_635_642 and net.weight_count == 1_972_792
    assert [net.shapes[p] for p in ("whiten", "group1/pool", "group2/pool", "group3/pool")] == [
        (24, 31, 31), (64, 15, 15), (256, 7, 7), (256, 3, 3)]
    assert net.graph["logits"][0].kwargs["weight"] == pytest.approx(1 / 9)
    assert netdsl.load(ROOT / "models/airbench94.net").bind(width=16).flops < net.flops / 10


def test_whitening_decorrelates_the_patches_it_was_set_from():
    rng = np.random.RandomState(0)
    # Smooth, correlated images: neighbouring pixels and channels move together.
    base = torch.tensor(rng.normal(size=(64, 1, 17, 17)), dtype=torch.float32)
    images = torch.nn.functional.avg_pool2d(base, 2, 1).repeat(1, 3, 1, 1)
    images = images + 0.3 * torch.randn(64, 3, 16, 16)
    layer = Whiten(3, 2)
    layer.initialise_from_images(images)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, layer.weight)  # without the bias
    half = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = half.T @ half / len(half)
    # Each filter's output has variance eigenvalue / (eigenvalue + eps): 1 but for the tiny
    # directions; and no two outputs are correlated.
    assert torch.allclose(covariance, torch.diag(covariance.diag()), atol=1e-3)
    assert covariance.diag().max() <= 1 and covariance.diag()[:6].min() > 0.99
    assert torch.equal(layer.weight[12:], -layer.weight[:12])
    assert not layer.weight.requires_grad and layer.bias.requires_grad


def colour_data(size=16):
    rng = np.random.RandomState(0)
    colours = rng.randint(0, 256, (4, 3))

    def make(n):
        y = rng.randint(0, 4, n)
        x = colours[y][:, None, None, :] + rng.normal(0, 40, (n, size, size, 3))
        return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)
    return runtime.DeviceData(runtime.Images("colours", list("abcd"), *make(256), *make(64)),
                              "cpu")


def test_the_trainer_sets_whitening_from_the_data_and_trains_its_bias_for_its_epochs():
    data = colour_data()
    torch.manual_seed(0)
    model = netdsl.compile("w: whiten(bias_epochs=1) -> gelu -> a(8, pool) -> "
                           "n: bn(scale=false) -> head(4)", input_shape=(3, 16, 16))
    biases = []
    hook = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: biases.append(model.node("w").bias.detach().clone()))
    try:
        result = runtime.train(model, data, runtime.Recipe(epochs=2, batch_size=64, cutout=0,
                                                           whiten_images=200), log=None)
    finally:
        hook.remove()
    assert result.status == "finished"
    expected = Whiten(3, 2)
    expected.initialise_from_images(data.train_images(200))
    assert torch.allclose(model.node("w").weight, expected.weight, atol=1e-5)  # set, not trained
    steps = 256 // 64
    assert not torch.equal(biases[0], biases[steps - 1])  # trained in epoch 1
    assert all(torch.equal(b, biases[steps - 1]) for b in biases[steps:])  # not in epoch 2
    assert torch.equal(model.node("n").weight, torch.ones(8))  # BatchNorm's scale stays 1


def test_dirac_starts_the_first_filters_as_the_identity():
    torch.manual_seed(0)
    model = netdsl.compile("c: conv(6, dirac)", input_shape=(4, 8, 8))
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(model(x)[:, :4], x)  # the first in_channels filters pass x through
    assert model.node("c").weight[4:].abs().sum() > 0  # the rest keep torch's initialisation


@pytest.mark.parametrize("text, message", [
    ("whiten(ks=3) -> head(2)", "whiten: kernel size 3 does not fit the 2x2 input"),
    ("conv(4, groups=2, dirac) -> head(2)", "dirac .* needs groups=1"),
])
def test_bad_airbench_layers_are_located_errors(text, message):
    with pytest.raises(NetdslError, match=message) as error:
        netdsl.load(text).bind(input_shape=(4, 2, 2))
    assert error.value.location is not None
