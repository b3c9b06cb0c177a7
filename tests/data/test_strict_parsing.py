"""Strict parsing (issue 10, findings 3 and 6): every date, timestamp and number parses or stops the run
with one line naming the file (or response), the row and the value; nothing is dropped silently."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cryptocast import features
from cryptocast.errors import DataValidationError, SourceError
from cryptocast.sources import parsing

import feature_backfill
import feature_pipeline
from conftest import error_lines, group_rows, run_main
from fakeapi import BINANCE_PATH, CC_PATH, FNG_PATH

GOOD_CANDLES = ["2024-01-01,10,12,9,11,100", "2024-01-02,11,13,10,12,200", "2024-01-03,12,14,11,13,300"]


def write_csv(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def binance_csv(tmp_path: Path, rows: list[str]) -> Path:
    return write_csv(tmp_path, "sol.csv", "date,open,high,low,close,volume", rows)


def backfill_fails(capsys, home, *argv: str) -> str:
    """The backfill exits 1 with one line, and the solana group is left as it was (here: never created)."""
    assert run_main(feature_backfill.main, *argv) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert group_rows(home, features.SOLANA) is None
    return lines[0]


# --- dates in CSV exports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["02/01/2024", "2021-02-30", "2024-01-02T00:00:00", "1704153600000", "2024-1-2",
                                 ""])
def test_an_unparseable_date_is_an_error_naming_file_line_and_value(api, home, tmp_path, capsys, bad):
    """Before: such rows were filtered out before validation ("read 2 rows", exit 0)."""
    path = binance_csv(tmp_path, [GOOD_CANDLES[0], bad + GOOD_CANDLES[1][10:], GOOD_CANDLES[2]])
    line = backfill_fails(capsys, home, "--solana-csv", str(path))
    assert line == (f"error: feature_backfill: csv sol.csv line 3: date {bad!r} is not a date in YYYY-MM-DD form")


@pytest.mark.parametrize("bad", ["\uff12\uff10\uff12\uff14-01-02",
                                 "\u0662\u0660\u0662\u0664-\u0660\u0661-\u0660\u0662"],
                         ids=["fullwidth digits", "arabic-indic digits"])
def test_a_date_in_other_scripts_digits_is_not_yyyy_mm_dd(bad):
    """Before: regex \\d matched any Unicode digit and pandas read them, so such a 'date' was taken."""
    with pytest.raises(SourceError, match=f"x line 3: date {bad!r} is not a date in YYYY-MM-DD form"):
        parsing.iso_days(pd.Series(["2024-01-01", bad]), parsing.csv_line("x"))


def test_a_csv_day_before_any_market_existed_is_refused(api, home, tmp_path, capsys):
    """Before: 1900-01-01 was stored, and every later update asked for 1900..today."""
    path = binance_csv(tmp_path, ["1900-01-01,10,12,9,11,100", *GOOD_CANDLES])
    line = backfill_fails(capsys, home, "--solana-csv", str(path))
    assert line == "error: feature_backfill: csv sol.csv 1900-01-01: day before 2009-01-03"


def test_a_csv_with_no_rows_is_an_error(api, home, tmp_path, capsys):
    path = binance_csv(tmp_path, [])
    assert backfill_fails(capsys, home, "--solana-csv", str(path)) == "error: feature_backfill: csv sol.csv: no rows"


def test_a_csv_dated_in_the_future_is_an_error(api, home, tmp_path, capsys):
    """Rows after the last complete day are a partial day at most: a date past the real today is bad input."""
    path = binance_csv(tmp_path, [*GOOD_CANDLES, "2100-01-01,10,12,9,11,100"])
    line = backfill_fails(capsys, home, "--solana-csv", str(path))
    assert line.startswith("error: feature_backfill: csv sol.csv line 5: date '2100-01-01' is after today (")


# --- epoch timestamps: seconds, milliseconds and microseconds, told apart by magnitude ------------------------

FNG_HEADER = "date,timestamp,value,classification"
FNG_ROWS = [("2024-01-01", 1704067200, 30, "Fear"), ("2024-01-02", 1704153600, 15, "Extreme Fear"),
            ("2024-01-03", 1704240000, 50, "Neutral")]


def fng_csv(tmp_path: Path, scale: int = 1, rows=FNG_ROWS) -> Path:
    return write_csv(tmp_path, "fng.csv", FNG_HEADER, [f"{d},{t * scale},{v},{c}" for d, t, v, c in rows])


@pytest.mark.parametrize("scale", [1, 1000, 1_000_000], ids=["s", "ms", "us"])
def test_fear_greed_export_timestamps_in_any_epoch_unit(api, home, tmp_path, capsys, scale):
    """Before: milliseconds and microseconds crashed with OutOfBoundsDatetime (exit 2)."""
    assert run_main(feature_backfill.main, "--fear-greed-csv", str(fng_csv(tmp_path, scale))) == 0
    stored = group_rows(home, features.FEAR_GREED)
    assert stored["day"].dt.strftime("%Y-%m-%d").tolist() == [d for d, _, _, _ in FNG_ROWS]
    assert stored["value"].tolist() == [30, 15, 50]


def test_fear_greed_export_date_must_match_its_timestamp(api, home, tmp_path, capsys):
    """Before: the `date` column was ignored."""
    rows = [FNG_ROWS[0], ("2024-01-05", 1704153600, 15, "Extreme Fear"), FNG_ROWS[2]]
    assert run_main(feature_backfill.main, "--fear-greed-csv", str(fng_csv(tmp_path, rows=rows))) == 1
    assert error_lines(capsys) == ["error: feature_backfill: csv fng.csv line 3: date '2024-01-05' does not match "
                                   "timestamp '1704153600' (2024-01-02)"]


@pytest.mark.parametrize(("bad", "problem"), [("abc", "is not an epoch timestamp"),
                                              ("1704070800", "is not at 00:00 UTC (2024-01-01 01:00)"),
                                              ("-5", "is not an epoch timestamp"),
                                              ("1e30", "is not an epoch timestamp")])
def test_a_bad_timestamp_names_file_line_and_value(api, home, tmp_path, capsys, bad, problem):
    path = write_csv(tmp_path, "fng.csv", FNG_HEADER, ["2024-01-01,1704067200,30,Fear", f"2024-01-01,{bad},30,Fear"])
    assert run_main(feature_backfill.main, "--fear-greed-csv", str(path)) == 1
    assert error_lines(capsys) == [f"error: feature_backfill: csv fng.csv line 3: timestamp {bad!r} {problem}"]


def test_cryptocompare_export_with_millisecond_timestamps(api, home, tmp_path, monkeypatch, shared_data):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-01")
    paths = {}
    for group in ("solana", "bitcoin"):
        source = pd.read_csv(shared_data / "cryptocompare" / f"{group}_kraken_daily.csv").tail(5)
        source["TIMESTAMP"] = source["TIMESTAMP"] * 1000
        paths[group] = tmp_path / f"{group}_ms.csv"
        source.to_csv(paths[group], index=False)
    assert run_main(feature_backfill.main, "--solana-csv", str(paths["solana"]), "--bitcoin-csv",
                    str(paths["bitcoin"]), "--fear-greed-csv", str(fng_csv(tmp_path))) == 0
    days = group_rows(home, features.SOLANA)["day"].dt.strftime("%Y-%m-%d").tolist()
    assert days == ["2024-12-19", "2024-12-20", "2024-12-21", "2024-12-22"]  # the partial 12-23 is dropped


BINANCE_DUMP_ROWS = [  # data.binance.vision spot klines: no header; milliseconds until 2024, microseconds from 2025
    "1735516800000,94.1,95.2,91.0,92.5,1000.5,1735603199999,1.0,10,1.0,1.0,0",
    "1735603200000,92.5,96.0,92.0,95.0,1100.5,1735689599999,1.0,10,1.0,1.0,0",
    "1735689600000000,95.0,99.0,94.0,98.0,1200.5,1735775999999999,1.0,10,1.0,1.0,0",
]


def at_btc_scale(row: str) -> str:
    fields = row.split(",")
    fields[1:5] = [str(float(price) * 1000) for price in fields[1:5]]
    return ",".join(fields)


def test_a_binance_data_dump_with_milli_and_microseconds(api, home, tmp_path, monkeypatch):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-03")
    path = tmp_path / "SOLUSDT-1d.csv"
    path.write_text("\n".join(BINANCE_DUMP_ROWS) + "\n")
    btc = tmp_path / "BTCUSDT-1d.csv"  # the same days at BTC's scale: SOL given as BTC would be refused
    btc.write_text("\n".join(map(at_btc_scale, BINANCE_DUMP_ROWS)) + "\n")
    assert run_main(feature_backfill.main, "--solana-csv", str(path), "--bitcoin-csv", str(btc),
                    "--fear-greed-csv", str(fng_csv(tmp_path))) == 0
    stored = group_rows(home, features.SOLANA)
    assert stored["day"].dt.strftime("%Y-%m-%d").tolist() == ["2024-12-30", "2024-12-31", "2025-01-01"]
    assert stored["close"].tolist() == [92.5, 95.0, 98.0]
    assert set(stored["source"]) == {"binance"}


# --- the APIs: timestamps and types --------------------------------------------------------------------------


def rewrite_klines(api, change) -> None:
    normal = api._binance

    def changed(query):
        status, body = normal(query, {})
        return status, json.dumps([change(row) for row in json.loads(body)]).encode()

    api.faults[BINANCE_PATH] = changed


def test_binance_klines_in_microseconds_are_read(api, home, stocked):
    """Binance's API answers in microseconds when asked (timeUnit=MICROSECOND); the day must not move."""
    rewrite_klines(api, lambda row: [row[0] * 1000, *row[1:]])
    assert run_main(feature_pipeline.main) == 0
    assert group_rows(home, features.SOLANA)["day"].max() == pd.Timestamp("2024-02-29")


def test_shifted_kline_timestamps_are_refused(api, home, stocked, capsys):
    """A kline opening at 08:00 (an API `timeZone`) is not the UTC day's candle; before, it was stored as that day."""
    rewrite_klines(api, lambda row: [row[0] + 8 * 3_600_000, *row[1:]])
    assert run_main(feature_pipeline.main) == 1
    line, = error_lines(capsys)
    assert "binance SOLUSDT kline 1: open time '1708416000000' is not at 00:00 UTC (2024-02-20 08:00)" in line
    assert group_rows(home, features.SOLANA).equals(stocked["solana"])


@pytest.mark.parametrize(("path", "mangle", "expected"), [
    (BINANCE_PATH, "kline", "binance SOLUSDT 2024-02-20: 'open' is a boolean, not a number"),
    (FNG_PATH, "fng", "alternative.me fear_greed 2024-02-29: 'value' is a boolean, not a number"),
    (CC_PATH, "cc", "cryptocompare SOL-USD 2024-02-29: 'volume' is a boolean, not a number"),
])
def test_a_json_boolean_is_not_a_number(api, home, stocked, monkeypatch, capsys, path, mangle, expected):
    """Before: JSON `true` was stored as 1.0 (a price) or 1 (the index)."""
    if mangle == "cc":
        monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    normal = {BINANCE_PATH: api._binance, FNG_PATH: api._fear_greed, CC_PATH: api._cryptocompare}[path]

    def with_true(query):
        status, body = normal(query, {"authorization": f"Apikey {api.api_key}"})
        data = json.loads(body)
        if mangle == "kline":
            data[0][1] = True
        elif mangle == "fng":
            data["data"][0]["value"] = True
        else:
            data["Data"][-1]["VOLUME"] = True
        return status, json.dumps(data).encode()

    api.faults[path] = with_true
    assert run_main(feature_pipeline.main) == 1
    assert expected in error_lines(capsys)[0]


# --- plausible values ----------------------------------------------------------------------------------------

def candles(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame({"day": ["2024-01-01", "2024-01-02"], "open": [100.0, 101.0], "high": [110.0, 111.0],
                          "low": [90.0, 91.0], "close": [105.0, 106.0], "volume": [5.0, 6.0],
                          "source": ["binance", "binance"]})
    for column, value in overrides.items():
        frame[column] = frame[column].astype(object)
        frame.loc[1, column] = value
    return frame


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"high": 1e308, "close": 1e307}, "price above 10000000 (implausible)"),
    ({"low": 1e-300, "open": 1e-300, "close": 1e-300, "high": 2e-300}, "price below 0.0001 (implausible)"),
    ({"low": 1.0}, "high is more than 10x low (implausible)"),
    ({"volume": 1e300}, "volume above 1e+11 (implausible)"),
    ({"open": True}, "'open' is a boolean, not a number"),
    ({"day": "1900-01-01"}, "day before 2009-01-03"),
])
def test_implausible_candles_are_refused(overrides, problem):
    """Before: high = 1e308 and low = 1e-300 passed."""
    with pytest.raises(DataValidationError) as info:
        features.validate(features.SOLANA, candles(**overrides), "src")
    assert str(info.value).endswith(f": {problem}")


def test_the_real_extremes_are_plausible(shared_data):
    for name in ("SOLUSDT_1d.csv", "BTCUSDT_1d.csv"):
        rows = pd.read_csv(shared_data / "binance" / name).rename(columns={"date": "day"}).assign(source="binance")
        assert len(features.validate(features.SOLANA, rows, name)) == len(rows)


# --- Fear & Greed: the label must be the value's band -------------------------------------------------------

BAND_EDGES = [(0, "Extreme Fear"), (25, "Extreme Fear"), (26, "Fear"), (46, "Fear"), (47, "Neutral"),
              (54, "Neutral"), (55, "Greed"), (75, "Greed"), (76, "Extreme Greed"), (100, "Extreme Greed")]


def fng_rows(value, label) -> pd.DataFrame:
    return pd.DataFrame({"day": ["2024-01-01"], "value": [value], "classification": [label]})


@pytest.mark.parametrize(("value", "label"), BAND_EDGES)
def test_band_edges_as_in_every_real_row(value, label):
    assert features.validate(features.FEAR_GREED, fng_rows(value, label), "src")["classification"].tolist() == [label]


@pytest.mark.parametrize(("value", "label", "band"), [(3, "Greed", "Extreme Fear"), (25, "Fear", "Extreme Fear"),
                                                      (46, "Neutral", "Fear"), (76, "Greed", "Extreme Greed")])
def test_a_label_outside_its_band_is_refused(value, label, band):
    """Before: Fear & Greed 3 labelled "Greed" passed."""
    with pytest.raises(DataValidationError) as info:
        features.validate(features.FEAR_GREED, fng_rows(value, label), "src")
    assert str(info.value) == f"src 2024-01-01: classification {label!r} does not match value {value} ({band})"


def test_a_new_label_is_refused_by_name():
    with pytest.raises(DataValidationError) as info:
        features.validate(features.FEAR_GREED, fng_rows(50, "Euphoria"), "src")
    assert str(info.value) == "src 2024-01-01: unknown classification 'Euphoria'"


def test_every_real_fear_greed_row_is_in_its_band(shared_data):
    rows = pd.read_csv(shared_data / "fear_greed" / "fear_greed.csv").rename(columns={"date": "day"})
    assert len(features.validate(features.FEAR_GREED, rows, "fear_greed.csv")) == len(rows) == 2522

