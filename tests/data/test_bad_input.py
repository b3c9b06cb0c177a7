"""Every kind of bad input ends the run with one line naming source, day and problem; the group it
came for is left exactly as it was, and the other groups are still brought up to date."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cryptocast import features
from cryptocast.features import INGESTED_GROUPS

import feature_backfill
import feature_pipeline
from conftest import error_lines, group_rows, run_main
from fakeapi import BINANCE_PATH, CC_PATH, FNG_PATH

BAD_DAY = pd.Timestamp("2024-02-25")
PRICES, FNG = ("solana", "bitcoin"), ("fear_greed",)


def corrupt(api, group: str, **values) -> None:
    frame = api.history[group]
    for column, value in values.items():
        frame[column] = frame[column].astype(object)
        frame.loc[frame["day"] == BAD_DAY, column] = value


def reply(status: int, body) -> callable:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda query: (status, data)


def fails_cleanly(capsys, home, before, failed: tuple[str, ...], *expected: str, main=feature_pipeline.main,
                  argv: tuple[str, ...] = ()) -> None:
    """Exit 1 with one line; the failed groups exactly as they were, every other one up to date."""
    assert run_main(main, *argv) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    for text in expected:
        assert text in lines[0]
    for spec in INGESTED_GROUPS:
        rows = group_rows(home, spec)
        if spec.name in failed:
            assert rows.equals(before[spec.name]), spec.name
        else:
            assert rows["day"].max() == pd.Timestamp("2024-02-29"), spec.name


@pytest.mark.parametrize(
    ("group", "values", "expected"),
    [
        ("solana", {"low": -1.0}, "binance SOLUSDT 2024-02-25: price is zero or negative"),
        ("bitcoin", {"close": 0.0}, "binance BTCUSDT 2024-02-25: price is zero or negative"),
        ("solana", {"high": 0.5, "low": 0.9, "open": 0.6, "close": 0.7}, "binance SOLUSDT 2024-02-25: high < low"),
        ("solana", {"close": 1e6}, "binance SOLUSDT 2024-02-25: open or close above high"),
        ("solana", {"volume": -5.0}, "binance SOLUSDT 2024-02-25: volume is negative"),
        ("fear_greed", {"value": 140}, "alternative.me fear_greed 2024-02-25: value outside 0..100"),
        ("fear_greed", {"classification": "Euphoria"}, "alternative.me fear_greed 2024-02-25: unknown classification"),
    ],
)
def test_invalid_rows_are_rejected(api, home, stocked, capsys, group, values, expected):
    corrupt(api, group, **values)
    fails_cleanly(capsys, home, stocked, (group,), expected)


def test_non_numeric_price(api, home, stocked, capsys):
    api.faults[BINANCE_PATH] = lambda q: (200, json.dumps([[1708819200000, "abc", "2", "1", "1.5", "10", 0]]).encode())
    fails_cleanly(capsys, home, stocked, PRICES, "binance", "2024-02-25", "'open' is not a finite number")


def test_duplicate_day_in_a_response(api, home, stocked, capsys):
    normal = api._binance

    def doubled(query):
        status, body = normal(query, {})
        rows = json.loads(body)
        return status, json.dumps(rows + rows[-1:]).encode()

    api.faults[BINANCE_PATH] = doubled
    fails_cleanly(capsys, home, stocked, PRICES, "binance SOLUSDT 2024-02-29: duplicate day")


def test_malformed_json(api, home, stocked, capsys):
    api.faults[FNG_PATH] = reply(200, b"<html>502 Bad Gateway</html>")
    fails_cleanly(capsys, home, stocked, FNG, "alternative.me fear_greed /fng/: malformed JSON")


def test_http_error_after_bounded_retries(api, home, stocked, capsys):
    api.faults[FNG_PATH] = reply(503, {"error": "maintenance"})
    api.requests.clear()
    fails_cleanly(capsys, home, stocked, FNG, "alternative.me fear_greed /fng/: HTTP 503")
    assert sum(path == FNG_PATH for path, _ in api.requests) == 3  # CRYPTOCAST_HTTP_RETRIES=2 → 3 attempts


def test_api_error_body(api, home, stocked, capsys):
    api.faults[BINANCE_PATH] = reply(400, {"code": -1121, "msg": "Invalid symbol."})
    fails_cleanly(capsys, home, stocked, PRICES, "binance", "HTTP 400", "Invalid symbol.")


def test_fear_greed_error_in_metadata(api, home, stocked, capsys):
    api.faults[FNG_PATH] = reply(200, {"data": [], "metadata": {"error": "Invalid limit"}})
    fails_cleanly(capsys, home, stocked, FNG, "alternative.me fear_greed: API error: Invalid limit")


def test_missing_field(api, home, stocked, capsys):
    api.faults[FNG_PATH] = reply(200, {"data": [{"value": "40", "timestamp": "1708819200"}], "metadata": {}})
    fails_cleanly(capsys, home, stocked, FNG, "alternative.me fear_greed: missing field(s) value_classification")


def test_missing_value_in_one_item(api, home, stocked, capsys):
    items = [{"value": "40", "value_classification": "Fear", "timestamp": "1708819200"},
             {"value_classification": "Fear", "timestamp": "1708732800"}]
    api.faults[FNG_PATH] = reply(200, {"data": items, "metadata": {"error": None}})
    fails_cleanly(capsys, home, stocked, FNG, "alternative.me fear_greed 2024-02-24: missing value for 'value'")


def test_short_kline_row(api, home, stocked, capsys):
    api.faults[BINANCE_PATH] = reply(200, [[1708819200000, "1", "2", "0.5"]])
    fails_cleanly(capsys, home, stocked, PRICES, "binance SOLUSDT: missing field(s)")


def test_cryptocompare_empty_data_is_late_data_not_an_error(api, home, stocked, monkeypatch, capsys):
    """An answer without the days is what an upstream says before it publishes them: the run warns,
    leaves the price groups as they were (status shows them behind), and still updates the others."""
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    api.faults[CC_PATH] = reply(200, {"Data": [], "Err": {}})
    assert run_main(feature_pipeline.main) == 0
    assert "solana: no rows for 2024-02-20..2024-02-29 from cryptocompare SOL-USD yet" in capsys.readouterr().err
    for name in PRICES:
        assert group_rows(home, features.SOLANA if name == "solana" else features.BITCOIN).equals(stocked[name])
    assert group_rows(home, features.FEAR_GREED)["day"].max() == pd.Timestamp("2024-02-29")


def test_cryptocompare_err_envelope(api, home, stocked, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    api.faults[CC_PATH] = reply(200, {"Data": [], "Err": {"type": 2, "message": "market not found"}})
    fails_cleanly(capsys, home, stocked, PRICES, "cryptocompare SOL-USD: API error: market not found")


def test_cryptocompare_missing_close(api, home, stocked, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    normal = api._cryptocompare

    def without_close(query):
        status, body = normal(query, {"authorization": f"Apikey {api.api_key}"})
        data = json.loads(body)
        for item in data["Data"]:
            item.pop("CLOSE")
        return status, json.dumps(data).encode()

    api.faults[CC_PATH] = without_close
    fails_cleanly(capsys, home, stocked, PRICES, "cryptocompare SOL-USD: missing field(s) CLOSE")


def test_unknown_csv_format(api, home, stocked, tmp_path, capsys):
    odd = tmp_path / "prices.csv"
    odd.write_text("when,price\n2024-01-01,3\n")
    fails_cleanly(capsys, home, stocked, ("solana",),
                  "error: feature_backfill: csv prices.csv: unknown CSV format (header: when,price)",
                  main=feature_backfill.main, argv=("--solana-csv", str(odd)))


def test_csv_with_a_duplicate_day(api, home, stocked, tmp_path, capsys):
    dup = tmp_path / "sol.csv"
    dup.write_text("date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-01,1,2,0.5,1.5,10\n")
    fails_cleanly(capsys, home, stocked, ("solana",), "error: feature_backfill: csv sol.csv 2024-01-01: duplicate day",
                  main=feature_backfill.main, argv=("--solana-csv", str(dup)))
