"""Tests for the TensorFlow-free parts of cryptocast.modeling.forecasters.

Baselines, the scaler and the shrinkage factor are checked against hand computations;
nothing here fits a network, so no TensorFlow is imported.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK, Windows, build_features, make_windows
from cryptocast.modeling.forecasters import (
    Drift,
    Naive,
    Scaler,
    select,
    shrinkage,
    standard_scaler,
    steady_path,
)
from cryptocast.modeling.portable import CorruptModelError

from fakeapi import synthetic_history

START = "2024-01-01"
T0 = pd.Timestamp(START)
STEPS = np.arange(1, HORIZON + 1)


def day(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(days=k)


def frame_of(h: dict):
    return build_features(h["solana"], h["bitcoin"], h["fear_greed"])


# --- baselines ---------------------------------------------------------------------------------


def test_naive_repeats_the_origin_close():
    h = synthetic_history(START, 80)
    ff = frame_of(h)
    origins = pd.DatetimeIndex([day(20), day(33), day(79)])
    closes = h["solana"].set_index("day")["close"]
    out = Naive().predict(ff, origins)
    assert out.shape == (3, HORIZON)
    for row, origin in zip(out, origins, strict=True):
        assert (row == closes[origin]).all()


def test_drift_is_mean_log_return_up_to_the_last_training_origin():
    h = synthetic_history(START, 120)
    ff = frame_of(h)
    close = h["solana"]["close"].to_numpy()
    train = make_windows(ff).origins[:40]  # days 15..54
    last = 54
    assert train.max() == day(last)
    drift = Drift()
    drift.fit(ff, train)
    # the mean of log(c_k / c_{k-1}) for k = 1..last telescopes to log(c_last / c_0) / last
    mu = np.log(close[last] / close[0]) / last
    assert drift.mu == pytest.approx(mu, rel=1e-12)
    origins = pd.DatetimeIndex([day(70), day(100)])
    expected = np.array([close[70] * np.exp(STEPS * mu), close[100] * np.exp(STEPS * mu)])
    np.testing.assert_allclose(drift.predict(ff, origins), expected, rtol=1e-12)


def test_drift_ignores_returns_after_the_last_training_origin():
    h = synthetic_history(START, 120)
    train = make_windows(frame_of(h)).origins[:40]
    a = Drift()
    a.fit(frame_of(h), train)
    crash = h["solana"].copy()
    later = crash["day"] > train.max()
    for column in ("open", "high", "low", "close"):
        crash.loc[later, column] = crash.loc[later, column] * 1e-3
    b = Drift()
    b.fit(frame_of({**h, "solana": crash}), train)
    assert a.mu == b.mu


# --- scaler ------------------------------------------------------------------------------------


def test_standard_scaler_by_hand():
    n_feat = len(FEATURES)
    x = np.empty((2, LOOKBACK, n_feat))
    x[0], x[1] = 1.0, 3.0  # every feature: mean 2, population std 1 ...
    x[:, :, -1] = 5.0  # ... except a constant one: std 0 -> scale 1 (no division by zero)
    x[1, :, 0] = 7.0  # feature 0: half 1s, half 7s -> mean 4, std 3
    y = np.array([np.full(HORIZON, 0.1), np.full(HORIZON, -0.1)])
    y[:, 0] = [0.2, 0.2]  # constant target at h=1 -> scale 1
    data = Windows(x, y, pd.DatetimeIndex([day(15), day(16)]), np.array([1.0, 1.0]))
    s = standard_scaler(data)
    assert s.kind == "standard" and s.features == list(FEATURES)
    assert s.x_offset == pytest.approx([4.0] + [2.0] * (n_feat - 2) + [5.0])
    assert s.x_scale == pytest.approx([3.0] + [1.0] * (n_feat - 2) + [1.0])
    assert s.y_offset == [0.0] * HORIZON
    assert s.y_scale == pytest.approx([1.0] + [0.1] * (HORIZON - 1))
    np.testing.assert_allclose(s.x(x)[1, 0], [1.0] + [1.0] * (n_feat - 2) + [0.0])


def test_standard_scaler_uses_only_the_windows_it_is_given():
    h = synthetic_history(START, 200)
    early = make_windows(frame_of(h)).origins[:60]  # days 15..74
    a = standard_scaler(select(make_windows(frame_of(h)), early))
    rng = np.random.default_rng(3)
    cut = early.max() + pd.Timedelta(days=HORIZON)  # the last day any early window reads
    garbage = {}
    for asset in ("solana", "bitcoin"):
        df = h[asset].copy()
        later = df["day"] > cut
        m = int(later.sum())
        low = rng.uniform(1, 1e5, m)
        df.loc[later, ["low", "open", "close"]] = np.c_[low, low * 1.5, low * 1.2]
        df.loc[later, "high"] = low * 2
        df.loc[later, "volume"] = rng.uniform(0, 1e12, m)
        garbage[asset] = df
    fng = h["fear_greed"].copy()
    fng.loc[fng["day"] > cut, "value"] = rng.integers(0, 101, int((fng["day"] > cut).sum()))
    garbage["fear_greed"] = fng
    full_a, full_b = make_windows(frame_of(h)), make_windows(frame_of(garbage))
    assert not np.array_equal(full_a.x[-1], full_b.x[-1])  # the garbage really is different
    b = standard_scaler(select(full_b, early))
    assert a == b
    assert a != standard_scaler(full_a)  # and using all windows would differ


# --- shrinkage ---------------------------------------------------------------------------------


ONES = np.ones(HORIZON)


def test_shrinkage_is_one_factor_for_every_horizon():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 0.05, (200, HORIZON))
    assert shrinkage(y, y, ONES) == 1.0
    assert shrinkage(y, 2 * y, ONES) == 0.5
    # exact at five horizons, twice too large at five: one factor (0.5), not 1 there and 0.5 here
    assert shrinkage(y, np.c_[y[:, :5], 2 * y[:, 5:]], ONES) == 0.5


def test_shrinkage_zero_for_sign_symmetric_random_noise():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 0.05, (300, HORIZON))
    p = rng.normal(0, 0.05, (300, HORIZON))
    # each y seen with p and -p: no information about y, and every s > 0 only adds error
    assert shrinkage(np.r_[y, y], np.r_[p, -p], ONES) == 0.0


def test_shrinkage_is_zero_unless_the_gain_over_naive_is_significant():
    """A small edge on a short validation tail is noise: the forecast stays naive."""
    rng = np.random.default_rng(4)
    y = rng.normal(0, 0.05, (30, HORIZON))
    weak = 0.1 * y + rng.normal(0, 0.05, y.shape)  # a little information, drowned in noise
    assert shrinkage(y, weak, ONES) == 0.0
    errors = [np.abs(y - s * weak).mean() for s in (0.0, 0.1)]
    assert errors[1] < errors[0]  # the lowest validation error alone would have said "not naive"
    strong = 0.5 * y + rng.normal(0, 0.01, y.shape)
    assert shrinkage(y, strong, ONES) > 0.5


def test_shrinkage_weighs_horizons_by_their_scale():
    rng = np.random.default_rng(3)
    y = rng.normal(0, 1.0, (300, HORIZON)) * np.arange(1, HORIZON + 1)
    scale = np.arange(1, HORIZON + 1.0)
    noisy_long = y.copy()
    noisy_long[:, 5:] = rng.normal(0, 1.0, (300, 5)) * scale[5:]
    # unscaled, the long (noisy) horizons dominate; scaled, every horizon counts alike
    assert shrinkage(y, noisy_long, scale) > shrinkage(y, noisy_long, ONES)


def test_steady_path_turns_at_most_once_for_any_input():
    rng = np.random.default_rng(4)
    raw = rng.normal(size=(20000, HORIZON)) * rng.choice([1e-300, 1e-12, 1e-6, 1e-3, 0.1, 1.0], (20000, 1))
    for close in (0.01, 137.23, 1e6):
        prices = close * np.exp(np.c_[np.zeros(len(raw)), steady_path(raw)])  # the origin's close, then h = 1..10
        steps = np.sign(np.diff(prices, axis=1))
        turns = [np.count_nonzero(np.diff(row[row != 0])) for row in steps]
        assert max(turns) <= 1
        assert 0 < np.mean(turns)  # paths do turn: the guarantee is not flatness


def test_steady_path_keeps_a_path_that_already_turns_once_and_is_least_squares():
    h = np.arange(1, HORIZON + 1.0)
    quadratic = 0.01 * h - 0.0015 * h**2
    np.testing.assert_allclose(steady_path(quadratic), quadratic, rtol=1e-12)
    zigzag = np.where(h % 2 == 0, 0.02, -0.02)
    basis = np.c_[h, h**2]
    expected = basis @ np.linalg.lstsq(basis, zigzag, rcond=None)[0]
    np.testing.assert_allclose(steady_path(zigzag), expected, atol=1e-15)
    assert steady_path(np.zeros((3, HORIZON))).tolist() == np.zeros((3, HORIZON)).tolist()


# --- scaler files ------------------------------------------------------------------------------


def good_scaler() -> Scaler:
    n = len(FEATURES)
    return Scaler("standard", list(FEATURES), [0.1 * i for i in range(n)], [1.0 + i for i in range(n)],
                  [0.0] * HORIZON, [0.02 + 0.01 * i for i in range(HORIZON)])


def test_scaler_json_round_trip(tmp_path):
    path = tmp_path / "scaler.json"
    s = good_scaler()
    path.write_text(s.to_json())
    assert Scaler.load(path) == s
    json.loads(path.read_text())  # plain JSON


def write(tmp_path, text: str):
    path = tmp_path / "scaler.json"
    path.write_text(text)
    return path


def test_scaler_load_truncated_file(tmp_path):
    text = good_scaler().to_json()
    path = write(tmp_path, text[: len(text) // 2])
    with pytest.raises(CorruptModelError, match=str(path)):
        Scaler.load(path)


def test_scaler_load_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(CorruptModelError, match="nope.json"):
        Scaler.load(path)


@pytest.mark.parametrize("key", ["x_offset", "x_scale", "y_offset", "y_scale"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "abc"])
def test_scaler_load_non_finite_parameter(tmp_path, key, bad):
    data = json.loads(good_scaler().to_json())
    data[key][1] = bad
    path = write(tmp_path, json.dumps(data))  # json.dumps writes NaN / Infinity / null
    with pytest.raises(CorruptModelError, match=str(path)):
        Scaler.load(path)


@pytest.mark.parametrize("key", ["features", "x_offset", "x_scale", "y_offset", "y_scale"])
@pytest.mark.parametrize("change", ["short", "long", "one"])
def test_scaler_load_wrong_lengths(tmp_path, key, change):
    # "one" is the dangerous case: a length-1 list broadcasts silently in Scaler.x / the
    # original model's output instead of failing, so every feature would get the same scale.
    data = json.loads(good_scaler().to_json())
    data[key] = {"short": data[key][:-1], "long": data[key] + data[key][:1], "one": data[key][:1]}[change]
    path = write(tmp_path, json.dumps(data))
    with pytest.raises(CorruptModelError, match=str(path)):
        Scaler.load(path)


@pytest.mark.parametrize("edit", ["missing_key", "extra_key", "not_an_object"])
def test_scaler_load_wrong_structure(tmp_path, edit):
    data = json.loads(good_scaler().to_json())
    if edit == "missing_key":
        del data["x_scale"]
    elif edit == "extra_key":
        data["surprise"] = 1
    else:
        data = [data]
    path = write(tmp_path, json.dumps(data))
    with pytest.raises(CorruptModelError, match=str(path)):
        Scaler.load(path)


# --- select ------------------------------------------------------------------------------------


def test_select_picks_exactly_those_origins():
    w = make_windows(frame_of(synthetic_history(START, 60)))
    picked = select(w, pd.DatetimeIndex([day(30), day(16)]))
    assert list(picked.origins) == [day(30), day(16)]
    np.testing.assert_array_equal(picked.x[0], w.x[30 - 15])
    np.testing.assert_array_equal(picked.y[1], w.y[16 - 15])
    assert picked.last_close[0] == w.last_close[30 - 15]


@pytest.mark.parametrize("k", [14, 50, 200])  # no full lookback / targets unknown / outside the data
def test_select_raises_for_an_origin_without_a_complete_window(k):
    w = make_windows(frame_of(synthetic_history(START, 60)))
    with pytest.raises(ValueError, match=str(day(k).date())):
        select(w, pd.DatetimeIndex([day(20), day(k)]))
