"""The netdsl command, run as a user runs it."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT, need_dot, netdsl_cli


def netdsl(*args, cwd=ROOT, process=False):
    """`netdsl ARGS` in the checkout, where the shipped models are."""
    return netdsl_cli(*args, cwd=cwd, process=process)


def test_show_ops_prints_the_seed_listing(seed_operations):
    run = netdsl("show", "models/resnet9_cifar100.net", "--format", "ops")
    assert run.returncode == 0
    assert [line.strip(" ,[]") for line in run.stdout.splitlines()] == seed_operations


def test_show_json_and_set():
    run = netdsl("show", "models/resnet9.net", "--format", "json", "--set", "layer1=64",
                 "--set", "classes=100")
    nodes = {n["name"]: n for n in json.loads(run.stdout)}
    assert nodes["layer1/conv"]["args"]["out_channels"] == 64
    assert nodes["linear"]["args"]["out_features"] == 100


def test_show_summary_totals():
    run = netdsl("show", "-e", "prep(64) -> layer1(128, pool, res) -> layer2(256, pool) -> "
                 "layer3(512, pool, res) -> head(10, w=0.125)")
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["node", "op", "output", "weights", "FLOPs"]
    assert lines[-2].split()[:2] == ["total", "6,573,120"]
    assert "layer1 (total)" in run.stdout


def test_check_exit_codes():
    """The exit status of the process itself, through `python -m netdsl`: what a script's
    `netdsl check ... && ...` sees."""
    ok = netdsl("check", "models/resnet9.net", process=True)
    assert ok.returncode == 0 and "6,573,120 weights" in ok.stdout
    bad = netdsl("check", "-e", "prep(64) -> layer1(0)", process=True)
    assert bad.returncode == 2


@pytest.mark.parametrize("args, message", [
    (["show", "-e", "prep(64) ->\nlayer1(128, pool"], "<-e>:2:17: "),
    (["show", "-e", "prep(64) -> x: add <- nowhere, prep/relu"], "'x' uses 'nowhere'"),
    (["show", "models/resnet9.net", "--set", "layers=3"], "unknown parameter 'layers'"),
    (["show", "models/resnet9.net", "--set", "layer1=wide"],
     "parameter 'layer1' takes a number, got 'wide'"),
    (["show", "models/resnet9.net", "--set", "layer1=0"], "at least 1"),
    (["show", "no/such.net"], "cannot read no/such.net: No such file or directory"),
    (["show", "models/resnet9.net", "--format", "xml"], "invalid choice"),
    (["draw", "models/resnet9.net", "-o", "net.gif"], "suffix must be one of"),
    (["show"], "one of the arguments file -e/--expr is required"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, tmp_path):
    run = netdsl(*args)
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_syntax_error_shows_the_line_and_a_caret():
    run = netdsl("check", "-e", "prep(64) -> layer1(128,, pool)")
    lines = run.stderr.splitlines()
    assert lines[1:] == ["    prep(64) -> layer1(128,, pool)",
                         "                           ^"]
    assert run.stderr.startswith("netdsl: error: <-e>:1:24: unexpected ','")


def test_draw_writes_dot_and_svg(tmp_path):
    run = netdsl("draw", str(ROOT / "models/resnet9.net"), "-o", str(tmp_path / "r.dot"))
    assert run.returncode == 0 and (tmp_path / "r.dot").read_text().startswith("digraph")
    need_dot()
    run = netdsl("draw", str(ROOT / "models/resnet9.net"), cwd=tmp_path)
    assert run.returncode == 0 and (tmp_path / "resnet9.svg").read_bytes().startswith(b"<?xml")


def test_help_explains_and_import_stays_light():
    run = netdsl("--help")
    assert run.returncode == 0 and "show" in run.stdout and "draw" in run.stdout
    assert "--set NAME=VALUE" in netdsl("show", "--help").stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, netdsl.cli; "
                            "print('torch' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.strip() == "False"


def test_an_excerpt_shows_the_line_an_editor_shows(tmp_path):
    """A line ends at \\n, \\r\\n or \\r, as in an editor: a comment holding U+2028 or a form
    feed (where str.splitlines would break) is one line, in the location and the excerpt."""
    text = "param width = 16\n# pasted\u2028comment\x0c\nstem: conv(wdth)\nhead(10)\n"
    (tmp_path / "net.net").write_text(text, encoding="utf-8")
    run = netdsl("check", "net.net", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.split("\n")[:3] == [
        "netdsl: error: net.net:3:12: unknown name 'wdth': not a parameter of this network, "
        "nor a switch of conv (bias, dirac)", "    stem: conv(wdth)", "               ^"]


def test_check_notes_a_stage_named_like_a_block():
    """`hed(10)` binds (a conv stage named hed), so check passes, with a note; the shipped
    models' stage names (prep, layer1, ...) get none."""
    run = netdsl("check", "-e", "stem: conv(16)\nhed(10)")
    assert run.returncode == 0 and run.stdout.startswith("ok: <-e>: ")
    assert run.stderr == "netdsl: note: <-e>:2:1: read as a stage named hed; did you mean head?\n"
    for model in sorted((ROOT / "models").glob("*.net")):
        run = netdsl("check", str(model))
        assert run.returncode == 0 and run.stderr == "", model


def test_a_bundled_model_is_reached_by_name_and_a_file_here_wins(tmp_path):
    bundled = netdsl_cli("check", "resnet9", cwd=tmp_path)
    assert bundled.returncode == 0 and "6,573,120 weights" in bundled.stdout, bundled.stderr
    assert "resnet9: the bundled model" in bundled.stderr
    as_path = netdsl_cli("show", "models/nb201.net", "--format", "nb201", cwd=tmp_path)
    assert as_path.returncode == 0 and as_path.stdout.startswith("|"), as_path.stderr
    (tmp_path / "resnet9.net").write_text("prep(8) -> head(10)\n")
    here = netdsl_cli("check", "resnet9", cwd=tmp_path)
    assert here.returncode == 0 and "312 weights" in here.stdout, here.stderr
    assert "the file resnet9.net here, not the bundled model" in here.stderr
    unknown = netdsl_cli("check", "resnet", cwd=tmp_path)
    assert unknown.returncode == 2 and "no bundled model of that name" in unknown.stderr
    assert "resnet9_small" in unknown.stderr  # the names there are


def test_models_lists_every_bundled_model(tmp_path):
    listed = netdsl_cli("models", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert names[:-1] == sorted(path.stem for path in (ROOT / "models").glob("*.net"))
    assert "David Page's DAWNBench ResNet-9" in listed.stdout
