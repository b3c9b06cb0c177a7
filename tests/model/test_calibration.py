"""The calibration maths: volatility, ACI updates, the only-known-outcomes rule, coverage in calm and
wild markets, quantile order, the fixed-band peer, and the state file (no TensorFlow)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cryptocast import evaluation
from cryptocast.modeling import calibration
from cryptocast.modeling.calibration import LEVELS, CalibrationConfig, State
from cryptocast.modeling.portable import CorruptModelError

H = 10
CONFIG = CalibrationConfig()


def test_volatility_is_the_weighted_rms_of_the_last_returns_and_skips_holes():
    days = pd.date_range("2024-01-01", periods=200, freq="D")
    returns = pd.Series(np.random.default_rng(0).normal(0, 0.03, 200), index=days)
    returns.iloc[150] = np.nan
    sigma = calibration.volatility(returns, CONFIG)
    t = 180
    window = returns.iloc[t - 119 : t + 1]
    weights = 0.97 ** np.arange(119, -1, -1)
    known = window.notna().to_numpy()
    expected = np.sqrt(np.sum(weights[known] * window.to_numpy()[known] ** 2) / np.sum(weights[known]))
    assert sigma.iloc[t] == pytest.approx(expected, rel=1e-12)
    assert sigma.iloc[:28].isna().all() and np.isfinite(sigma.iloc[29])  # 30 returns needed
    # the estimate at a day does not depend on how much earlier history was read
    assert calibration.volatility(returns.iloc[t - 130 :], CONFIG).iloc[-20] == pytest.approx(sigma.iloc[t], rel=1e-12)


def test_aci_moves_a_level_against_its_misses_in_steps_of_gamma_over_h():
    state = State(CalibrationConfig(gamma=0.01), H)
    below = np.ones(len(LEVELS))  # every outcome at or below every quantile: all quantiles read too high
    state.ingest(0, 0.0, below)
    np.testing.assert_allclose(state.tau[0], np.asarray(LEVELS) + 0.01 * (np.asarray(LEVELS) - 1))
    state.ingest(4, 0.0, np.zeros(len(LEVELS)))  # horizon 5: step gamma / 5, upward
    np.testing.assert_allclose(state.tau[4], np.asarray(LEVELS) + 0.002 * np.asarray(LEVELS))
    state.ingest(1, 0.0, np.full(len(LEVELS), np.nan))  # no quantile was issued: the level stays
    np.testing.assert_array_equal(state.tau[1], LEVELS)
    for _ in range(10000):  # a long storm cannot wind the state up
        state.ingest(0, 0.0, below)
    np.testing.assert_allclose(state.tau[0], np.asarray(LEVELS) - CONFIG.max_shift)


def test_issued_quantiles_are_mirrored_magnitudes_and_always_ordered():
    rng = np.random.default_rng(1)
    state = State(CONFIG, H)
    for h in range(H):
        for score in rng.standard_t(3, 300):
            state.ingest(h, score, None)
    q = state.issue()
    magnitudes = np.abs(np.asarray(state.scores[3]))
    np.testing.assert_allclose(q[3], np.sign(np.asarray(LEVELS) - 0.5) * np.quantile(magnitudes, np.abs(
        2 * np.asarray(LEVELS) - 1)))
    state.tau = rng.uniform(-0.5, 1.5, state.tau.shape)  # levels pushed anywhere, even crossed
    assert (np.diff(state.issue(), axis=1) >= 0).all()
    assert State(CONFIG, H).issue().shape == (H, len(LEVELS)) and np.isnan(State(CONFIG, H).issue()).all()


def test_walk_uses_only_outcomes_known_at_each_origin():
    rng = np.random.default_rng(2)
    score = rng.normal(0, 1, (300, H))
    config = CalibrationConfig(min_scores=20)
    issued, _ = calibration.walk(score, config)
    j, h = 150, 6  # origin 150's 7-day outcome is known from origin 157 on
    changed = score.copy()
    changed[j, h] = 40.0
    again, _ = calibration.walk(changed, config)
    np.testing.assert_array_equal(again[: j + h + 1], issued[: j + h + 1])  # origins up to 156: unknown
    assert not np.array_equal(again[j + h + 1, h], issued[j + h + 1, h])  # origin 157 knows day 157's close
    assert np.isnan(issued[: 20 + h, h]).all() and np.isfinite(issued[20 + h :, h]).all()


def heteroscedastic(n: int, seed: int) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Daily returns whose volatility switches between calm (1%) and wild (6%) regimes of 60-200 days;
    the naive forecast's log errors at each origin and horizon, and each origin's regime."""
    rng = np.random.default_rng(seed)
    regime = np.zeros(n, dtype=int)
    day = 0
    while day < n:
        length = rng.integers(60, 200)
        regime[day : day + length] = rng.integers(0, 2)
        day += length
    returns = rng.standard_t(5, n) / np.sqrt(5 / 3) * np.where(regime == 1, 0.06, 0.01)
    log_price = np.cumsum(returns)
    errors = np.full((n, H), np.nan)
    for h in range(1, H + 1):
        errors[: n - h, h - 1] = log_price[h:] - log_price[:-h]
    return pd.Series(returns, index=pd.date_range("2020-01-01", periods=n, freq="D")), errors, regime


def test_coverage_holds_in_calm_and_in_wild_markets_where_a_fixed_band_fails():
    """Errors here scale fully with a persistent volatility, so the power is 1 at every horizon (the
    production powers, below 1, were chosen on real prices, whose volatility mean-reverts faster)."""
    returns, errors, regime = heteroscedastic(3000, seed=3)
    config = CalibrationConfig(beta=1.0, beta_long=1.0)
    sigma = calibration.volatility(returns, config).to_numpy()
    point = np.ones_like(errors)
    actual = np.exp(errors)
    quantiles, _ = calibration.walk(calibration.scores(actual, point, sigma, config), config)
    ours = calibration.to_prices(point, sigma, quantiles, config)
    fixed = point[..., None] * np.exp(calibration.fixed_band(errors, CONFIG))
    scored = np.zeros(len(errors), dtype=bool)
    scored[500 : len(errors) - H] = True
    lo, hi = LEVELS.index(0.1), LEVELS.index(0.9)
    for q, tolerance in ((ours, 0.05), (fixed, None)):
        inside = (actual >= q[..., lo]) & (actual <= q[..., hi])
        calm = inside[scored & (regime == 0)].mean()
        wild = inside[scored & (regime == 1)].mean()
        if tolerance:
            assert abs(inside[scored].mean() - 0.8) < 0.02
            assert abs(calm - 0.8) < tolerance and abs(wild - 0.8) < tolerance, (calm, wild)
        else:
            assert calm > 0.9 and wild < 0.7, (calm, wild)  # too wide when calm, too narrow when wild


def test_fixed_band_is_split_conformal_on_the_known_window():
    errors = np.random.default_rng(4).normal(0, 0.05, (200, H))
    config = CalibrationConfig(window=50, min_scores=30)
    band = calibration.fixed_band(errors, config)
    t, h = 120, 3  # known at origin 120 for 4 days ahead: origins 66..116
    widths = evaluation.conformal_intervals(errors[66:117, h][:, None], (0.5, 0.8, 0.9, 0.95))
    assert band[t, h, LEVELS.index(0.9)] == pytest.approx(widths[0.8][0])
    assert band[t, h, LEVELS.index(0.025)] == pytest.approx(-widths[0.95][0])
    assert band[t, h, LEVELS.index(0.5)] == 0.0
    assert np.isnan(band[: 30 + h, h]).all() and np.isfinite(band[30 + h :, h]).all()


def state_file(tmp_path, edit=None):
    state = State(CONFIG, H)
    for h in range(H):
        for score in np.random.default_rng(h).normal(0, 1, 100):
            state.ingest(h, score, np.zeros(len(LEVELS)))
    path = tmp_path / calibration.CALIBRATION_FILE
    path.write_text(state.to_json("2024-05-01"))
    if edit:
        doc = json.loads(path.read_text())
        edit(doc)
        path.write_text(json.dumps(doc))
    return state, path


def test_the_state_round_trips_through_its_file(tmp_path):
    state, path = state_file(tmp_path)
    loaded, last_origin = State.load(path, H)
    assert last_origin == pd.Timestamp("2024-05-01") and loaded.config == CONFIG
    np.testing.assert_array_equal(loaded.tau, state.tau)
    np.testing.assert_array_equal(loaded.issue(), state.issue())


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda d: d["tau"][0].__setitem__(0, None), "tau must be (10, 9) finite numbers"),
    (lambda d: d.__setitem__("tau", d["tau"][:3]), "tau must be (10, 9) finite numbers"),
    (lambda d: d["scores"][2].__setitem__(5, "x"), "could not convert"),
    (lambda d: d.__setitem__("scores", d["scores"][:9]), "scores must hold 10 horizons, got 9"),
    (lambda d: d["scores"].__setitem__(4, d["scores"][4][:10]), "horizon 5 has 10 scores, fewer than the 60"),
    (lambda d: d.__setitem__("levels", [0.1, 0.9]), "levels [0.1, 0.9] are not"),
    (lambda d: d.pop("config"), "KeyError: 'config'"),
    (lambda d: d.__setitem__("format_version", 9), "not a cryptocast-calibration v1 file"),
])
def test_a_damaged_state_file_is_a_corrupt_model(tmp_path, edit, problem):
    _, path = state_file(tmp_path, edit)
    with pytest.raises(CorruptModelError, match="calibration.json: ") as caught:
        State.load(path, H)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_state_file_is_a_corrupt_model(tmp_path):
    with pytest.raises(CorruptModelError, match="calibration.json: FileNotFoundError"):
        State.load(tmp_path / calibration.CALIBRATION_FILE, H)
