"""Model health on small synthetic series (always run): the scores, the backtest's range, drift, frozen inputs,
the record's schema, and `failing_since` carried from day to day."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from cryptocast import health
from cryptocast.dataset import FEATURES
from cryptocast.errors import DataValidationError
from cryptocast.features import FORECAST_QUANTILES, validate
from cryptocast.stores.local import LocalFeatureStore

LEVELS = np.array(list(FORECAST_QUANTILES.values()))
Z = np.array([-1.96, -1.645, -1.2816, -0.6745, 0.0, 0.6745, 1.2816, 1.645, 1.96])  # normal quantiles of LEVELS


def random_walk(days: int, sigma: float = 0.03, seed: int = 0, start: str = "2022-01-01") -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days, freq="D")
    return pd.Series(100 * np.exp(np.cumsum(rng.normal(0, sigma, days))), index=index)


def naive_forecasts(closes: pd.Series, days: pd.DatetimeIndex, sigma: float) -> pd.DataFrame:
    """A no-change point with normal quantiles of a `sigma` daily volatility: calibrated when the walk's is `sigma`."""
    rows = []
    for day in days:
        close = closes[day]
        for h in range(1, 11):
            rows.append({"forecast_day": day, "target_day": day + pd.Timedelta(days=h), "horizon": h, "point": close,
                         **dict(zip(FORECAST_QUANTILES, close * np.exp(Z * sigma * np.sqrt(h)), strict=True)),
                         "model_version": 1})
    return pd.DataFrame(rows)


def with_outcomes(rows: pd.DataFrame, closes: pd.Series) -> pd.DataFrame:
    return rows.assign(naive=closes.reindex(rows["forecast_day"]).to_numpy(),
                       actual=closes.reindex(rows["target_day"]).to_numpy()).dropna()


@pytest.fixture(scope="module")
def calibrated():
    """A year of backtest and the following 200 days of published forecasts, both calibrated (3%/day walk)."""
    closes = random_walk(600, 0.03, seed=1)
    sigma = np.log(closes).diff().std()  # the walk's own volatility, not the 3% it was drawn with
    backtest = with_outcomes(naive_forecasts(closes, closes.index[:365], sigma), closes)
    live = naive_forecasts(closes, closes.index[375:590], sigma)
    return closes, backtest, live


def by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["health_check"]: r for r in rows}


def test_the_backtest_range_is_deterministic_and_holds_what_the_backtest_promised(calibrated):
    _, backtest, _ = calibrated
    ranges = health.backtest_ranges(backtest, 90, 0.95)
    assert ranges == health.backtest_ranges(backtest, 90, 0.95)
    assert set(ranges) == {f"{s} {g}" for s in health.LIVE_SCORES for g in health.HORIZON_GROUPS}
    for name, limit in ranges.items():
        score = name.split()[0]
        if score in health.NOMINAL:  # centred on the promise, not on the backtest year's luck
            assert limit.low < health.NOMINAL[score] <= limit.high, name
        else:
            assert limit.low is None and limit.high >= limit.backtest, name
    assert 0.65 < ranges["coverage_80 h1-3"].low < 0.8 < ranges["coverage_80 h1-3"].high < 0.95
    assert ranges["rel_mae h1-3"].backtest == pytest.approx(1.0)  # the point is naive itself
    wider = health.backtest_ranges(backtest, 90, 0.99)["coverage_80 h1-3"]
    assert wider.low < ranges["coverage_80 h1-3"].low and wider.high > ranges["coverage_80 h1-3"].high


def test_calibrated_live_forecasts_are_healthy(calibrated):
    closes, backtest, live = calibrated
    day = closes.index[560]
    rows = by_name(health.live_checks(live, closes, health.backtest_ranges(backtest, 90, 0.95), day,
                                      health.Thresholds()))
    assert len(rows) == 12
    assert {r["verdict"] for r in rows.values()} == {health.OK}, [r["detail"] for r in rows.values()]
    assert "as expected" in rows["coverage_80 h1-3"]["detail"]
    assert rows["coverage_80 h1-3"]["time_window"].startswith(f"{(day - pd.Timedelta(days=89)).date()}..{day.date()}")


def test_ranges_too_narrow_for_the_market_fail_and_too_few_matured_days_cannot_tell(calibrated):
    closes, backtest, _ = calibrated
    ranges = health.backtest_ranges(backtest, 90, 0.95)
    wild = random_walk(600, 0.09, seed=2)  # three times the volatility the ranges were made for
    live = naive_forecasts(wild, wild.index[375:590], np.log(closes).diff().std())
    rows = by_name(health.live_checks(live, wild, ranges, wild.index[560], health.Thresholds()))
    for group in health.HORIZON_GROUPS:
        assert rows[f"coverage_80 {group}"]["verdict"] == health.FAIL
        assert rows[f"coverage_80 {group}"]["statistic"] < rows[f"coverage_80 {group}"]["threshold_low"]
        assert rows[f"pinball {group}"]["verdict"] == health.FAIL
    assert "outside" in rows["coverage_80 h1-3"]["detail"]
    early = by_name(health.live_checks(live, wild, ranges, wild.index[375 + 20], health.Thresholds()))
    assert {r["verdict"] for r in early.values()} == {health.UNKNOWN}
    assert "cannot tell yet" in early["coverage_80 h1-3"]["detail"]


def test_no_backtest_artifact_means_unknown_not_fail(calibrated):
    closes, _, live = calibrated
    rows = health.live_checks(live, closes, None, closes.index[560], health.Thresholds(), "v3 has no file")
    assert {r["verdict"] for r in rows} == {health.UNKNOWN}
    assert "v3 has no file" in rows[0]["detail"]


def test_psi_is_small_for_the_same_distribution_and_large_for_another():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 1000)
    assert health.psi(reference, rng.normal(0, 1, 30)) < 0.5
    assert health.psi(reference, rng.normal(3, 1, 30)) > 2
    assert health.psi(reference, np.zeros(30)) > 2  # a feed stuck at one value
    assert math.isfinite(health.psi(np.r_[np.zeros(500), reference], np.ones(30)))  # ties merge bins


def test_frozen_run_counts_the_days_the_last_value_has_held():
    days = pd.date_range("2024-01-01", periods=8)
    assert health.frozen_run(pd.Series([1, 2, 3, 3, 3, 3, np.nan, 3.0], index=days)) == (5, days[2])
    assert health.frozen_run(pd.Series([1, 2, 3.0], index=days[:3])) == (1, days[2])
    assert health.frozen_run(pd.Series([np.nan] * 3, index=days[:3])) == (0, None)


def feature_frame(days: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2023-01-01", periods=days, freq="D")
    frame = pd.DataFrame({f: rng.normal(0, 1, days) for f in FEATURES}, index=index)
    frame["fear_greed"] = rng.integers(10, 90, days) / 100
    return frame


def test_inputs_like_the_training_window_pass_and_a_frozen_feed_fails_on_the_fifth_day():
    frame = feature_frame()
    training = (frame.index[30], frame.index[300])
    day = frame.index[-1]
    reference = health.input_profile(frame, training)
    rows = by_name(health.input_checks(frame, reference, day, health.Thresholds()))
    assert len(rows) == 2 * len(FEATURES)
    assert {r["verdict"] for r in rows.values()} == {health.OK}, [r["detail"] for r in rows.values()]
    frozen_from = frame.index[-30]
    frame.loc[frozen_from:, "fear_greed"] = 0.5
    for n in range(1, 31):
        checks = by_name(health.input_checks(frame, reference, frozen_from + pd.Timedelta(days=n - 1),
                                             health.Thresholds()))
        assert checks["frozen fear_greed"]["verdict"] == (health.FAIL if n >= 5 else health.OK), n
    assert checks["drift fear_greed"]["verdict"] == health.FAIL
    assert f"since {frozen_from.date()}" in checks["frozen fear_greed"]["detail"]


def record(day: str, verdicts: dict[str, str], since: dict[str, str] | None = None) -> pd.DataFrame:
    return pd.DataFrame([{"day": pd.Timestamp(day), "health_check": name, "kind": health.LIVE, "statistic": 0.5,
                          "threshold_low": 0.6, "threshold_high": np.nan, "time_window": "w", "verdict": verdict,
                          "failing_since": (since or {}).get(name, ""), "detail": "d", "model_version": 2}
                         for name, verdict in verdicts.items()])


def test_failing_since_is_carried_from_the_previous_record_and_reset_by_a_pass():
    yesterday = record("2024-05-01", {"a": health.FAIL, "b": health.OK, "c": health.FAIL},
                       {"a": "2024-04-20", "c": "2024-05-01"})
    today = health.with_since(record("2024-05-02", {"a": health.FAIL, "b": health.FAIL, "c": health.OK}),
                              yesterday)
    assert dict(zip(today["health_check"], today["failing_since"], strict=True)) == {
        "a": "2024-04-20", "b": "2024-05-02", "c": ""}
    first = health.with_since(record("2024-05-02", {"a": health.FAIL}), yesterday[:0])
    assert first["failing_since"].tolist() == ["2024-05-02"]


def test_the_record_keeps_an_empty_statistic_but_refuses_infinity_and_unknown_verdicts():
    rows = record("2024-05-01", {"a": health.UNKNOWN}).assign(statistic=np.nan)
    assert validate(health.HEALTH, rows, "t")["statistic"].isna().all()
    with pytest.raises(DataValidationError, match="'statistic' is not a finite number"):
        validate(health.HEALTH, rows.assign(statistic=np.inf), "t")
    with pytest.raises(DataValidationError, match="verdict is not ok, fail or unknown"):
        validate(health.HEALTH, rows.assign(verdict="red"), "t")
    with pytest.raises(DataValidationError, match="missing value for 'model_version'"):
        validate(health.HEALTH, rows.assign(model_version=np.nan), "t")


def test_rewriting_a_day_with_empty_statistics_is_unchanged_not_a_change(tmp_path):
    """NaN != NaN: an upsert must still see a stored empty statistic as the same value."""
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(health.HEALTH)
    rows = validate(health.HEALTH, record("2024-05-01", {"a": health.UNKNOWN, "b": health.OK})
                    .assign(statistic=np.nan), "t")
    assert str(group.insert(rows)) == "2 added, 0 updated, 0 unchanged"
    assert str(group.insert(rows)) == "0 added, 0 updated, 2 unchanged"
    assert group.read()["statistic"].isna().all()


def test_the_json_and_the_lines_say_what_fails_since_when():
    rows = validate(health.HEALTH, pd.concat([
        record("2024-05-02", {"coverage_80 h1-3": health.FAIL}, {"coverage_80 h1-3": "2024-04-28"}),
        record("2024-05-02", {"frozen fear_greed": health.OK}).assign(kind=health.INPUT)]), "t")
    doc = health.as_json(rows)
    assert doc["verdict"] == health.FAIL and doc["day"] == "2024-05-02" and doc["model_version"] == 2
    assert doc["live_failing"] == ["coverage_80 h1-3"] and doc["input_failing"] == []
    assert doc["checks"][0]["threshold_high"] is None and doc["checks"][0]["failing_since"] == "2024-04-28"
    lines = health.format_lines(rows)
    assert lines[0] == "health 2024-05-02 (model v2): fail"
    assert lines[1].startswith("fail    coverage_80 h1-3") and "since 2024-04-28" in lines[1]
    page = health.page_summary(rows)
    assert page["status"] == "1 check(s) fail" and page["failing"][0]["since"] == "2024-04-28"
    assert page["sentence"].startswith("Live 80% ranges 1-3 days ahead held 50% of the last")
    assert health.as_json(rows[:0])["checks"] == [] and health.page_summary(rows[:0]) is None


def test_without_a_training_window_drift_cannot_tell_but_frozen_inputs_still_show():
    frame = feature_frame()
    frame.loc[frame.index[-6]:, "sol_log_range"] = 0.0
    rows = by_name(health.input_checks(frame, None, frame.index[-1], health.Thresholds()))
    assert rows["drift sol_log_return"]["verdict"] == health.UNKNOWN
    assert "records no training window" in rows["drift sol_log_return"]["detail"]
    assert rows["frozen sol_log_range"]["verdict"] == health.FAIL and rows["frozen sol_log_return"]["verdict"] == "ok"


def test_the_stored_profile_gives_the_same_psi_as_the_raw_reference():
    frame = feature_frame()
    reference = health.input_profile(frame, (frame.index[30], frame.index[300]))
    raw = health.scale_free(frame).loc[frame.index[30] - pd.Timedelta(days=14): frame.index[300], "btc_log_range"]
    recent = health.scale_free(frame)["btc_log_range"].iloc[-30:].to_numpy()
    assert health.psi_against(reference["features"]["btc_log_range"], recent) == health.psi(raw.to_numpy(), recent)
    assert reference["training_window"] == {"first_origin": "2023-01-31", "last_origin": "2023-10-28"}
    assert json.loads(json.dumps(reference)) == reference
