"""The drawing: what it shows, how it is written, and that names cannot break it."""
import re
import subprocess

import graphviz
import pytest

import netdsl
from conftest import need_dot
from netdsl import NetdslError
from netdsl.module.draw import write_drawing

NET = "prep(8) -> layer1(16, pool, res) -> head(10)"


def test_drawing_shows_nodes_clusters_legend_and_tooltips():
    dot = netdsl.draw(NET)
    assert isinstance(dot, graphviz.Digraph)
    source = dot.source
    assert "label=layer1" in source and "label=residual" in source  # one cluster per prefix
    assert source.count("subgraph cluster_") == 6  # prep, layer1, residual, res1, res2, legend
    assert "cluster_legend" in source and 'label=Conv2d fillcolor="#8dd3c7"' in source
    assert ('tooltip="layer1/conv: Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), '
            'padding=(1, 1), bias=False)"') in source
    assert 'tooltip="logits: Mul()"' in source


def edges(dot):
    """(input path, node path) of every edge; node ids are mapped back through tooltips."""
    path_of = dict(re.findall(r'^\s*(n\d+) \[.*tooltip="([^:"]+):', dot.source, re.M))
    return {(path_of[a], path_of[b])
            for a, b in re.findall(r"^\s*(n\d+) -> (n\d+)", dot.source, re.M)}


def test_identity_nodes_are_hidden_unless_asked():
    hidden, shown = netdsl.draw(NET), netdsl.draw(NET, show_identity=True)
    assert "Identity" not in hidden.source and "Identity" in shown.source
    # Hidden, the identity's readers take their edge from the identity's input.
    assert ("layer1/pool", "layer1/residual/add") in edges(hidden)
    assert ("layer1/pool", "layer1/residual/res1/conv") in edges(hidden)
    assert ("layer1/residual/in", "layer1/residual/add") in edges(shown)


HOSTILE = 'x"];\n evil [label="pwned'


def hostile_graph():
    conv = netdsl.parse("c: conv(4)")["c"]
    return {"input": (None, []), HOSTILE: {"a\\l": conv}}


def test_names_cannot_inject_dot():
    source = netdsl.draw(hostile_graph()).source
    assert 'label="x\\"];' in source  # the quote is escaped: it stays inside the label
    assert 'label="a\\\\l\\nConv2d"' in source  # a backslash is text, not a DOT escape


def test_hostile_names_render_as_text():
    need_dot()
    canon = subprocess.run(["dot", "-Tcanon"], input=netdsl.draw(hostile_graph()).source,
                           capture_output=True, text=True, check=True).stdout
    # Node statements in canonical DOT are "<tabs>id<tab>[": input, the conv, one legend entry
    # per kind, and no node called evil (that text sits inside a quoted label).
    assert set(re.findall(r"^\t+(\w+)\t\[", canon, re.M)) == {"n0", "n1", "legend0", "legend1"}
    assert "pwned" in canon


def test_dot_files_need_no_graphviz_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    out = write_drawing(netdsl.draw(NET), tmp_path / "net.dot")
    assert out.read_text().startswith("digraph network {")
    with pytest.raises(NetdslError, match="apt-get install graphviz"):
        write_drawing(netdsl.draw(NET), tmp_path / "net.svg")
    assert not (tmp_path / "net.svg").exists()


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"),
                                           (".pdf", b"%PDF")])
def test_renders_svg_png_pdf(tmp_path, suffix, magic):
    need_dot()
    out = write_drawing(netdsl.draw("models/resnet9.net"), tmp_path / f"net{suffix}")
    assert out.read_bytes().startswith(magic)
    assert not list(tmp_path.glob("*.part"))


def test_unknown_format_is_a_clear_error(tmp_path):
    with pytest.raises(NetdslError, match=r"suffix must be one of \.svg, \.png, \.pdf, \.dot"):
        write_drawing(netdsl.draw(NET), tmp_path / "net.jpeg")


def test_dot_source_is_valid_for_graphviz():
    need_dot()
    run = subprocess.run(["dot", "-Tcanon"], input=netdsl.draw("models/branches.net").source,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
