"""The drawing: what it shows, how it is written, and that names cannot break it."""
import re
import subprocess

import graphviz
import pytest

import netdsl
from conftest import netdsl_cli, need_dot
from netdsl import NetdslError
from netdsl.module.draw import write_drawing

NET = "prep(8) -> layer1(16, pool, res) -> head(10)"


def test_drawing_shows_nodes_clusters_legend_and_tooltips():
    dot = netdsl.draw(NET)
    assert isinstance(dot, graphviz.Digraph)
    source = dot.source
    assert "label=layer1" in source and "label=residual" in source  # one cluster per prefix
    assert source.count("subgraph cluster_") == 5  # prep, layer1, residual, res1, res2
    assert 'label="conv\\nConv2d" fillcolor="#8dd3c7"' in source
    # the legend: one row, one cell per op type present, none for those absent
    legend = re.search(r"network_legend \[.*<tr>(.*)</tr>", source).group(1)
    assert re.findall(r">(\w+)</td>", legend) == ["input", "Conv2d", "BatchNorm", "ReLU",
                                                   "MaxPool2d", "Add", "Flatten", "Linear",
                                                   "Mul"]
    assert ('tooltip="layer1/conv: Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), '
            'padding=(1, 1), bias=False)"') in source
    assert 'tooltip="logits: Mul()"' in source


def edges(dot):
    """(input path, node path) of every edge; node ids are mapped back through tooltips."""
    path_of = dict(re.findall(r'^\s*(network_\d+) \[.*tooltip="([^:"]+):', dot.source, re.M))
    return {(path_of[a], path_of[b])
            for a, b in re.findall(r"^\s*(network_\d+) -> (network_\d+)", dot.source, re.M)}


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
    # Node statements in canonical DOT are "<tabs>id<tab>[": input, the conv, the legend, and
    # no node called evil (that text sits inside a quoted label).
    assert set(re.findall(r"^\t+(\w+)\t\[", canon, re.M)) == {"network_0", "network_1",
                                                            "network_legend"}
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


def test_shapes_label_the_edges_with_the_tensors_they_carry():
    bound = netdsl.load(NET).bind()
    source = bound.draw(shapes=True).source
    assert re.search(r'-> network_\d+ \[label=" 16x16x16"\]', source)  # layer1/pool's output
    assert 'label=" 10"' in source  # the logits
    assert "label=\" " not in bound.draw().source


def test_depth_collapses_each_prefix_into_a_box_with_its_costs():
    bound = netdsl.load("models/resnet9.net").bind()
    source = bound.draw(depth=1).source
    layer1 = sum(p for path, (p, _) in bound.costs.items() if path.startswith("layer1/"))
    assert f"layer1\\n{layer1:,} weights" in source and "subgraph cluster_" not in source
    assert "residual" not in source  # inside layer1's box
    assert edges_by_label(source) >= {("prep", "layer1"), ("layer1", "layer2")}
    two = bound.draw(depth=2).source
    assert "label=residual" in two.replace('"', "") and "res1" not in two
    with pytest.raises(NetdslError, match="depth must be at least 1"):
        bound.draw(depth=0)


def edges_by_label(source):
    """Edges named by their nodes' first label line."""
    name = dict(re.findall(r'^\s*(network_\d+) \[label="?([^"\\ ]+)', source, re.M))
    return {(name[a], name[b]) for a, b in re.findall(r"(network_\d+) -> (network_\d+)", source)}


def test_rankdir_and_jupyter():
    bound = netdsl.load(NET).bind()
    assert "rankdir=TB" in bound.draw().source and "rankdir=LR" in bound.draw(rankdir="LR").source
    need_dot()
    assert bound._repr_svg_().lstrip().startswith("<?xml")
    assert netdsl.load(NET)._repr_svg_().lstrip().startswith("<?xml")


def test_diff_names_what_was_added_removed_and_changed(tmp_path):
    (tmp_path / "a.net").write_text("prep(8) -> layer1(16, pool, res) -> head(10)\n")
    (tmp_path / "b.net").write_text("prep(8) -> layer1(32, pool) -> layer2(16) -> head(10)\n")
    done = netdsl_cli("diff", "a.net", "b.net", "-o", "diff.dot", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "- layer1/residual/res1/conv: Conv2d(16, 16, kernel_size=(3, 3), stride=(1, 1), " \
           "padding=(1, 1), bias=False) <- layer1/residual/in" in lines
    assert any(line.startswith("+ layer2/conv: Conv2d(32, 16,") for line in lines)
    assert any(line.startswith("~ layer1/conv: Conv2d(8, 16,") and "-> Conv2d(8, 32," in line
               for line in lines)
    assert lines[-2:] == ["8 removed, 3 changed, 3 added", "wrote diff.dot"]
    drawing = (tmp_path / "diff.dot").read_text()
    # outlined: each removed or added node once, each changed node on both sides; the removed
    # Identity is not drawn
    assert drawing.count("penwidth=3") == sum(
        1 if line[0] in "+-" else 2 for line in lines
        if line[:1] in "+-~" and "Identity()" not in line)
    same = netdsl_cli("diff", "a.net", "a.net", cwd=tmp_path)
    assert same.returncode == 0 and same.stdout.startswith("the same network")


def test_diff_of_a_file_that_does_not_parse_is_a_located_error(tmp_path):
    (tmp_path / "a.net").write_text("prep(8) -> head(10)\n")
    (tmp_path / "b.net").write_text("prep(8) ->\n")
    done = netdsl_cli("diff", "a.net", "b.net", cwd=tmp_path)
    assert done.returncode == 2 and "b.net:1:" in done.stderr and "Traceback" not in done.stderr
