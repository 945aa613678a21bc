"""Every file in models/ parses, compiles and trains one step (a registry test, as timm's)."""
import re

import pytest
import torch

import netdsl
from conftest import MODELS, ROOT


def test_every_model_is_in_the_readmes_table_and_every_row_is_a_model():
    """A model added or removed changes the README's table of models/ too."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## models/\n", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([\w.]+)\.net` \|", section, re.M))
    assert listed == {m.stem for m in MODELS}


@pytest.mark.parametrize("path", MODELS, ids=[m.stem for m in MODELS])
def test_model_compiles_and_trains_one_step(path):
    torch.manual_seed(0)
    model = netdsl.compile(path)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(4, 3, 32, 32)
    out = model(x)
    assert out.shape[0] == 4 and out.dim() == 2
    loss = torch.nn.functional.cross_entropy(out, torch.randint(out.shape[1], (4,)))
    loss.backward()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_model_families_bind_their_parameters():
    graph = netdsl.load("models/resnet9.net").bind(layer1=112, layer3=384, classes=100).graph
    assert graph["layer1/conv"][0].kwargs["out_channels"] == 112
    assert graph["linear"][0].kwargs == {"in_features": 384, "out_features": 100, "bias": False}
    shortcut = netdsl.load("models/resnet9_shortcut.net").bind().graph
    assert "prep/residual/add" in shortcut and "layer2/residual/add" in shortcut
    assert "layer1/residual/add" not in shortcut


def test_cifar100_model_is_the_design_example(seed_operations):
    listing = netdsl.operations(netdsl.load("models/resnet9_cifar100.net").bind().nested)
    assert [line.strip(" ,[]") for line in listing.splitlines()] == seed_operations


def test_extra_model_is_the_seed_baseline(seed_network):
    assert str(netdsl.compile("models/resnet9_extra.net")) == seed_network
