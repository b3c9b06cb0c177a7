"""Backfill and daily update against a real local HTTP server answering in each API's shape."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main

import feature_backfill
import feature_pipeline
from conftest import FNG_HOLES, NOW, error_lines, run_main, snapshot
from grouprows import forecast_rows, forecast_rows_v1, remove_rows


def status_json(capsys) -> dict:
    capsys.readouterr()
    assert cryptocast_main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def export(group: str, capsys) -> pd.DataFrame:
    capsys.readouterr()
    assert cryptocast_main(["export", group]) == 0
    from io import StringIO

    return pd.read_csv(StringIO(capsys.readouterr().out))


def test_backfill_from_binance_stores_complete_days_only(api, capsys):
    assert run_main(feature_backfill.main) == 0
    report = status_json(capsys)
    assert report["backend"] == "local"
    sol = report["groups"]["solana"]
    assert (sol["version"], sol["rows"], sol["first_day"], sol["last_day"]) == (1, 60, "2024-01-01", "2024-02-29")
    assert report["groups"]["fear_greed"]["missing_days"] == list(FNG_HOLES)
    stored = export("solana", capsys)
    truth = api.history["solana"].iloc[:60]
    assert list(stored.columns)[:2] == ["day", "open"]
    assert stored["day"].tolist() == truth["day"].dt.strftime("%Y-%m-%d").tolist()
    assert stored["close"].tolist() == pytest.approx(truth["close"].tolist(), rel=1e-12)
    assert set(stored["source"]) == {"binance"}


def test_backfill_from_cryptocompare_when_key_is_set(api, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    assert run_main(feature_backfill.main) == 0
    stored = export("bitcoin", capsys)
    assert set(stored["source"]) == {"kraken"}
    assert stored["day"].iloc[-1] == "2024-02-29"
    assert any(path.startswith("/spot/v1/historical/days") for path, _ in api.requests)
    assert not any(path == "/api/v3/klines" for path, _ in api.requests)


def test_backfill_twice_changes_nothing(api, home):
    assert run_main(feature_backfill.main) == 0
    before = snapshot(home)
    assert run_main(feature_backfill.main) == 0
    assert snapshot(home) == before


def test_update_fetches_only_missing_days_and_is_idempotent(api, home, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-20")
    api.now = pd.Timestamp("2024-02-20").date()
    assert run_main(feature_backfill.main) == 0
    api.now = NOW
    monkeypatch.setenv("CRYPTOCAST_AS_OF", NOW.isoformat())
    api.requests.clear()
    assert run_main(feature_pipeline.main) == 0
    klines = [q for path, q in api.requests if path == "/api/v3/klines"]
    assert len(klines) == 2  # one request per asset, covering only the 10 missing days (02-20..02-29)
    assert all(int(q["limit"]) == 10 for q in klines)
    assert status_json(capsys)["groups"]["solana"]["last_day"] == "2024-02-29"
    before = snapshot(home)
    assert run_main(feature_pipeline.main) == 0
    assert snapshot(home) == before


def test_update_fills_a_hole_in_the_middle(api, home, capsys):
    assert run_main(feature_backfill.main) == 0
    from cryptocast.features import SOLANA
    from cryptocast.stores.local import LocalFeatureStore

    group = LocalFeatureStore(home).get_feature_group(SOLANA)
    full = group.read()
    remove_rows(group, ["2024-01-10", "2024-01-11"])
    assert status_json(capsys)["groups"]["solana"]["missing_days"] == ["2024-01-10", "2024-01-11"]
    api.requests.clear()
    assert run_main(feature_pipeline.main) == 0
    assert status_json(capsys)["groups"]["solana"]["missing_days"] == []
    assert group.read().equals(full)
    sol_requests = [q for path, q in api.requests if q.get("symbol") == "SOLUSDT"]
    assert [int(q["limit"]) for q in sol_requests] == [2]


def test_update_reports_upstream_holes_without_inventing_them(api, capsys):
    assert run_main(feature_backfill.main) == 0
    capsys.readouterr()
    assert run_main(feature_pipeline.main) == 0
    log = capsys.readouterr().err
    assert "2 day(s) not available upstream, left as holes: 2024-01-20, 2024-01-21" in log
    assert status_json(capsys)["groups"]["fear_greed"]["missing_days"] == list(FNG_HOLES)


def test_update_on_an_empty_store_says_to_backfill(api, capsys):
    assert run_main(feature_pipeline.main) == 1
    assert error_lines(capsys) == ["error: feature_pipeline: feature groups solana v1, bitcoin v1, fear_greed v1 "
                                   "are empty: run feature_backfill.py first"]


def test_status_of_an_empty_store(api, capsys):
    report = status_json(capsys)
    assert report["groups"]["solana"] == {"version": 1, "rows": 0, "first_day": None, "last_day": None,
                                          "missing_days": [], "behind_days": None, "known_holes": []}


def test_export_to_file_and_unknown_group(api, tmp_path, capsys):
    assert run_main(feature_backfill.main) == 0
    out = tmp_path / "fng.csv"
    assert cryptocast_main(["export", "fear_greed", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["day", "value", "classification"]
    assert len(frame) == 58
    assert cryptocast_main(["export", "nope"]) == 1
    assert "unknown group 'nope'" in capsys.readouterr().err


def test_export_of_forecasts_reads_both_versions_rounded_to_cents(api, home, tmp_path, capsys):
    from cryptocast.features import FORECASTS, FORECASTS_V1
    from cryptocast.stores.local import LocalFeatureStore

    assert cryptocast_main(["export", "solana_forecasts"]) == 1
    assert "feature group solana_forecasts does not exist" in capsys.readouterr().err
    store = LocalFeatureStore(home)
    store.get_or_create_feature_group(FORECASTS_V1).insert(forecast_rows_v1("2024-01-01", 50.123456))
    store.get_or_create_feature_group(FORECASTS).insert(forecast_rows("2024-01-02", 70.0049))
    out = tmp_path / "forecasts.csv"
    assert cryptocast_main(["export", "solana_forecasts", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert ",70.00," in out.read_text()  # cents as text: "70.00", not "70.0"
    assert list(frame.columns) == FORECASTS.column_names and len(frame) == 20
    assert frame["forecast_day"].unique().tolist() == ["2024-01-01", "2024-01-02"]
    assert set(frame["point"]) == {50.12, 70.0}
    assert frame.loc[0, "q10"] == 45.11 and pd.isna(frame.loc[0, "q50"])  # v1's lower_80; no median then
    assert frame.loc[10, "q97_5"] == 84.01
