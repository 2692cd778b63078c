"""Time-series data handling shared by the forecasting recipes (weather, finance, fraud ...).

One place for the things every time-series recipe must get right, so each recipe stays small:

* :func:`read_csv` / :func:`require_columns` / :func:`numeric_columns` — load a CSV and check it,
  raising :class:`~lstm_zoo.errors.DataError` that names the file, column and line;
* :func:`time_index` — parse timestamps, refusing duplicated or out-of-order ones;
* :func:`regularize` — put the rows on a regular time grid (missing timestamps become NaN rows);
* :func:`fill_gaps` — interpolate short NaN runs, refuse long ones (naming column and lines);
* :func:`chronological_split` and :func:`make_windows` — train/val/test by time, then
  (lookback, horizon) windows whose targets never cross a split boundary;
* :func:`fit_scaler` — mean/variance fitted on the training rows only;
* :func:`persistence_forecast`, :func:`seasonal_naive_forecast` — naive baselines;
* :func:`forecast_errors`, :func:`compare_to_baselines` — MAE/RMSE per horizon step;
* :func:`load_series_csv` and :func:`window_series` — the whole pipeline in two calls.

Line numbers in messages are the 1-based physical lines of the CSV file (the header is line
1; blank lines and line breaks inside quoted cells are counted), so a user can open the file at
the reported line: :func:`read_csv` attaches a :class:`FileLines` map to the frame it returns,
and :func:`file_line` reads it.  Quoted cell values are shortened to an excerpt
(:func:`lstm_zoo.errors.excerpt`).  Everything here is numpy/pandas; no TensorFlow.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_zoo.errors import DataError, excerpt

__all__ = [
    "Scaler",
    "Series",
    "SplitBounds",
    "Windows",
    "WindowedSeries",
    "chronological_split",
    "compare_to_baselines",
    "FileLines",
    "file_line",
    "fill_gaps",
    "fit_scaler",
    "forecast_errors",
    "load_series_csv",
    "make_windows",
    "numeric_columns",
    "persistence_forecast",
    "read_csv",
    "regularize",
    "require_columns",
    "seasonal_naive_forecast",
    "time_index",
    "window_series",
]

HEADER_LINES = 1  # without a line map, data row i (0-based) is taken to be on line i + 2
LINES_ATTR = "lstm_zoo.file_lines"  # DataFrame.attrs key of a frame's FileLines


class FileLines:
    """The physical 1-based line of each 0-based data row of a CSV file, for messages.

    pandas skips blank (or whitespace-only) lines and reads a quoted cell across line breaks,
    so row ``i`` is not always on line ``i + 2``.  The map is computed on first use (only
    error messages need it) by reading the file again with :mod:`csv`; when its record count
    does not match the frame's rows (read options this reader does not mirror) it falls back
    to ``i + 2``.
    """

    _MIRRORED = {"dtype", "nrows", "encoding", "sep", "delimiter", "usecols", "parse_dates",
                 "na_values", "keep_default_na", "low_memory", "index_col"}

    def __init__(self, path: Path, n_rows: int, read_options: Mapping[str, Any]) -> None:
        self.path, self.n_rows, self.options = path, n_rows, dict(read_options)
        self._starts: list[int] | None = None

    def __deepcopy__(self, memo: dict) -> FileLines:  # pandas deep-copies attrs; share the map
        return self

    def __call__(self, row: int) -> int:
        starts = self._record_starts()
        row = int(row)
        return starts[row] if 0 <= row < len(starts) else row + HEADER_LINES + 1

    def _record_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = []
            if set(self.options) <= self._MIRRORED:
                try:
                    starts = self._read_starts()
                except (OSError, UnicodeDecodeError, csv.Error):
                    starts = []
                if len(starts) >= self.n_rows:
                    self._starts = starts[: self.n_rows]
        return self._starts

    def _read_starts(self) -> list[int]:
        """The first line of every non-blank record after the header."""
        sep = self.options.get("sep", self.options.get("delimiter", ","))
        starts: list[int] = []
        with open(self.path, newline="", encoding=self.options.get("encoding", "utf-8")) as f:
            reader = csv.reader(f, delimiter=sep if isinstance(sep, str) and len(sep) == 1
                                else ",")
            ended = 0  # the last line of the previous record
            for record in reader:
                if record and not (len(record) == 1 and not record[0].strip()):
                    starts.append(ended + 1)
                ended = reader.line_num
        return starts[1:]  # the first record is the header


def file_line(frame: pd.DataFrame, row: int) -> int:
    """The 1-based physical file line of 0-based data row ``row`` of a frame from
    :func:`read_csv` (or derived from one; ``row + 2`` for a frame without a line map)."""
    lines = frame.attrs.get(LINES_ATTR)
    return lines(row) if lines is not None else int(row) + HEADER_LINES + 1


def _lines_text(frame: pd.DataFrame, rows: Sequence[int], limit: int = 5) -> str:
    shown = ", ".join(str(file_line(frame, r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"line{'s' if len(rows) > 1 else ''} {shown}{more}"


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> DataError:
    """A clear error for a file that is not UTF-8: the line and byte offset of the first bad
    byte in the file (pandas' exception counts from the start of its read buffer, not the
    file) and what to do about it."""
    data = path.read_bytes()
    try:
        data.decode(exc.encoding or "utf-8")
        offset, bad = exc.start, exc.object[exc.start:exc.start + 1]
    except UnicodeDecodeError as found:
        offset, bad = found.start, data[found.start:found.start + 1]
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    return DataError(
        f"{path}: line {line} is not valid UTF-8: byte 0x{bad.hex()} at byte offset {offset} of "
        f"the file (0-based; column {offset - line_start + 1} of line {line}); the file is not "
        "UTF-8 (perhaps Latin-1 or Windows-1252): re-save it as UTF-8"
    )


# ---- loading and validation ----------------------------------------------------------------


def read_csv(path: str | Path, **read_options: Any) -> pd.DataFrame:
    """Read a CSV file into a DataFrame, with clear errors for a missing, empty or broken file.

    Values are read as strings-or-numbers by pandas; ``NA``/empty cells become NaN.  Row order
    is kept (row ``i`` is file line ``i + 2``), which later error messages rely on.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a CSV file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (expected a CSV header and data rows)")
    try:
        frame = pd.read_csv(path, **read_options)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a CSV header and data rows)") from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a readable CSV file: {excerpt(str(exc), 300)}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows")
    frame.attrs[LINES_ATTR] = FileLines(path, len(frame), read_options)
    return frame


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, source: str) -> None:
    """Raise a :class:`DataError` naming every column of ``columns`` missing from ``frame``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(excerpt, missing))}; "
            f"the file has: {', '.join(map(excerpt, frame.columns))}"
        )


def numeric_columns(frame: pd.DataFrame, columns: Sequence[str], *, source: str) -> pd.DataFrame:
    """``frame[columns]`` as float64; a non-numeric cell raises naming column, line and value.

    Empty cells and ``NA`` stay NaN (gaps are :func:`fill_gaps`' job); infinities are refused.
    """
    out = {}
    for column in columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy() & raw.notna().to_numpy())
        if len(bad):
            first = bad[0]
            raise DataError(
                f"{source}: column {column!r} has non-numeric value {excerpt(raw.iloc[first])} at "
                f"{_lines_text(frame, list(bad))} (expected numbers; leave a cell empty or NA for a gap)"
            )
        arr = values.to_numpy(dtype="float64")
        infinite = np.flatnonzero(np.isinf(arr))
        if len(infinite):
            raise DataError(
                f"{source}: column {column!r} has an infinite value at {_lines_text(frame, list(infinite))}"
            )
        out[column] = arr
    numbers = pd.DataFrame(out, index=frame.index)
    numbers.attrs.update(frame.attrs)  # keep the file's line map for later messages
    return numbers


def time_index(
    frame: pd.DataFrame, time: str | Sequence[str], *, source: str
) -> pd.DatetimeIndex:
    """Parse the timestamps of ``frame`` and check they strictly increase.

    ``time`` is one column (any format pandas parses) or several columns that together make a
    timestamp (e.g. ``["year", "month", "day", "hour"]``).  Unparseable, duplicated or
    out-of-order timestamps raise a :class:`DataError` naming the column and the lines.
    """
    columns = [time] if isinstance(time, str) else list(time)
    require_columns(frame, columns, source=source)
    label = columns[0] if len(columns) == 1 else "+".join(columns)
    try:
        if len(columns) == 1:
            stamps = pd.to_datetime(frame[columns[0]], errors="coerce")
        else:
            parts = frame[columns].apply(pd.to_numeric, errors="coerce")
            stamps = pd.to_datetime(parts, errors="coerce")
    except (ValueError, TypeError) as exc:
        raise DataError(f"{source}: time column {label!r} cannot be parsed as dates: "
                        f"{excerpt(str(exc), 300)}") from None
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        shown = frame[columns].iloc[bad[0]].tolist()
        raise DataError(
            f"{source}: time column {label!r} has an empty or unparseable timestamp "
            f"{excerpt(shown if len(shown) > 1 else shown[0])} at {_lines_text(frame, list(bad))}"
        )
    index = pd.DatetimeIndex(stamps).as_unit("ns")
    values = index.asi8
    steps = np.diff(values)
    duplicated = np.flatnonzero(steps == 0) + 1
    if len(duplicated):
        raise DataError(
            f"{source}: time column {label!r} has duplicated timestamp {index[duplicated[0]]} at "
            f"{_lines_text(frame, list(duplicated))} (each timestamp must appear once)"
        )
    backwards = np.flatnonzero(steps < 0) + 1
    if len(backwards):
        row = backwards[0]
        raise DataError(
            f"{source}: time column {label!r} is not in increasing order: {index[row]} at "
            f"{_lines_text(frame, [row])} comes after {index[row - 1]} (sort the file by time)"
        )
    return index


def regularize(
    values: pd.DataFrame, index: pd.DatetimeIndex, *, source: str, freq: str | pd.Timedelta | None = None
) -> tuple[pd.DataFrame, pd.Timedelta, np.ndarray]:
    """Put rows on a regular time grid of step ``freq`` (default: the most common step).

    Missing timestamps are inserted as NaN rows (so windows never silently span a hole); a
    timestamp off the grid raises a :class:`DataError`.  Returns the regular frame (indexed by
    time), the step, and for each regular row the 0-based source row it came from (-1 where
    inserted), so later messages can still point at file lines.
    """
    if len(index) < 2:
        raise DataError(f"{source}: only {len(index)} row(s); a time series needs more")
    index = pd.DatetimeIndex(index).as_unit("ns")  # asi8 below counts nanoseconds
    steps = np.diff(index.asi8)
    step = pd.Timedelta(freq) if freq is not None else pd.Timedelta(int(pd.Series(steps).mode()[0]))
    step_ns = step.value
    off_grid = np.flatnonzero((index.asi8 - index.asi8[0]) % step_ns != 0)
    if len(off_grid):
        row = off_grid[0]
        raise DataError(
            f"{source}: timestamp {index[row]} at {_lines_text(values, [row])} is off the regular "
            f"{step} grid starting at {index[0]} (expected evenly spaced rows)"
        )
    positions = (index.asi8 - index.asi8[0]) // step_ns
    n = int(positions[-1]) + 1
    source_row = np.full(n, -1, dtype=np.int64)
    source_row[positions] = np.arange(len(index))
    full = pd.DataFrame(np.nan, index=pd.date_range(index[0], periods=n, freq=step),
                        columns=values.columns)
    full.iloc[positions] = values.to_numpy()
    full.attrs.update(values.attrs)  # source rows keep pointing at the file's lines
    return full, step, source_row


def fill_gaps(
    frame: pd.DataFrame,
    *,
    max_gap: int,
    source: str,
    source_row: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Linearly interpolate NaN runs of at most ``max_gap`` rows; refuse longer runs.

    A run at the very start or end (nothing to interpolate from) is also refused, as is a run
    longer than ``max_gap``: the error names the column, the time span and the file lines, so
    the user can fix or trim the file.  Returns the filled frame and, per column, how many
    values were interpolated (recorded in the run's provenance).
    """
    source_row = np.arange(len(frame)) if source_row is None else source_row
    filled = frame.copy()
    counts: dict[str, int] = {}
    for column in frame.columns:
        missing = frame[column].isna().to_numpy()
        counts[column] = int(missing.sum())
        if not counts[column]:
            continue
        padded = np.concatenate([[False], missing, [False]])
        edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
        for start, stop in zip(edges[::2], edges[1::2]):
            length = stop - start
            at_edge = start == 0 or stop == len(frame)
            if length > max_gap or at_edge:
                rows = [int(r) for r in source_row[start:stop] if r >= 0]
                where = f"around {_lines_text(frame, rows)}" if rows else (
                    f"(timestamps absent from the file; the gap follows "
                    f"{_lines_text(frame, [int(source_row[start - 1])])})" if start > 0 else ""
                )
                why = (
                    f"longer than the {max_gap} step(s) that may be interpolated"
                    if length > max_gap
                    else "at the start or end of the series, where it cannot be interpolated"
                )
                raise DataError(
                    f"{source}: column {column!r} has a gap of {length} missing value(s) from "
                    f"{frame.index[start]} to {frame.index[stop - 1]} {where}; it is {why} "
                    f"(fill or trim it, or raise the limit with --max-gap)"
                )
        filled[column] = frame[column].interpolate(method="linear", limit_area="inside")
    return filled, counts


# ---- splits, windows, scaling ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SplitBounds:
    """Row ranges of a chronological split: train ``[0, train_end)``, val ``[train_end,
    val_end)``, test ``[val_end, n)``."""

    n: int
    train_end: int
    val_end: int

    def ranges(self) -> dict[str, tuple[int, int]]:
        return {
            "train": (0, self.train_end),
            "val": (self.train_end, self.val_end),
            "test": (self.val_end, self.n),
        }


def chronological_split(n: int, fractions: Sequence[float] = (0.7, 0.15, 0.15)) -> SplitBounds:
    """Split ``n`` time-ordered rows into train/val/test by the given fractions (no shuffling)."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions must be three positive numbers, got {fractions}")
    total = float(sum(fractions))
    train_end = int(round(n * fractions[0] / total))
    val_end = int(round(n * (fractions[0] + fractions[1]) / total))
    return SplitBounds(n, train_end, val_end)


@dataclasses.dataclass
class Windows:
    """Supervised windows: ``x`` [n, lookback, features], ``y`` [n, horizon, targets], and the
    row index of each window's first forecast step (``origin``)."""

    x: np.ndarray
    y: np.ndarray
    origin: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def make_windows(
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    lookback: int,
    horizon: int,
    start: int,
    stop: int,
    stride: int = 1,
    dtype: str = "float32",
) -> Windows:
    """Windows whose forecast targets lie entirely in rows ``[start, stop)``.

    Window with origin ``t`` has inputs rows ``[t - lookback, t)`` and targets rows
    ``[t, t + horizon)``.  Inputs may reach back before ``start`` (earlier history is known at
    forecast time) but targets never cross ``stop``, so no test value is ever a training target.
    """
    if lookback < 1 or horizon < 1:
        raise ValueError(f"lookback and horizon must be >= 1, got {lookback}, {horizon}")
    first = max(start, lookback)
    origins = np.arange(first, stop - horizon + 1, stride)
    if len(origins) == 0:
        empty_x = np.zeros((0, lookback, inputs.shape[1]), dtype)
        return Windows(empty_x, np.zeros((0, horizon, targets.shape[1]), dtype), origins)
    x_view = np.lib.stride_tricks.sliding_window_view(inputs, lookback, axis=0)  # [n-L+1, F, L]
    y_view = np.lib.stride_tricks.sliding_window_view(targets, horizon, axis=0)  # [n-H+1, T, H]
    x = x_view[origins - lookback].transpose(0, 2, 1).astype(dtype)
    y = y_view[origins].transpose(0, 2, 1).astype(dtype)
    return Windows(x, y, origins)


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Per-column mean and variance fitted on training rows (floors keep constant columns safe)."""

    mean: np.ndarray
    variance: np.ndarray

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / np.sqrt(self.variance)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * np.sqrt(self.variance) + self.mean


def fit_scaler(train_values: np.ndarray, min_variance: float = 1e-6) -> Scaler:
    """Mean and variance per column of ``train_values`` [rows, columns] (train split only)."""
    values = np.asarray(train_values, dtype="float64")
    variance = np.maximum(values.var(axis=0), min_variance)
    return Scaler(values.mean(axis=0), variance)


# ---- baselines and metrics -------------------------------------------------------------------


def persistence_forecast(x: np.ndarray, target_columns: Sequence[int], horizon: int) -> np.ndarray:
    """Naive forecast: the last observed value of each target, repeated ``horizon`` times.

    ``x`` [n, lookback, features] (raw units); returns [n, horizon, len(target_columns)].
    """
    last = x[:, -1, list(target_columns)]
    return np.repeat(last[:, None, :], horizon, axis=1)


def seasonal_naive_forecast(
    x: np.ndarray, target_columns: Sequence[int], horizon: int, season: int
) -> np.ndarray:
    """Naive forecast: the value one season earlier (same hour yesterday, same day last week).

    Step ``h`` (0-based) takes the observation ``season * ceil((h + 1) / season)`` steps
    before it, i.e. the most recent observed value in the same seasonal position.  Needs
    ``season <= lookback``.
    """
    lookback = x.shape[1]
    if season > lookback:
        raise ValueError(f"season {season} is longer than the lookback {lookback}")
    cols = list(target_columns)
    out = np.empty((x.shape[0], horizon, len(cols)), dtype=x.dtype)
    for h in range(horizon):
        lag = season * math.ceil((h + 1) / season)
        out[:, h, :] = x[:, lookback + h - lag, cols]
    return out


def forecast_errors(
    y_true: np.ndarray, y_pred: np.ndarray, target_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """MAE and RMSE overall and per horizon step (averaged over targets), and per target.

    ``y_true`` and ``y_pred`` are [n, horizon, targets] (or [n, horizon]) in raw units.
    """
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64").reshape(y_true.shape)
    if y_true.ndim == 2:
        y_true, y_pred = y_true[..., None], y_pred[..., None]
    error = y_pred - y_true
    result: dict[str, Any] = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae_per_horizon": [float(v) for v in np.mean(np.abs(error), axis=(0, 2))],
        "rmse_per_horizon": [float(v) for v in np.sqrt(np.mean(error**2, axis=(0, 2)))],
    }
    if target_names is not None and len(target_names) > 1:
        result["per_target"] = {
            name: {
                "mae": float(np.mean(np.abs(error[..., i]))),
                "rmse": float(np.sqrt(np.mean(error[..., i] ** 2))),
            }
            for i, name in enumerate(target_names)
        }
    return result


def compare_to_baselines(
    y_true: np.ndarray,
    model_pred: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    target_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The model's errors next to each baseline's, and its margin over the best baseline MAE.

    ``improvement_over_best_baseline_mae`` is ``best_baseline_mae - model_mae`` (positive: the
    model is better), with the same as a percentage of the baseline's MAE.
    """
    model = forecast_errors(y_true, model_pred, target_names)
    base = {name: forecast_errors(y_true, pred, target_names) for name, pred in baselines.items()}
    best = min(base, key=lambda k: base[k]["mae"])
    best_mae = base[best]["mae"]
    margin = best_mae - model["mae"]
    return {
        "model": model,
        "baselines": base,
        "best_baseline": best,
        "best_baseline_mae": best_mae,
        "improvement_over_best_baseline_mae": margin,
        "improvement_over_best_baseline_mae_pct": 100.0 * margin / best_mae if best_mae else None,
        "beats_best_baseline": bool(margin > 0),
    }


# ---- the whole pipeline, for recipes ---------------------------------------------------------


@dataclasses.dataclass
class Series:
    """A validated, regular, gap-filled series: ``frame`` indexed by time, plus provenance."""

    frame: pd.DataFrame
    step: pd.Timedelta
    interpolated: dict[str, int]
    source: str


def load_series_csv(
    path: str | Path,
    *,
    time: str | Sequence[str],
    columns: Sequence[str],
    max_gap: int = 3,
    freq: str | pd.Timedelta | None = None,
    source: str | None = None,
) -> Series:
    """Read, validate and regularize the numeric ``columns`` of a time-indexed CSV file.

    Runs :func:`read_csv`, :func:`require_columns`, :func:`numeric_columns`,
    :func:`time_index`, :func:`regularize` and :func:`fill_gaps` in that order; any problem
    raises a :class:`DataError` naming ``source`` (default: the path), column and line.
    Columns not listed are ignored (their gaps do not matter).
    """
    source = source or str(path)
    frame = read_csv(path)
    time_columns = [time] if isinstance(time, str) else list(time)
    require_columns(frame, [*time_columns, *columns], source=source)
    values = numeric_columns(frame, list(columns), source=source)
    index = time_index(frame, time, source=source)
    regular, step, source_row = regularize(values, index, source=source, freq=freq)
    filled, counts = fill_gaps(regular, max_gap=max_gap, source=source, source_row=source_row)
    return Series(filled, step, counts, source)


@dataclasses.dataclass
class WindowedSeries:
    """Train/val/test windows of one series and the training-split statistics."""

    train: Windows
    val: Windows
    test: Windows
    bounds: SplitBounds
    input_columns: list[str]
    target_columns: list[str]
    target_index: list[int]  # position of each target among the input columns
    input_scaler: Scaler
    target_scaler: Scaler
    index: pd.DatetimeIndex

    def split_info(self) -> dict[str, Any]:
        """Row ranges, dates and window counts per split (JSON-friendly, for provenance)."""
        info = {}
        for name, (start, stop) in self.bounds.ranges().items():
            windows = getattr(self, name)
            info[name] = {
                "rows": [int(start), int(stop)],
                "from": str(self.index[start]),
                "to": str(self.index[stop - 1]),
                "windows": len(windows),
            }
        return info


def window_series(
    frame: pd.DataFrame,
    *,
    inputs: Sequence[str],
    targets: Sequence[str],
    lookback: int,
    horizon: int,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    source: str = "data",
) -> WindowedSeries:
    """Split ``frame`` chronologically, window it, and fit scaling statistics on train rows.

    Targets must be among ``inputs`` (the naive baselines read them from the history).  A
    series too short to give every split at least one (lookback + horizon) window raises a
    :class:`DataError` saying how many rows there are and how many are needed.
    """
    inputs, targets = list(inputs), list(targets)
    absent = [t for t in targets if t not in inputs]
    if absent:
        raise ValueError(f"target(s) {absent} must also be input features")
    n = len(frame)
    bounds = chronological_split(n, fractions)
    # smallest n that gives the test and val splits horizon rows and train lookback+horizon
    need = max(
        math.ceil((lookback + horizon) * sum(fractions) / fractions[0]),
        math.ceil(horizon * sum(fractions) / min(fractions[1], fractions[2])),
    )
    values = frame[inputs].to_numpy(dtype="float64")
    target_values = frame[targets].to_numpy(dtype="float64")
    split = {
        name: make_windows(values, target_values, lookback=lookback, horizon=horizon,
                           start=start, stop=stop)
        for name, (start, stop) in bounds.ranges().items()
    }
    empty = [name for name, w in split.items() if len(w) == 0]
    if empty:
        raise DataError(
            f"{source}: the series is too short: {n} rows give no {'/'.join(empty)} window of "
            f"lookback {lookback} + horizon {horizon} with a {'/'.join(map(str, fractions))} "
            f"chronological split; need at least {need} rows (or a shorter --lookback/--horizon)"
        )
    train_rows = slice(0, bounds.train_end)
    return WindowedSeries(
        train=split["train"],
        val=split["val"],
        test=split["test"],
        bounds=bounds,
        input_columns=inputs,
        target_columns=targets,
        target_index=[inputs.index(t) for t in targets],
        input_scaler=fit_scaler(values[train_rows]),
        target_scaler=fit_scaler(target_values[train_rows]),
        index=pd.DatetimeIndex(frame.index),
    )
