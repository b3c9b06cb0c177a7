"""Replay: the daily job runs once per simulated day for 38 days, through a 5-day outage."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA
from cryptocast.stores.local import LocalFeatureStore

import feature_backfill
import feature_pipeline
from conftest import run_main, snapshot
from fakeapi import BINANCE_PATH, CC_PATH, FNG_PATH, synthetic_history

FIRST_RUN, LAST_RUN = dt.date(2024, 2, 2), dt.date(2024, 3, 10)
OUTAGE = {dt.date(2024, 2, 14) + dt.timedelta(days=i) for i in range(5)}
FNG_HOLE = "2024-02-25"  # a day the index itself never had, inside the replay window


def down(query):
    return 503, b'{"error": "down"}'


@pytest.mark.parametrize("keyed", [False, True], ids=["binance", "cryptocompare"])
def test_daily_replay_through_an_outage(api, home, monkeypatch, keyed):
    api.history = synthetic_history("2023-12-01", 130, seed=11, fng_holes=(FNG_HOLE,))
    if keyed:
        monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    api.now = FIRST_RUN - dt.timedelta(days=1)
    monkeypatch.setenv("CRYPTOCAST_AS_OF", api.now.isoformat())
    assert run_main(feature_backfill.main) == 0

    day, outcomes = FIRST_RUN, {}
    while day <= LAST_RUN:
        api.now = day
        monkeypatch.setenv("CRYPTOCAST_AS_OF", day.isoformat())
        api.faults = {path: down for path in (BINANCE_PATH, CC_PATH, FNG_PATH)} if day in OUTAGE else {}
        before = snapshot(home)
        outcomes[day] = run_main(feature_pipeline.main)
        if day in OUTAGE:
            assert snapshot(home) == before
        day += dt.timedelta(days=1)

    assert len(outcomes) == 38
    assert {d for d, rc in outcomes.items() if rc != 0} == OUTAGE
    store = LocalFeatureStore(home)
    last_complete = pd.Timestamp(LAST_RUN - dt.timedelta(days=1))
    for spec in (SOLANA, BITCOIN, FEAR_GREED):
        stored = store.get_feature_group(spec).read()
        truth = api.history[spec.name]
        truth = truth[truth["day"] <= last_complete].reset_index(drop=True)
        assert stored["day"].is_unique
        assert stored["day"].tolist() == truth["day"].tolist(), spec.name
        columns = [c for c in truth.columns if c != "day"]
        pd.testing.assert_frame_equal(stored[columns], truth[columns], check_dtype=False, rtol=1e-9)
    fng_days = store.get_feature_group(FEAR_GREED).read()["day"]
    assert pd.Timestamp(FNG_HOLE) not in set(fng_days)
