"""Tests for cryptocast.evaluation.

Every expected value is worked out by hand below from tiny arrays; the functions'
own output is never used as a reference.  SciPy appears only as the reference
distribution (Student t survival function), never to compute the statistic itself.
"""

import json
import math

import numpy as np
import pytest
from scipy import stats

from cryptocast.evaluation import (
    block_bootstrap,
    conformal_intervals,
    diebold_mariano,
    distribution_scores,
    horizon_metrics,
    interval_scores,
    pinball,
    to_jsonable,
    trading_check,
)

# 4 origins x 2 horizons.
LAST_CLOSE = np.array([10.0, 20.0, 10.0, 20.0])
ACTUAL = np.array([[11.0, 12.0], [19.0, 18.0], [10.0, 9.0], [22.0, 25.0]])
FORECAST = np.array([[12.0, 13.0], [18.0, 17.0], [11.0, 8.0], [21.5, 20.0]])
INSAMPLE = np.array([1.0, 3.0, 2.0, 5.0])  # |diffs| = 2, 1, 3 -> scale 2


def test_point_metrics_by_hand():
    h1, h2 = horizon_metrics(ACTUAL, FORECAST, LAST_CLOSE, INSAMPLE)
    # h=1: errors actual-forecast = -1, 1, -1, 0.5; naive |actual-last| = 1, 1, 0, 2
    assert h1["horizon"] == 1
    assert h1["mae"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)
    assert h1["rmse"] == pytest.approx(math.sqrt((1 + 1 + 1 + 0.25) / 4))
    assert h1["mape"] == pytest.approx(100 * (1 / 11 + 1 / 19 + 1 / 10 + 0.5 / 22) / 4)
    assert h1["mase"] == pytest.approx((3.5 / 4) / 2)
    assert h1["rel_mae"] == pytest.approx((3.5 / 4) / ((1 + 1 + 0 + 2) / 4))
    # h=2: errors = -1, 1, 1, 5; naive |actual-last| = 2, 2, 1, 5
    assert h2["horizon"] == 2
    assert h2["mae"] == pytest.approx(8 / 4)
    assert h2["rmse"] == pytest.approx(math.sqrt((1 + 1 + 1 + 25) / 4))
    assert h2["mape"] == pytest.approx(100 * (1 / 12 + 1 / 18 + 1 / 9 + 5 / 25) / 4)
    assert h2["mase"] == pytest.approx(2 / 2)
    assert h2["rel_mae"] == pytest.approx(2 / (10 / 4))


def test_direction_excludes_ties_and_counts_flat_forecast_as_miss():
    h1, h2 = horizon_metrics(ACTUAL, FORECAST, LAST_CLOSE, INSAMPLE)
    # h=1: actual moves +1, -1, 0 (tie, dropped), +2; forecast moves +2, -2, +1, +1.5
    assert h1["direction_n"] == 3
    assert h1["direction_accuracy"] == pytest.approx(3 / 3)
    assert h1["direction_pvalue"] == pytest.approx(1 / 2**3)
    # h=2: actual moves +2, -2, -1, +5; forecast moves +3, -3, -2, 0 (flat = miss)
    assert h2["direction_n"] == 4
    assert h2["direction_accuracy"] == pytest.approx(3 / 4)
    assert h2["direction_pvalue"] == pytest.approx((4 + 1) / 2**4)  # P(X>=3), X~Bin(4, .5)


def test_direction_binomial_pvalue_nine_of_ten():
    last = np.full(10, 100.0)
    actual = np.full((10, 1), 101.0)
    forecast = np.array([[102.0]] * 9 + [[99.0]])
    (row,) = horizon_metrics(actual, forecast, last, INSAMPLE)
    assert row["direction_accuracy"] == pytest.approx(0.9)
    assert row["direction_pvalue"] == pytest.approx((math.comb(10, 9) + math.comb(10, 10)) / 2**10)


def test_horizon_metrics_dm_uses_absolute_error_model_minus_naive():
    (h1, _) = horizon_metrics(ACTUAL, FORECAST, LAST_CLOSE, INSAMPLE)
    # d = |model err| - |naive err| = (1-1, 1-1, 1-0, 0.5-2) = (0, 0, 1, -1.5)
    n, dbar = 4, -0.5 / 4
    gamma0 = ((0 - dbar) ** 2 * 2 + (1 - dbar) ** 2 + (-1.5 - dbar) ** 2) / n
    stat = dbar / math.sqrt(gamma0 / n) * math.sqrt((n + 1 - 2) / n)
    assert h1["dm_stat"] == pytest.approx(stat)
    assert h1["dm_pvalue"] == pytest.approx(2 * stats.t.sf(abs(stat), n - 1))


# d = loss_a - loss_b = [-1, 0, 1, 2, 4]; mean 1.2; deviations -2.2, -1.2, -0.2, 0.8, 2.8
LOSS_A = np.array([1.0, 2.0, 3.0, 4.0, 6.0])
LOSS_B = np.full(5, 2.0)


def test_dm_h1_by_hand():
    gamma0 = (2.2**2 + 1.2**2 + 0.2**2 + 0.8**2 + 2.8**2) / 5  # = 2.96
    hln = math.sqrt((5 + 1 - 2 * 1 + 0) / 5)
    expected = 1.2 / math.sqrt(gamma0 / 5) * hln
    stat, pvalue = diebold_mariano(LOSS_A, LOSS_B, h=1)
    assert stat == pytest.approx(expected)
    assert pvalue == pytest.approx(2 * stats.t.sf(expected, df=4))


def test_dm_h2_includes_lag1_autocovariance():
    gamma0 = 14.8 / 5
    gamma1 = ((-1.2) * (-2.2) + (-0.2) * (-1.2) + 0.8 * (-0.2) + 2.8 * 0.8) / 5  # = 0.992
    hln = math.sqrt((5 + 1 - 2 * 2 + 2 * 1 / 5) / 5)
    expected = 1.2 / math.sqrt((gamma0 + 2 * gamma1) / 5) * hln
    stat, pvalue = diebold_mariano(LOSS_A, LOSS_B, h=2)
    assert stat == pytest.approx(expected)
    assert pvalue == pytest.approx(2 * stats.t.sf(expected, df=4))


def test_dm_sign_negative_when_first_loss_smaller():
    stat, _ = diebold_mariano(LOSS_B, LOSS_A, h=1)
    assert stat < 0


def test_dm_negative_long_run_variance_falls_back_to_lag0():
    # d = [3, 0, 3, 0, 3, 0]: mean 1.5, gamma0 = 2.25, gamma1 = 5 * (-2.25) / 6 = -1.875
    # gamma0 + 2 * gamma1 = -1.5 <= 0 -> use gamma0
    d = np.array([3.0, 0.0, 3.0, 0.0, 3.0, 0.0])
    expected = 1.5 / math.sqrt(2.25 / 6) * math.sqrt((6 + 1 - 4 + 2 / 6) / 6)
    stat, pvalue = diebold_mariano(d, np.zeros(6), h=2)
    assert stat == pytest.approx(expected)
    assert pvalue == pytest.approx(2 * stats.t.sf(expected, df=5))


@pytest.mark.parametrize(
    ("loss_a", "loss_b", "h"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1),  # identical forecasts: d == 0
        ([1.5, 2.5, 3.5], [1.0, 2.0, 3.0], 2),  # constant nonzero d: zero variance
        ([1.0], [2.0], 1),  # single observation
        ([1.0, 5.0, 2.0], [2.0, 2.0, 2.0], 3),  # HLN factor (3+1-6+2)/3 = 0
    ],
)
def test_dm_degenerate_cases_return_nan(loss_a, loss_b, h):
    stat, pvalue = diebold_mariano(np.array(loss_a), np.array(loss_b), h=h)
    assert math.isnan(stat) and math.isnan(pvalue)


def test_conformal_finite_sample_quantile_index():
    errors = np.array([[-0.5], [0.1], [0.4], [-0.2], [0.3]])  # sorted |e|: .1 .2 .3 .4 .5
    widths = conformal_intervals(errors, levels=(0.5, 0.6, 0.8, 0.95))
    assert widths[0.5][0] == pytest.approx(0.3)  # ceil(6 * .5) = 3rd smallest
    assert widths[0.6][0] == pytest.approx(0.4)  # ceil(6 * .6) = ceil(3.6) = 4th
    assert widths[0.8][0] == pytest.approx(0.5)  # ceil(6 * .8) = ceil(4.8) = 5th
    assert widths[0.95][0] == math.inf  # ceil(6 * .95) = 6 > n = 5


def test_conformal_index_robust_to_float_noise():
    # (99 + 1) * 0.55 evaluates to 55.00000000000001 in floating point; k must be 55.
    errors = (np.arange(1, 100) / 100).reshape(-1, 1)
    assert conformal_intervals(errors, levels=(0.55,))[0.55][0] == pytest.approx(0.55)


def test_conformal_coverage_on_synthetic_data():
    rng = np.random.default_rng(12345)
    scale = np.array([0.02, 0.05, 0.08])  # error spread grows with horizon
    calib = rng.standard_t(df=4, size=(2000, 3)) * scale
    test_err = rng.standard_t(df=4, size=(5000, 3)) * scale
    point = rng.uniform(50, 250, size=(5000, 3))
    actual = point * np.exp(test_err)
    for level, w in conformal_intervals(calib, levels=(0.8, 0.95)).items():
        lower, upper = point * np.exp(-w), point * np.exp(w)
        assert np.all(lower > 0)
        for row in interval_scores(actual, lower, upper, level):
            assert abs(row["coverage"] - level) < 0.02


def test_pinball_and_distribution_scores_by_hand():
    actual = np.array([[10.0], [20.0]])
    # two origins, one horizon, quantiles at 0.1 / 0.5 / 0.9
    quantiles = np.array([[[8.0, 11.0, 12.0]], [[21.0, 22.0, 30.0]]])
    levels = (0.1, 0.5, 0.9)
    # origin 1: 0.1*2, 0.5*1, 0.1*2 -> mean 0.3; origin 2: 0.9*1, 0.5*2, 0.1*10 -> mean 0.9667
    np.testing.assert_allclose(pinball(actual, quantiles, levels), [(0.3 + 2.9 / 3) / 2])
    doc = distribution_scores(actual, quantiles, levels, {0.8: (0, 2)}, np.array([0, 1]), ("calm", "wild"))
    row = doc["per_horizon"][0]
    assert row["coverage_80"] == 0.5 and row["coverage_80_calm"] == 1.0 and row["coverage_80_wild"] == 0.0
    assert row["width_80"] == pytest.approx((4 + 9) / 2)
    assert row["winkler_80"] == pytest.approx((4 + 9 + 10 * 1) / 2)
    assert doc["coverage_80_mean"] == 0.5 and doc["pinball_mean"] == row["pinball"]


def test_winkler_and_coverage_by_hand():
    # level 0.8 -> alpha 0.2 -> penalty 2 / 0.2 = 10
    lower = np.array([[9.0, 5.0], [9.0, 5.0], [9.0, 5.0]])
    upper = np.array([[11.0, 6.0], [11.0, 6.0], [11.0, 6.0]])
    actual = np.array([[10.0, 5.0], [8.0, 6.0], [11.5, 7.0]])
    h1, h2 = interval_scores(actual, lower, upper, level=0.8)
    # h=1: inside -> 2; below by 1 -> 2 + 10; above by 0.5 -> 2 + 5
    assert h1["coverage"] == pytest.approx(1 / 3)
    assert h1["winkler"] == pytest.approx((2 + 12 + 7) / 3)
    assert h1["mean_width"] == pytest.approx(2)
    # h=2: on lower bound, on upper bound (both covered), above by 1 -> 1 + 10
    assert h2["coverage"] == pytest.approx(2 / 3)
    assert h2["winkler"] == pytest.approx((1 + 1 + 11) / 3)


def test_trading_check_by_hand():
    last = np.array([100.0, 110.0, 120.0, 100.0])
    forecast = np.array([[105.0, 95.0], [100.0, 200.0], [120.0, 130.0], [90.0, 200.0]])
    actual = np.array([[110.0, 90.0], [99.0, 50.0], [125.0, 126.0], [104.0, 50.0]])
    h1, h2 = trading_check(actual, forecast, last)
    # h=1, all origins: long +0.10; short -(99/110 - 1) = +0.10; flat 0; short -0.04
    assert h1["n_trades"] == 3
    assert h1["cumulative_return"] == pytest.approx(1.10 * 1.10 * 1.0 * 0.96 - 1)
    assert h1["buy_and_hold_return"] == pytest.approx(1.10 * 0.9 * (125 / 120) * 1.04 - 1)
    assert h1["hit_rate"] == pytest.approx(2 / 3)
    assert h1["hit_pvalue"] == pytest.approx((math.comb(3, 2) + 1) / 2**3)
    # h=2, origins 0 and 2 only (rows 1 and 3 would be big losers if wrongly included):
    # short 100 -> 90 = +0.10; long 120 -> 126 = +0.05
    assert h2["n_trades"] == 2
    assert h2["cumulative_return"] == pytest.approx(1.10 * 1.05 - 1)
    assert h2["buy_and_hold_return"] == pytest.approx(0.90 * 1.05 - 1)
    assert h2["hit_rate"] == pytest.approx(1.0)
    assert h2["hit_pvalue"] == pytest.approx(1 / 2**2)


def test_trading_check_all_flat_has_no_trades():
    (row,) = trading_check(np.array([[11.0], [9.0]]), np.array([[10.0], [10.0]]), [10.0, 10.0])
    assert row["n_trades"] == 0 and row["cumulative_return"] == 0.0
    assert math.isnan(row["hit_rate"]) and math.isnan(row["hit_pvalue"])


def test_to_jsonable_converts_numpy_and_nan():
    obj = {
        "nan": float("nan"),
        "np_nan": np.float64("nan"),
        "inf": np.inf,
        "f32": np.float32(0.5),
        "i64": np.int64(7),
        "arr": np.array([1.0, np.nan]),
        "nested": {np.int64(1): [np.float32(2.0), (np.bool_(True), "x")]},
    }
    out = to_jsonable(obj)
    assert out == {
        "nan": None,
        "np_nan": None,
        "inf": None,
        "f32": 0.5,
        "i64": 7,
        "arr": [1.0, None],
        "nested": {1: [2.0, [True, "x"]]},
    }
    assert type(out["f32"]) is float and type(out["i64"]) is int
    assert out["nested"][1][1][0] is True
    json.dumps(out, allow_nan=False)


def test_horizon_metrics_output_is_strict_json_after_to_jsonable():
    # Forecast == persistence at every horizon: DM is degenerate (nan) and rel_mae = 1.
    forecast = np.repeat(LAST_CLOSE[:, None], 2, axis=1)
    rows = horizon_metrics(ACTUAL, forecast, LAST_CLOSE, INSAMPLE)
    assert math.isnan(rows[0]["dm_stat"])
    with pytest.raises(ValueError):
        json.dumps(rows, allow_nan=False)
    decoded = json.loads(json.dumps(to_jsonable(rows), allow_nan=False))
    assert decoded[0]["dm_stat"] is None and decoded[0]["rel_mae"] == 1.0


def test_block_bootstrap_interval_of_a_mean_matches_the_textbook_for_independent_draws():
    covered = (np.random.default_rng(7).uniform(size=4000) < 0.8).astype(float)
    lo, hi = block_bootstrap(lambda i: covered[i].mean(), len(covered), block=10, reps=2000)
    half = 1.645 * np.sqrt(0.8 * 0.2 / len(covered))
    assert lo < covered.mean() < hi
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)


def test_block_bootstrap_widens_the_interval_for_serially_dependent_outcomes():
    """Runs of 20 identical outcomes hold 20 times less information than 20 independent ones: the interval
    must be about sqrt(20) times wider than for independent draws, as it is for overlapping 10-day outcomes."""
    runs = np.random.default_rng(8).uniform(size=200) < 0.8
    covered = np.repeat(runs, 20).astype(float)
    lo, hi = block_bootstrap(lambda i: covered[i].mean(), len(covered), block=40, reps=2000)
    half = 1.645 * np.sqrt(0.8 * 0.2 / len(runs))
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.25)
    one = block_bootstrap(lambda i: covered[i].mean(), len(covered), block=1, reps=2000)
    assert (one[1] - one[0]) < 0.4 * (hi - lo)  # single-origin resampling would claim far too much


def test_block_bootstrap_of_an_array_statistic_is_seeded_and_elementwise():
    values = np.random.default_rng(9).normal(size=(500, 3)) + np.array([0.0, 1.0, 2.0])
    first = block_bootstrap(lambda i: values[i].mean(axis=0), 500, block=10, reps=300, seed=1)
    again = block_bootstrap(lambda i: values[i].mean(axis=0), 500, block=10, reps=300, seed=1)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[0].shape == (3,) and (first[0] < values.mean(axis=0)).all() and (values.mean(axis=0) < first[1]).all()
    with pytest.raises(ValueError, match="block"):
        block_bootstrap(lambda i: 0.0, 5, block=9)
