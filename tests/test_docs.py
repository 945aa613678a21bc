"""The README and docs/: every link leads somewhere, every example runs as written, and the
README stays short enough to read in five minutes."""
import contextlib
import io
import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, need_dot

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens."""
    out = set()
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_link_leads_to_a_file_and_heading_that_exist(doc):
    links = LINK.findall(doc.read_text())
    for target in links:
        if re.match(r"[a-z]+:", target):  # a web address: not checked offline
            continue
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.exists(), f"{doc.name}: {target}"
        if anchor:
            assert anchor in anchors(path), f"{doc.name}: {target}"


def test_the_readme_links_every_doc_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for doc in DOCS[1:]:
        assert f"](docs/{doc.name})" in readme, doc.name


# ---- the examples ----------------------------------------------------------------------------
#
# Every code block (indented or fenced) is an example of one kind, told by its first line: a
# shell session (`netdsl ...` lines, or `$ netdsl ...` followed by what it prints), Python
# (`import ...`), an editor's configuration or a printout (OTHER), or else DSL text. An inline
# `netdsl ...` span is a command line too when it names a file and works offline; any other
# span, and a synopsis (`netdsl show FILE | -e TEXT [--set ...]`), names a command and flags,
# which must exist.

OTHER = ("vim.filetype.add(",  # Neovim's Lua configuration
         "epoch")  # a run's printed table
ELSEWHERE = ("make", "python")  # installing, the suite, benchmarks, onnxruntime: not netdsl's
OFFLINE = {"check", "show", "draw", "space", "fmt", "diff", "export"}  # run, output compared
DATA = {"run", "search", "score", "supernet", "trial"}  # run up to loading the data
REFUSED = {"check /dev/zero"}  # errors the docs show as such
NO_DATA = "the example stops here: the data would load now"
SUBSTITUTION = re.compile(r'"?\$\((netdsl [^)]*)\)"?')  # `$(netdsl best)`, quoted or not
PLACEHOLDERS = {"nested_dict_or_graph_or_text": "net.nested",  # From Python's "any of these"
                "graph_or_nested_dict_or_json": "net.graph"}
WRITES = ("-o", "--json", "--save-weights")  # a command's outputs


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int
    kind: str  # dsl, python, command, reference
    text: str
    output: str | None = None  # what the doc shows it printing ($ ... or `# ok: ...`)
    made_before: frozenset = frozenset()  # files the doc's earlier commands wrote

    def __str__(self) -> str:
        return f"{self.doc.name}:{self.line}"


def code_blocks(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each indented (four spaces, after a blank line) or fenced
    block."""
    blocks, lines, current, start, fenced = [], text.splitlines(), [], 0, False
    for number, line in enumerate(lines + [""], start=1):
        if line.lstrip().startswith("```"):
            if fenced:
                blocks.append((start, textwrap.dedent("\n".join(current))))
                current = []
            fenced, start = not fenced, number + 1
        elif fenced:
            current.append(line)
        elif line.startswith("    ") and (current or number == 1 or not lines[number - 2].strip()):
            start = start if current else number
            current.append(line[4:])
        elif current and not line.strip():
            current.append("")
        elif current:
            blocks.append((start, textwrap.dedent("\n".join(current)).rstrip("\n")))
            current = []
    return blocks


def shell_lines(block: str, start: int) -> list[tuple[int, str, str | None]]:
    """(line, command, what it prints) of each command of a shell block: continued lines
    (`\\`, an open quote) joined; a transcript's (`$ command`) output follows it."""
    if block.startswith("$ "):
        return [(start + block.count("\n", 0, match.start()), match.group(1),
                 match.group(2).rstrip("\n") + "\n") for match in re.finditer(
                     r"^\$ (.*)\n((?:(?!\$ ).*(?:\n|$))*)", block, flags=re.M)]
    commands, pending, first = [], "", start
    for number, line in enumerate(block.splitlines(), start=start):
        if line.startswith(" ") and not pending:  # a synopsis's flags, on the next line
            commands[-1] = (commands[-1][0], f"{commands[-1][1]} {line.strip()}", None)
            continue
        first = number if not pending else first
        pending += line + "\n"
        try:
            shlex.split(pending)
        except ValueError:  # a quote still open
            continue
        if not line.endswith("\\"):
            ok = re.search(r"\s#\s*(ok: .*)$", pending.strip())  # what `check` prints
            commands.append((first, pending.replace("\\\n", " ").strip(),
                             ok.group(1) + "\n" if ok else None))
            pending = ""
    return [command for command in commands if shlex.split(command[1], comments=True)]


def examples_of(doc: Path) -> list[Example]:
    text, found, made = doc.read_text(), [], set()
    for start, block in code_blocks(text):
        if block.lstrip().startswith(OTHER):
            continue
        if block.startswith(("$ ", "netdsl ", *(f"{program} " for program in ELSEWHERE))):
            for line, command, output in shell_lines(block, start):
                found.append(Example(doc, line, "command", command, output, frozenset(made)))
                words = shlex.split(SUBSTITUTION.sub("", command), comments=True)
                made |= {word for flag, word in zip(words, words[1:]) if flag in WRITES}
        elif block.startswith(("import ", "from ")):
            found.append(Example(doc, start, "python", block))
        else:
            found.append(Example(doc, start, "dsl", block))
    for match in re.finditer(r"`(netdsl [^`]+)`", text):
        command = " ".join(match.group(1).split())
        words = command.split()
        names_a_file = any(word.endswith(".net") or word in ("-e", "/dev/zero") for word in words)
        kind = "command" if words[1] in OFFLINE and names_a_file else "reference"
        found.append(Example(doc, text.count("\n", 0, match.start()) + 1, kind, command))
    return found


EXAMPLES = [example for doc in DOCS for example in examples_of(doc)]


def synopsis(words: list[str]) -> bool:
    """Whether a command line is a synopsis: FILE, TEXT, [--flag ...], a | b, FILE..."""
    return any(word == "|" or word.startswith("[") or word.endswith("...")
               or re.fullmatch(r"[A-Z]{2,}", word) for word in words)


def netdsl(*argv: str) -> tuple[int, str]:
    """`netdsl ARGV` in this process: its exit status and all it printed."""
    from netdsl.cli import main

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            status = main(list(argv))
        except SystemExit as e:  # argparse: --help, or flags it refuses
            status = e.code
    return status, printed.getvalue()


def parsed(argv: list[str]):
    from netdsl.cli import build_parser

    return build_parser().parse_args(argv)


def bind(argv: list[str]) -> None:
    """The network a command line names, bound as it says (`--set`, `--nb201`)."""
    from netdsl.commands.flags import bindings, family_of

    args = parsed(argv)
    family_of(args).bind(bindings(args))


def run_command(example: Example) -> None:
    """A command line: another program's is not netdsl's to run. One that works offline runs
    and prints what the doc shows. One that trains runs up to loading the data (every flag
    and the network checked before then) and its network binds; one that reads what a search
    or an earlier training made (`$(netdsl best)`, `--supernet super.pt`) has its flags
    parsed and its network bound where it names one."""
    inner = SUBSTITUTION.findall(example.text)
    # `-e "$(netdsl best)"` is a text, here a stand-in; `$(netdsl best --flags)`, left out.
    words = shlex.split(SUBSTITUTION.sub(
        lambda m: '"best text"' if m.group().startswith('"') else "", example.text), comments=True)
    if words[0] in ELSEWHERE:
        return
    assert words[0] == "netdsl", example.text
    argv = words[1:]
    if synopsis(argv):
        return check_reference(example)
    for command in inner:
        parsed(shlex.split(command)[1:])
    if "--help" in argv or argv[0] in OFFLINE:
        if argv[0] == "draw" and not argv[-1].endswith(".dot"):
            need_dot()
        status, printed = netdsl(*argv)
        refused = " ".join(argv) in REFUSED or (example.output or "").startswith("netdsl: error")
        assert status == (2 if refused else 0), printed
        assert example.output is None or printed == example.output
    elif argv[0] in DATA and not inner:
        if not example.made_before & set(argv):
            status, printed = netdsl(*argv)
            assert (status, printed.splitlines()[-1]) == (2, f"netdsl: error: {NO_DATA}"), \
                printed
        bind(argv)
    else:  # the views of a search (trials, best, plot), the language server, `$(...)`
        parsed(argv)


def check_reference(example: Example) -> None:
    """`netdsl COMMAND --flag ...` named in the text: the command and every flag exist, the
    commands in `$(...)` too."""
    for inner in SUBSTITUTION.findall(example.text):
        check_reference(Example(example.doc, example.line, "reference", inner))
    words = shlex.split(SUBSTITUTION.sub("", example.text), comments=True)
    command = [] if words[1].startswith("-") else words[1:2]  # `netdsl --help`
    status, usage = netdsl(*command, "--help")
    assert status == 0, usage
    for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words[1 + len(command):])):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}\b", usage), flag


def run_python(example: Example) -> None:
    """Python: run, the placeholders of `From Python` standing for one of their kinds; one
    that loads a dataset runs up to its loading."""
    from netdsl.errors import NetdslError

    code = example.text
    for placeholder, value in PLACEHOLDERS.items():
        code = code.replace(placeholder, value)
    try:
        exec(compile(code, str(example), "exec"), {})
    except NetdslError as e:
        assert str(e) == NO_DATA


def check_dsl(example: Example, folder: Path) -> None:
    """DSL text: `netdsl check` passes it, every option of every choice included."""
    (folder / "example.net").write_text(example.text + "\n")
    status, printed = netdsl("check", "example.net")
    assert status == 0, printed


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder like a clone's, where the examples run: `models/` there; loading a dataset
    stops an example (CIFAR cannot be downloaded, nor trained on in a test's time)."""
    import netdsl_runtime as runtime

    def no_data(*args, **kwargs):
        raise runtime.DataError(NO_DATA)
    monkeypatch.setattr(runtime, "load_images", no_data)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NETDSL_DATA", str(tmp_path))
    (tmp_path / "models").symlink_to(ROOT / "models")
    return tmp_path


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_every_example_runs_as_written(example, workdir):
    for block in EXAMPLES:  # the doc's DSL files that say their name (`# first.net: ...`)
        named = re.match(r"# (\w+\.net):", block.text)
        if block.doc == example.doc and block.kind == "dsl" and named:
            (workdir / named.group(1)).write_text(block.text + "\n")
    if example.kind == "dsl":
        check_dsl(example, workdir)
    elif example.kind == "python":
        run_python(example)
    elif example.kind == "command":
        run_command(example)
    else:
        check_reference(example)
