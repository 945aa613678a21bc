"""netdsl as users install it: every package of the tree in the wheel, the wheel installed into a
fresh virtual environment (not editable) and run from a folder outside the checkout."""
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

from conftest import ROOT

CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
NOT_INSTALLED = {ROOT / "grammars" / "vscode"}  # the VS Code extension ships on its own


def _package_folders() -> dict[str, Path]:
    """Every folder of the tree that installs as a package, by the name it installs as: the
    roots of pyproject's package-dir, netdsl/ and each subfolder holding a file."""
    roots = {"netdsl": ROOT / "netdsl", **{name: ROOT / folder
                                           for name, folder in CONFIG["package-dir"].items()}}
    found = {}
    for name, root in roots.items():
        for folder in [root, *root.rglob("*")]:
            if (folder.is_dir() and folder.name != "__pycache__" and folder not in NOT_INSTALLED
                    and not any(parent in NOT_INSTALLED for parent in folder.parents)
                    and any(f.is_file() for f in folder.iterdir())):
                inner = folder.relative_to(root).parts
                found[".".join((name, *inner))] = folder
    return found


def test_every_package_folder_of_the_tree_is_installed():
    listed = set(CONFIG["packages"])
    folders = _package_folders()
    assert sorted(set(folders) - listed) == []  # a new folder not in pyproject's list
    assert sorted(listed - set(folders)) == []  # a listed package with no folder


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed into a new virtual environment. The
    dependencies (torch's several GB among them) are this environment's, seen through a .pth
    line, which processes none of its .pth files: this checkout's editable install is not
    seen."""
    root = tmp_path_factory.mktemp("wheel")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources, and a
    # build/ left by an earlier build would hide a package missing from the list.
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(root / "dist"), str(source)],
                           capture_output=True, text=True, cwd=root)
    assert build.returncode == 0, build.stderr
    wheel = next((root / "dist").glob("netdsl-*.whl"))
    env = root / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                              "--no-deps", "--no-index", "-q", str(wheel)],
                             capture_output=True, text=True, cwd=root)
    assert install.returncode == 0, install.stderr
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return env


def _netdsl(env: Path, *args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(env / "bin" / "netdsl"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={"PATH": "/usr/bin:/bin",
                                                   "NETDSL_DATA": str(cwd)})


def test_the_installed_wheel_runs_outside_the_checkout(installed, image_folder, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import netdsl, netdsl_runtime; print(netdsl.__file__); "
                            "print(netdsl_runtime.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(str(installed) in line for line in where.stdout.splitlines())  # not the checkout
    check = _netdsl(installed, "check", "resnet9", cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("ok: ") and "6,573,120 weights" in check.stdout
    assert "the bundled model" in check.stderr and str(installed) in check.stderr
    show = _netdsl(installed, "show", "resnet9", cwd=tmp_path)
    assert show.returncode == 0 and "layer3" in show.stdout, show.stderr
    listed = _netdsl(installed, "models", cwd=tmp_path)
    assert listed.returncode == 0 and "nb201" in listed.stdout.split(), listed.stderr
    run = _netdsl(installed, "run", "resnet9_small", "--dataset", image_folder,
                  "--recipe", "seed", "--epochs", "1", "--batch-size", "32",
                  "--json", tmp_path / "run.json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "run.json").stat().st_size > 0
    nb201 = _netdsl(installed, "show", "nb201", "--nb201", "|nor_conv_3x3~0|+|none~0|"
                    "skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|", "--format", "nb201",
                    cwd=tmp_path)
    assert nb201.returncode == 0, nb201.stderr
