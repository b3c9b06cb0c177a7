"""End to end on the real history in ../shared/data (runs wherever that folder is present, CI included)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cryptocast.__main__ import main as cryptocast_main

import feature_backfill
import feature_pipeline
from conftest import run_main
from fakeapi import shared_history

pytestmark = pytest.mark.shared_data
FNG_HOLES = ["2018-04-14", "2018-04-15", "2018-04-16", "2024-10-26"]


def status(capsys) -> dict:
    capsys.readouterr()
    assert cryptocast_main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["groups"]


def summary(group: dict) -> tuple:
    return group["rows"], group["first_day"], group["last_day"], group["missing_days"]


def test_backfill_of_the_binance_and_fear_greed_exports(api, shared_data, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-01")
    assert run_main(feature_backfill.main,
                    "--solana-csv", str(shared_data / "binance" / "SOLUSDT_1d.csv"),
                    "--bitcoin-csv", str(shared_data / "binance" / "BTCUSDT_1d.csv"),
                    "--fear-greed-csv", str(shared_data / "fear_greed" / "fear_greed.csv")) == 0
    groups = status(capsys)
    assert summary(groups["solana"]) == (1604, "2020-08-11", "2024-12-31", [])
    assert summary(groups["bitcoin"]) == (2694, "2017-08-17", "2024-12-31", [])
    assert summary(groups["fear_greed"]) == (2522, "2018-02-01", "2024-12-31", FNG_HOLES)


def test_backfill_of_the_kraken_exports_drops_the_partial_last_day(api, shared_data, monkeypatch, capsys):
    """Both Kraken exports end with 2024-12-23 cut at about noon: that day is not complete."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2026-11-21")
    cc = shared_data / "cryptocompare"
    assert run_main(feature_backfill.main, "--solana-csv", str(cc / "solana_kraken_daily.csv"),
                    "--bitcoin-csv", str(cc / "bitcoin_kraken_daily.csv")) == 0
    groups = status(capsys)
    assert summary(groups["solana"]) == (1285, "2021-06-17", "2024-12-22", [])
    assert summary(groups["bitcoin"]) == (1299, "2021-06-03", "2024-12-22", [])


def test_a_csv_of_the_wrong_asset_is_refused(api, shared_data, capsys):
    wrong = shared_data / "cryptocompare" / "bitcoin_kraken_daily.csv"
    assert run_main(feature_backfill.main, "--solana-csv", str(wrong)) == 1
    assert "holds BTC-USD, not SOL-USD for group solana" in capsys.readouterr().err


def test_full_history_from_the_apis_then_a_daily_update(api, shared_data, monkeypatch, capsys):
    """The keyless quick start: everything from (a local stand-in for) Binance and alternative.me."""
    api.history = shared_history(shared_data)
    api.now = dt.date(2024, 12, 20)
    monkeypatch.setenv("CRYPTOCAST_HISTORY_START", "2018-01-01")
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-12-20")
    assert run_main(feature_backfill.main) == 0
    api.now = dt.date(2025, 1, 1)
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-01")
    assert run_main(feature_pipeline.main) == 0
    groups = status(capsys)
    assert summary(groups["solana"]) == (1604, "2020-08-11", "2024-12-31", [])
    assert summary(groups["bitcoin"]) == (2557, "2018-01-01", "2024-12-31", [])
    assert summary(groups["fear_greed"]) == (2522, "2018-02-01", "2024-12-31", FNG_HOLES)
