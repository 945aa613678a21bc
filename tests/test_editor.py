"""The editor glue in grammars/vscode: the TextMate grammar colours the language's tokens, and
the VS Code manifest names what exists and starts `netdsl lsp`."""
import json
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from netdsl.language.syntax import keywords

EXTENSION = ROOT / "grammars" / "vscode"
MANIFEST = json.loads((EXTENSION / "package.json").read_text())
[GRAMMAR_ENTRY] = MANIFEST["contributes"]["grammars"]
GRAMMAR = json.loads((EXTENSION / GRAMMAR_ENTRY["path"]).read_text())


def highlighted(line: str) -> list[tuple[str, str]]:
    """(text, scope) of each coloured token of `line`, found as a TextMate editor does with
    one-line patterns: from each place, the pattern whose match starts first (the earlier
    pattern on a tie) colours its match, or its captures."""
    patterns = [(re.compile(p["match"]), p) for p in GRAMMAR["patterns"]]
    out, at = [], 0
    while at < len(line):
        found = [(m.start(), i, m, p) for i, (regex, p) in enumerate(patterns)
                 if (m := regex.search(line, at)) and m.end() > m.start()]
        if not found:
            break
        _, _, match, pattern = min(found, key=lambda f: (f[0], f[1]))
        if "captures" in pattern:
            out += [(match.group(int(group)), scope["name"])
                    for group, scope in pattern["captures"].items() if match.group(int(group))]
        else:
            out.append((match.group(), pattern["name"]))
        at = match.end()
    return out


def scopes(line: str) -> dict[str, str]:
    return {text: scope.split(".")[0] + "." + scope.split(".")[1]
            for text, scope in highlighted(line)}


def test_each_kind_of_token_has_its_colour():
    assert scopes("param width = choice(32, 64)  # channels") == {
        "param": "storage.type", "width": "variable.other", "choice": "keyword.other",
        "32": "constant.numeric", "64": "constant.numeric", "# channels": "comment.line"}
    assert scopes("block twin(c, wide=false) {") == {
        "block": "storage.type", "twin": "entity.name", "wide": "variable.parameter",
        "=": "keyword.operator", "false": "constant.language"}
    assert scopes("stem: conv(2*c, ks=3) -> bn <- ../prep/relu, a  # from prep") == {
        "stem": "entity.name", ":": "punctuation.separator", "conv": "entity.name",
        "2": "constant.numeric", "*": "keyword.operator", "ks": "variable.parameter",
        "=": "keyword.operator", "3": "constant.numeric", "->": "keyword.operator",
        "bn": "entity.name", "<-": "keyword.operator", "../prep/relu": "string.unquoted",
        "# from prep": "comment.line"}
    assert scopes("extra: conv_bn(c) * extra if not res") == {
        "extra": "entity.name", ":": "punctuation.separator", "conv_bn": "entity.name",
        "*": "keyword.operator", "if": "keyword.control", "not": "keyword.control"}


@pytest.mark.parametrize("line, calls", [
    ("stem: bn -> relu", ["bn", "relu"]),       # after a label, after an arrow
    ("    relu -> bn", ["relu", "bn"]),         # first on its line
    ("block b(c) { relu }", ["relu"]),          # first in a block's body
    ("sum: add <- a, b", ["add"]),
    ("    -> b: conv(d)", ["conv"]),            # a label after an arrow is no call
    ("    width, ks=3)", []),                   # arguments on a wrapped line are no calls
    ("    if not wide", []),
])
def test_a_call_without_parentheses_is_coloured_as_a_call(line, calls):
    assert [text for text, scope in highlighted(line)
            if scope.startswith("entity.name.function.call")] == calls


def test_every_keyword_of_the_language_is_coloured():
    for word in sorted(keywords()):
        [(text, scope)] = highlighted(f"{word} x" if word in ("param", "block") else word)[:1]
        assert text == word and scope.split(".")[0] in ("storage", "keyword", "constant"), word


def test_the_vscode_manifest_starts_the_server_on_net_files():
    [language] = MANIFEST["contributes"]["languages"]
    assert language["extensions"] == [".net"] and language["id"] == GRAMMAR_ENTRY["language"]
    assert GRAMMAR_ENTRY["scopeName"] == GRAMMAR["scopeName"]
    assert MANIFEST["activationEvents"] == [f"onLanguage:{language['id']}"]
    for named in (MANIFEST["main"], language["configuration"], GRAMMAR_ENTRY["path"]):
        assert (EXTENSION / named).is_file(), named
    command = MANIFEST["contributes"]["configuration"]["properties"]["netdsl.command"]
    assert command["default"] == ["netdsl", "lsp"]
    json.loads((EXTENSION / language["configuration"]).read_text())


def test_the_extension_packages_with_its_repository_license_and_ignore_list():
    """What `vsce package` asks of an extension: a repository, a LICENSE (the manifest's), and
    a .vscodeignore that keeps out what the extension never loads, never what it does."""
    assert MANIFEST["repository"]["directory"] == "grammars/vscode"
    assert (EXTENSION / "LICENSE").read_text().startswith(f"{MANIFEST['license']} License")
    ignored = [line for line in (EXTENSION / ".vscodeignore").read_text().splitlines()
               if line and not line.startswith("#")]
    assert "*.vsix" in ignored and "node_modules/**/browser/**" in ignored
    assert not any(line.rstrip("/*") in ("node_modules", MANIFEST["main"].lstrip("./"))
                   for line in ignored)


def test_a_node_path_is_one_word():
    """The language configuration's wordPattern takes a path with its `/`s whole (completion
    filters, and double-click selects, `layer1/residual/res2`), and names and numbers alone."""
    configuration = json.loads((EXTENSION / MANIFEST["contributes"]["languages"][0][
        "configuration"]).read_text())
    words = re.compile(configuration["wordPattern"])
    assert [m.group() for m in words.finditer(
        "x: add <- layer1/residual/res2, ../prep/relu -> head(10, w=0.125)")] == [
        "x", "add", "layer1/residual/res2", "../prep/relu", "head", "10", "w", "0.125"]


@pytest.mark.skipif(shutil.which("node") is None, reason="node checks the extension's script")
def test_the_extension_script_is_valid_javascript():
    run = subprocess.run(["node", "--check", str(EXTENSION / MANIFEST["main"])],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
