"""Graph -> nn.Module: names, printout, numerics, and the torch tools it must work with."""
import pytest
import torch
from torch import nn

import netdsl
from handwritten import resnet9

SMALL = "prep(8) -> layer1(16, pool, res) -> layer2(16, pool) -> layer3(32, pool, res) -> head(10)"
SEED_BASELINE = ("prep(64) -> layer1(112, pool, extra=2) -> layer2(256, pool) "
                 "-> layer3(384, pool, extra=2) -> head(100, w=0.125)")


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy parameters and buffers in registration order (both nets list layers alike)."""
    src, dst = source.state_dict(), target.state_dict()
    assert [v.shape for v in src.values()] == [v.shape for v in dst.values()]
    target.load_state_dict(dict(zip(dst.keys(), src.values())))


def test_prints_like_the_seeds_network(seed_network):
    assert str(netdsl.compile(SEED_BASELINE)) == seed_network


def test_children_and_state_dict_are_named_by_path():
    model = netdsl.compile("a(8, res, extra=2) -> head(10)")
    keys = list(model.state_dict())
    assert keys[:3] == ["a_conv.weight", "a_bn.weight", "a_bn.bias"]
    assert "a_residual_res2_conv.weight" in keys and "a_extra_1_conv.weight" in keys
    assert model.node("a/residual/res2/conv") is model.a_residual_res2_conv
    paths = [path for path, _ in model.named_nodes()]
    assert paths[:3] == ["a/conv", "a/bn", "a/relu"] and paths[-1] == "logits"


def test_same_outputs_and_gradients_as_the_hand_written_resnet9():
    torch.manual_seed(0)
    ours = netdsl.compile("models/resnet9.net", prep=8, layer1=16, layer2=16, layer3=32)
    theirs = resnet9(8, 16, 16, 32)
    copy_weights(ours, theirs)
    x = torch.randn(4, 3, 32, 32)
    for mode in (True, False):
        ours.train(mode)
        theirs.train(mode)
        out_ours, out_theirs = ours(x), theirs(x)
        assert torch.allclose(out_ours, out_theirs, atol=1e-5)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    grads = [p.grad for p in ours.parameters()]
    assert all(torch.allclose(a, p.grad, atol=1e-4) for a, p in zip(grads, theirs.parameters()))


def test_in_place_relu_never_corrupts_a_tensor_read_twice():
    model = netdsl.compile("a: conv(4) -> r: relu -> t: add <- r, a")
    x = torch.randn(2, 3, 8, 8)
    expected = torch.relu(model.a(x)) + model.a(x)
    assert torch.allclose(model(x), expected)


def test_weight_count_matches_the_summary():
    net = netdsl.load("models/resnet9.net").bind()
    total = net.summary().splitlines()[-2].split()[-2]
    model = net.module()
    trainable = sum(p.numel() for p in model.parameters())
    assert int(total.replace(",", "")) == trainable == 6_573_120


def test_fx_tracing_gives_the_same_function():
    model = netdsl.compile(SMALL).eval()
    traced = torch.fx.symbolic_trace(model)
    targets = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert targets[0] == "prep_conv" and "layer3_residual_res2_conv" in targets
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(traced(x), model(x))


def test_channels_last_and_bf16_autocast():
    torch.manual_seed(0)
    model = netdsl.compile(SMALL).eval()
    x = torch.randn(8, 3, 32, 32)
    reference = model(x)
    model = model.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), reference, atol=0.05, rtol=0.05)


def test_torch_compile_gives_the_same_function():
    torch.manual_seed(0)
    model = netdsl.compile("a(4, pool, res) -> head(10)").eval()
    compiled = torch.compile(model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-5)


def test_forward_references_run_in_dependency_order():
    model = netdsl.compile("a: conv(4) -> b: add <- a, c -> c: conv(4) <- a")
    x = torch.randn(1, 3, 8, 8)
    a = model.a(x)
    assert torch.allclose(model(x), a + model.c(a))


def test_one_module_name_per_node():
    conv = netdsl.parse("x: conv(4)")["x"]
    with pytest.raises(netdsl.NetdslError, match="both be named 'a_b'"):
        netdsl.compile({"input": (None, []), "a_b": conv, "a": {"b": (conv, ["../input"])}})


def test_weights_move_by_node_path_and_slice_to_narrower_nodes():
    from netdsl.module.network import transfer_weights

    wide = netdsl.compile("a(16, pool, res) -> b(32) -> head(10)")
    narrow = netdsl.compile("a(8, pool, res) -> b(32) -> c(4) -> head(10)")
    report = transfer_weights(wide.path_state_dict(), narrow)
    assert report["a/conv/weight"] == "sliced" and report["b/bn/weight"] == "copied"
    assert report["c/conv/weight"] == "kept"  # no such node in the wide network
    assert torch.equal(narrow.a_conv.weight, wide.a_conv.weight[:8])
    assert torch.equal(narrow.node("a/residual/res2/conv").weight,
                       wide.node("a/residual/res2/conv").weight[:8, :8])
    back = transfer_weights(narrow.path_state_dict(), wide)
    assert back["a/conv/weight"] == "kept"  # a smaller source cannot fill a wider node


@pytest.mark.parametrize("text, shape", [
    ("conv(8, dilation=2)", (8, 16, 16)),                 # padding follows the dilation
    ("conv(8, ks=3, dilation=2, padding=0)", (8, 12, 12)),
    ("avgpool(3, stride=1, padding=1)", (3, 16, 16)),
    ("maxpool(3, stride=2, padding=1)", (3, 8, 8)),
    ("conv(4) -> silu", (4, 16, 16)),
    ("zero", (3, 16, 16)),
    ("whiten(bias_epochs=3) -> conv(8, dirac) -> bn(eps=1e-12, scale=false)", (8, 15, 15)),
])
def test_primitives_shape_count_and_print_as_torch_does(text, shape):
    net = netdsl.load(text).bind(input_shape=(3, 16, 16))
    model = net.module()
    out = model(torch.randn(2, 3, 16, 16))
    assert net.output_shape == tuple(out.shape[1:]) == shape
    assert net.weight_count == sum(p.numel() for p in model.parameters())
    for path, (op, _) in list(net.graph.items())[1:]:
        assert repr(op) == repr(model.node(path))  # the graph's printout is torch's


def test_silu_and_zero_compute_what_they_say():
    model = netdsl.compile("c: conv(4) -> s: silu -> z: zero <- c -> sum: add <- s, z",
                           input_shape=(3, 8, 8))
    assert model.node("s").inplace is False  # its input is read twice: z reads c too
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model(x), torch.nn.functional.silu(model.node("c")(x)))
    assert torch.equal(model.node("z")(x), torch.zeros_like(x))
    assert netdsl.compile("conv(4) -> silu").node("silu").inplace is True
