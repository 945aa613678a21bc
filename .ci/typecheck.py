"""mypy over netdsl and netdsl_runtime, each module checked under the name it installs as.

pyproject's package-dir installs models/ and grammars/ as netdsl.models and netdsl.grammars, and
runtime/ as netdsl_runtime. mypy names a module by the folders it sits in, so run in the
checkout it finds none of those imports, and would check runtime/ as a package `runtime`. Here
the packages are laid out as installed, in a temporary folder of symbolic links to the
checkout's files (read from pyproject, as setuptools reads them); mypy runs there with
pyproject's [tool.mypy] and the checkout's cache, and each path it prints is turned back into
the checkout's. Options given go on to mypy (e.g. --strict); the exit code is mypy's.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: netdsl depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _installed() -> dict[str, str]:
    """Each top folder of the installed layout ('netdsl', 'netdsl/models', 'netdsl_runtime')
    -> its folder in the checkout."""
    renamed = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    return {"netdsl": "netdsl",
            **{package.replace(".", "/"): folder for package, folder in renamed.items()}}


def _lay_out(tree: Path, installed: dict[str, str]) -> None:
    """`installed` as links under `tree`. A folder that holds another of them (netdsl/ holds
    netdsl/models) is made for real, and linked entry by entry; any other is one link."""
    for place in sorted(installed, key=lambda p: p.count("/")):  # a folder before its inner
        target, source = tree / place, ROOT / installed[place]
        if not any(other.startswith(place + "/") for other in installed):
            target.symlink_to(source)
            continue
        target.mkdir(parents=True)
        for entry in source.iterdir():
            if entry.name != "__pycache__":
                (target / entry.name).symlink_to(entry)


def _in_checkout(line: str, installed: dict[str, str]) -> str:
    """`line` with the path it begins with, if any, as the checkout's."""
    for place in sorted(installed, key=len, reverse=True):  # netdsl/models/ before netdsl/
        if line.startswith(place + "/"):
            return installed[place] + line[len(place):]
    return line


def main() -> int:
    installed = _installed()
    with tempfile.TemporaryDirectory(prefix="netdsl-mypy-") as folder:
        tree = Path(folder)
        _lay_out(tree, installed)
        tops = sorted({place.partition("/")[0] for place in installed})  # netdsl, netdsl_runtime
        run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
                              "--cache-dir", str(ROOT / ".mypy_cache"), *sys.argv[1:], *tops],
                             cwd=tree, capture_output=True, text=True)
    for line in run.stdout.splitlines():
        print(_in_checkout(line, installed))
    sys.stderr.write(run.stderr)
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
