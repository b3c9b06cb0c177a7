"""The daily forecast: production model, the last 15 complete days, 10 rows into `solana_forecasts`.

No TensorFlow here: the network runs from its exported weights in NumPy (modeling/portable.py),
and the quantiles come from the version's calibration state, updated with every published forecast
whose outcome became known since the backtest (modeling/calibration.py): no retraining needed.
Forecasts are keyed by (forecast_day, target_day), so re-running a day replaces that day's rows
and nothing else; every forecast ever made stays, for the hindcast.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from cryptocast import health
from cryptocast.dataset import (
    FEATURES,
    HORIZON,
    LOOKBACK,
    MAX_FEAR_GREED_FILL,
    FeatureFrame,
    make_windows,
    read_feature_frame,
)
from cryptocast.errors import StoreError
from cryptocast.features import BITCOIN, FORECAST_QUANTILES, FORECASTS, SOLANA, missing_days, validate
from cryptocast.forecasts import read_forecasts
from cryptocast.modeling import calibration
from cryptocast.modeling.forecasters import Scaler, steady_path
from cryptocast.modeling.portable import CorruptModelError, PortableNetwork
from cryptocast.registry import MODEL_NAME, ModelVersion, open_model_registry
from cryptocast.settings import Settings
from cryptocast.stores import FeatureStore, open_feature_store

log = logging.getLogger(__name__)


MIN_MATURED = 10  # fewer matured published forecasts than this: keep the backtest's calibration


def recalibrate(state: calibration.State, last_origin: pd.Timestamp, store: FeatureStore, frame: FeatureFrame,
                vol: pd.DataFrame, last_complete: dt.date) -> int:
    """Feed the state every published forecast made after the backtest whose outcome is now known.

    Outcomes are taken in the order they became known, so replaying gives the state an online
    update would have reached. Returns how many were used (0 when too few to use: the backtest's
    calibration then stands, and the log says so).
    """
    rows = read_forecasts(store, (last_origin + pd.Timedelta(days=1)).date(), last_complete)
    rows = rows[rows["target_day"] <= pd.Timestamp(last_complete)].sort_values(["target_day", "horizon"])
    actual = frame.frame["sol_close"].reindex(rows["target_day"]).to_numpy()
    spread = calibration.scale(vol.reindex(rows["forecast_day"]), HORIZON, state.config)
    spread = spread[np.arange(len(rows)), rows["horizon"].to_numpy() - 1]
    usable = np.isfinite(actual) & np.isfinite(spread)
    rows, actual, spread = rows[usable], actual[usable], spread[usable]
    if len(rows) < MIN_MATURED:
        log.info("calibration: %d published forecast(s) matured since the backtest (< %d): using the backtest's "
                 "calibration", len(rows), MIN_MATURED)
        return 0
    horizons = rows["horizon"].to_numpy()
    scores = calibration.scores(actual, rows["point"].to_numpy(), spread)
    quantiles = rows[list(FORECAST_QUANTILES)].to_numpy(dtype=float)
    below = np.where(np.isnan(quantiles), np.nan, actual[:, None] <= quantiles)
    for h, score, row_below in zip(horizons, scores, below, strict=True):
        state.ingest(int(h) - 1, score, row_below)
    log.info("calibration: recalibrated with %d published forecast(s) matured since the backtest (%s..%s)",
             len(rows), rows["forecast_day"].min().date(), rows["forecast_day"].max().date())
    return len(rows)


def _check_fresh(store: FeatureStore, last_complete: dt.date) -> None:
    for spec in (SOLANA, BITCOIN):
        group = store.get_feature_group(spec)
        rows = group.read(last_complete - dt.timedelta(days=LOOKBACK + 1), last_complete) if group else None
        newest = None if rows is None or rows.empty else rows["day"].max().date()
        if newest != last_complete:
            raise StoreError(f"data is stale: {spec.name} ends {newest or 'nowhere'}, the last complete day is "
                             f"{last_complete}: run feature_pipeline.py")
        holes = missing_days(rows["day"], pd.Timestamp(last_complete - dt.timedelta(days=LOOKBACK)),
                             pd.Timestamp(last_complete))
        if holes:
            raise StoreError(f"{spec.name} has holes in the input window: "
                             f"{', '.join(str(d.date()) for d in holes)}: run feature_pipeline.py")


def forecast_rows(version: ModelVersion, store: FeatureStore, last_complete: dt.date) -> pd.DataFrame:
    """The 10 forecast rows made at the close of `last_complete` with this model version."""
    network = PortableNetwork.load(version.path)
    scaler = Scaler.load(version.path / "scaler.json")
    state, last_origin = calibration.State.load(version.path / calibration.CALIBRATION_FILE, HORIZON)
    if scaler.features != list(FEATURES) or network.n_features != len(FEATURES):
        raise CorruptModelError(f"{version.path}: model features {scaler.features} do not match {list(FEATURES)}")
    _check_fresh(store, last_complete)
    start = min(last_origin.date(), last_complete - dt.timedelta(days=LOOKBACK + MAX_FEAR_GREED_FILL + 1))
    frame = read_feature_frame(store, start - dt.timedelta(days=state.config.history_days + 1), last_complete)
    windows = make_windows(frame, require_targets=False)
    if not len(windows.origins) or windows.origins[-1].date() != last_complete:
        raise StoreError(f"fear_greed has more than {MAX_FEAR_GREED_FILL} missing days in a row before "
                         f"{last_complete}; cannot fill them: run feature_pipeline.py")
    vol = calibration.volatilities(frame.frame, state.config)
    if not np.isfinite(vol.iloc[-1]).all():
        raise StoreError(f"solana: fewer than {state.config.min_returns} days with a price range and a return in "
                         f"the {state.config.vol_days} days before {last_complete}: cannot estimate volatility")
    recalibrate(state, last_origin, store, frame, vol, last_complete)
    x = scaler.x(windows.x[-1:])
    log_returns = steady_path(network.predict(x)[0] * np.asarray(scaler.y_scale))
    close = windows.last_close[-1]
    point = close * np.exp(log_returns)
    spread = calibration.scale(vol.iloc[-1:], HORIZON, state.config)
    quantiles = calibration.to_prices(point[None, :], spread, calibration.fan(spread, state.issue()[None]))[0]
    horizons = np.arange(1, HORIZON + 1)
    origin = pd.Timestamp(last_complete)
    rows = pd.DataFrame({"forecast_day": origin, "target_day": origin + pd.to_timedelta(horizons, unit="D"),
                         "horizon": horizons, "point": point, "model_version": version.version})
    for i, name in enumerate(FORECAST_QUANTILES):
        rows[name] = quantiles[:, i]
    log.info("forecast from %s (close %.2f, volatility %.3f/day now, %.3f/day over the year) with %s v%d: h1 %.2f, "
             "h10 %.2f [95%%: %.2f..%.2f]", last_complete, close, vol["short"].iloc[-1], vol["long"].iloc[-1],
             version.name, version.version, point[0],
             point[-1], rows["q2_5"].iloc[-1], rows["q97_5"].iloc[-1])
    return validate(FORECASTS, rows, f"{version.name} v{version.version}")


def infer(settings: Settings) -> None:
    """Make today's forecast with the production model and store it."""
    store = open_feature_store(settings)
    version = open_model_registry(settings).production(MODEL_NAME)
    if version is None:
        step = "training_pipeline.py" if store.get_feature_group(SOLANA) else "feature_backfill.py"
        raise StoreError(f"no production version of model {MODEL_NAME}: run {step} first")
    with store.lock():
        rows = forecast_rows(version, store, settings.last_complete_day)
        result = store.get_or_create_feature_group(FORECASTS).insert(rows, replace=True)
        log.info("%s v%d: %s", FORECASTS.name, FORECASTS.version, result)
        _record_health(settings, store, version)


def _record_health(settings: Settings, store: FeatureStore, version: ModelVersion) -> None:
    """The day's health record, after the forecast is stored: health never stops the forecast.

    A failure to compute it is logged as one warning line; `health` then shows the previous day's record.
    """
    try:
        health.record_health(settings, store, version)
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the forecast is stored and must be published
        log.warning("health: not recorded: %s: %s", type(exc).__name__, exc)
