"""One set of ingest guards on every path: the daily update refuses what backfill and CSV imports refuse.

Issue 20, finding 1: a stand-in serving BTC's rows as SOL made `feature_pipeline.py` add them (exit 0)
and inference forecast from a close of 93576; BTC answered with SOL prices, and SOL x10, passed too.
Finding 2: a SOL export missing one day, with BTC's rows after it, passed the 3x step guard (which only
compared neighbouring days). Finding 3's last case: a key inside an upstream text field was stored.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_no_silent_rewrite import binance_csv, complete

from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA
from cryptocast.sources.guards import max_step
from cryptocast.stores.local import LocalFeatureStore

import feature_backfill
import feature_pipeline
from conftest import error_lines, group_rows, run_main, snapshot

SWITCH = pd.Timestamp("2024-02-20")  # the stocked store ends the day before


def served_from(api, group: str, rows: pd.DataFrame) -> None:
    """From SWITCH on, the API answers `group` with `rows`' prices."""
    history = api.history[group]
    later = history["day"] >= SWITCH
    columns = ["open", "high", "low", "close", "volume"]
    history.loc[later, columns] = rows.set_index("day").loc[history.loc[later, "day"], columns].to_numpy()


def refused_update(capsys, home, stocked, refused: str) -> str:
    """The update fails (exit 1, one line naming the group), the refused group unchanged, the others written."""
    assert run_main(feature_pipeline.main) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: feature_pipeline: ") and "nothing written" in lines[0]
    for spec in (SOLANA, BITCOIN, FEAR_GREED):
        rows = group_rows(home, spec)
        if spec.name == refused:
            pd.testing.assert_frame_equal(rows, stocked[spec.name], check_exact=True)
        else:
            assert rows["day"].max() == pd.Timestamp("2024-02-29"), spec.name
    return lines[0]


def test_the_update_refuses_bitcoin_served_as_solana(api, home, stocked, capsys):
    served_from(api, "solana", api.history["bitcoin"])
    line = refused_update(capsys, home, stocked, "solana")
    assert "binance SOLUSDT: close " in line and "on 2024-02-20 after " in line and "x in one day" in line


def test_the_update_refuses_solana_served_as_bitcoin(api, home, stocked, capsys):
    served_from(api, "bitcoin", api.history["solana"])
    line = refused_update(capsys, home, stocked, "bitcoin")
    assert "binance BTCUSDT: close " in line and "on 2024-02-20" in line


def test_the_update_refuses_solana_times_ten_and_only_replace_takes_it(api, home, stocked, capsys):
    tenfold = api.history["solana"].assign(**{c: api.history["solana"][c] * 10 for c in ("open", "high", "low",
                                                                                         "close")})
    served_from(api, "solana", tenfold)
    line = refused_update(capsys, home, stocked, "solana")
    assert "(10.0" in line or "x in one day" in line
    assert "feature_backfill.py --replace takes them" in line
    before = snapshot(home)
    assert run_main(feature_backfill.main) == 1  # a backfill refuses it too
    assert "x in one day" in error_lines(capsys)[0] and snapshot(home) == before
    assert run_main(feature_backfill.main, "--replace") == 0  # the operator's word
    assert group_rows(home, SOLANA)["day"].max() == pd.Timestamp("2024-02-29")


def test_replace_does_not_take_bitcoin_as_solana(api, home, stocked, capsys):
    served_from(api, "solana", api.history["bitcoin"])
    before = snapshot(home)
    assert run_main(feature_backfill.main, "--replace") == 1
    line = error_lines(capsys)[0]
    assert "x the BTC close that day" in line and "rows of another asset? nothing written" in line
    assert group_rows(home, SOLANA)["day"].max() == SWITCH - pd.Timedelta(days=1)
    assert snapshot(home) != before  # the other groups were written


def test_the_update_measures_the_step_from_the_last_stored_close_across_a_hole(api, home, stocked, capsys):
    """The first new day is a hole upstream: the step is measured from the last stored close, two days back."""
    served_from(api, "solana", api.history["bitcoin"])
    api.history["solana"] = api.history["solana"][api.history["solana"]["day"] != SWITCH]
    line = refused_update(capsys, home, stocked, "solana")
    assert "on 2024-02-21 after " in line and "on 2024-02-19 (" in line and "in 2 days (nothing between)" in line


def sol_with_bitcoin_after_a_hole(api) -> pd.DataFrame:
    """SOL's export missing 2024-02-20, with BTC's rows from 2024-02-21 on (finding 2): few enough that the
    median of SOL/BTC still looks like SOL."""
    sol, btc = complete(api.history["solana"]), complete(api.history["bitcoin"])
    hole = pd.Timestamp("2024-02-20")
    return pd.concat([sol[sol["day"] < hole], btc[btc["day"] > hole]], ignore_index=True)


def test_a_one_day_hole_does_not_hide_bitcoin_rows_in_an_import_into_an_empty_store(api, home, tmp_path, capsys):
    path = binance_csv(tmp_path / "SOLUSDT_1d.csv", sol_with_bitcoin_after_a_hole(api))
    assert run_main(feature_backfill.main, "--solana-csv", str(path)) == 1
    line = error_lines(capsys)[0]
    assert "csv SOLUSDT_1d.csv: close " in line and "on 2024-02-21 after " in line and "on 2024-02-19" in line
    assert group_rows(home, SOLANA) is None and group_rows(home, BITCOIN) is not None


@pytest.mark.parametrize("replace", [False, True])
def test_a_one_day_hole_does_not_hide_bitcoin_rows_on_top_of_stored_rows(api, home, tmp_path, capsys, monkeypatch,
                                                                        replace):
    """The store ends 2024-02-19; the export brings the same days, then BTC's rows as new days after its hole."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-20")
    assert run_main(feature_backfill.main) == 0
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-01")
    before = group_rows(home, SOLANA)
    path = binance_csv(tmp_path / "SOLUSDT_1d.csv", sol_with_bitcoin_after_a_hole(api))
    assert run_main(feature_backfill.main, *(["--replace"] if replace else []), "--solana-csv", str(path)) == 1
    assert "nothing written" in error_lines(capsys)[0]
    pd.testing.assert_frame_equal(group_rows(home, SOLANA), before, check_exact=True)


def test_the_step_bound_widens_with_the_gap_but_never_lets_another_asset_through():
    assert max_step(1) == 3.0 and max_step(0.5) == 3.0
    assert max_step(30) > 4.94 and max_step(60) > 12.95  # the largest real 30- and 60-day moves of SOL (2020-2024)
    assert max_step(90) < 1 / 0.0042  # BTC is always further from SOL than any judged gap allows
    assert max_step(120) == float("inf")  # SOL rose 36x in 120 days of 2021: a gap that long is not judged


def test_a_key_echoed_into_a_text_field_is_not_stored(api, home, stocked, capsys, monkeypatch):
    """Finding 3: CryptoCompare's MARKET field is stored as `source`; an upstream echoing the key there got it
    published on the site."""
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    original = api._cc_item
    api._cc_item = lambda row, instrument: {**original(row, instrument), "MARKET": f"kraken {api.api_key}"}
    assert run_main(feature_pipeline.main) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and api.api_key not in err
    assert "field 'source' holds an API key (not shown)" in lines[0]
    assert group_rows(home, SOLANA)["day"].max() == SWITCH - pd.Timedelta(days=1)
    store = LocalFeatureStore(home)
    assert store.get_feature_group(FEAR_GREED).read()["day"].max() == pd.Timestamp("2024-02-29")


@pytest.mark.shared_data
def test_the_real_histories_pass_every_guard_whatever_the_gap(shared_data):
    """No false refusal: every real SOL and BTC close, 2017-2024, stored up to any day, then the rest after a hole."""
    import datetime as dt

    from cryptocast.features import validate
    from cryptocast.sources.csv_exports import load_export
    from cryptocast.sources.guards import Batch, refusals

    today = dt.date(2026, 1, 1)
    sol, btc = (validate(spec, load_export(spec.name, shared_data / "binance" / name, today), name)
                for spec, name in ((SOLANA, "SOLUSDT_1d.csv"), (BITCOIN, "BTCUSDT_1d.csv")))
    assert refusals([Batch(SOLANA, sol, "sol", True), Batch(BITCOIN, btc, "btc", True)], {}, False) == []
    closes = sol.set_index("day")["close"]
    for cut in range(30, len(sol) - 100, 97):
        for hole in (0, 1, 7, 45, 89):
            stored = {"solana": closes.iloc[:cut], "bitcoin": btc.set_index("day")["close"]}
            new = sol.iloc[cut + hole:cut + hole + 10]
            assert refusals([Batch(SOLANA, new, "api")], stored, False) == [], (cut, hole)
