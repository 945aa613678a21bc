"""`netdsl plot RUN.json ...`: training curves of `netdsl run --json` records, several runs
overlaid: loss (training and validation) and validation accuracy per epoch."""
from __future__ import annotations

import io
import json
from pathlib import Path

from ..errors import NetdslError
from ..files import check_writable, write_atomically

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


MEASURED = ("epoch", "train_loss")  # numbers in each epoch's row
EVALUATED = ("valid_loss", "valid_acc")  # numbers, or null for an epoch not evaluated


def read_runs(path: Path) -> list[tuple[str, list[dict]]]:
    """(label, epochs) of each run in a `netdsl run --json` record; a file that is not one, or
    has no epoch to plot, is a NetdslError naming it."""
    try:
        report = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise NetdslError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:  # not UTF-8, or not JSON
        raise NetdslError(f"{path}: not a `netdsl run --json` record (not JSON: {e})") from None
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise NetdslError(f"{path}: not a `netdsl run --json` record (JSON nested too deeply "
                          "to read)") from None
    runs = report.get("runs") if isinstance(report, dict) else None
    if not isinstance(runs, list) or not all(isinstance(run, dict) for run in runs):
        raise NetdslError(f"{path}: not a `netdsl run --json` record (it has no list of runs)")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    out = []
    for index, run in enumerate(runs, start=1):
        epochs = run.get("epochs")
        if not isinstance(epochs, list) or not all(
                isinstance(row, dict) and all(number(row.get(key)) for key in MEASURED)
                and all(key in row and (row[key] is None or number(row[key]))
                        for key in EVALUATED)
                for row in epochs):
            raise NetdslError(f"{path}: run {index} is not a `netdsl run --json` record (each "
                              f"epoch needs the numbers {', '.join(MEASURED + EVALUATED)}; "
                              f"{' and '.join(EVALUATED)} may be null)")
        hyperparameters = run.get("hyperparameters")
        seed = hyperparameters.get("seed") if isinstance(hyperparameters, dict) else None
        label = path.stem if len(runs) == 1 else (
            f"{path.stem} seed {seed}" if seed is not None else f"{path.stem} run {index}")
        out.append((label, epochs))
    if not any(epochs for _, epochs in out):
        raise NetdslError(f"{path}: no epochs to plot ({len(runs)} run"
                          f"{'s' * (len(runs) != 1)}, none with a finished epoch)")
    return out


def plot_runs(paths: list[Path], output: Path) -> Path:
    """Loss and accuracy per epoch of every run in `paths`, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in IMAGE_SUFFIXES:
        raise NetdslError(f"cannot write '{output}': the suffix must be one of "
                          f"{', '.join(IMAGE_SUFFIXES)}")
    runs = [run for path in paths for run in read_runs(path)]
    check_writable(output, ("output",))
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 4))
    for (label, epochs), colour in zip(runs, matplotlib.color_sequences["tab10"] * 10):
        evaluated = [row for row in epochs if row["valid_acc"] is not None]  # --evaluate last
        loss.plot([row["epoch"] for row in epochs], [row["train_loss"] for row in epochs], "--",
                  color=colour, label=f"{label} train")
        x = [row["epoch"] for row in evaluated]
        loss.plot(x, [row["valid_loss"] for row in evaluated], "-", color=colour,
                  label=f"{label} valid")
        accuracy.plot(x, [row["valid_acc"] for row in evaluated], "o-", color=colour,
                      label=label)
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
