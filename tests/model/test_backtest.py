"""Tests for the walk-forward backtest and its report (cryptocast.backtest).

A spy forecaster records what each refit was allowed to see and what it was then asked to
predict, so target leakage would show up as a date comparison. Only Naive/Drift and the spy
are used: no TensorFlow is imported.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cryptocast.backtest import backtest_origins, distributions, report, summary_lines, walk_forward
from cryptocast.dataset import HORIZON, FeatureFrame, build_features, make_windows
from cryptocast.modeling.calibration import CalibrationConfig
from cryptocast.modeling.forecasters import Drift, Naive

from fakeapi import synthetic_history

START = "2024-01-01"
DAYS, BACKTEST_DAYS, REFIT_EVERY = 500, 90, 30


class Spy:
    """Predicts like Naive; remembers every fit's latest training origin and its first prediction origin."""

    def __init__(self, name: str = "spy") -> None:
        self.name = name
        self.fits: list[dict] = []

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        self.fits.append({"last_trained": origins.max(), "n": len(origins), "first_predicted": None})

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        if self.fits[-1]["first_predicted"] is None:
            self.fits[-1]["first_predicted"] = origins[0]
        return Naive().predict(frame, origins)


@pytest.fixture(scope="module")
def history() -> dict:
    return synthetic_history(START, DAYS, seed=11)


@pytest.fixture(scope="module")
def frame(history) -> FeatureFrame:
    return build_features(history["solana"], history["bitcoin"], history["fear_greed"])


@pytest.fixture(scope="module")
def run(frame):
    spy = Spy("lstm")
    bt = walk_forward(frame, [spy, Naive(), Drift()], BACKTEST_DAYS, REFIT_EVERY)
    return spy, bt


def test_refits_once_per_block(run):
    spy, bt = run
    assert bt.refits == 3 == len(spy.fits)
    assert set(bt.seconds) == {"lstm", "naive", "drift"}


def test_a_forecaster_may_be_refitted_every_few_blocks_only(frame):
    slow = Spy("slow")
    slow.refit_blocks = 2
    bt = walk_forward(frame, [slow, Naive()], BACKTEST_DAYS, REFIT_EVERY)
    assert bt.refits == 3 and [f["first_predicted"] for f in slow.fits] == [bt.origins[0], bt.origins[60]]
    assert slow.fits[0]["last_trained"] + pd.Timedelta(days=HORIZON) == bt.origins[0]
    np.testing.assert_array_equal(bt.forecasts["slow"], bt.forecasts["naive"])  # every origin still forecast


def test_no_refit_sees_a_target_after_its_first_prediction(run):
    spy, bt = run
    firsts = [fit["first_predicted"] for fit in spy.fits]
    assert firsts == [bt.origins[0], bt.origins[REFIT_EVERY], bt.origins[2 * REFIT_EVERY]]
    for fit in spy.fits:
        assert fit["last_trained"] + pd.Timedelta(days=HORIZON) <= fit["first_predicted"]
        # and nothing more recent was withheld: the expanding window reaches exactly that far
        assert fit["last_trained"] + pd.Timedelta(days=HORIZON) == fit["first_predicted"]
    assert [f["n"] for f in spy.fits] == sorted(f["n"] for f in spy.fits)  # expanding


def test_backtest_origins_are_the_last_complete_target_origins(run, frame, history):
    _, bt = run
    windows = make_windows(frame)
    # days 0..499: origins with all targets are days 15..489; the last 90 are days 400..489
    first = pd.Timestamp(START) + pd.Timedelta(days=400)
    assert list(bt.origins) == list(pd.date_range(first, periods=BACKTEST_DAYS, freq="D"))
    assert bt.origins.equals(windows.origins[-BACKTEST_DAYS:])
    assert bt.origins.equals(backtest_origins(frame, BACKTEST_DAYS))


def test_actual_is_the_realised_close_h_days_later(run, frame, history):
    _, bt = run
    windows = make_windows(frame)
    tail = slice(-BACKTEST_DAYS, None)
    np.testing.assert_allclose(bt.actual, windows.last_close[tail, None] * np.exp(windows.y[tail]), rtol=1e-12)
    close = history["solana"].set_index("day")["close"]
    for i, origin in enumerate(bt.origins):
        assert bt.last_close[i] == close[origin]
        expected = [close[origin + pd.Timedelta(days=h)] for h in range(1, HORIZON + 1)]
        np.testing.assert_allclose(bt.actual[i], expected, rtol=1e-12)


def test_forecasts_match_the_baselines(run, frame):
    _, bt = run
    assert bt.forecasts["lstm"].shape == bt.forecasts["naive"].shape == (BACKTEST_DAYS, HORIZON)
    np.testing.assert_array_equal(bt.forecasts["naive"], np.repeat(bt.last_close[:, None], HORIZON, axis=1))
    np.testing.assert_array_equal(bt.forecasts["lstm"], bt.forecasts["naive"])
    # Drift for the last block: refitted with returns up to origin[60] - 10 days
    last_trained = bt.origins[2 * REFIT_EVERY] - pd.Timedelta(days=HORIZON)
    mu = frame.frame["sol_log_return"].loc[:last_trained].mean()
    block = slice(2 * REFIT_EVERY, None)
    expected = bt.last_close[block, None] * np.exp(mu * np.arange(1, HORIZON + 1))
    np.testing.assert_allclose(bt.forecasts["drift"][block], expected, rtol=1e-12)


# --- report ------------------------------------------------------------------------------------


WARMUP = 200


@pytest.fixture(scope="module")
def warm(frame):
    spy = Spy("lstm")
    bt = walk_forward(frame, [spy, Naive(), Drift()], BACKTEST_DAYS, REFIT_EVERY, warmup_days=WARMUP,
                      warmup_refit_every=100)
    return spy, bt


@pytest.fixture(scope="module")
def doc(warm, frame):
    _, bt = warm
    insample = frame.frame["sol_close"].loc[: bt.origins[0]].to_numpy()
    dist = distributions(bt, frame.frame, CalibrationConfig())
    return report(bt, insample, dist)


def test_the_warm_up_precedes_the_scored_origins_and_sees_no_later_target(warm, frame):
    spy, bt = warm
    assert bt.warmup.origins.equals(backtest_origins(frame, BACKTEST_DAYS, WARMUP)[:WARMUP])
    assert bt.warmup.origins[-1] + pd.Timedelta(days=1) == bt.origins[0]
    assert set(bt.warmup.forecasts) == {"lstm"} and bt.warmup.refits == 2
    warmup_fits = spy.fits[-2:]  # the scored blocks are fitted first, then the warm-up
    assert [f["first_predicted"] for f in warmup_fits] == [bt.warmup.origins[0], bt.warmup.origins[100]]
    for fit in warmup_fits:
        assert fit["last_trained"] + pd.Timedelta(days=HORIZON) == fit["first_predicted"]


def test_naive_relative_mae_is_exactly_one(doc):
    rows = doc["models"]["naive"]["per_horizon"]
    assert [r["horizon"] for r in rows] == list(range(1, HORIZON + 1))
    assert all(r["rel_mae"] == 1.0 for r in rows)
    assert doc["models"]["naive"]["rel_mae_mean"] == 1.0
    assert doc["models"]["lstm"]["rel_mae_mean"] == 1.0  # the spy forecasts like Naive


def test_report_is_strict_json(doc):
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    assert doc["origins"]["count"] == BACKTEST_DAYS and doc["refits"] == 3
    assert doc["horizons"] == HORIZON
    assert doc["mae_reduction_vs_original"] is None  # no "original" model in this run


def test_report_intervals_are_our_ranges_on_every_scored_origin(doc):
    assert set(doc["intervals"]) == {"0.8", "0.95"}
    ours = doc["distribution"]["methods"]["calibrated"]["per_horizon"]
    for level, pct in (("0.8", "80"), ("0.95", "95")):
        block = doc["intervals"][level]
        assert block["scored_origins"] == BACKTEST_DAYS
        rows = block["per_horizon"]
        assert [r["horizon"] for r in rows] == list(range(1, HORIZON + 1))
        assert [r["coverage"] for r in rows] == [r[f"coverage_{pct}"] for r in ours]
        assert [r["winkler"] for r in rows] == [r[f"winkler_{pct}"] for r in ours]


def test_report_distribution_scores_every_method_by_horizon_and_tercile(doc):
    dist = doc["distribution"]
    assert dist["warmup_origins"] == WARMUP
    assert dist["levels"] == [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975]
    assert dist["ranges"] == {"0.8": ["q10", "q90"], "0.9": ["q5", "q95"], "0.95": ["q2_5", "q97_5"]}
    assert set(dist["methods"]) == {"calibrated", "fixed_band", "ewma_band", "garch_t_band"}
    low, high = dist["volatility_tercile_edges"]
    assert 0 < low < high
    for method in dist["methods"].values():
        rows = method["per_horizon"]
        assert [r["horizon"] for r in rows] == list(range(1, HORIZON + 1))
        for r in rows:
            assert r["pinball"] > 0 and r["width_95"] > r["width_90"] > r["width_80"] > 0
            for pct in ("80", "90", "95"):
                assert 0 <= r[f"coverage_{pct}"] <= 1
                assert all(0 <= r[f"coverage_{pct}_{t}"] <= 1 for t in ("calm", "middle", "wild"))
        assert method["coverage_80_mean"] == pytest.approx(np.mean([r["coverage_80"] for r in rows]))
    assert all(r["winkler_80_vs_fixed_band"] == 1.0 for r in dist["methods"]["fixed_band"]["per_horizon"])


def test_every_score_carries_its_block_bootstrap_interval(doc):
    methods = doc["distribution"]["methods"]
    for method in methods.values():
        intervals = method["intervals"]
        for pct in ("80", "95"):
            cov = intervals[f"coverage_{pct}"]
            assert cov["mean"][0] == pytest.approx(method[f"coverage_{pct}_mean"])
            assert [c[0] for c in cov["by_horizon"]] == pytest.approx([r[f"coverage_{pct}"]
                                                                      for r in method["per_horizon"]])
            for t in ("calm", "middle", "wild"):
                assert cov[t][0] == pytest.approx(method[f"coverage_{pct}_{t}_mean"])
            for value, low, high in [cov["mean"], *cov["by_horizon"], *(cov[t] for t in ("calm", "middle", "wild"))]:
                assert 0 <= low <= value <= high <= 1
        ratio = intervals["winkler_80_vs_fixed_band"]
        assert ratio["h1_3"][0] == pytest.approx(method["winkler_80_vs_fixed_band_h1_3"])
        assert ratio["mean"][0] == pytest.approx(method["winkler_80_vs_fixed_band_mean"])
        assert intervals["pinball_vs_fixed_band"][0] == pytest.approx(method["pinball_mean"]
                                                                      / methods["fixed_band"]["pinball_mean"])
    assert methods["fixed_band"]["intervals"]["winkler_80_vs_fixed_band"]["mean"] == [1.0, 1.0, 1.0]
    assert methods["garch_t_band"]["intervals"]["pinball_vs_garch_t_band"] == [1.0, 1.0, 1.0]


def test_the_volatility_terciles_do_not_move_with_the_calibration(warm, frame):
    """Calm / middle / wild are fixed by backtest.tercile_volatility (EWMA 0.97 of squared returns), so a
    calibration judged by its coverage per tercile cannot redraw the terciles it is judged in."""
    _, bt = warm
    ours = distributions(bt, frame.frame, CalibrationConfig())
    other = distributions(bt, frame.frame, CalibrationConfig(estimator="returns", ewma_lambda=0.97, long_run_days=0,
                                                              weight=1.0, weight_long=1.0))
    np.testing.assert_array_equal(ours.sigma, other.sigma)
    returns = frame.frame["sol_log_return"]
    day = bt.origins[-1]
    recent = returns.loc[day - pd.Timedelta(days=119) : day].dropna()
    weights = 0.97 ** (day - recent.index).days.to_numpy()
    assert ours.sigma[-1] == pytest.approx(np.sqrt(np.sum(weights * recent**2) / np.sum(weights)), rel=1e-12)
    assert not np.allclose(ours.quantiles["calibrated"], other.quantiles["calibrated"])


def test_summary_lines(doc):
    lines = summary_lines(doc)
    assert lines[0].startswith("backtest ") and f"{BACKTEST_DAYS} origins, 3 refits" in lines[0]
    assert lines[1].split()[:4] == ["h", "lstm", "naive", "drift"]
    for h in range(1, HORIZON + 1):
        assert lines[1 + h].split()[0] == str(h)
        assert lines[1 + h].split()[2] == "1.000"  # naive column
    assert lines[2 + HORIZON].startswith("mean ")
    ranges = lines[3 + HORIZON:]
    assert ranges[0].startswith("ranges around our point") and ranges[1].split()[:4] == ["h", "cov80", "cov95",
                                                                                        "IS80/fixed"]
    assert [line.split()[0] for line in ranges[2:2 + HORIZON]] == [str(h) for h in range(1, HORIZON + 1)]
    assert ranges[2 + HORIZON].startswith("mean ")
    assert ranges[-2].startswith("coverage 80% by the origin's volatility tercile: calm ")
    assert ranges[-1].startswith("coverage 95% by the origin's volatility tercile: calm ")


# --- too little data ---------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "backtest_days"), [(100, 90), (174, 90), (60, 10)])
def test_backtest_origins_needs_enough_data(days, backtest_days):
    h = synthetic_history(START, days)
    ff = build_features(h["solana"], h["bitcoin"], h["fear_greed"])
    with pytest.raises(ValueError, match=f"needs {backtest_days + 60}"):
        backtest_origins(ff, backtest_days)


def test_backtest_origins_boundary():
    # 175 days -> 150 complete windows, exactly enough for 90 + 60
    h = synthetic_history(START, 175)
    ff = build_features(h["solana"], h["bitcoin"], h["fear_greed"])
    assert len(make_windows(ff).origins) == 150
    origins = backtest_origins(ff, 90)
    assert origins.equals(make_windows(ff).origins[-90:])
