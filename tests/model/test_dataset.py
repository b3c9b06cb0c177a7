"""Tests for the feature view and the model windows (cryptocast.dataset).

Expected window counts and origins are worked out by hand from the day indices:
with days 0..D-1 on a complete calendar, day 0 has no log return, so the first
complete 15-day input ends on day 15; targets need days t+1..t+10, so the last
origin with all targets is day D-11.  No TensorFlow is imported here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptocast.dataset import (
    FEATURES,
    HORIZON,
    LOOKBACK,
    MAX_FEAR_GREED_FILL,
    FeatureFrame,
    build_features,
    make_windows,
)

from fakeapi import synthetic_history

START = "2024-01-01"
T0 = pd.Timestamp(START)


def day(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=k)


def history(days: int, seed: int = 7, fng_holes: tuple[str, ...] = ()) -> dict:
    return synthetic_history(START, days, seed=seed, fng_holes=fng_holes)


def features(h: dict) -> FeatureFrame:
    return build_features(h["solana"], h["bitcoin"], h["fear_greed"])


def day_numbers(origins: pd.DatetimeIndex) -> list[int]:
    return [int((o - T0) / pd.Timedelta(days=1)) for o in origins]


def exp_history(days: int) -> dict:
    """SOL close exp(0.01 k) on day k (every daily log return is exactly 0.01)."""
    h = history(days)
    close = np.exp(0.01 * np.arange(days))
    h["solana"] = h["solana"].assign(open=close, close=close, high=close * 1.02, low=close / 1.02)
    return h


# --- shapes and counts -------------------------------------------------------------------------


@pytest.mark.parametrize("days", [26, 40, 120])
def test_window_shapes_and_count_by_hand(days):
    w = make_windows(features(history(days)))
    n = days - 1 - LOOKBACK - HORIZON + 1  # origins 15 .. days-11
    assert n == days - 25
    assert w.x.shape == (n, LOOKBACK, len(FEATURES)) == (n, 15, 7)
    assert w.y.shape == (n, HORIZON) == (n, 10)
    assert len(w.origins) == n and w.last_close.shape == (n,)
    assert day_numbers(w.origins) == list(range(15, days - 10))
    assert np.isfinite(w.x).all() and np.isfinite(w.y).all()


def test_too_few_days_gives_empty_windows_with_the_right_shapes():
    w = make_windows(features(history(25)))  # origin 15 would need day 25
    assert w.x.shape == (0, 15, 7)
    assert w.y.shape == (0, 10)
    assert len(w.origins) == 0 and len(w.last_close) == 0


def test_without_targets_every_complete_input_is_an_origin():
    days = 40
    w = make_windows(features(history(days)), require_targets=False)
    assert day_numbers(w.origins) == list(range(15, days))
    # origin day t knows targets only up to day days-1: y[., h-1] is finite iff t + h <= days - 1
    for t, row in zip(day_numbers(w.origins), w.y, strict=True):
        expected = np.array([t + h <= days - 1 for h in range(1, HORIZON + 1)])
        np.testing.assert_array_equal(np.isfinite(row), expected)
    assert np.isnan(w.y[-1]).all()
    assert np.isfinite(w.x).all()


# --- alignment ---------------------------------------------------------------------------------


def test_targets_are_exactly_h_days_after_the_origin():
    h = exp_history(60)
    ff = features(h)
    w = make_windows(ff)
    assert len(w.origins) == 35
    for i in range(HORIZON):
        np.testing.assert_allclose(w.y[:, i], (i + 1) * 0.01, rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.last_close, np.exp(0.01 * np.array(day_numbers(w.origins))), rtol=1e-12)


def test_last_input_row_is_the_origin_day():
    h = exp_history(60)
    ff = features(h)
    w = make_windows(ff)
    fng = h["fear_greed"].set_index("day")["value"]
    sol_idx = FEATURES.index("sol_log_return")
    fng_idx = FEATURES.index("fear_greed")
    for i, origin in enumerate(w.origins):
        assert w.x[i, -1, sol_idx] == pytest.approx(0.01, abs=1e-12)
        assert w.x[i, -1, fng_idx] == fng[origin] / 100
        np.testing.assert_array_equal(w.x[i, -1], ff.frame.loc[origin, list(FEATURES)].to_numpy(dtype=float))
        first = origin - pd.Timedelta(days=LOOKBACK - 1)
        np.testing.assert_array_equal(w.x[i, 0], ff.frame.loc[first, list(FEATURES)].to_numpy(dtype=float))
        np.testing.assert_array_equal(w.x[i], ff.frame.loc[first:origin, list(FEATURES)].to_numpy(dtype=float))


def test_feature_values_by_hand_for_one_day():
    h = history(30)
    ff = features(h)
    k = 10
    sol, btc = h["solana"].iloc[k], h["bitcoin"].iloc[k]
    row = ff.frame.loc[day(k)]
    assert row["sol_log_return"] == pytest.approx(np.log(sol["close"] / h["solana"].iloc[k - 1]["close"]))
    assert row["btc_log_return"] == pytest.approx(np.log(btc["close"] / h["bitcoin"].iloc[k - 1]["close"]))
    assert row["sol_log_volume"] == pytest.approx(np.log1p(sol["volume"]))
    assert row["btc_log_range"] == pytest.approx(np.log(btc["high"] / btc["low"]))
    assert row["fear_greed"] == pytest.approx(h["fear_greed"].iloc[k]["value"] / 100)


# --- no look-ahead -----------------------------------------------------------------------------


def perturbed_after(h: dict, t: int, seed: int = 99) -> dict:
    """Every price, volume and Fear & Greed value strictly after day t replaced by garbage."""
    rng = np.random.default_rng(seed)
    out = {}
    cut = day(t)
    for asset in ("solana", "bitcoin"):
        df = h[asset].copy()
        later = df["day"] > cut
        m = int(later.sum())
        lo = rng.uniform(1, 1000, m)
        df.loc[later, "low"] = lo
        df.loc[later, "high"] = lo * rng.uniform(1.0, 2.0, m)
        df.loc[later, "open"] = rng.uniform(lo, df.loc[later, "high"])
        df.loc[later, "close"] = rng.uniform(lo, df.loc[later, "high"])
        df.loc[later, "volume"] = rng.uniform(0, 1e9, m)
        out[asset] = df
    fng = h["fear_greed"].copy()
    later = fng["day"] > cut
    fng.loc[later, "value"] = rng.integers(0, 101, int(later.sum()))
    # and a hole right after t, which must not be filled backwards
    out["fear_greed"] = fng[fng["day"] != day(t + 1)].reset_index(drop=True)
    return out


@pytest.mark.parametrize("t", [20, 33, 60])
def test_changing_the_future_changes_nothing_up_to_t(t):
    h = history(80)
    a, b = features(h), features(perturbed_after(h, t))
    upto = a.frame.loc[: day(t)]
    # the hole after t only turns the raw F&G column's dtype from int to float
    pd.testing.assert_frame_equal(upto, b.frame.loc[: day(t)], check_dtype=False, check_exact=True)
    assert not a.frame.loc[day(t + 1) :, "sol_close"].equals(b.frame.loc[day(t + 1) :, "sol_close"])
    wa = make_windows(a, require_targets=False)
    wb = make_windows(b, require_targets=False)
    early_a, early_b = wa.origins <= day(t), wb.origins <= day(t)
    assert early_a.sum() == t - 14
    np.testing.assert_array_equal(wa.origins[early_a], wb.origins[early_b])
    np.testing.assert_array_equal(wa.x[early_a], wb.x[early_b])
    np.testing.assert_array_equal(wa.last_close[early_a], wb.last_close[early_b])


@pytest.mark.parametrize("t", [20, 47])
def test_truncating_after_t_changes_nothing_up_to_t(t):
    h = history(80)
    cut = {k: v[v["day"] <= day(t)] for k, v in h.items()}
    a, b = features(h), features(cut)
    pd.testing.assert_frame_equal(a.frame.loc[: day(t)], b.frame, check_exact=True)
    wa = make_windows(a, require_targets=False)
    wb = make_windows(b, require_targets=False)
    early = wa.origins <= day(t)
    np.testing.assert_array_equal(wa.origins[early], wb.origins)
    np.testing.assert_array_equal(wa.x[early], wb.x)


# --- gaps --------------------------------------------------------------------------------------


def test_missing_sol_day_breaks_every_window_that_would_include_it():
    days, g = 90, 45
    h = history(days)
    h["solana"] = h["solana"][h["solana"]["day"] != day(g)].reset_index(drop=True)
    ff = features(h)
    assert len(ff.frame) == days  # still a complete calendar
    assert np.isnan(ff.frame.loc[day(g), "sol_close"])
    assert np.isnan(ff.frame.loc[day(g + 1), "sol_log_return"])  # no return across the gap
    w = make_windows(ff)
    # inputs need days t-14..t plus t-15 for the first return; targets need t+1..t+10:
    # every origin in [g-10, g+15] touches the gap
    expected = [t for t in range(15, days - 10) if not g - 10 <= t <= g + 15]
    assert day_numbers(w.origins) == expected
    assert np.isfinite(w.x).all() and np.isfinite(w.y).all()
    for t in day_numbers(w.origins):
        assert not t - 14 <= g <= t + HORIZON


def test_missing_sol_day_without_targets_keeps_inputs_but_never_uses_the_gap_target():
    days, g = 90, 45
    h = history(days)
    h["solana"] = h["solana"][h["solana"]["day"] != day(g)].reset_index(drop=True)
    w = make_windows(features(h), require_targets=False)
    expected = [t for t in range(15, days) if not g <= t <= g + 15]
    assert day_numbers(w.origins) == expected
    for t, row in zip(day_numbers(w.origins), w.y, strict=True):
        known = np.array([t + k != g and t + k <= days - 1 for k in range(1, HORIZON + 1)])
        np.testing.assert_array_equal(np.isfinite(row), known)


def test_missing_btc_day_also_breaks_windows():
    days, g = 90, 45
    h = history(days)
    h["bitcoin"] = h["bitcoin"][h["bitcoin"]["day"] != day(g)].reset_index(drop=True)
    w = make_windows(features(h))
    # BTC is an input only: inputs over g or g+1 are broken, SOL targets are still fine
    expected = [t for t in range(15, days - 10) if not g <= t <= g + 15]
    assert day_numbers(w.origins) == expected


# --- Fear & Greed holes ------------------------------------------------------------------------


def test_two_day_fear_greed_hole_is_forward_filled_and_counted():
    days = 60
    holes = (str(day(30).date()), str(day(31).date()))
    h = history(days, fng_holes=holes)
    ff = features(h)
    assert ff.fear_greed_filled == 2
    before = h["fear_greed"].set_index("day").loc[day(29), "value"]
    assert ff.frame.loc[day(30), "fear_greed"] == before / 100
    assert ff.frame.loc[day(31), "fear_greed"] == before / 100
    assert ff.frame.loc[day(31), "fear_greed_raw"] == before
    w = make_windows(ff)
    assert day_numbers(w.origins) == list(range(15, days - 10))  # nothing dropped


def test_no_holes_means_nothing_filled():
    assert features(history(40)).fear_greed_filled == 0


def test_fear_greed_hole_longer_than_the_fill_limit_drops_windows():
    days, g = 90, 40
    length = MAX_FEAR_GREED_FILL + 2
    holes = tuple(str(day(g + i).date()) for i in range(length))
    ff = features(history(days, fng_holes=holes))
    assert ff.fear_greed_filled == MAX_FEAR_GREED_FILL
    fng = ff.frame["fear_greed"]
    assert fng.loc[day(g) : day(g + MAX_FEAR_GREED_FILL - 1)].notna().all()
    unfilled = range(g + MAX_FEAR_GREED_FILL, g + length)
    assert all(np.isnan(fng.loc[day(k)]) for k in unfilled)
    w = make_windows(ff)
    lo, hi = unfilled[0], unfilled[-1] + LOOKBACK - 1  # origins whose inputs cover an unfilled day
    expected = [t for t in range(15, days - 10) if not lo <= t <= hi]
    assert day_numbers(w.origins) == expected
    assert np.isfinite(w.x).all()
