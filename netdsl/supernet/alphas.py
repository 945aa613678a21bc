"""A differentiable search's record (`netdsl supernet --method ... --json`) read back: its
points' probabilities per epoch, plotted one panel a point (`netdsl plot RECORD.json`), and
the last epoch's, for `netdsl draw --alphas`."""
from __future__ import annotations

import io
import json
import math
from pathlib import Path

from ..errors import NetdslError
from ..files import check_writable, write_atomically

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def is_search_record(path: Path) -> bool:
    """Whether `path` holds a differentiable search's record (one with `alphas`), not a run's;
    a file that cannot be read is not one (the run's reader names what is wrong)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(record, dict) and "alphas" in record


def read_alphas(path: Path) -> tuple[dict[str, list[str]], list[dict[str, list[float]]]]:
    """The points (name -> options) and each epoch's probabilities of a search's record; a
    NetdslError naming the file where it is not one."""
    what = f"{path}: not a `netdsl supernet --method ... --json` record"
    try:
        record = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise NetdslError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, RecursionError):
        raise NetdslError(f"{what} (not JSON)") from None
    points = record.get("points") if isinstance(record, dict) else None
    alphas = record.get("alphas") if isinstance(record, dict) else None
    if not isinstance(points, dict) or not isinstance(alphas, list) or not all(
            isinstance(options, list) for options in points.values()):
        raise NetdslError(f"{what} (it needs `points` and a list of `alphas`)")
    for epoch, probabilities in enumerate(alphas, 1):
        if not isinstance(probabilities, dict) or set(probabilities) != set(points) or any(
                not isinstance(p, list) or len(p) != len(points[name])
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
                for name, p in probabilities.items()):
            raise NetdslError(f"{what} (epoch {epoch}'s alphas do not give a probability for "
                              "each option of each point)")
    if not alphas:
        raise NetdslError(f"{path}: no epochs to plot (the search finished none)")
    return points, alphas


def plot_alphas(path: Path, output: Path) -> Path:
    """Each point's option probabilities over the epochs, one panel a point."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise NetdslError(f"cannot write '{output}': the suffix must be one of "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    points, alphas = read_alphas(path)
    check_writable(output, ("output",))
    columns = min(3, len(points))
    rows = math.ceil(len(points) / columns)
    figure, panels = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows),
                                  squeeze=False)
    epochs = range(1, len(alphas) + 1)
    for panel, (name, options) in zip(panels.flat, points.items()):
        for i, option in enumerate(options):
            panel.plot(epochs, [epoch[name][i] for epoch in alphas], "o-", label=option,
                       markersize=3)
        panel.set(title=name, xlabel="epoch", ylabel="probability")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
    for panel in list(panels.flat)[len(points):]:
        panel.set_visible(False)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, dpi=120, format=output.suffix.lower().lstrip("."))
    plt.close(figure)
    return write_atomically(output, image.getvalue())
