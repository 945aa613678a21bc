"""What a training gives back: each epoch's row (`Epoch`), the final evaluation, the
`Result`, and the seed's per-epoch table they print as."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .wording import Worded




COLUMNS = ("epoch", "lr", "train time", "train loss", "train acc", "valid time", "valid loss",
           "valid acc", "epoch time")


@dataclass
class Epoch:
    epoch: int
    lr: float            # at the end of the epoch
    train_time: float    # seconds
    train_loss: float
    train_acc: float
    valid_time: float    # seconds; 0 when the epoch was not evaluated
    valid_loss: float | None  # None: not evaluated (see `train`'s evaluate_each_epoch)
    valid_acc: float | None
    epoch_time: float    # train_time + valid_time


@dataclass
class Evaluation:
    """The final evaluation with test-time augmentation (`level`: Recipe.tta)."""
    level: int
    valid_loss: float
    valid_acc: float
    seconds: float


@dataclass
class Result:
    """What a run did. `status`: finished, stopped (by `should_stop`), diverged (loss not
    finite) or interrupted."""

    status: str
    epochs: list[Epoch]
    compile_seconds: float | None = None
    message: str = ""
    precision: str = ""          # the autocast precision used: fp16, bf16 or fp32
    precision_reason: str = ""   # why: asked for, or what `auto` read off the device
    init_seconds: float = 0.0    # setting layers from the data (whitening) before training
    tta: Evaluation | None = None  # the final evaluation with test-time augmentation

    @property
    def valid_acc(self) -> float | None:
        """The result's accuracy: with test-time augmentation when it ran, else the last
        epoch's."""
        if self.tta is not None:
            return self.tta.valid_acc
        return self.epochs[-1].valid_acc if self.epochs else None

    @property
    def train_time(self) -> float:
        return sum(e.train_time for e in self.epochs)

    @property
    def valid_time(self) -> float:
        """Seconds spent evaluating: after epochs, and the final test-time-augmented
        evaluation."""
        return sum(e.valid_time for e in self.epochs) + (self.tta.seconds if self.tta else 0.0)

    @property
    def core_time(self) -> float:
        """Seconds as airbench counts them: setting layers from the data, the training steps
        and the final test-time-augmented evaluation; the per-epoch evaluations left out."""
        return self.init_seconds + self.train_time + (self.tta.seconds if self.tta else 0.0)

    @property
    def total_time(self) -> float:
        """Every timed second: `core_time` and the per-epoch evaluations."""
        return self.init_seconds + self.train_time + self.valid_time

    def to_dict(self) -> dict:
        return {"status": self.status, "message": self.message,
                "precision": self.precision, "precision_reason": self.precision_reason,
                "compile_seconds": self.compile_seconds, "init_seconds": self.init_seconds,
                "epochs": [asdict(e) for e in self.epochs],
                "tta": asdict(self.tta) if self.tta else None,
                "final": {"valid_acc": self.valid_acc, "train_time": self.train_time,
                          "valid_time": self.valid_time, "core_time": self.core_time,
                          "total_time": self.total_time}}


class OutOfMemory(Worded):
    """The device ran out of memory; the message names the batch size and the one to try
    (worded through a mention: `batch_size=32`, or a command line's flag)."""


def table_header() -> str:
    return " ".join(f"{name:>12s}" for name in COLUMNS)


def table_row(e: Epoch) -> str:
    # The seed's table: 12-wide columns, the epoch as an integer, the rest to 4 decimals; a
    # value not measured (an epoch not evaluated) is a dash.
    values = [getattr(e, f.name) for f in fields(Epoch)]
    return " ".join([f"{values[0]:>12d}"] + [f"{'-':>12s}" if v is None else f"{v:12.4f}"
                                             for v in values[1:]])


def format_seconds(seconds: float) -> str:
    """2:05 for 125 seconds, 1:02:05 from an hour up."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
