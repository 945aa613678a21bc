"""`--table PATH --metric COLUMN`: a benchmark's table as the truth about a family's networks.
`netdsl search` looks each trial's network up in it instead of training it; `netdsl score`
ranks its proxies against it.

A table is CSV (read as it is, or compressed: `.xz`, `.gz`, in either case), a row a network.
A search may select on one column and report another (`--report`: NAS-Bench-201's protocol,
selecting on the 12-epoch validation accuracy and reporting the 200-epoch test accuracy).
A row's network is named by one column per choice point of the file, holding the option's text
as `netdsl space` prints it; for NAS-Bench-201's six edges (models/nb201.net), by an `arch`
column of architecture strings instead. Every check runs before a search's first trial: each
column is named once, the metric column (and the report column) is there, each value is a
finite number, no network has two values, and the table holds every network of the space left
free by `--set`.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import lzma
import math
import sys
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from . import nb201
from ..errors import ArgumentError, NetdslError
from ..graph import Shape
from ..language import DEFAULT_INPUT_SHAPE, Bound, Family
from ..language.choices import ChoicePoint, ChoiceSpace

ARCH = "arch"  # NAS-Bench-201's column of architecture strings
# by the suffix in lower case: .XZ is xz too
_OPENERS: dict[str, Callable[..., Any]] = {".xz": lzma.open, ".gz": gzip.open}
_CORRUPT = (lzma.LZMAError, zlib.error, EOFError)  # compressed data corrupt or cut short
_OUTSIDE = object()  # a cell that names no option of its point: the row is outside the space

Key = tuple  # a network: the option of each of the table's points, in their order


@dataclass(frozen=True)
class Table:
    """The metric of every network of a space, read from `path`, keyed by the options of
    `points` (all the family's choice points, in order), and with a `report` column its value
    too (`reported`: what a search shows beside the metric it selects on)."""

    path: str
    metric: str
    points: tuple[ChoicePoint, ...]
    by_arch: bool                  # keyed by NAS-Bench-201 strings in the `arch` column
    values: dict[Key, float]       # the networks of the space only
    # sha256 of the metric of every network of the family's space that the table holds, in a
    # canonical order: the same truth, wherever the file lies, however compressed or ordered
    digest: str = ""
    report: str | None = None
    reported: dict[Key, float] = field(default_factory=dict)

    def key(self, choices: dict[str, Any]) -> Key:
        """The network whose points chose `choices` (every point named)."""
        return tuple(point.check(choices[point.name]) for point in self.points)

    def look_up(self, bound: Bound) -> float:
        return self.values[self.key(bound.choices)]

    def look_up_report(self, bound: Bound) -> float | None:
        """The network's value of the report column; None without one."""
        return self.reported[self.key(bound.choices)] if self.report else None

    def network(self, key: Key) -> str:
        """A network as a user writes it: its NAS-Bench-201 string, else point=option."""
        if self.by_arch:
            return nb201.arch({point.name: option for point, option in zip(self.points, key)})
        return ", ".join(f"{point.name}={_written(option)}"
                         for point, option in zip(self.points, key))

    def objective(self) -> str:
        reported = (f"; column {self.report} reported as the test accuracy, never shown to the "
                    "tuner" if self.report else "")
        return (f"objective: column {self.metric} of {self.path}, looked up for each network "
                f"of the {len(self.values):,} (none trained){reported}")


def load_table(table: str, metric: str, family: Family, space: ChoiceSpace,
               fixed: dict[str, Any], report: str | None = None) -> Table:
    """The table at the path `table`, its `metric` (and `report`) for each network of
    `family`'s `space` whose points in `fixed` take those values; a NetdslError (an
    ArgumentError of `table`, `metric` or `report`) for a column named twice or missing, a
    value that is not a finite number, two values for one network, no row of the space, or a
    network of the space not there. Rows naming an option the space lacks are left out, their
    count said in a line on stderr."""
    path = table
    points = family.listed_points(space, fixed, ("table",))
    columns, rows = _read(path)
    for parameter, column in (("metric", metric), ("report", report)):
        if column is not None and column not in columns:
            raise _no_column(parameter, column, path, columns)
    by_arch = {p.name for p in points} == set(nb201.EDGES) and ARCH in columns
    missing = [p.name for p in points if p.name not in columns]
    if missing and not by_arch:
        raise ArgumentError(lambda given: (
            f"{given('table', path)} has no column '{missing[0]}': a table names a network by "
            f"one column per choice point of {family.name} ({', '.join(p.name for p in points)}"
            f"; NAS-Bench-201's edges by '{ARCH}' instead); its columns: {', '.join(columns)}"))
    read = Table(path, metric, points, by_arch, {}, report=report)
    both = _networks(read, rows, family.name)
    wanted = {p.name: p.check(fixed[p.name]) for p in points if p.name in fixed}
    for key, (value, reported) in both.items():
        if all(key[i] == wanted.get(p.name, key[i]) for i, p in enumerate(points)):
            read.values[key] = value
            if report is not None:
                read.reported[key] = reported
    _check_covers(read, wanted, family.name)
    # the digest is the metric's alone: the truth a search selects on, what a resumed one checks
    return replace(read, digest=_digest({key: value for key, (value, _) in both.items()}))


def _no_column(parameter: str, column: str, path: str, columns: list[str]) -> ArgumentError:
    return ArgumentError(lambda given: f"{given(parameter, column)}: {path} has no column "
                         f"'{column}' (its columns: {', '.join(columns)})")


def _networks(table: Table, rows: Iterator[tuple[int, dict[str, str]]], name: str
              ) -> dict[Key, tuple[float, float]]:
    """Each network of the space (`name`'s) that `rows` name, and its values of the table's
    metric and report column (the metric's again without one); a NetdslError for a bad value,
    two values for one network, or no row of the space. Rows outside the space are counted on
    stderr, in one line."""
    # each point's cell text -> option: each parsed once
    options: list[dict[str, Any]] = [{} for _ in table.points]
    # every network of the table: its metric, its report, its row
    values: dict[Key, tuple[float, float, int]] = {}
    outside, first = 0, None  # rows naming an option the space lacks; the first such
    for row_number, row in rows:
        value = _number(row.get(table.metric), table.path, row_number, table.metric)
        reported = value if table.report is None else _number(
            row.get(table.report), table.path, row_number, table.report)
        cells = _cells(row, table.points, table.by_arch, table.path, row_number)
        key = tuple(_option(p, cells[p.name], known) for p, known in zip(table.points, options))
        if _OUTSIDE in key:
            outside += 1
            point = table.points[key.index(_OUTSIDE)]
            first = first or (f"row {row_number}: {point.name}={cells[point.name]!r} is none of "
                              f"its options ({point.describe_options()})")
            continue
        earlier = values.setdefault(key, (value, reported, row_number))
        for column, before, now in ((table.metric, earlier[0], value),
                                    (table.report, earlier[1], reported)):
            if before != now:
                raise NetdslError(f"{table.path}, rows {earlier[2]} and {row_number}: two "
                                  f"values of {column} for one network, {before:g} and "
                                  f"{now:g}: {table.network(key)}")
    if outside and not values:
        raise ArgumentError(lambda given: f"{given('table', table.path)}: none of its rows "
                            f"names a network of {name} ({outside:,} outside its space, e.g. "
                            f"{first})")
    if outside:
        print(f"netdsl: --table {table.path}: rows outside the space of {name} left out: "
              f"{outside:,} of {outside + len(values):,} (e.g. {first})", file=sys.stderr)
    return {key: (value, reported) for key, (value, reported, _) in values.items()}


def _digest(values: dict[Key, float]) -> str:
    """sha256 of `values`, each network written as JSON with its value, in sorted order."""
    lines = sorted(json.dumps([*key, value], default=str) for key, value in values.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _read(path: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """The header's columns (each named once) and the rows, each with the row it begins on
    as a spreadsheet counts them (the header is row 1). The file is decompressed and decoded
    whole here, so a file that is not its compression or not text fails before any row is
    read."""
    suffix = Path(path).suffix.lower()
    try:
        with _OPENERS.get(suffix, open)(path, "rb") as f:
            text = f.read().decode("utf-8-sig")  # BOM: a spreadsheet's CSV export
    except (OSError, *_CORRUPT) as e:
        if isinstance(e, OSError) and e.strerror:  # the file itself, not its compression
            reason = e.strerror
            raise ArgumentError(lambda given: f"{given('table')}: cannot read {path}: {reason}"
                                ) from None
        corrupt = e
        raise ArgumentError(lambda given: f"{given('table', path)}: not {suffix} data, or its "
                            f"data is corrupt or cut short ({corrupt})") from None
    except UnicodeDecodeError as e:
        undecoded = e
        raise ArgumentError(lambda given: f"{given('table', path)}: not UTF-8 text "
                            f"({undecoded.reason} at byte {undecoded.start})") from None
    # strict: a quote left open is an error, not the rest of the file read as one cell
    records = _records(csv.reader(io.StringIO(text, newline=""), strict=True), path)
    header = [column.strip() for column in next(records, (1, []))[1]]
    if not any(header):
        raise ArgumentError(lambda given: f"{given('table', path)}: no header row naming the "
                            "columns")
    twice = next((c for i, c in enumerate(header) if c and c in header[:i]), None)
    if twice is not None:  # else a row's dict keeps the last one's cell, unsaid
        raise ArgumentError(lambda given: f"{given('table', path)}, row 1: the column "
                            f"'{twice}' is named twice; name each column once")
    return header, ((row, dict(zip(header, cells))) for row, cells in records if cells)


def _records(reader, path: str) -> Iterator[tuple[int, list[str]]]:
    """Each record of the CSV `reader` and the row it begins on; a record that is not CSV is
    a NetdslError naming that row: a quote left open names the row it opened on, not where
    the reader gave up (the file's end, or its field limit rows later)."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            at, why = start, str(e)
            if reader.line_num > start or why == "unexpected end of data":
                raise ArgumentError(lambda given: f"{given('table', path)}, row {at}: not CSV: "
                                    f"a quote opens a field here and is not closed ({why})"
                                    ) from None
            raise ArgumentError(lambda given: f"{given('table', path)}, row {at}: not CSV: "
                                f"{why}") from None
        yield start, cells


def _number(text: str | None, path: str, row: int, metric: str) -> float:
    try:
        value = math.nan if text is None else float(text)  # None: the row has no such cell
    except ValueError:
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
    them (64.0 is 64 too, and True or TRUE is true, as Python's csv and spreadsheets write a
    switch); _OUTSIDE for anything else. `known`: the texts parsed already."""
    if text not in known:
        known[text] = _OUTSIDE
        for value in _readings(text):
            try:
                known[text] = point.check(value)
                break
            except NetdslError:
                pass
    return known[text]


def _readings(text: str) -> Iterator[Any]:
    """What a cell's text may stand for, the likeliest first: a JSON value (a number, true)
    or a name (an op's, an item's), then true or false in any case."""
    try:
        yield json.loads(text)
    except ValueError:
        yield text
    if text.lower() in ("true", "false"):
        yield text.lower() == "true"


def _written(option: Any) -> str:
    """An option as `netdsl space` prints it: true, not Python's True."""
    return ("true" if option else "false") if isinstance(option, bool) else str(option)


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
    lacking = (f"{table.path} lacks {count - len(table.values):,} of the {count:,} networks "
               f"of {name}")
    example = f", e.g. {table.network(first)}"
    raise ArgumentError(lambda given: lacking + (f" (with {given('fixed')})" if fixed else "")
                        + example)


# ---- netdsl search --table -------------------------------------------------------------------

METRIC_ATTR = "table_metric"  # a search's user attribute: the column it looks up, if any
REPORT_ATTR = "table_report"  # and the column it reports as the test accuracy, if any
TABLE_ATTR = "table"  # and the table's place and digest: {"path": ..., "sha256": ...}


def table_of(table: str | None, metric: str | None, family: Family, fixed: dict[str, Any],
             report: str | None = None) -> Table | None:
    """The table at the path `table`, its column `metric` (and `report`), checked against
    `family`'s space with `fixed` bound; None without a table."""
    if table is None:
        named = "metric" if metric is not None else "report" if report is not None else None
        if named is not None:
            raise ArgumentError(lambda given: f"bad option: {given(named)} names a column of "
                                f"{given('table')}; give {given('table')}")
        return None
    if metric is None:
        raise ArgumentError(lambda given: f"bad option: {given('table')} needs "
                            f"{given('metric')}, the column to look up")
    return load_table(table, metric, family, family.space(fixed), fixed, report)


def check_resumed(study, table: Table | None) -> None:
    """A stored search goes on with the objective it began with: a trained accuracy (a
    fraction) and a table's metric (often percent) are not one scale, and two tables' values
    of one column are not one truth (a table is known by its digest: a copy moved or
    compressed is the same table)."""
    before, now = study.user_attrs.get(METRIC_ATTR), table and table.metric
    name = study.study_name
    if before != now:
        began = f"looking up column {before}" if before else "training its networks"
        raise ArgumentError(lambda given: (
            f"search '{name}' began {began}; it cannot go on with "
            + (f"{given('table')} ... {given('metric', now)}" if now
               else f"training (no {given('table')})")
            + f": give another {given('name')} for a new search"))
    reported = study.user_attrs.get(REPORT_ATTR)
    now_reported = table and table.report
    if before and reported != now_reported:  # else its trials would report two columns
        began_reporting = f"reporting column {reported}" if reported else "reporting none"
        raise ArgumentError(lambda given: (
            f"search '{name}' began {began_reporting}; it cannot go on "
            + (f"with {given('report', now_reported)}" if now_reported
               else f"without {given('report')}")
            + f": give the same, or another {given('name')} for a new search"))
    stored = study.user_attrs.get(TABLE_ATTR)  # none in a search stored before digests
    if table is not None and stored is not None and stored["sha256"] != table.digest:
        path = table.path
        raise ArgumentError(lambda given: (
            f"search '{name}' began looking up column {now} of {stored['path']}; "
            f"{given('table', path)} holds other values of it: give the table it began "
            f"with, or another {given('name')} for a new search"))


def remember(study, table: Table) -> None:
    """Store with `study` what `check_resumed` compares: the column, the table's digest, and
    where it was read (to name it)."""
    study.set_user_attr(METRIC_ATTR, table.metric)
    if table.report:
        study.set_user_attr(REPORT_ATTR, table.report)
    study.set_user_attr(TABLE_ATTR, {"path": str(Path(table.path).resolve()),
                                     "sha256": table.digest})


@dataclass(frozen=True)
class NoImages:
    """What a table search without --dataset knows of its images, in place of the loaded
    data the search loop reads: CIFAR's shape and the family's own class count."""

    device: Any
    classes: range
    image_shape: Shape = DEFAULT_INPUT_SHAPE
    report: None = None  # no test set held back


def no_images(family: Family, device) -> NoImages:
    classes = family.parameters.get("classes")
    return NoImages(device, range(int(classes.default) if classes else 0))
