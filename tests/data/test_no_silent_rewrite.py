"""Stored history changes only when the operator says so, and then as a commit that can be undone.

Finding 1 of issue 10: `feature_backfill.py --solana-csv BTCUSDT_1d.csv` exited 0 with "1090 added,
1604 updated", every SOL row became a BTC price, and the old files were gone.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA
from cryptocast.stores.local import LocalFeatureStore

import feature_backfill
import feature_pipeline
from conftest import error_lines, run_main, snapshot
from fakeapi import BINANCE_PATH
from grouprows import remove_rows


def binance_csv(path: Path, candles: pd.DataFrame, scale: float = 1.0) -> Path:
    """A Binance daily export (no symbol in it, as the real ones) of `candles`, prices times `scale`."""
    out = candles[["day", "open", "high", "low", "close", "volume"]].copy()
    out[["open", "high", "low", "close"]] *= scale
    out.insert(0, "date", out.pop("day").dt.strftime("%Y-%m-%d"))
    out.to_csv(path, index=False)
    return path


def complete(candles: pd.DataFrame) -> pd.DataFrame:
    return candles[candles["day"] < pd.Timestamp("2024-03-01")]


@pytest.fixture
def stocked(api, home):
    assert run_main(feature_backfill.main) == 0
    return snapshot(home)


def refused(capsys, home, before, *args: str) -> str:
    assert run_main(feature_backfill.main, *args) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert snapshot(home) == before
    return lines[0]


def test_a_bitcoin_export_given_as_solana_is_refused_over_stored_rows(api, home, stocked, tmp_path, capsys):
    btc = binance_csv(tmp_path / "BTCUSDT_1d.csv", complete(api.history["bitcoin"]))
    line = refused(capsys, home, stocked, "--solana-csv", str(btc))
    assert line.startswith("error: feature_backfill: solana from csv BTCUSDT_1d.csv and bitcoin from binance "
                           "BTCUSDT: SOL closes at 1.00x BTC on 60 common day(s)")
    line = refused(capsys, home, stocked, "--replace", "--solana-csv", str(btc))  # --replace does not allow it
    assert "SOL closes at 1.00x BTC" in line


def test_a_bitcoin_export_given_as_solana_is_refused_into_a_fresh_store(api, home, tmp_path, capsys):
    btc = binance_csv(tmp_path / "BTCUSDT_1d.csv", complete(api.history["bitcoin"]))
    assert run_main(feature_backfill.main, "--solana-csv", str(btc)) == 1
    assert "SOL closes at 1.00x BTC" in error_lines(capsys)[0]
    assert_prices_refused_and_fear_greed_written(home)


def test_swapped_exports_are_refused(api, home, tmp_path, capsys):
    sol = binance_csv(tmp_path / "SOLUSDT_1d.csv", complete(api.history["solana"]))
    btc = binance_csv(tmp_path / "BTCUSDT_1d.csv", complete(api.history["bitcoin"]))
    assert run_main(feature_backfill.main, "--solana-csv", str(btc), "--bitcoin-csv", str(sol)) == 1
    line = error_lines(capsys)[0]
    assert "solana from csv BTCUSDT_1d.csv and bitcoin from csv SOLUSDT_1d.csv: SOL closes at" in line
    assert_prices_refused_and_fear_greed_written(home)


def assert_prices_refused_and_fear_greed_written(home):
    """Both price groups are refused together (which one is wrong cannot be told); the other group carries on."""
    made = {p.name for p in (home / "feature_store").iterdir()}
    assert not made & {"solana_v1", "bitcoin_v1"}
    assert "fear_greed_v1" in made


def test_an_export_that_disagrees_with_the_overlap_is_refused_then_replaced_on_request(api, home, stocked, tmp_path,
                                                                                       capsys):
    before = LocalFeatureStore(home).get_feature_group(SOLANA).read()
    wrong = binance_csv(tmp_path / "SOLUSDT_1d.csv", complete(api.history["solana"]), scale=3.0)
    line = refused(capsys, home, stocked, "--solana-csv", str(wrong))
    assert "its closes differ from the stored solana rows by a median 200% on 60 overlapping day(s); nothing " \
           "written" in line and "--replace" in line

    assert run_main(feature_backfill.main, "--replace", "--solana-csv", str(wrong)) == 0
    changed = [line for line in capsys.readouterr().err.splitlines() if "replacing" in line]
    assert len(changed) == 60 and "WARNING cryptocast.stores.base: feature group solana v1: replacing 2024-01-01: " \
                                  "open 20 -> 60, high " in changed[0]
    group = LocalFeatureStore(home).get_feature_group(SOLANA)
    assert group.read()["close"].tolist() == pytest.approx((before["close"] * 3).tolist())
    newest = group.history()[0]
    assert (newest.operation, newest.summary) == ("MERGE", "0 added, 60 updated, 0 unchanged")

    assert cryptocast_main(["rollback", "solana", "--to", str(newest.version - 1)]) == 0
    pd.testing.assert_frame_equal(LocalFeatureStore(home).get_feature_group(SOLANA).read(), before,
                                  check_exact=True)


@pytest.mark.parametrize("replace", [False, True])
def test_a_few_rows_of_the_other_asset_in_a_solana_export_are_refused(api, home, stocked, tmp_path, capsys,
                                                                      replace):
    """Before: the asset checks compare medians, so three BTC rows at the end of a SOL export were taken (with
    --replace over stored days; without it, as new days after the stored ones)."""
    sol, btc = complete(api.history["solana"]), complete(api.history["bitcoin"])
    mixed = pd.concat([sol.iloc[:-3], btc.iloc[-3:]], ignore_index=True)
    if not replace:  # the stored rows stop before the pasted ones, which are new days
        remove_rows(LocalFeatureStore(home).get_feature_group(SOLANA),
                    [str(d.date()) for d in btc["day"].iloc[-3:]])
        stocked = snapshot(home)
    path = binance_csv(tmp_path / "SOLUSDT_1d.csv", mixed)
    line = refused(capsys, home, stocked, *(["--replace"] if replace else []), "--solana-csv", str(path))
    first = btc["day"].iloc[-3].date()
    assert line.startswith(f"error: feature_backfill: csv SOLUSDT_1d.csv: close {btc['close'].iloc[-3]:g} on {first} ")
    assert "rows of another asset? nothing written" in line


def test_a_small_difference_still_needs_replace(api, home, stocked, tmp_path, capsys):
    other_venue = binance_csv(tmp_path / "SOLUSDT_1d.csv", complete(api.history["solana"]), scale=1.003)
    line = refused(capsys, home, stocked, "--solana-csv", str(other_venue))
    assert "feature group solana v1: 60 stored row(s) would change (2024-01-01: open 20 -> 20.06" in line
    assert "pass --replace to feature_backfill.py" in line
    assert run_main(feature_backfill.main, "--replace", "--solana-csv", str(other_venue)) == 0


def test_the_daily_update_never_restates_a_stored_day(api, home, monkeypatch):
    """An upstream revision of a stored candle is not taken: the update asks only for missing days."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-20")
    assert run_main(feature_backfill.main) == 0
    stored = LocalFeatureStore(home).get_feature_group(SOLANA).read()
    revised = api.history["solana"]["day"] == pd.Timestamp("2024-02-10")
    api.history["solana"].loc[revised, ["close", "high"]] *= 1.01
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-01")
    assert run_main(feature_pipeline.main) == 0
    after = LocalFeatureStore(home).get_feature_group(SOLANA).read()
    pd.testing.assert_frame_equal(after.iloc[:len(stored)], stored, check_exact=True)
    assert len(after) == 60


def test_a_refused_rewrite_of_one_group_does_not_stop_the_others(api, home, tmp_path, capsys, monkeypatch):
    """Before: the refusal was a StoreError raised while writing, which stops a run at once, so BTC and
    Fear & Greed lost their new days because a SOL export disagreed with the store."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-20")
    assert run_main(feature_backfill.main) == 0
    before = LocalFeatureStore(home).get_feature_group(SOLANA).read()
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-01")
    other_venue = binance_csv(tmp_path / "SOLUSDT_1d.csv", complete(api.history["solana"]), scale=1.003)
    assert run_main(feature_backfill.main, "--solana-csv", str(other_venue)) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and "solana v1: 50 stored row(s) would change" in lines[0], lines
    store = LocalFeatureStore(home)
    pd.testing.assert_frame_equal(store.get_feature_group(SOLANA).read(), before, check_exact=True)
    assert store.get_feature_group(BITCOIN).read()["day"].max() == pd.Timestamp("2024-02-29")
    assert store.get_feature_group(FEAR_GREED).read()["day"].max() == pd.Timestamp("2024-02-29")


def test_an_export_with_nothing_to_check_its_asset_against_is_refused(api, home, tmp_path, capsys):
    """Before: with Binance down and no BTC stored, a BTC export given as --solana-csv filled the SOL group
    (exit 1 only for the BTC fetch): nothing said which asset the export held."""
    api.faults[BINANCE_PATH] = lambda query: (503, b'{"msg": "down"}')
    btc = binance_csv(tmp_path / "BTCUSDT_1d.csv", complete(api.history["bitcoin"]))
    assert run_main(feature_backfill.main, "--solana-csv", str(btc)) == 1
    line = error_lines(capsys)[0]
    assert "binance BTCUSDT /api/v3/klines: HTTP 503" in line
    assert "solana from csv BTCUSDT_1d.csv: no bitcoin rows (stored or read in this run) to check that it holds " \
           "SOL prices; nothing written" in line, line
    made = {p.name for p in (home / "feature_store").iterdir()}
    assert "solana_v1" not in made and "fear_greed_v1" in made


def test_an_export_is_checked_against_the_stored_other_asset(api, home, tmp_path, capsys, monkeypatch):
    """With the other asset stored, a failing API does not stop a SOL export from being checked and written."""
    sol = binance_csv(tmp_path / "SOLUSDT_1d.csv", complete(api.history["solana"]))
    btc = binance_csv(tmp_path / "BTCUSDT_1d.csv", complete(api.history["bitcoin"]))
    assert run_main(feature_backfill.main, "--bitcoin-csv", str(btc)) == 0
    api.faults[BINANCE_PATH] = lambda query: (503, b'{"msg": "down"}')
    assert run_main(feature_backfill.main, "--solana-csv", str(sol)) == 1
    assert error_lines(capsys)[0] == "error: feature_backfill: binance BTCUSDT /api/v3/klines: HTTP 503 SERVICE " \
                                     "UNAVAILABLE: down"
    assert len(LocalFeatureStore(home).get_feature_group(SOLANA).read()) == 60
