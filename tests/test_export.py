"""`netdsl export`: every file in models/ to ONNX, torch.export and TorchScript, each read back
and run: outputs equal the module's (fp32, atol 1e-4); ONNX names nodes by DSL path."""
import warnings

import pytest
import torch

import netdsl
from conftest import ROOT, netdsl_cli
from netdsl import NetdslError
from netdsl.module.export import export

MODELS = sorted(p.name for p in (ROOT / "models").glob("*.net"))


def small(name):
    """The file's network at its defaults, or narrower where it declares widths (fast)."""
    family = netdsl.load(ROOT / "models" / name)
    widths = {k: 8 for k in ("prep", "layer1", "layer2", "layer3", "width", "c1", "c2", "c3")
              if k in family.parameters}
    return family.bind(widths)


def load_and_run(path, x):
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    if path.suffix == ".pt2":
        return torch.export.load(str(path)).module()(x)
    with warnings.catch_warnings():
        # torch 2.14 deprecates TorchScript; a .ts.pt file has no other reader than torch.jit
        warnings.filterwarnings("ignore", category=FutureWarning, message="`torch.jit.load`")
        return torch.jit.load(str(path))(x)


@pytest.mark.parametrize("suffix", [".onnx", ".pt2", ".ts.pt"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_exports_and_runs_the_same(tmp_path, name, suffix):
    pytest.importorskip("onnxruntime") if suffix == ".onnx" else None
    bound = small(name)
    torch.manual_seed(0)
    model = bound.module().eval()
    weights = model.path_state_dict()
    with torch.no_grad():  # weights unlike a fresh init: the file must carry these
        for tensor in weights.values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * 0.01)
        model.load_state_dict({name: weights[model.path_of(name)]
                               for name in model.state_dict()})
    path = export(bound, tmp_path / f"model{suffix}", weights)
    x = torch.randn(3, *bound.input_shape)  # another batch size than the export's example
    with torch.no_grad():
        expected = model(x)
        assert torch.allclose(load_and_run(path, x), expected, atol=1e-4)


def test_onnx_names_nodes_and_weights_by_dsl_path(tmp_path):
    onnx = pytest.importorskip("onnx")
    bound = netdsl.load(ROOT / "models/resnet9.net").bind(prep=8, layer1=8, layer2=8, layer3=8)
    proto = onnx.load(str(export(bound, tmp_path / "resnet9.onnx")))
    names = {node.name for node in proto.graph.node}
    # BatchNorm is folded into the conv before it (inference): its node carries the conv's path
    assert {"layer1/residual/res2/conv", "layer1/residual/add", "prep/conv", "linear"} <= names
    weights = {i.name for i in proto.graph.initializer}
    assert {"layer1/residual/res2/conv/weight", "linear/weight"} <= weights


def test_the_cli_exports_trained_weights(tmp_path, image_folder):
    run = netdsl_cli("run", "-e", "a(8, pool) -> head(3)", "--dataset", str(image_folder),
                     "--epochs", "1", "--batch-size", "32", "--save-weights", "w.pt",
                     "--data-dir", str(tmp_path), "--quiet", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    done = netdsl_cli("export", "-e", "a(8, pool) -> head(3)", "--input-shape", "3,16,16",
                      "--weights", "w.pt", "-o", "net.pt2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    model = netdsl.compile("a(8, pool) -> head(3)", input_shape=(3, 16, 16)).eval()
    saved = torch.load(tmp_path / "w.pt")
    model.load_state_dict({name: saved[model.path_of(name)] for name in model.state_dict()})
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(torch.export.load(str(tmp_path / "net.pt2")).module()(x), model(x),
                              atol=1e-5)
    wrong = netdsl_cli("export", "-e", "a(16, pool) -> head(3)", "--input-shape", "3,16,16",
                       "--weights", "w.pt", "-o", "x.pt2", cwd=tmp_path)
    assert wrong.returncode == 2 and "the weights are not this network's" in wrong.stderr
    assert not (tmp_path / "x.pt2").exists()


def test_a_bad_suffix_names_the_formats(tmp_path):
    with pytest.raises(NetdslError, match=r"must end in \.onnx, \.pt2, \.ts\.pt"):
        export(netdsl.load("a(4) -> head(2)").bind(), tmp_path / "model.tflite")


def test_an_op_the_format_cannot_hold_is_named(tmp_path, monkeypatch):
    """A layer whose computation TorchScript cannot trace (a data-dependent Python branch on a
    tensor's value) is named with the format, not reported as a traceback."""
    from netdsl.module import layers

    def untraceable(self, x):
        return x if bool(x.sum() > 0) else -x  # a branch on data: traced, then checked
    monkeypatch.setattr(layers.Zero, "forward", untraceable)
    bound = netdsl.load("a(4) -> z: zero -> head(2)").bind()
    monkeypatch.setattr(torch.jit, "trace", _strict_trace)
    with pytest.raises(NetdslError, match=r"TorchScript cannot hold z \(Zero\)"):
        export(bound, tmp_path / "model.ts.pt")


@pytest.mark.parametrize("suffix, format", [(".onnx", "ONNX"), (".pt2", "torch.export")])
def test_torch_exports_culprit_is_named_past_a_two_input_layer(tmp_path, monkeypatch, suffix,
                                                                format):
    """torch.export (behind .pt2 and .onnx) cannot trace a branch on a tensor's value: the
    layer is named with torch's reason, not the ONNX exporter's wrapper, and the two-input
    `add` before it, exported alone on the way, is not blamed."""
    pytest.importorskip("onnxscript") if suffix == ".onnx" else None
    from netdsl.module import layers

    def untraceable(self, x):
        return x if bool(x.sum() > 0) else -x
    monkeypatch.setattr(layers.Zero, "forward", untraceable)
    bound = netdsl.load("a(4) -> c: conv(4) -> j: add <- a, c -> z: zero -> head(2)").bind()
    with pytest.raises(NetdslError, match=rf"^{format} cannot hold z \(Zero\): .*data-depend"):
        export(bound, tmp_path / f"model{suffix}")
    assert not (tmp_path / f"model{suffix}").exists()


def _strict_trace(model, inputs, _trace=torch.jit.trace):
    """torch.jit.trace, failing where a traced branch depends on the data."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", torch.jit.TracerWarning)
        return _trace(model, inputs)
