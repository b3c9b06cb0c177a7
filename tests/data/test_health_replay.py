"""Model health replayed on the real history in ../shared/data (runs wherever that folder is present).

Stated detection times, with the default thresholds (90-day live window, 95% bootstrap range, PSI 2, 5 frozen days):

- Coverage: a fixed band sized on the calm year before 2023-10-15 (naive point, the 2022-10..2023-10 errors'
  quantiles), published daily from 2023-07-01 through SOL's 5x rally from 2023-10-20 ($24 to $120 by
  late December). Its 80% ranges 8-10 days ahead held 78% into October (green), fell to 57% and turned
  red on 2023-12-23, 64 days after the rally began (the 90-day window must fill with misses first), and
  were green again on 2024-01-22 once the rally's weeks began leaving the window.
- Inputs: against a model trained on 2020-09..2023-12, every input check of 2024 passes; a Fear & Greed
  feed frozen from 2024-06-01, or SOL's daily range collapsing to zero from then, is red on the 5th frozen
  day (the frozen check) and on the 24th by drift (PSI of the daily changes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptocast import health
from cryptocast.dataset import build_features
from cryptocast.features import FORECAST_QUANTILES

from conftest import SHARED_DATA
from fakeapi import shared_history

pytestmark = pytest.mark.shared_data
LEVELS = np.array(list(FORECAST_QUANTILES.values()))
TRAINED_TO = pd.Timestamp("2023-10-15")
RALLY = pd.Timestamp("2023-10-20")


@pytest.fixture(scope="module")
def history() -> dict:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return shared_history(SHARED_DATA)


def fixed_band(closes: pd.Series, days: pd.DatetimeIndex, offsets: np.ndarray) -> pd.DataFrame:
    """No-change point forecasts with the same log offsets (10 horizons x 9 quantiles) every day."""
    origin = np.repeat(days.to_numpy(), 10)
    horizon = np.tile(np.arange(1, 11), len(days))
    point = closes.reindex(origin).to_numpy()
    quantiles = point[:, None] * np.exp(offsets[horizon - 1])
    rows = pd.DataFrame({"forecast_day": origin, "target_day": origin + pd.to_timedelta(horizon, unit="D"),
                         "horizon": horizon, "point": point, "model_version": 1})
    return rows.join(pd.DataFrame(quantiles, columns=list(FORECAST_QUANTILES)))


@pytest.mark.slow
def test_the_live_check_turns_red_when_a_fixed_band_breaks_and_green_after(history):
    closes = history["solana"].set_index("day")["close"]
    backtest_days = pd.date_range(TRAINED_TO - pd.Timedelta(days=375), TRAINED_TO - pd.Timedelta(days=11))
    errors = np.log(np.stack([closes.reindex(backtest_days + pd.Timedelta(days=h)).to_numpy() for h in range(1, 11)],
                             axis=1) / closes.reindex(backtest_days).to_numpy()[:, None])
    offsets = np.quantile(errors, LEVELS, axis=0).T
    backtest = fixed_band(closes, backtest_days, offsets)
    backtest = backtest.assign(naive=closes.reindex(backtest["forecast_day"]).to_numpy(),
                               actual=closes.reindex(backtest["target_day"]).to_numpy())
    ranges = health.backtest_ranges(backtest, 90, 0.95)
    published = fixed_band(closes, pd.date_range("2023-07-01", "2024-02-29"), offsets)

    def verdict(day: str) -> tuple[str, float]:
        rows = health.live_checks(published[published["forecast_day"] <= day], closes, ranges, pd.Timestamp(day),
                                  health.Thresholds())
        row = next(r for r in rows if r["health_check"] == "coverage_80 h8-10")
        return row["verdict"], row["statistic"]

    assert closes[RALLY] < 30 and closes["2023-12-25"] > 100
    for day in pd.date_range("2023-09-01", RALLY, freq="5D").strftime("%Y-%m-%d"):
        assert verdict(day)[0] == health.OK, day
    first_red = next(day for day in pd.date_range(RALLY, periods=90) if verdict(str(day.date()))[0] == health.FAIL)
    assert first_red == pd.Timestamp("2023-12-23") and (first_red - RALLY).days == 64
    assert verdict("2023-12-23")[1] < 0.58
    back = next(day for day in pd.date_range(first_red, periods=90) if verdict(str(day.date()))[0] == health.OK)
    assert back == pd.Timestamp("2024-01-22")
    for day in pd.date_range(back, "2024-02-29", freq="7D").strftime("%Y-%m-%d"):
        assert verdict(day)[0] == health.OK, day


TRAINING = (pd.Timestamp("2020-09-01"), pd.Timestamp("2023-12-31"))
BREAKS = pd.Timestamp("2024-06-01")


def checks(frame: pd.DataFrame, day: pd.Timestamp) -> dict[str, dict]:
    reference = health.input_profile(frame, TRAINING)
    return {r["health_check"]: r for r in health.input_checks(frame, reference, day, health.Thresholds())}


def days_to_red(frame: pd.DataFrame, name: str) -> int:
    return next(n for n in range(1, 60) if checks(frame, BREAKS + pd.Timedelta(days=n - 1))[name]["verdict"]
                == health.FAIL)


def test_real_inputs_of_2024_pass_every_input_check(history):
    frame = build_features(history["solana"], history["bitcoin"], history["fear_greed"]).frame
    for day in pd.date_range("2024-01-15", "2024-12-31", freq="9D"):
        failing = [r["detail"] for r in checks(frame, day).values() if r["verdict"] != health.OK]
        assert failing == [], day


def test_a_frozen_fear_greed_feed_turns_red_on_its_fifth_day(history):
    fng = history["fear_greed"].copy()
    stuck = fng["day"] >= BREAKS
    fng.loc[stuck, "value"] = int(fng.loc[fng["day"] == BREAKS, "value"].iloc[0])
    frame = build_features(history["solana"], history["bitcoin"], fng).frame
    assert days_to_red(frame, "frozen fear_greed") == 5
    assert days_to_red(frame, "drift fear_greed") == 24
    assert "since 2024-06-01" in checks(frame, BREAKS + pd.Timedelta(days=4))["frozen fear_greed"]["detail"]


def test_sol_daily_range_collapsing_to_zero_turns_red_on_its_fifth_day(history):
    sol = history["solana"].copy()
    flat = sol["day"] >= BREAKS
    sol.loc[flat, "high"] = sol.loc[flat, "low"] = sol.loc[flat, "close"]
    frame = build_features(sol, history["bitcoin"], history["fear_greed"]).frame
    assert days_to_red(frame, "frozen sol_log_range") == 5
    assert days_to_red(frame, "drift sol_log_range") == 24
