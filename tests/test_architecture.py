"""The claims docs/layout.md makes of the code, checked: imports flow one way down the pipeline
(lazy imports inside functions too), and no library function or file grows past what a reader
takes in at once."""
import ast
import importlib.util
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGES = {"netdsl": ROOT / "netdsl", "netdsl_runtime": ROOT / "runtime"}
LONGEST_FUNCTION, LONGEST_FILE = 80, 550  # lines


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            inner = parts[:-1] if parts[-1] == "__init__" else parts
            name = ".".join((package, *inner))
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules of ours that `name` imports anywhere in its text, functions' bodies too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else node.module
            submodules = [f"{base}.{alias.name}" for alias in node.names
                          if f"{base}.{alias.name}" in MODULES]
            # `from . import flags` takes a submodule; the package's __init__ is run first
            # whatever imports it, so it counts only for names that are its own
            targets = submodules if len(submodules) == len(node.names) else [base, *submodules]
        else:
            continue
        found.update(target for target in targets if target in MODULES)
    return found - {name}


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _reaches(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for imported in IMPORTS[todo.pop()]:
            if imported not in seen:
                seen.add(imported)
                todo.append(imported)
    return seen


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_no_module_imports_itself_round_a_cycle():
    """A package's __init__ that gathers its submodules is not a cycle with them: only modules
    that are not a package's __init__ count as where a cycle starts and ends."""
    plain = [name for name, path in MODULES.items() if path.name != "__init__.py"]
    cycles = sorted(name for name in plain
                    if name in {m for m in _reaches(name) if m in plain})
    assert cycles == []


@pytest.mark.parametrize("importer, imported", [
    ("netdsl.graph", "netdsl.language"),       # the graph is data, no parser
    ("netdsl_runtime", "netdsl"),              # the trainer trains any nn.Module
    ("netdsl.search", "netdsl.commands"),      # the library holds what Python can call
    ("netdsl.rank", "netdsl.commands"),
    ("netdsl.train", "netdsl.commands"),
    ("netdsl.module", "netdsl.train"),         # a graph becomes a module before it trains
    ("netdsl.bench", "netdsl.search"),         # the truth knows nothing of who looks it up
    ("netdsl.bench", "netdsl.rank"),
])
def test_imports_flow_one_way(importer, imported):
    wrong = sorted(f"{name} -> {target}" for name, targets in IMPORTS.items()
                   if _under(name, importer) for target in targets if _under(target, imported))
    assert wrong == []


def test_no_library_function_or_file_is_longer_than_a_reader_takes_in():
    functions, files = [], []
    for name, path in MODULES.items():
        text = path.read_text()
        if text.count("\n") > LONGEST_FILE:
            files.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    functions.append(f"{name}.{node.name}: {length} lines")
    assert (functions, files) == ([], [])
