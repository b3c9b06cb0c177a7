"""The daily forecast: production model, the last 15 complete days, 10 rows into `solana_forecasts`.

No TensorFlow here: the network runs from its exported weights in NumPy (modeling/portable.py).
Forecasts are keyed by (forecast_day, target_day), so re-running a day replaces that day's rows
and nothing else; every forecast ever made stays, for the hindcast.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK, MAX_FEAR_GREED_FILL, make_windows, read_feature_frame
from cryptocast.errors import StoreError
from cryptocast.features import BITCOIN, FORECASTS, SOLANA, missing_days, validate
from cryptocast.modeling.forecasters import Scaler
from cryptocast.modeling.portable import CorruptModelError, PortableNetwork
from cryptocast.registry import MODEL_NAME, ModelVersion, open_model_registry
from cryptocast.settings import Settings
from cryptocast.stores import FeatureStore, open_feature_store

log = logging.getLogger(__name__)


def _load_intervals(path: Path) -> dict[str, np.ndarray]:
    try:
        levels = {k: np.asarray(v, dtype=float) for k, v in json.loads(path.read_text())["levels"].items()}
        if set(levels) != {"0.8", "0.95"} or any(w.shape != (HORIZON,) or not np.isfinite(w).all() or (w < 0).any()
                                                 for w in levels.values()):
            raise ValueError("expected 10 finite non-negative half-widths for levels 0.8 and 0.95")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
    return levels


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
    widths = _load_intervals(version.path / "intervals.json")
    if scaler.features != list(FEATURES) or network.n_features != len(FEATURES):
        raise CorruptModelError(f"{version.path}: model features {scaler.features} do not match {list(FEATURES)}")
    _check_fresh(store, last_complete)
    start = last_complete - dt.timedelta(days=LOOKBACK + MAX_FEAR_GREED_FILL + 1)
    frame = read_feature_frame(store, start, last_complete)
    windows = make_windows(frame, require_targets=False)
    if not len(windows.origins) or windows.origins[-1].date() != last_complete:
        raise StoreError(f"fear_greed has more than {MAX_FEAR_GREED_FILL} missing days in a row before "
                         f"{last_complete}; cannot fill them: run feature_pipeline.py")
    x = scaler.x(windows.x[-1:])
    log_returns = network.predict(x)[0] * np.asarray(scaler.y_scale)
    close = windows.last_close[-1]
    point = close * np.exp(log_returns)
    horizons = np.arange(1, HORIZON + 1)
    origin = pd.Timestamp(last_complete)
    rows = pd.DataFrame({"forecast_day": origin, "target_day": origin + pd.to_timedelta(horizons, unit="D"),
                         "horizon": horizons, "point": point, "model_version": version.version})
    for level, name in (("0.8", "80"), ("0.95", "95")):
        rows[f"lower_{name}"] = point * np.exp(-widths[level])
        rows[f"upper_{name}"] = point * np.exp(widths[level])
    log.info("forecast from %s (close %.2f) with %s v%d: h1 %.2f, h10 %.2f [95%%: %.2f..%.2f]", last_complete,
             close, version.name, version.version, point[0], point[-1], rows["lower_95"].iloc[-1],
             rows["upper_95"].iloc[-1])
    return validate(FORECASTS, rows, f"{version.name} v{version.version}")


def infer(settings: Settings) -> None:
    """Make today's forecast with the production model and store it."""
    store = open_feature_store(settings)
    version = open_model_registry(settings).production(MODEL_NAME)
    if version is None:
        raise StoreError(f"no production version of model {MODEL_NAME}: run training_pipeline.py first")
    with store.lock():
        rows = forecast_rows(version, store, settings.last_complete_day)
        result = store.get_or_create_feature_group(FORECASTS).insert(rows, replace=True)
    log.info("%s v%d: %s", FORECASTS.name, FORECASTS.version, result)
