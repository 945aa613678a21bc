"""Nothing a user owns is overwritten or damaged: an output is never a file the command reads
or another output (through symbolic and hard links too), and `fmt` rewrites a file in place,
through its links, keeping its mode, or refuses to."""
import os
import sqlite3
import stat

import pytest

from conftest import clear_error, netdsl_cli
from netdsl.cli import build_parser

FAMILY = "param w = 4\na: conv(w) -> head(10)\n"
MESSY = "a:   conv(4)->head(10)\n"
TIDY = "a: conv(4) -> head(10)\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "fam.net").write_text(FAMILY)
    return tmp_path


# ---- an output is never an input, the storage or another output --------------------------------

@pytest.mark.parametrize("flags", [["--json", "fam.net"], ["--save-weights", "fam.net"],
                                   ["--json", "link.net"], ["--save-weights", "hard.net"],
                                   ["--json", "X", "--save-weights", "X"],
                                   ["--json", "run.toml"]])
def test_run_refuses_outputs_that_are_its_inputs_or_each_other(folder, flags):
    os.symlink("fam.net", folder / "link.net")
    os.link(folder / "fam.net", folder / "hard.net")
    (folder / "run.toml").write_text("epochs = 1\n")
    # --dataset names nothing: the clash is found before any data is looked for.
    run = netdsl_cli("run", "fam.net", *flags, "--recipe", "run.toml", "--dataset", "nowhere",
                     cwd=folder)
    clear_error(run, "give another file")
    assert (folder / "fam.net").read_text() == FAMILY
    assert (folder / "run.toml").read_text() == "epochs = 1\n"
    assert not (folder / "X").exists()


def test_trials_refuses_to_write_its_csv_over_the_storage(folder):
    database = folder / "h.db"
    sqlite3.connect(database).execute("create table kept (x)").connection.commit()
    before = database.read_bytes()
    run = netdsl_cli("trials", "--storage", "sqlite:///h.db", "--name", "h2", "--csv", "h.db",
                     cwd=folder)
    clear_error(run, "--csv h.db is the storage")
    assert database.read_bytes() == before


def test_search_refuses_a_storage_that_is_the_network_or_its_space(folder):
    (folder / "space.json").write_text('{"w": {"_type": "choice", "_value": [4, 8]}}')
    for storage in ("fam.net", "space.json"):
        before = (folder / storage).read_bytes()
        run = netdsl_cli("search", "fam.net", "--space", "space.json", "--trials", "1",
                         "--storage", f"sqlite:///{storage}", "--dataset", "nowhere", cwd=folder)
        clear_error(run, f"--storage {storage} is")
        assert (folder / storage).read_bytes() == before


@pytest.mark.parametrize("command", [
    ["draw", "fam.net", "-o", "hard.dot"],
    ["export", "fam.net", "-o", "fam.net.ts.pt", "--weights", "fam.net.ts.pt"],
    ["diff", "fam.net", "other.net", "-o", "link.dot"],
    ["plot", "run.json", "-o", "run.json"],
])
def test_draw_export_diff_and_plot_refuse_to_write_over_what_they_read(folder, command):
    os.link(folder / "fam.net", folder / "hard.dot")
    (folder / "other.net").write_text(FAMILY)
    os.symlink("other.net", folder / "link.dot")
    (folder / "fam.net.ts.pt").write_bytes(b"weights")
    (folder / "run.json").write_text('{"runs": []}')
    kept = {path.name: path.read_bytes() for path in folder.iterdir()}
    clear_error(netdsl_cli(*command, cwd=folder), "give another file")
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == kept


def writing_flags() -> list[tuple[str, str]]:
    """Every (command, flag) whose value names a file the command writes, read off the parser:
    a flag added later is tested below without a line more."""
    commands = build_parser()._subparsers._group_actions[0].choices
    return [(name, action.option_strings[-1]) for name, parser in commands.items()
            for action in parser._actions if action.nargs != 0
            and set(action.option_strings) & {"-o", "--json", "--csv", "--save-weights"}]


# What a command reads, where it is not one network file; the first is written over.
READS = {"diff": ["fam.net", "other.net"], "plot": ["run.json"], "trials": ["netdsl.db"]}


@pytest.mark.parametrize("command, flag", writing_flags())
def test_no_file_flag_of_any_command_writes_over_what_it_reads(folder, command, flag):
    (folder / "other.net").write_text(FAMILY)
    (folder / "run.json").write_text('{"runs": []}')
    (folder / "netdsl.db").write_bytes(b"")
    read = READS.get(command, ["fam.net"])
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    required = [part for action in parser._actions  # --dataset, --trials, -o: a placeholder
                if action.required and action.option_strings and flag not in action.option_strings
                for part in (action.option_strings[-1], "1")]
    positional = [] if command == "trials" else read
    kept = {path.name: path.read_bytes() for path in folder.iterdir()}
    clear_error(netdsl_cli(command, *positional, *required, flag, read[0], cwd=folder),
                read[0], "give another file")
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == kept


def test_a_one_byte_file_is_not_taken_for_a_new_database(folder):
    (folder / "h.db").write_bytes(b"x")
    clear_error(netdsl_cli("trials", "--storage", "sqlite:///h.db", cwd=folder),
            "not an SQLite database")
    assert (folder / "h.db").read_bytes() == b"x"


# ---- fmt: in place, through links, or not at all -----------------------------------------------

def test_fmt_formats_the_target_of_a_symbolic_link_and_every_hard_link_sees_it(tmp_path):
    (tmp_path / "real.net").write_text(MESSY)
    os.symlink("real.net", tmp_path / "soft.net")
    os.link(tmp_path / "real.net", tmp_path / "hard.net")
    run = netdsl_cli("fmt", "soft.net", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "soft.net").is_symlink()
    for name in ("real.net", "soft.net", "hard.net"):
        assert (tmp_path / name).read_text() == TIDY


@pytest.mark.parametrize("mode", [0o755, 0o600, 0o640])
def test_fmt_keeps_the_files_mode(tmp_path, mode):
    path = tmp_path / "a.net"
    path.write_text(MESSY)
    path.chmod(mode)
    assert netdsl_cli("fmt", "a.net", cwd=tmp_path).returncode == 0
    assert path.read_text() == TIDY
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_fmt_refuses_a_read_only_file(tmp_path):
    path = tmp_path / "a.net"
    path.write_text(MESSY)
    path.chmod(0o444)
    clear_error(netdsl_cli("fmt", "a.net", cwd=tmp_path), "a.net: the file is read-only")
    assert path.read_text() == MESSY and stat.S_IMODE(path.stat().st_mode) == 0o444


def test_fmt_refuses_what_is_not_a_regular_file(tmp_path):
    """A device node made in the test's own folder (as root, fmt once replaced /dev/null)."""
    node = tmp_path / "null.net"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    clear_error(netdsl_cli("fmt", "null.net", cwd=tmp_path), "null.net: not a regular file")
    assert stat.S_ISCHR(node.lstat().st_mode)
    (tmp_path / "folder.net").mkdir()
    clear_error(netdsl_cli("fmt", "folder.net", cwd=tmp_path), "not a regular file")


def test_fmt_leaves_an_empty_file_empty_and_calls_it_formatted(tmp_path):
    (tmp_path / "empty.net").write_text("")
    check = netdsl_cli("fmt", "--check", "empty.net", cwd=tmp_path)
    assert check.returncode == 0 and "1 file already formatted" in check.stdout
    assert netdsl_cli("fmt", "empty.net", cwd=tmp_path).returncode == 0
    assert (tmp_path / "empty.net").read_bytes() == b""


def test_fmt_reads_past_a_byte_order_mark(tmp_path):
    (tmp_path / "bom.net").write_bytes(b"\xef\xbb\xbf" + MESSY.encode())
    assert netdsl_cli("check", "bom.net", cwd=tmp_path).returncode == 0
    assert netdsl_cli("fmt", "bom.net", cwd=tmp_path).returncode == 0
    assert (tmp_path / "bom.net").read_text() == TIDY


def test_fmt_formats_a_file_named_twice_once(tmp_path):
    (tmp_path / "a.net").write_text(MESSY)
    os.symlink("a.net", tmp_path / "b.net")
    run = netdsl_cli("fmt", "a.net", "b.net", cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.count("reformatted") == 1
    assert (tmp_path / "a.net").read_text() == TIDY
