"""`netdsl fmt`: one canonical layout, comments kept, the same network, and formatting twice
changes nothing."""
import re

import pytest
from hypothesis import given, settings

import netdsl
from conftest import MODELS, ROOT, netdsl_cli
from netdsl.language.printer import format_text
from netdsl.language.syntax import Source, parse_statements
from test_bind import generated_families

PRELUDE = ROOT / "grammars" / "prelude.net"


def fmt(text):
    return format_text(parse_statements(Source("<test>", text)), text)


def comments(text):
    return re.findall(r"#[^\n]*", text)


@pytest.mark.parametrize("path", [*MODELS, PRELUDE], ids=lambda p: p.name)
def test_every_model_formats_to_the_same_network_with_its_comments(path):
    text = path.read_text()
    formatted = fmt(text)
    assert fmt(formatted) == formatted
    assert [c.rstrip() for c in comments(text)] == comments(formatted)
    if path != PRELUDE:
        assert netdsl.load(formatted).bind().graph == netdsl.load(text).bind().graph


MESSY = """\
# a family
param   w=16   # channels

block  twin( c , k=3 ) {   # two convs
  a: conv(c,
          ks=k)  # wrapped
  b: conv(c) <- ../prev   # from outside

  # before the sum
  s: add <- a,b
}
prev: conv(w) -> t: twin(w)->head(10,w=0.5*2)
# the end
"""


def test_a_messy_file_formats_canonically_and_keeps_every_comment():
    formatted = fmt(MESSY)
    assert formatted == """\
# a family
param w = 16  # channels

block twin(c, k=3) {  # two convs
    a: conv(c, ks=k)  # wrapped
    b: conv(c) <- ../prev  # from outside

    # before the sum
    s: add <- a, b
}
prev: conv(w) -> t: twin(w) -> head(10, w=0.5 * 2)
# the end
"""
    assert fmt(formatted) == formatted
    assert netdsl.load(formatted).bind().graph == netdsl.load(MESSY).bind().graph


@settings(max_examples=60, deadline=None)
@given(generated_families())
def test_generated_families_format_to_the_same_network(generated):
    text, _ = generated
    formatted = fmt(text)
    assert fmt(formatted) == formatted
    assert netdsl.load(formatted).bind().graph == netdsl.load(text).bind().graph


def test_the_projects_own_files_are_formatted():
    for path in [*MODELS, PRELUDE]:
        assert fmt(path.read_text()) == path.read_text(), f"netdsl fmt {path}"


def test_the_cli_formats_checks_and_leaves_a_broken_file_untouched(tmp_path):
    (tmp_path / "messy.net").write_text(MESSY)
    (tmp_path / "broken.net").write_text("a(4) ->\n")
    check = netdsl_cli("fmt", "--check", "messy.net", cwd=tmp_path)
    assert check.returncode == 1 and "would reformat messy.net" in check.stdout
    assert (tmp_path / "messy.net").read_text() == MESSY
    broken = netdsl_cli("fmt", "messy.net", "broken.net", cwd=tmp_path)
    assert broken.returncode == 2 and "broken.net:1:" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert (tmp_path / "broken.net").read_text() == "a(4) ->\n"
    assert (tmp_path / "messy.net").read_text() == MESSY  # nothing written when one fails
    done = netdsl_cli("fmt", "messy.net", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "messy.net").read_text() == fmt(MESSY)
    again = netdsl_cli("fmt", "--check", "messy.net", cwd=tmp_path)
    assert again.returncode == 0 and "1 file already formatted" in again.stdout
