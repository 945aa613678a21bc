"""Differentiable search (`netdsl supernet --method darts|gdas|beta-darts|drnas`): every option of a
file's op, item and inputs choices computed and mixed by architecture weights trained by
gradient, on tiny networks and tiny data."""
import json

import pytest
import torch

import netdsl
import netdsl_runtime as runtime
from conftest import clear_error, netdsl_cli
from netdsl.errors import NetdslError
from netdsl.graph import SEP
from netdsl.language.choices import mixing
from netdsl.module.layers import Mix
from netdsl.supernet import METHODS
from netdsl.supernet.differentiable import MixedSupernet

# An op choice shared by two calls, an item choice, and an inputs choice of two of three.
SPACE = """param op = choice(conv3, conv1, skip)
block conv3(c) {
    relu -> conv(c, ks=3) -> bn
}
block conv1(c) {
    relu -> conv(c, ks=1) -> bn
}
block skip(c) {
    identity
}
stem: conv(4) -> stem_bn: bn
a: op(4)
b: op(4)
side: choice(conv3(4), avgpool(3, stride=1, padding=1), zero)
joined: cat <- choice(a, b, side, k=2)
pool: avgpool(global) -> flatten -> fc: linear(3, bias=true)
"""
SHAPE = (3, 16, 16)
FAST = ["--epochs", "2", "--batch-size", "16", "--cutout", "0"]


def mixed(method="darts", seed=0, text=SPACE):
    return MixedSupernet(netdsl.load(text), {}, SHAPE, method, seed=seed)


def discrete_path(path: str, found: dict) -> str:
    """The bound network's path of a mixed network's node of the options `found` (each
    option's group dropped): `a/conv1/conv` -> `a/conv`."""
    parts = path.split(SEP)
    return SEP.join(part for i, part in enumerate(parts)
                    if not (i and parts[i - 1] in ("a", "b", "side") and part in found.values()
                            or part.isdigit()))


def test_binding_mixes_every_option_into_one_node_per_use():
    bound = netdsl.load(SPACE).bind(input_shape=SHAPE, chooser=mixing)
    mixes = {path: op.kwargs["point"] for path, (op, _) in bound.graph.items()
             if op is not None and op.type == "Mix"}
    # the op choice is one point mixed at both calls; an inputs choice of k=2 mixes twice
    assert mixes == {"a/mix": "op", "b/mix": "op", "side/mix": "side",
                     "joined_inputs": "joined<-", "joined_inputs_1": "joined<-"}
    assert bound.graph["a/mix"][1] == ["a/conv3/bn", "a/conv1/bn", "a/skip/identity"]
    assert bound.graph["a/conv3/relu"][1] == ["a/in"]  # each option reads the call's input
    assert bound.graph["joined"][1] == ["joined_inputs", "joined_inputs_1"]
    # the first of two in order is a or b, the second b or side
    assert bound.graph["joined_inputs"][1] == ["a/mix", "b/mix"]
    assert bound.graph["joined_inputs_1"][1] == ["b/mix", "side/mix"]


@pytest.mark.parametrize("method", METHODS)
def test_gradients_reach_every_architecture_weight(method):
    torch.manual_seed(0)
    model = mixed(method).train()
    architecture = model.architecture[0]
    loss = torch.nn.functional.cross_entropy(model(torch.randn(8, *SHAPE)),
                                             torch.randint(0, 3, (8,)))
    (loss + architecture.regulariser()).backward()
    grads = {point.name: w.grad for point, w in zip(architecture.points, architecture.weights)}
    assert set(grads) == {"op", "side", "joined<-"}
    reached = [name for name, grad in grads.items() if grad is not None and grad.abs().sum() > 0]
    if method == "gdas":  # one path per point: a point a zero op reads gets no gradient
        assert reached
    else:
        assert reached == list(grads)
        assert all(p.grad is not None for p in model.network.parameters())


def test_beta_decay_pulls_the_weights_together_more_as_the_search_goes_on():
    """beta-DARTS's regulariser alone, descended: none at the start; later the weights' spread
    shrinks (the largest falls most), which is what keeps one op from running away."""
    architecture = mixed("beta-darts").architecture[0]
    with torch.no_grad():
        for w in architecture.weights:
            w.copy_(torch.linspace(2.0, -1.0, len(w)))
    architecture.anneal(0.0)
    assert architecture.regulariser().item() == 0.0
    spread = [float((w.max() - w.min()).detach()) for w in architecture.weights]
    architecture.anneal(1.0)
    optimizer = torch.optim.SGD(architecture.parameters(), lr=0.01)
    for _ in range(3):
        optimizer.zero_grad()
        architecture.regulariser().backward()
        optimizer.step()
    assert all(float((w.max() - w.min()).detach()) < before
               for w, before in zip(architecture.weights, spread))
    # its mixing is darts's softmax
    assert architecture.mixing_weights(True)[0].tolist() == pytest.approx(
        architecture.weights[0].softmax(0).tolist())


def test_one_hot_weights_compute_exactly_the_bound_network():
    """Each point's weights one-hot on an option: the mixed network's output is the output of
    the network bound with those options, its weights copied by path."""
    family = netdsl.load(SPACE)
    x = torch.randn(4, *SHAPE)
    for found in ({"op": "conv3", "side": "zero", "joined<-": "a,b"},
                  {"op": "conv1", "side": "avgpool(3, stride=1, padding=1)",
                   "joined<-": "b,side"},
                  {"op": "skip", "side": "conv3(4)", "joined<-": "a,side"}):
        model = mixed().eval()
        architecture = model.architecture[0]
        with torch.no_grad():
            for point, w in zip(architecture.points, architecture.weights):
                w.copy_(torch.full_like(w, -1e4))
                w[point.values().index(found[point.name])] = 0  # softmax: exactly one-hot
        bound = family.bind(found, input_shape=SHAPE)
        network = bound.module().eval()
        weights = model.network.path_state_dict()
        keys = {"side": {"conv3(4)": "conv3", "zero": "zero",
                         "avgpool(3, stride=1, padding=1)": "avgpool"}[found["side"]],
                "op": found["op"]}
        copied = {discrete_path(path, keys): tensor for path, tensor in weights.items()}
        state = network.path_state_dict()
        assert set(state) <= set(copied)
        with torch.no_grad():
            for name, tensor in network.state_dict().items():
                tensor.copy_(copied[network.path_of(name)])
            assert torch.allclose(model(x), network(x), atol=1e-6), found


def test_gdas_runs_only_the_paths_it_draws():
    model = mixed("gdas").train()
    ran = []
    for path, module in model.network.named_nodes():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, o, path=path: ran.append(path))
    model(torch.randn(4, *SHAPE))
    options = {path.split(SEP)[1] for path in ran if path.startswith(("a/", "b/"))}
    assert len(options) <= 1  # one option of the shared op choice, at both of its calls
    assert "stem" in ran


def test_the_second_order_step_matches_the_unrolled_gradient():
    """DARTS's finite-difference Hessian-vector product against the exact gradient through
    one weight step, autograd's, in float64 on a tiny network (with a finer difference than
    DARTS's 0.01, which on a net this small is off by half)."""
    torch.manual_seed(0)
    model = mixed().double().train()
    architecture = model.architecture[0].double()
    for module in model.modules():  # deterministic in training mode: no batch statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.track_running_stats, module.running_mean, module.running_var = False, None, None
    trained = torch.randn(6, *SHAPE, dtype=torch.float64), torch.randint(0, 3, (6,))
    held = torch.randn(6, *SHAPE, dtype=torch.float64), torch.randint(0, 3, (6,))
    xi = 0.5
    approx = runtime.unrolled_gradients(model, architecture, trained, held, xi,
                                        epsilon=1e-5)

    names = [n for n, p in model.named_parameters()]
    weights = [p for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(trained[0]), trained[1])
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    stepped = {n: w - xi * g for n, w, g in zip(names, weights, grads)}
    held_loss = torch.nn.functional.cross_entropy(
        torch.func.functional_call(model, stepped, (held[0],)), held[1])
    exact = torch.autograd.grad(held_loss, list(architecture.parameters()))
    first_order = torch.autograd.grad(
        torch.nn.functional.cross_entropy(model(held[0]), held[1]),
        list(architecture.parameters()))
    for a, e, f in zip(approx, exact, first_order):
        assert torch.allclose(a, e, rtol=1e-2, atol=1e-8), (a, e)
        assert not torch.allclose(f, e, rtol=1e-2, atol=1e-8)  # the step's term counts


def test_a_number_to_choose_is_refused_before_training(tmp_path, image_folder):
    text = "param w = choice(4, 8)\nparam op = choice(relu, identity)\nstem: conv(w) -> x: op " \
           "-> head(3)"
    run = netdsl_cli("supernet", "-e", text, "--dataset", image_folder, "--method", "darts",
                     *FAST, cwd=tmp_path)
    clear_error(run, "choice 'w' offers numbers (4, 8)", "--set w=4")
    assert "training" not in run.stdout  # no data loaded
    with pytest.raises(NetdslError, match="choice 'w' offers numbers"):
        netdsl.load(text).bind(chooser=mixing)


def test_a_search_finds_a_network_that_its_set_values_reproduce(tmp_path, image_folder):
    record = tmp_path / "found.json"
    run = netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, "--method", "drnas",
                     *FAST, "--json", record, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    found = json.loads(record.read_text())
    assert found["status"] == "finished" and len(found["alphas"]) == len(found["epochs"]) == 2
    for alphas in found["alphas"]:
        assert set(alphas) == set(found["points"]) == {"op", "side", "joined<-"}
        for name, probabilities in alphas.items():
            assert len(probabilities) == len(found["points"][name])
            assert sum(probabilities) == pytest.approx(1)
    assert len(found["found"]["joined<-"].split(",")) == 2  # k inputs kept
    sets = [arg for value in found["set"] for arg in ("--set", value)]
    assert " ".join(sets) in run.stdout
    shown = netdsl_cli("run", "-e", SPACE, "--dataset", image_folder, *sets, *FAST, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    bound = netdsl.load(SPACE).bind({**found["found"], "joined<-": found["found"]["joined<-"]},
                                    input_shape=SHAPE)
    assert bound.text == found["text"]
    assert len(bound.graph["joined"][1]) == 2

    plotted = netdsl_cli("plot", record, "-o", tmp_path / "alphas.png", cwd=tmp_path)
    assert plotted.returncode == 0, plotted.stderr
    assert (tmp_path / "alphas.png").read_bytes()[:4] == b"\x89PNG"
    drawn = netdsl_cli("draw", "-e", SPACE, "--alphas", record, "-o", tmp_path / "a.dot",
                       cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    dot = (tmp_path / "a.dot").read_text()
    last = found["alphas"][-1]["op"]
    for probability in last:  # each option's edge into the op's two mixes, labelled
        assert dot.count(f"p={probability:.2f}") >= 2 * last.count(probability)
    clear_error(netdsl_cli("draw", "-e", "param o = choice(relu, gelu)\nstem: conv(4) -> "
                           "k: o -> head(3)", "--alphas", record, "-o", tmp_path / "b.dot",
                           cwd=tmp_path), "no probabilities for choice 'o'")


def test_the_supernet_methods_take_only_their_flags(tmp_path, image_folder):
    clear_error(netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, *FAST,
                           cwd=tmp_path), "--method spos saves its supernet: give -o")
    clear_error(netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, *FAST, "-o",
                           "s.pt", "--method", "gdas", cwd=tmp_path),
                "-o is not taken by --method gdas")
    clear_error(netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, *FAST, "-o",
                           "s.pt", "--json", "r.json", cwd=tmp_path),
                "--json is not taken by --method spos")
    clear_error(netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, *FAST,
                           "--method", "darts", "--valid-split", "10", cwd=tmp_path),
                "--valid-split is not taken")
    assert not list(tmp_path.iterdir())


def test_ctrl_c_keeps_a_record_of_the_epochs_done(tmp_path, image_folder, monkeypatch):
    from netdsl.supernet.differentiable import Architecture

    anneal = Architecture.anneal

    def interrupted_in_epoch_two(self, fraction):
        if fraction > 0:
            raise KeyboardInterrupt
        anneal(self, fraction)

    monkeypatch.setattr(Architecture, "anneal", interrupted_in_epoch_two)
    record = tmp_path / "r.json"
    run = netdsl_cli("supernet", "-e", SPACE, "--dataset", image_folder, "--method", "gdas",
                     *FAST, "--json", record, cwd=tmp_path)
    assert run.returncode == 130, run.stderr
    kept = json.loads(record.read_text())
    assert kept["status"] == "interrupted"
    assert len(kept["alphas"]) == len(kept["epochs"]) == 1
    assert "interrupted after 1 epochs" in run.stdout


def test_a_mix_that_the_search_has_not_set_is_an_error():
    module = mixed().network
    mix = next(m for m in module.modules() if isinstance(m, Mix))
    with pytest.raises(RuntimeError, match="mix of choice 'op' run before"):
        module(torch.randn(1, *SHAPE))
    assert mix.probabilities is None


def test_an_option_without_nodes_is_a_located_error():
    text = "block empty(c) {\n}\nstem: conv(4) -> side: choice(empty(4), zero) -> head(3)"
    with pytest.raises(NetdslError, match="no nodes to take the inputs") as raised:
        netdsl.load(text).bind(chooser=mixing)
    assert raised.value.location is not None
