"""The model files that come with netdsl, installed as the package netdsl.models (so that
`netdsl.bench.nb201` finds its space): `netdsl models` lists them, and a command given a name that is
not a file (`netdsl show resnet9`) reads the bundled file of that name."""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled() -> dict[str, Path]:
    """Each bundled model's name (its file's stem) -> its file, by name."""
    folder = Path(str(resources.files(__name__)))
    return {path.stem: path for path in sorted(folder.glob("*.net"))}


def summary(path: Path) -> str:
    """The first sentence of the comment a model file opens with: what the model is."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]
