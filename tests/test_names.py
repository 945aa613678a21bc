"""What each written name refers to (`language.names`), and renaming by it (`netdsl lsp`)."""
import pytest

import netdsl
from conftest import ROOT
from netdsl.errors import NetdslError
from netdsl.language.names import Symbol, occurrences
from netdsl.editor import analyse, occurrence_at, references, rename_target, renamed, renamed_text

TWIN = """param c = 16
block twin(c, wide=false) {
    a: conv(c) -> b: conv(c)
}
x: twin(c, wide) -> y: add <- x/a, x/b
l: conv(c) * 3
z: add <- l_2, l
layer1(c, res) -> w: add <- layer1/residual/res2/relu, layer1
"""


def places(text: str, symbol: Symbol) -> list[tuple[int, int, bool]]:
    family = netdsl.Family(text)
    return [(o.line, o.column, o.declares) for o in occurrences(family.statements, family.blocks)
            if o.symbol == symbol]


def rename(text: str, line: int, character: int, new_name: str) -> str:
    """`text` with the name at 1-based `line`, 0-based `character` renamed, as the server
    would."""
    analysis = analyse(text, "<test>")
    target = rename_target(analysis, line - 1, character)
    return renamed_text(text, renamed(analysis, target, new_name), target.symbol.name, new_name)


def test_a_stage_its_parameter_and_switches_are_told_apart():
    text = (ROOT / "models" / "resnet9.net").read_text()
    # `prep(prep)`: the stage labelled prep, given the parameter prep
    assert places(text, Symbol("param", "prep")) == [(4, 7, True), (11, 6, False)]
    assert places(text, Symbol("label", "prep")) == [(11, 1, True)]
    assert places(text, Symbol("formal", "res", "stage")) == [(12, 27, False), (14, 27, False)]
    assert places(text, Symbol("formal", "w", "head")) == [(15, 20, False)]


def test_paths_name_labels_through_the_blocks_they_call():
    assert places(TWIN, Symbol("label", "a", "twin")) == [(3, 5, True), (5, 33, False)]
    assert places(TWIN, Symbol("label", "x")) == [(5, 1, True), (5, 31, False), (5, 36, False)]
    assert places(TWIN, Symbol("label", "l")) == [(6, 1, True), (7, 11, False), (7, 16, False)]
    # into the prelude: stage's residual, residual's res2, conv_bn's relu
    assert places(TWIN, Symbol("label", "res2", "residual")) == [(8, 45, False)]
    assert places(TWIN, Symbol("formal", "c", "twin")) == [(2, 12, True), (3, 13, False),
                                                            (3, 27, False)]
    assert places(TWIN, Symbol("param", "c")) == [(1, 7, True), (5, 9, False), (6, 9, False),
                                                   (8, 8, False)]


def test_renaming_rewrites_every_use_and_nothing_else():
    text = (ROOT / "models" / "resnet9.net").read_text()
    after = rename(text, 12, 14, "width1")  # the parameter given to layer1
    assert "param width1 = 128" in after and "-> layer1(width1, pool, res)" in after
    assert netdsl.Family(after).bind().graph.keys() == netdsl.Family(text).bind().graph.keys()

    after = rename(TWIN, 3, 4, "first")  # a label inside a block, and the path into it
    assert "first: conv(c) -> b: conv(c)" in after and "<- x/first, x/b" in after
    after = rename(TWIN, 2, 7, "pair")  # a block: its calls, and paths into it still resolve
    assert "block pair(c, wide=false)" in after and "x: pair(c, wide)" in after
    after = rename(TWIN, 6, 0, "m")  # a repeated label, and the names its repeats get
    assert "m: conv(c) * 3" in after and "z: add <- m_2, m" in after
    after = rename(TWIN, 8, 0, "stage1")  # a stage's name is its label
    assert "stage1(c, res) -> w: add <- stage1/residual/res2/relu, stage1" in after
    with pytest.raises(NetdslError, match="renaming 'layer1' to 'twin' would break"):
        rename(TWIN, 8, 0, "twin")  # the call would be the block's, not a stage
    after = rename(TWIN, 2, 15, "broad")  # a block parameter, given as a bare switch
    assert "block twin(c, broad=false)" in after and "x: twin(c, broad)" in after
    netdsl.Family(after).bind()


@pytest.mark.parametrize("line, character, new_name, why", [
    (3, 8, "convolution", "'conv' is a primitive"),
    (8, 13, "swim", "'res' is built into netdsl (grammars/prelude.net)"),
    (1, 7, "if", "'if' is not a name"),
    (1, 7, "2c", "'2c' is not a name"),
    (5, 20, "x", "would break the file: the name 'x' is already used here"),
    (1, 7, "wide", "would break the file: twin: argument 'wide' is given twice"),
    (4, 0, "c", "no parameter, block or label here"),
])
def test_a_rename_that_would_change_the_network_is_refused(line, character, new_name, why):
    with pytest.raises(NetdslError) as refused:
        rename(TWIN, line, character, new_name)
    assert why in refused.value.message


def test_a_rename_that_a_block_parameter_would_capture_is_refused():
    text = "param c = 8\nblock b(d) { conv(c) -> conv(d) }\nb(2)\n"
    with pytest.raises(NetdslError, match="'d' is taken"):
        rename(text, 1, 7, "d")  # conv(c) inside b would read b's own d
    assert rename(text, 1, 7, "e").startswith("param e = 8\n")


def test_names_of_a_text_that_does_not_bind_are_still_found():
    analysis = analyse("param c = 8\nconv(c) -> add <- nowhere\n", "<test>")
    assert analysis.errors and analysis.family is not None
    found = occurrence_at(analysis, 1, 5)
    assert [(o.line, o.column) for o in references(analysis, found.symbol)] == [(1, 7), (2, 6)]
    broken = analyse("param c = 8\nconv(c) -> bn(\n", "<test>")
    assert occurrence_at(broken, 0, 6) is None  # no parse, no names: nothing, no crash
