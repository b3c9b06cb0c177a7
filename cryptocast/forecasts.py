"""Published forecasts, whatever version of `solana_forecasts` they were written in, read as one table.

Version 1 rows carried a point and 80%/95% bounds; version 2 rows carry quantiles 2.5..97.5. Readers
(the hindcast, the site, recalibration, export) see every row in the version 2 shape: a v1 row's
bounds are its q10/q90 (80%) and q2_5/q97_5 (95%) and its other quantiles are NaN. Where both
versions hold a (forecast_day, target_day), the newer version's row wins.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cryptocast.features import BOUND_COLUMNS, FORECAST_QUANTILES, FORECASTS, FORECASTS_V1, empty_frame
from cryptocast.stores.base import FeatureStore


def read_forecasts(store: FeatureStore, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
    """Every published forecast with forecast_day in [start, end], in `FORECASTS` (v2) columns, sorted by key."""
    parts = []
    for spec in (FORECASTS, FORECASTS_V1):
        group = store.get_feature_group(spec)
        if group is not None:
            parts.append(as_v2(group.read(start, end)))
    rows = [p for p in parts if not p.empty]
    if not rows:
        return empty_frame(FORECASTS)
    key = list(FORECASTS.primary_key)
    merged = pd.concat(rows, ignore_index=True).drop_duplicates(key, keep="first")
    return merged.sort_values(key).reset_index(drop=True)[FORECASTS.column_names]


def as_v2(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of either version in the v2 columns (v1's bounds become quantiles, the rest NaN)."""
    out = rows.rename(columns=BOUND_COLUMNS)
    for name in FORECAST_QUANTILES:
        if name not in out.columns:
            out[name] = float("nan")
    return out[FORECASTS.column_names]
