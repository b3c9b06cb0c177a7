"""No day blocks the rest (issue 10, finding 2): a day the upstream keeps not having becomes a known
hole, reported by status and not asked for again; one failing source no longer stops the others."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA
from cryptocast.holes import HOLES

import feature_backfill
import feature_pipeline
from conftest import FNG_HOLES, START, error_lines, group_rows, run_main
from fakeapi import BINANCE_PATH, FNG_PATH, synthetic_history

BINANCE_HOLE = pd.Timestamp("2024-02-24")
STATUS_KEYS = {"version", "rows", "first_day", "last_day", "missing_days", "behind_days"}


def status_json(capsys) -> dict:
    capsys.readouterr()
    assert cryptocast_main(["status", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def run_on(day: dt.date, api, monkeypatch) -> int:
    api.now = day
    monkeypatch.setenv("CRYPTOCAST_AS_OF", day.isoformat())
    return run_main(feature_pipeline.main)


def days(first: str, last: str) -> list[dt.date]:
    return [d.date() for d in pd.date_range(first, last)]


@pytest.fixture
def longer(api, monkeypatch):
    """90 days of market (through 2024-03-30), backfilled as of 2024-02-20."""
    api.history = synthetic_history(START, 90, fng_holes=FNG_HOLES)
    api.now = dt.date(2024, 2, 20)
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-20")
    assert run_main(feature_backfill.main) == 0
    return api


def klines_asked_for(api, day: pd.Timestamp) -> int:
    start_ms = int(day.timestamp()) * 1000
    return sum(1 for path, q in api.requests if path == BINANCE_PATH and q.get("symbol") == "SOLUSDT"
               and int(q["startTime"]) <= start_ms <= int(q["endTime"]))


def test_a_day_binance_never_returns_blocks_nothing_and_is_asked_for_only_until_known(longer, home, monkeypatch,
                                                                                         capsys):
    """Before: the run after the gap asked for 2024-02-24 alone, got an empty page, failed, and (a run
    writing all groups or none) stopped SOL, BTC and Fear & Greed for good."""
    api = longer
    history = api.history["solana"]
    api.history["solana"] = history[history["day"] != BINANCE_HOLE].reset_index(drop=True)
    asks = {}
    for day in days("2024-03-01", "2024-03-12"):
        api.requests.clear()
        assert run_on(day, api, monkeypatch) == 0, error_lines(capsys)
        asks[day] = klines_asked_for(api, BINANCE_HOLE)
    # asked on every run until it had been asked 3 times over 7 days (03-01 .. 03-08), never after
    assert [day for day, n in asks.items() if n] == days("2024-03-01", "2024-03-08")
    for spec in (SOLANA, BITCOIN, FEAR_GREED):
        assert group_rows(home, spec)["day"].max() == pd.Timestamp("2024-03-11"), spec.name
    report = status_json(capsys)
    assert report["groups"]["solana"]["missing_days"] == ["2024-02-24"]
    assert report["groups"]["solana"]["known_holes"] == ["2024-02-24"]
    assert report["groups"]["bitcoin"]["known_holes"] == []


def test_status_json_only_adds_known_holes(api, capsys):
    """`status --json` is a contract: every existing key stays, `known_holes` is the one addition."""
    assert run_main(feature_backfill.main) == 0
    for group in status_json(capsys)["groups"].values():
        assert set(group) == STATUS_KEYS | {"known_holes"}
        assert group["known_holes"] == []


def test_known_holes_are_kept_in_the_store_as_an_append_only_group(longer, home, monkeypatch):
    api = longer
    for day in days("2024-02-21", "2024-02-23"):
        assert run_on(day, api, monkeypatch) == 0
    record = group_rows(home, HOLES)
    fng = record[record["feature_group"] == "fear_greed"]
    assert sorted(set(fng["day"].dt.strftime("%Y-%m-%d"))) == list(FNG_HOLES)
    asked = sorted(set(fng["asked_on"].dt.strftime("%Y-%m-%d")))
    assert asked == ["2024-02-20", "2024-02-21", "2024-02-22", "2024-02-23"]  # the backfill asked too
    assert set(fng["source"]) == {"alternative.me fear_greed"}
    before = group_rows(home, HOLES)
    assert run_on(dt.date(2024, 2, 23), api, monkeypatch) == 0  # the same day again adds nothing
    assert group_rows(home, HOLES).equals(before)


def test_fear_greed_no_longer_refetches_since_its_oldest_hole(longer, monkeypatch):
    """The API can only be asked for "the newest N days": while 2024-01-20 was a hole, every update asked
    for every day since it. Once the hole is known, an update asks only for the days it lacks."""
    api = longer
    for day in days("2024-02-21", "2024-03-01"):
        api.requests.clear()
        assert run_on(day, api, monkeypatch) == 0
    limit, = [int(q["limit"]) for path, q in api.requests if path == FNG_PATH]
    today = dt.datetime.now(dt.UTC).date()
    assert limit == (today - dt.date(2024, 2, 29)).days + 2


@pytest.mark.parametrize(("asks", "spread"), [("1", "0"), ("2", "1")])
def test_hole_settings(longer, monkeypatch, asks, spread):
    api = longer
    monkeypatch.setenv("CRYPTOCAST_HOLE_ASKS", asks)
    monkeypatch.setenv("CRYPTOCAST_HOLE_DAYS", spread)
    back_to_the_holes = (dt.datetime.now(dt.UTC).date() - dt.date(2024, 1, 21)).days + 2
    asked = []
    for day in days("2024-02-21", "2024-02-24"):
        api.requests.clear()
        assert run_on(day, api, monkeypatch) == 0
        asked.append(any(path == FNG_PATH and int(q["limit"]) >= back_to_the_holes for path, q in api.requests))
    # the backfill (02-20) asked once; with 1 ask over 0 days that is enough, with 2 over 1 day one more
    assert asked == ([False] * 4 if asks == "1" else [True, False, False, False])


# --- one failing source no longer stops the others --------------------------------------------------------


def down(query):
    return 503, b'{"msg": "maintenance"}'


def test_one_failing_source_does_not_stop_the_others(api, home, stocked, capsys):
    """Before: Fear & Greed failing meant SOL and BTC were not written either."""
    api.faults[FNG_PATH] = down
    assert run_main(feature_pipeline.main) == 1
    assert error_lines(capsys) == ["error: feature_pipeline: alternative.me fear_greed /fng/: HTTP 503 "
                                   "SERVICE UNAVAILABLE: maintenance"]
    assert group_rows(home, FEAR_GREED).equals(stocked["fear_greed"])
    for spec in (SOLANA, BITCOIN):
        assert group_rows(home, spec)["day"].max() == pd.Timestamp("2024-02-29")


def test_a_backfill_writes_the_groups_that_succeeded(api, home, capsys):
    api.faults[BINANCE_PATH] = down
    assert run_main(feature_backfill.main) == 1
    line, = error_lines(capsys)
    assert "binance SOLUSDT /api/v3/klines: HTTP 503" in line and "; binance BTCUSDT /api/v3/klines" in line
    assert group_rows(home, SOLANA) is None and group_rows(home, BITCOIN) is None
    assert len(group_rows(home, FEAR_GREED)) == 58


def test_every_failure_is_named_on_one_line(api, home, stocked, capsys):
    api.faults = {BINANCE_PATH: down, FNG_PATH: down}
    assert run_main(feature_pipeline.main) == 1
    line, = error_lines(capsys)
    assert line.count("HTTP 503") == 3
    assert [part.split(" /")[0] for part in line.removeprefix("error: feature_pipeline: ").split("; ")] == [
        "binance SOLUSDT", "binance BTCUSDT", "alternative.me fear_greed"]


def test_a_new_fear_greed_label_is_refused_by_name_without_blocking_prices(api, home, stocked, capsys):
    fng = api.history["fear_greed"]
    fng.loc[fng["day"] == pd.Timestamp("2024-02-25"), "classification"] = "Euphoria"
    assert run_main(feature_pipeline.main) == 1
    assert error_lines(capsys) == ["error: feature_pipeline: alternative.me fear_greed 2024-02-25: "
                                   "unknown classification 'Euphoria'"]
    assert group_rows(home, SOLANA)["day"].max() == pd.Timestamp("2024-02-29")
    assert group_rows(home, FEAR_GREED).equals(stocked["fear_greed"])


def test_a_day_not_published_yet_is_not_a_hole(api, home, stocked, capsys):
    """Days after the newest an upstream has are late, not missing: a warning, and nothing is recorded.

    Not a failure either: status shows the group behind, and inference refuses stale prices.
    """
    sol = api.history["solana"]
    api.history["solana"] = sol[sol["day"] <= pd.Timestamp("2024-02-27")].reset_index(drop=True)
    assert run_main(feature_pipeline.main) == 0
    assert ("solana: no rows for 2024-02-28..2024-02-29 from binance SOLUSDT yet; the group ends 2024-02-27"
            in capsys.readouterr().err)
    assert group_rows(home, SOLANA)["day"].max() == pd.Timestamp("2024-02-27")
    assert group_rows(home, BITCOIN)["day"].max() == pd.Timestamp("2024-02-29")
    assert status_json(capsys)["groups"]["solana"]["behind_days"] == 2
    record = group_rows(home, HOLES)
    assert record is None or not (record["feature_group"] == "solana").any()
