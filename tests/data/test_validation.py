"""Unit tests for features.validate and features.missing_days on hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptocast import features
from cryptocast.errors import DataValidationError
from cryptocast.features import FORECASTS, validate

from grouprows import forecast_rows

SOL = features.SOLANA
FNG = features.FEAR_GREED


def candle_rows(**overrides) -> pd.DataFrame:
    """Three good candles (out of order); `overrides` maps column -> {day: value}."""
    frame = pd.DataFrame({
        "day": ["2024-01-03", "2024-01-01", "2024-01-02"],
        "open": [103.0, 101.0, 102.0],
        "high": [113.0, 111.0, 112.0],
        "low": [93.0, 91.0, 92.0],
        "close": [108.0, 106.0, 107.0],
        "volume": [3.0, 1.0, 2.0],
        "source": ["binance", "binance", "kraken"],
    })
    for column, by_day in overrides.items():
        frame[column] = frame[column].astype(object)
        for day, value in by_day.items():
            frame.loc[frame["day"] == day, column] = value
    return frame


def fng_rows(values, days=("2024-01-01", "2024-01-02", "2024-01-03"), classes=None) -> pd.DataFrame:
    return pd.DataFrame({"day": list(days), "value": list(values),
                         "classification": list(classes or ["Fear"] * len(days))})


def fails(spec, frame, *expected: str) -> str:
    with pytest.raises(DataValidationError) as info:
        features.validate(spec, frame, "src")
    message = str(info.value)
    for text in expected:
        assert text in message, message
    return message


# --- schema --------------------------------------------------------------------------------------------


def test_missing_column_names_the_field():
    fails(SOL, candle_rows().drop(columns=["close"]), "src: missing field(s) close")


def test_several_missing_columns_are_all_named():
    message = fails(FNG, fng_rows([1, 2, 3]).drop(columns=["value", "classification"]))
    assert "value" in message and "classification" in message


@pytest.mark.parametrize("missing", [np.nan, None])
def test_missing_value_names_the_day_and_the_field(missing):
    fails(SOL, candle_rows(close={"2024-01-02": missing}), "src 2024-01-02: missing value for 'close'")


def test_missing_string_value_names_the_day_and_the_field():
    fails(SOL, candle_rows(source={"2024-01-03": None}), "src 2024-01-03: missing value for 'source'")


@pytest.mark.parametrize("as_datetimes", [False, True], ids=["raw", "datetime64-with-NaT"])
def test_missing_day_is_a_validation_error(as_datetimes):
    """A row without a day cannot name its day, but it is still bad input, not a crash.

    The sources parse timestamps with errors="coerce", so an unparseable upstream time arrives here as NaT.
    """
    frame = candle_rows()
    frame["day"] = pd.to_datetime(frame["day"]) if as_datetimes else frame["day"].astype(object)
    frame.loc[1, "day"] = pd.NaT if as_datetimes else None
    fails(SOL, frame, "'day'")


@pytest.mark.parametrize("bad", ["abc", "inf", "-inf", "", "1,5"])
def test_non_numeric_value_is_not_a_finite_number(bad):
    fails(SOL, candle_rows(open={"2024-01-02": bad}), "src 2024-01-02:", "'open' is not a finite number")


def test_infinite_float_is_not_a_finite_number():
    fails(SOL, candle_rows(volume={"2024-01-01": np.inf}), "src 2024-01-01: 'volume' is not a finite number")


def test_duplicate_day():
    frame = candle_rows()
    frame.loc[0, "day"] = "2024-01-02"
    fails(SOL, frame, "src 2024-01-02: duplicate day")


def test_duplicate_day_after_normalising_the_time_of_day():
    frame = candle_rows()
    frame["day"] = ["2024-01-02 13:45:00", "2024-01-01 00:00:00", "2024-01-02 00:00:00"]
    fails(SOL, frame, "src 2024-01-02: duplicate day")


# --- rules -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "problem"), [(101, "value outside 0..100"), (-1, "value outside 0..100"),
                                                (40.5, "'value' is not an integer")])
def test_fear_greed_value_errors(value, problem):
    fails(FNG, fng_rows([10, value, 30]), f"src 2024-01-02: {problem}")


def test_fear_greed_bounds_are_inclusive():
    out = features.validate(FNG, fng_rows([0, 100, "50.0"], classes=["Extreme Fear", "Extreme Greed", "Neutral"]),
                            "src")
    assert out["value"].tolist() == [0, 100, 50]


def test_fear_greed_unknown_classification():
    fails(FNG, fng_rows([1, 2, 3], classes=["Fear", "Panic", "Greed"]), "src 2024-01-02: unknown classification")


def test_price_rules():
    fails(SOL, candle_rows(low={"2024-01-01": 0.0}), "src 2024-01-01: price is zero or negative")
    fails(SOL, candle_rows(high={"2024-01-03": 90.0}), "src 2024-01-03: high < low")
    fails(SOL, candle_rows(volume={"2024-01-02": -1.0}), "src 2024-01-02: volume is negative")


# --- output ------------------------------------------------------------------------------------------------


def test_output_is_sorted_by_day_with_coerced_dtypes():
    raw = candle_rows(open={"2024-01-02": "101.5"}, volume={"2024-01-03": "7"}, close={"2024-01-01": 106})
    out = features.validate(SOL, raw, "src")
    expected = pd.DataFrame({
        "day": pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]), dtype="datetime64[ns]"),
        "open": [101.0, 101.5, 103.0],
        "high": [111.0, 112.0, 113.0],
        "low": [91.0, 92.0, 93.0],
        "close": [106.0, 107.0, 108.0],
        "volume": [1.0, 2.0, 7.0],
        "source": pd.Series(["binance", "kraken", "binance"], dtype="object"),
    })
    pd.testing.assert_frame_equal(out, expected, check_exact=True)


def test_string_numbers_are_coerced():
    out = features.validate(SOL, candle_rows(close={"2024-01-02": "107.5"}), "src")
    assert out.loc[1, "close"] == 107.5 and out["close"].dtype == np.float64
    fg = features.validate(FNG, fng_rows(["40", 55.0, 7], days=("2024-01-03", "2024-01-01", "2024-01-02"),
                                         classes=["Fear", "Greed", "Extreme Fear"]), "src")
    assert fg["value"].tolist() == [55, 7, 40]
    assert fg["value"].dtype == np.int64
    assert fg["day"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_extra_columns_are_dropped_and_time_of_day_removed():
    raw = candle_rows()
    raw["extra"] = 1
    raw["day"] = ["2024-01-03 00:00:00", "2024-01-01 23:59:59", "2024-01-02 12:00:00"]
    out = features.validate(SOL, raw, "src")
    assert list(out.columns) == ["day", "open", "high", "low", "close", "volume", "source"]
    assert out["day"].tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]


# --- missing_days ------------------------------------------------------------------------------------------


def test_missing_days_finds_two_holes():
    days = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05", "2024-01-07"]))
    holes = features.missing_days(days, pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-07"))
    assert holes == [pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-06")]


def test_missing_days_includes_both_ends_of_the_range():
    days = pd.Series(pd.to_datetime(["2024-12-31", "2025-01-01"]))
    holes = features.missing_days(days, pd.Timestamp("2024-12-30"), pd.Timestamp("2025-01-02"))
    assert holes == [pd.Timestamp("2024-12-30"), pd.Timestamp("2025-01-02")]


def test_missing_days_of_a_complete_series_is_empty():
    days = pd.Series(pd.date_range("2024-02-27", "2024-03-01", freq="D"))
    assert features.missing_days(days, pd.Timestamp("2024-02-27"), pd.Timestamp("2024-03-01")) == []


def test_forecast_rows_must_have_ordered_positive_quantiles():
    rows = forecast_rows("2024-01-02")
    rows.loc[3, "q75"] = rows.loc[3, "q90"] + 1
    with pytest.raises(DataValidationError, match="test row 3: quantiles decrease with their level"):
        validate(FORECASTS, rows, "test")
    rows = forecast_rows("2024-01-02")
    rows.loc[0, ["q2_5", "q5"]] = [0.0, 0.0]
    with pytest.raises(DataValidationError, match="zero or negative"):
        validate(FORECASTS, rows, "test")
