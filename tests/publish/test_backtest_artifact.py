"""The walk-forward forecasts training keeps for the hindcast (no TensorFlow needed to check them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast import training
from cryptocast.backtest import Backtest
from cryptocast.features import FORECAST_QUANTILES
from cryptocast.publish import charts


def test_backtest_forecasts_has_one_row_per_origin_and_horizon(tmp_path):
    origins = pd.date_range("2024-05-01", periods=3, freq="D")
    point = np.arange(30.0).reshape(3, 10) + 100
    actual = point + 0.5
    last_close = np.array([90.0, 91.0, 92.0])
    bt = Backtest(origins, actual, last_close, {"lstm": point, "naive": np.repeat(last_close[:, None], 10, axis=1)},
                  1, {})
    quantiles = point[..., None] * np.linspace(0.8, 1.2, 9)
    frame = training.backtest_forecasts(bt, quantiles)
    assert len(frame) == 30 and list(frame.columns) == ["forecast_day", "target_day", "horizon", "point",
                                                        *FORECAST_QUANTILES, "naive", "actual"]
    row = frame[(frame["forecast_day"] == origins[1]) & (frame["horizon"] == 7)].iloc[0]
    assert row["target_day"] == pd.Timestamp("2024-05-09")
    assert (row["point"], row["naive"], row["actual"]) == (point[1, 6], 91.0, actual[1, 6])
    assert row[list(FORECAST_QUANTILES)].tolist() == quantiles[1, 6].tolist()
    path = tmp_path / "backtest_forecasts.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    first = path.read_text().splitlines()[1].split(",")
    assert first[:5] == ["2024-05-01", "2024-05-02", "1", "100.0", "80.0"] and first[-2:] == ["90.0", "100.5"]
    scored = charts.score_backtest(pd.read_csv(path))
    pd.testing.assert_frame_equal(scored.drop(columns="source"),
                                  frame[[c for c in charts.SCORED_COLUMNS if c != "source"]])
    assert scored["source"].eq("backtest").all()


def test_an_artifact_from_before_the_quantiles_scores_without_ranges(tmp_path):
    """Versions registered before issue 9 kept point, naive and actual only: their track record has no ranges."""
    path = tmp_path / "backtest_forecasts.csv"
    path.write_text("forecast_day,target_day,horizon,point,naive,actual\n2024-05-01,2024-05-02,1,100.0,90.0,100.5\n")
    scored = charts.score_backtest(pd.read_csv(path))
    assert len(scored) == 1 and scored.loc[0, "point"] == 100.0
    assert scored[list(charts.RANGE_COLUMNS)].isna().all(axis=None)
    assert charts.hindcast_summary(scored, 1)["backtest"] | {"mae": 0} == {
        "n": 1, "first_target_day": "2024-05-02", "last_target_day": "2024-05-02", "mae": 0, "naive_mae": 10.5,
        "ranged": 0, "coverage_80": None, "coverage_95": None}
