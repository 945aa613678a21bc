"""`--table PATH --metric COLUMN`: a benchmark's table as the truth about a family's networks.
`netdsl search` looks each trial's network up in it instead of training it; `netdsl score`
ranks its proxies against it.

A table is CSV (read as it is, or compressed: `.xz`, `.gz`), a row a network. A row's network
is named by one column per choice point of the file, holding the option's text as `netdsl
space` prints it; for NAS-Bench-201's six edges (models/nb201.net), by an `arch` column of
architecture strings instead. Every check runs before a search's first trial: the metric
column is there, each value is a finite number, no network has two values, and the table holds
every network of the space left free by `--set`.
"""
from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import lzma
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .. import nb201
from ..errors import NetdslError
from ..language import DEFAULT_INPUT_SHAPE, Bound, Family
from ..language.choices import ChoicePoint, ChoiceSpace

ARCH = "arch"  # NAS-Bench-201's column of architecture strings
_OPENERS = {".xz": lzma.open, ".gz": gzip.open}
_OUTSIDE = object()  # a cell that names no option of its point: the row is outside the space

Key = tuple  # a network: the option of each of the table's points, in their order


@dataclass(frozen=True)
class Table:
    """The metric of every network of a space, read from `path`, keyed by the options of
    `points` (all the family's choice points, in order)."""

    path: str
    metric: str
    points: tuple[ChoicePoint, ...]
    by_arch: bool                  # keyed by NAS-Bench-201 strings in the `arch` column
    values: dict[Key, float]       # the networks of the space only

    def key(self, choices: dict[str, Any]) -> Key:
        """The network whose points chose `choices` (every point named)."""
        return tuple(point.check(choices[point.name]) for point in self.points)

    def look_up(self, bound: Bound) -> float:
        return self.values[self.key(bound.choices)]

    def network(self, key: Key) -> str:
        """A network as a user writes it: its NAS-Bench-201 string, else point=option."""
        if self.by_arch:
            return nb201.arch({point.name: option for point, option in zip(self.points, key)})
        return ", ".join(f"{point.name}={option}" for point, option in zip(self.points, key))

    def objective(self) -> str:
        return (f"objective: column {self.metric} of {self.path}, looked up for each network "
                f"of the {len(self.values):,} (none trained)")


def load_table(path: str, metric: str, family: Family, space: ChoiceSpace,
               fixed: dict[str, Any]) -> Table:
    """The table at `path`, its `metric` for each network of `family`'s `space` whose points
    in `fixed` (--set) take those values; a NetdslError for a missing column, a value that is
    not a finite number, two values for one network, or a network of the space not there."""
    points = family.listed_points(space, fixed, "--table")
    columns, rows = _read(path)
    if metric not in columns:
        raise NetdslError(f"--metric {metric}: {path} has no column '{metric}' (its columns: "
                          f"{', '.join(columns)})")
    by_arch = {p.name for p in points} == set(nb201.EDGES) and ARCH in columns
    missing = [p.name for p in points if p.name not in columns]
    if missing and not by_arch:
        raise NetdslError(f"--table {path} has no column '{missing[0]}': a table names a "
                          f"network by one column per choice point of {family.name} ("
                          f"{', '.join(p.name for p in points)}; NAS-Bench-201's edges by "
                          f"'{ARCH}' instead); its columns: {', '.join(columns)}")
    table = Table(path, metric, points, by_arch, {})
    options = [{} for _ in points]  # each point's cell text -> option: each text parsed once
    values: dict[Key, tuple[float, int]] = {}  # every network of the table, and its row
    for row_number, row in rows:
        value = _number(row.get(metric), path, row_number, metric)
        cells = _cells(row, points, by_arch, path, row_number)
        key = tuple(_option(p, cells[p.name], known) for p, known in zip(points, options))
        if _OUTSIDE in key:
            continue
        earlier = values.setdefault(key, (value, row_number))
        if earlier[0] != value:
            raise NetdslError(f"{path}, rows {earlier[1]} and {row_number}: two values of "
                              f"{metric} for one network, {earlier[0]:g} and {value:g}: "
                              f"{table.network(key)}")
    wanted = {p.name: p.check(fixed[p.name]) for p in points if p.name in fixed}
    table.values.update((key, value) for key, (value, _) in values.items()
                        if all(key[i] == wanted.get(p.name, key[i]) for i, p in enumerate(points)))
    _check_covers(table, wanted, family.name)
    return table


def _read(path: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header's columns and the rows, each with its row number as a spreadsheet counts
    them (the header is row 1). The file is decompressed and decoded whole here, so a file
    that is not its compression or not text fails before any row is read."""
    try:
        with _OPENERS.get(Path(path).suffix, open)(path, "rb") as f:
            text = f.read().decode("utf-8-sig")  # BOM: a spreadsheet's CSV export
    except (OSError, lzma.LZMAError, EOFError) as e:
        if isinstance(e, OSError) and e.strerror:  # the file itself, not its compression
            raise NetdslError(f"--table: cannot read {path}: {e.strerror}") from None
        raise NetdslError(f"--table {path}: not {Path(path).suffix} data ({e})") from None
    except UnicodeDecodeError as e:
        raise NetdslError(f"--table {path}: not UTF-8 text ({e.reason} at byte {e.start})"
                          ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [column.strip() for column in next(reader, [])]
    except csv.Error as e:
        raise NetdslError(f"--table {path}, row 1: not CSV: {e}") from None
    if not any(header):
        raise NetdslError(f"--table {path}: no header row naming the columns")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for cells in reader:
                if cells:
                    yield reader.line_num, dict(zip(header, cells))
        except csv.Error as e:
            raise NetdslError(f"--table {path}, row {reader.line_num}: not CSV: {e}") from None
    return header, rows()


def _number(text: str | None, path: str, row: int, metric: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise NetdslError(f"{path}, row {row}: {metric} is {text or 'empty'!r}, not a finite "
                          "number")
    return value


def _cells(row: dict[str, str], points: tuple[ChoicePoint, ...], by_arch: bool, path: str,
           number: int) -> dict[str, str]:
    """The row's text for each point: its own column's, or its edge of the `arch` string."""
    if not by_arch:
        return {p.name: (row.get(p.name) or "").strip() for p in points}
    try:
        return nb201.edges((row.get(ARCH) or "").strip())
    except NetdslError as e:
        raise NetdslError(f"{path}, row {number}: {e.message}") from None


def _option(point: ChoicePoint, text: str, known: dict[str, Any]) -> Any:
    """The option of `point` a cell names: `64`, `true`, `nor_conv_3x3` as `space` prints
    them (64.0 is 64 too); _OUTSIDE for anything else. `known`: the texts parsed already."""
    if text not in known:
        try:
            value = json.loads(text)
        except ValueError:
            value = text  # an op's or item's name
        try:
            known[text] = point.check(value)
        except NetdslError:
            known[text] = _OUTSIDE
    return known[text]


def every_key(points: tuple[ChoicePoint, ...], fixed: dict[str, Any]
              ) -> tuple[int, Iterator[Key]]:
    """How many networks `points` make with those in `fixed` bound, and each of them, in
    order."""
    options = [[p.check(fixed[p.name])] if p.name in fixed else p.values() for p in points]
    return math.prod(len(o) for o in options), itertools.product(*options)


def _check_covers(table: Table, fixed: dict[str, Any], name: str) -> None:
    """Every network of the space (the points not `fixed`, each over its options) is in the
    table; else the error counts the missing ones and names the first."""
    count, keys = every_key(table.points, fixed)
    if len(table.values) == count:
        return
    first = next(key for key in keys if key not in table.values)
    subspace = " (with --set)" if fixed else ""
    raise NetdslError(f"{table.path} lacks {count - len(table.values):,} of the {count:,} "
                      f"networks of {name}{subspace}, e.g. {table.network(first)}")


# ---- netdsl search --table -------------------------------------------------------------------

METRIC_ATTR = "table_metric"  # a search's user attribute: the column it looks up, if any


def table_of(path: str | None, metric: str | None, family: Family, fixed: dict[str, Any]
             ) -> Table | None:
    """The table at `path` (--table) and its column `metric` (--metric), checked against
    `family`'s space with `fixed` (--set) bound; None without a table."""
    if path is None:
        if metric is not None:
            raise NetdslError("bad option: --metric names a column of --table; give --table")
        return None
    if metric is None:
        raise NetdslError("bad option: --table needs --metric, the column to look up")
    return load_table(path, metric, family, family.space(fixed), fixed)


def check_resumed(study, table: Table | None) -> None:
    """A stored search goes on with the objective it began with: a trained accuracy (a
    fraction) and a table's metric (often percent) are not one scale."""
    before, now = study.user_attrs.get(METRIC_ATTR), table and table.metric
    if before != now:
        began = f"looking up column {before}" if before else "training its networks"
        asked = f"--table ... --metric {now}" if now else "training (no --table)"
        raise NetdslError(f"search '{study.study_name}' began {began}; it cannot go on with "
                          f"{asked}: give another --name for a new search")


@dataclass(frozen=True)
class NoImages:
    """What a table search without --dataset knows of its images, in place of the loaded
    data the search loop reads: CIFAR's shape and the family's own class count."""

    device: Any
    classes: range
    image_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE
    report: None = None  # no test set held back


def no_images(family: Family, device) -> NoImages:
    classes = family.parameters.get("classes")
    return NoImages(device, range(int(classes.default) if classes else 0))


def look_up_trial(trial, table: Table, bound: Bound, values: dict[str, Any], multi: bool):
    """The trial's score without training: its network's metric in the table (and its FLOPs,
    for two objectives); its seconds, the lookup's."""
    start = time.perf_counter()
    value = table.look_up(bound)
    trial.set_user_attr("train_time", time.perf_counter() - start)
    print(f"trial {trial.number}: {table.metric} {value:g} from the table, "
          f"{json.dumps({**values, **bound.choices})}")
    return value if not multi else (value, bound.flops)
