"""Model inputs: the feature view's rows on a complete daily calendar, engineered features, and windows.

Features of day t use only what is known at the end of day t. Inputs are scale-free (log returns,
log volume, log range, index/100) so a model trained on SOL at $20 still reads SOL at $200.
Fear & Greed holes are forward-filled here, at read time, and counted; never in the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptocast.errors import DataValidationError
from cryptocast.features import FEATURE_VIEW, join_view
from cryptocast.stores.base import FeatureStore

log = logging.getLogger(__name__)

LOOKBACK = 15
HORIZON = 10
FEATURES = (
    "sol_log_return", "btc_log_return", "sol_log_volume", "btc_log_volume", "sol_log_range", "btc_log_range",
    "fear_greed",
)
MAX_FEAR_GREED_FILL = 3


@dataclass(frozen=True)
class FeatureFrame:
    """Daily rows (a complete calendar; missing price days are NaN) with features and SOL close."""

    frame: pd.DataFrame
    fear_greed_filled: int


_CANDLE = ["open", "high", "low", "close", "volume"]


def build_features(solana: pd.DataFrame, bitcoin: pd.DataFrame, fear_greed: pd.DataFrame) -> FeatureFrame:
    """The model's inputs from the three groups' rows, joined exactly as the stores join the view."""
    return features_from_view(join_view(FEATURE_VIEW, {"solana": solana, "bitcoin": bitcoin,
                                                       "fear_greed": fear_greed}))


def features_from_view(rows: pd.DataFrame) -> FeatureFrame:
    """Put the view's rows on a complete daily calendar and compute the model's inputs."""
    if rows.empty or rows["btc_close"].isna().all():
        raise DataValidationError("feature view: solana and bitcoin groups must not be empty: "
                                  "run feature_backfill.py first")
    days = pd.date_range(rows["day"].min(), rows["day"].max(), freq="D", name="day")
    rows = rows.set_index("day").reindex(days)
    frame = pd.concat([rows[_CANDLE].add_prefix("sol_"), rows[[f"btc_{c}" for c in _CANDLE]]], axis=1)
    fng = rows["fng_value"]
    known = fng.notna()
    filled = fng.ffill(limit=MAX_FEAR_GREED_FILL)
    frame["fear_greed_raw"] = filled
    n_filled = int((filled.notna() & ~known).sum())
    for asset in ("sol", "btc"):
        frame[f"{asset}_log_return"] = np.log(frame[f"{asset}_close"]).diff()
        frame[f"{asset}_log_volume"] = np.log1p(frame[f"{asset}_volume"])
        frame[f"{asset}_log_range"] = np.log(frame[f"{asset}_high"] / frame[f"{asset}_low"])
    frame["fear_greed"] = filled / 100.0
    if n_filled:
        log.info("feature view: forward-filled %d Fear & Greed day(s) (at most %d in a row)", n_filled,
                 MAX_FEAR_GREED_FILL)
    return FeatureFrame(frame, n_filled)


@dataclass(frozen=True)
class Windows:
    """Model inputs and targets, one row per forecast origin (the last input day)."""

    x: np.ndarray  # (n, LOOKBACK, n_features)
    y: np.ndarray  # (n, HORIZON) log returns of SOL close vs the origin's close; NaN where unknown
    origins: pd.DatetimeIndex
    last_close: np.ndarray  # (n,) SOL close on the origin day


def make_windows(features: FeatureFrame, columns: tuple[str, ...] = FEATURES, require_targets: bool = True,
                 lookback: int = LOOKBACK, horizon: int = HORIZON) -> Windows:
    """Every origin whose `lookback` input days are complete (and, if asked, whose targets are known).

    The target for horizon h is log(close[t+h] / close[t]); day t+h is exactly h calendar days after
    the origin t because the frame is a complete calendar.
    """
    frame = features.frame
    values = frame[list(columns)].to_numpy(dtype=float)
    close = frame["sol_close"].to_numpy(dtype=float)
    n = len(frame)
    ok_input = np.isfinite(values).all(axis=1)
    future = np.full((n, horizon), np.nan)
    for h in range(1, horizon + 1):
        future[: n - h, h - 1] = np.log(close[h:] / close[: n - h])
    xs, ys, idx = [], [], []
    for t in range(lookback - 1, n):
        if not ok_input[t - lookback + 1 : t + 1].all():
            continue
        if require_targets and not np.isfinite(future[t]).all():
            continue
        xs.append(values[t - lookback + 1 : t + 1])
        ys.append(future[t])
        idx.append(t)
    shape = (0, lookback, len(columns))
    return Windows(
        x=np.stack(xs) if xs else np.empty(shape),
        y=np.stack(ys) if ys else np.empty((0, horizon)),
        origins=frame.index[idx],
        last_close=close[idx],
    )


def read_feature_frame(store: FeatureStore, start: dt.date | None, end: dt.date) -> FeatureFrame:
    """The model's inputs for SOL days in [start, end], read through the store's feature view."""
    return features_from_view(store.read_feature_view(FEATURE_VIEW, start, end))
