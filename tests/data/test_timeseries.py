"""lstm_zoo.data.timeseries: CSV validation, gaps, chronological windows, scaling, baselines, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_zoo.data import timeseries as ts
from lstm_zoo.errors import DataError


def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- loading and validation ----------------------------------------------------------------


def test_read_csv_refuses_empty_and_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty"):
        ts.read_csv(write(tmp_path, "", "empty.csv"))
    with pytest.raises(DataError, match="header but no data rows"):
        ts.read_csv(write(tmp_path, "t,a\n", "header.csv"))
    with pytest.raises(DataError, match="file not found"):
        ts.read_csv(tmp_path / "absent.csv")


def test_require_columns_names_missing_and_available(tmp_path):
    frame = ts.read_csv(write(tmp_path, "t,a\n1,2\n"))
    with pytest.raises(DataError, match=r"missing column\(s\) 'b', 'c'; the file has: 't', 'a'"):
        ts.require_columns(frame, ["a", "b", "c"], source="x.csv")


def test_numeric_columns_names_column_line_and_value(tmp_path):
    frame = ts.read_csv(write(tmp_path, "t,a\n1,2\n2,oops\n3,NA\n"))
    with pytest.raises(DataError, match=r"column 'a' has non-numeric value 'oops' at line 3"):
        ts.numeric_columns(frame, ["a"], source="x.csv")
    frame = ts.read_csv(write(tmp_path, "t,a\n1,2\n2,\n3,4\n", "ok.csv"))
    values = ts.numeric_columns(frame, ["a"], source="ok.csv")
    assert np.isnan(values["a"][1]) and values["a"][2] == 4


def test_time_index_refuses_duplicates_and_disorder(tmp_path):
    dup = ts.read_csv(write(tmp_path, "t,a\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n"))
    with pytest.raises(DataError, match=r"duplicated timestamp 2020-01-02.* line 4"):
        ts.time_index(dup, "t", source="d.csv")
    back = ts.read_csv(write(tmp_path, "t,a\n2020-01-02,1\n2020-01-01,2\n", "b.csv"))
    with pytest.raises(DataError, match=r"not in increasing order.*line 3"):
        ts.time_index(back, "t", source="b.csv")
    bad = ts.read_csv(write(tmp_path, "t,a\n2020-01-01,1\nnot a date,2\n", "c.csv"))
    with pytest.raises(DataError, match=r"unparseable timestamp 'not a date' at line 3"):
        ts.time_index(bad, "t", source="c.csv")


def test_time_index_from_several_columns():
    frame = pd.DataFrame({"year": [2010, 2010], "month": [1, 1], "day": [1, 1], "hour": [0, 1]})
    index = ts.time_index(frame, ["year", "month", "day", "hour"], source="s")
    assert list(index) == [pd.Timestamp("2010-01-01 00:00"), pd.Timestamp("2010-01-01 01:00")]


def test_regularize_inserts_missing_timestamps_as_nan():
    index = pd.DatetimeIndex(["2020-01-01", "2020-01-02", "2020-01-04", "2020-01-05"])
    frame = pd.DataFrame({"a": [1.0, 2.0, 4.0, 5.0]})
    full, step, source_row = ts.regularize(frame, index, source="s")
    assert step == pd.Timedelta(days=1)
    assert len(full) == 5 and np.isnan(full["a"].iloc[2])
    assert list(source_row) == [0, 1, -1, 2, 3]
    off = pd.DatetimeIndex(["2020-01-01 00:00", "2020-01-01 01:00", "2020-01-01 02:00",
                            "2020-01-01 03:00", "2020-01-01 03:30", "2020-01-01 04:00"])
    with pytest.raises(DataError, match=r"03:30:00 at line 6 is off the regular 0 days 01:00"):
        ts.regularize(pd.DataFrame({"a": range(6)}), off, source="s")


def test_fill_gaps_interpolates_short_and_refuses_long():
    index = pd.date_range("2020-01-01", periods=8, freq="h")
    frame = pd.DataFrame({"a": [0, 1, np.nan, 3, 4, 5, 6, 7.0],
                          "b": [0, np.nan, np.nan, np.nan, 4, 5, 6, 7.0]}, index=index)
    filled, counts = ts.fill_gaps(frame[["a"]], max_gap=2, source="s")
    assert filled["a"].iloc[2] == pytest.approx(2.0)
    assert counts == {"a": 1}
    with pytest.raises(DataError, match=r"column 'b' has a gap of 3 missing value\(s\).*lines 3, 4, 5"):
        ts.fill_gaps(frame, max_gap=2, source="s")
    edge = pd.DataFrame({"a": [np.nan, 1.0, 2.0]}, index=index[:3])
    with pytest.raises(DataError, match="at the start or end"):
        ts.fill_gaps(edge, max_gap=5, source="s")


# ---- splits, windows, scaling ----------------------------------------------------------------


def test_chronological_split_fractions():
    bounds = ts.chronological_split(100)
    assert (bounds.train_end, bounds.val_end) == (70, 85)
    assert bounds.ranges()["test"] == (85, 100)


def test_make_windows_align_inputs_and_targets_and_respect_split():
    n = 30
    inputs = np.stack([np.arange(n), 100 + np.arange(n)], axis=1).astype(float)
    targets = inputs[:, :1]
    w = ts.make_windows(inputs, targets, lookback=4, horizon=3, start=10, stop=20)
    assert w.origin[0] == 10 and w.origin[-1] == 17  # last targets are rows 17, 18, 19
    np.testing.assert_array_equal(w.x[0, :, 0], [6, 7, 8, 9])
    np.testing.assert_array_equal(w.x[0, :, 1], [106, 107, 108, 109])
    np.testing.assert_array_equal(w.y[0, :, 0], [10, 11, 12])
    assert w.y.max() < 20 and w.x.dtype == np.float32
    empty = ts.make_windows(inputs, targets, lookback=4, horizon=3, start=28, stop=30)
    assert len(empty) == 0 and empty.x.shape == (0, 4, 2)


def test_fit_scaler_uses_given_rows_and_inverts():
    scaler = ts.fit_scaler(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(scaler.mean, [2.0, 5.0])
    assert scaler.variance[1] > 0  # constant column floored, no division by zero
    values = np.array([[0.0, 7.0]])
    np.testing.assert_allclose(scaler.inverse(scaler.transform(values)), values)


# ---- baselines and metrics -------------------------------------------------------------------


def test_persistence_and_seasonal_naive():
    x = np.arange(10, dtype=float).reshape(1, 10, 1)  # values 0..9
    np.testing.assert_array_equal(ts.persistence_forecast(x, [0], 3)[0, :, 0], [9, 9, 9])
    # season 4: step h takes the value 4 steps earlier (rows 10..15 -> 6,7,8,9,6,7)
    np.testing.assert_array_equal(ts.seasonal_naive_forecast(x, [0], 6, 4)[0, :, 0],
                                  [6, 7, 8, 9, 6, 7])
    with pytest.raises(ValueError, match="longer than the lookback"):
        ts.seasonal_naive_forecast(x, [0], 3, 11)


def test_forecast_errors_and_comparison():
    y = np.zeros((2, 3, 1))
    pred = np.array([[[1.0], [2.0], [3.0]], [[-1.0], [-2.0], [-3.0]]])
    errors = ts.forecast_errors(y, pred)
    assert errors["mae_per_horizon"] == [1.0, 2.0, 3.0]
    assert errors["rmse"] == pytest.approx(np.sqrt(14 / 3))
    result = ts.compare_to_baselines(y, pred * 0.5, {"a": pred, "b": pred * 2})
    assert result["best_baseline"] == "a"
    assert result["improvement_over_best_baseline_mae"] == pytest.approx(1.0)
    assert result["beats_best_baseline"] is True
