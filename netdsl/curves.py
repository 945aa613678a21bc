"""`netdsl plot RUN.json ...`: training curves of `netdsl run --json` records, several runs
overlaid: loss (training and validation) and validation accuracy per epoch."""
from __future__ import annotations

import io
import json
from pathlib import Path

from .errors import NetdslError
from .files import check_writable, write_atomically

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def read_runs(path: Path) -> list[tuple[str, list[dict]]]:
    """(label, epochs) of each run in a `netdsl run --json` record."""
    try:
        report = json.loads(path.read_text())
        runs = report["runs"]
        epochs = [run["epochs"] for run in runs]
        if not all(isinstance(e, list) and all("valid_acc" in row for row in e) for e in epochs):
            raise KeyError("epochs")
    except OSError as e:
        raise NetdslError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise NetdslError(f"{path}: not a `netdsl run --json` record ({e})") from None
    name = path.stem
    if len(runs) == 1:
        return [(name, epochs[0])]
    return [(f"{name} seed {run['hyperparameters']['seed']}", e) for run, e in zip(runs, epochs)]


def plot_runs(paths: list[Path], output: Path) -> Path:
    """Loss and accuracy per epoch of every run in `paths`, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise NetdslError(f"cannot write '{output}': the suffix must be one of "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    runs = [run for path in paths for run in read_runs(path)]
    check_writable(output, "-o")
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for (label, epochs), colour in zip(runs, plt.cm.tab10.colors * 10):
        x = [row["epoch"] for row in epochs]
        loss.plot(x, [row["train_loss"] for row in epochs], "--", color=colour,
                  label=f"{label} train")
        loss.plot(x, [row["valid_loss"] for row in epochs], "-", color=colour,
                  label=f"{label} valid")
        accuracy.plot(x, [row["valid_acc"] for row in epochs], "o-", color=colour, label=label)
    loss.set(xlabel="epoch", ylabel="loss", title="loss (dashed: training)")
    accuracy.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    for axes in (loss, accuracy):
        axes.grid(alpha=0.3)
    accuracy.legend(fontsize=8)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, dpi=120, format=output.suffix.lower().lstrip("."))
    plt.close(figure)
    return write_atomically(output, image.getvalue())
