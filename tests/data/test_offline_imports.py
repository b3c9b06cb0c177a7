"""The README's CSV recipe without a network: a typo'd file fails at once, and exports that reach the last
complete day need no request afterwards, not even for the holes the exports already had."""

from __future__ import annotations

import pytest

from cryptocast.features import INGESTED_GROUPS

import feature_backfill
import feature_pipeline
from conftest import error_lines, group_rows, run_main, snapshot


def test_a_missing_csv_fails_before_any_request(api, home, tmp_path, capsys):
    missing = tmp_path / "SOLUSDT_1d.csv"
    assert run_main(feature_backfill.main, "--solana-csv", str(missing)) == 1
    assert error_lines(capsys) == [f"error: feature_backfill: no such file: --solana-csv {missing}; nothing written"]
    assert api.requests == []  # the groups without a CSV were not fetched first
    assert not home.exists() or snapshot(home) == {}


@pytest.mark.shared_data
def test_an_update_after_exports_that_reach_the_last_day_asks_no_upstream(api, home, shared_data, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-01")  # the exports end 2024-12-31, the last complete day
    assert run_main(feature_backfill.main,
                    "--solana-csv", str(shared_data / "binance" / "SOLUSDT_1d.csv"),
                    "--bitcoin-csv", str(shared_data / "binance" / "BTCUSDT_1d.csv"),
                    "--fear-greed-csv", str(shared_data / "fear_greed" / "fear_greed.csv")) == 0
    before = {spec.name: group_rows(home, spec) for spec in INGESTED_GROUPS}
    capsys.readouterr()
    assert run_main(feature_pipeline.main) == 0
    assert api.requests == []  # not even for Fear & Greed's four holes, which the export already lacked
    assert "fear_greed: up to date through 2024-12-31 (4 known hole(s) not asked for)" in capsys.readouterr().err
    assert all(group_rows(home, spec).equals(before[spec.name]) for spec in INGESTED_GROUPS)


@pytest.mark.shared_data
def test_the_holes_an_export_lacked_are_asked_for_once_the_group_is_behind(api, home, shared_data, monkeypatch,
                                                                           capsys):
    """Only skipped while nothing else needs the upstream: a daily run that must fetch asks for them too."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-01")
    assert run_main(feature_backfill.main, "--solana-csv", str(shared_data / "binance" / "SOLUSDT_1d.csv"),
                    "--bitcoin-csv", str(shared_data / "binance" / "BTCUSDT_1d.csv"),
                    "--fear-greed-csv", str(shared_data / "fear_greed" / "fear_greed.csv")) == 0
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2025-01-03")
    capsys.readouterr()
    run_main(feature_pipeline.main)  # the fake market has no 2025 days: the outcome does not matter here
    assert any(path.startswith("/fng") for path, _ in api.requests)
    assert "fear_greed: 6 day(s) missing" in capsys.readouterr().err  # the 4 holes and the 2 new days
