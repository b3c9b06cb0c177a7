"""Hand-made rows for the feature groups, and the frames a store must give back for them."""

from __future__ import annotations

import pandas as pd

from cryptocast import features

SOL = features.SOLANA
FNG = features.FEAR_GREED
CANDLE_DTYPES = {"day": "datetime64[ns]", "open": "float64", "high": "float64", "low": "float64",
                 "close": "float64", "volume": "float64", "source": "object"}

# Hand-made candles spanning a year boundary; floats chosen to expose any lossy round trip.
CANDLES = {
    "2023-12-30": (101.25, 110.5, 95.125, 0.1 + 0.2 + 100, 12345.678901234567, "binance"),
    "2023-12-31": (102.0, 111.0, 96.0, 104.3333333333333, 1e-7, "kraken"),
    "2024-01-01": (103.5, 120.0, 97.0, 119.99999999999999, 0.0, "binance"),
    "2024-01-02": (104.0, 121.0, 98.0, 100.0, 98765.4321, "binance"),
}


def candles(days: list[str], close_delta: dict[str, float] | None = None) -> pd.DataFrame:
    """Raw rows for `days` (validated, as the pipeline would), optionally with a changed close."""
    close_delta = close_delta or {}
    rows = []
    for day in days:
        o, h, lo, c, v, s = CANDLES[day] if day in CANDLES else (50.0, 60.0, 40.0, 55.0, 1.0, "binance")
        rows.append({"day": day, "open": o, "high": h, "low": lo, "close": c + close_delta.get(day, 0.0),
                     "volume": v, "source": s})
    return features.validate(SOL, pd.DataFrame(rows), "test")


def expected_candles(days: list[str], close_delta: dict[str, float] | None = None) -> pd.DataFrame:
    """The same rows, built independently of the code under test, with the promised dtypes."""
    close_delta = close_delta or {}
    days = sorted(days)
    table = {
        "day": pd.Series([pd.Timestamp(d) for d in days], dtype="datetime64[ns]"),
        "open": pd.Series([CANDLES[d][0] for d in days], dtype="float64"),
        "high": pd.Series([CANDLES[d][1] for d in days], dtype="float64"),
        "low": pd.Series([CANDLES[d][2] for d in days], dtype="float64"),
        "close": pd.Series([CANDLES[d][3] + close_delta.get(d, 0.0) for d in days], dtype="float64"),
        "volume": pd.Series([CANDLES[d][4] for d in days], dtype="float64"),
        "source": pd.Series([CANDLES[d][5] for d in days], dtype="object"),
    }
    return pd.DataFrame(table)


def fng(rows: dict[str, tuple[int, str]]) -> pd.DataFrame:
    raw = pd.DataFrame({"day": list(rows), "value": [v for v, _ in rows.values()],
                        "classification": [c for _, c in rows.values()]})
    return features.validate(FNG, raw, "test")


ALL = sorted(CANDLES)


def remove_rows(group, days: list[str]) -> None:
    """Take days out of a local group as one commit, to make holes a run must then fill."""
    from cryptocast.stores.local import _by_year

    table = group.table
    snap = table.snapshot()
    rows = table.read_files(snap.files)
    rows = rows[~rows[group.spec.event_time].isin(pd.to_datetime(days))]
    adds = [table.write_data_file(part) for part in _by_year(group.spec, rows)]
    table.commit(snap, "DELETE", f"test: removed {len(days)} day(s)", adds, snap.files)


# Quantiles as multiples of the point: ordered, as published rows must be.
QUANTILE_FACTORS = {"q2_5": 0.8, "q5": 0.85, "q10": 0.9, "q25": 0.95, "q50": 1.0, "q75": 1.05, "q90": 1.1,
                    "q95": 1.15, "q97_5": 1.2}


def forecast_rows(day: str, point: float = 100.0, model_version: int = 3) -> pd.DataFrame:
    """Ten validated `solana_forecasts` (v2) rows made on `day`."""
    origin = pd.Timestamp(day)
    horizons = list(range(1, 11))
    rows = pd.DataFrame({"forecast_day": origin, "target_day": [origin + pd.Timedelta(days=h) for h in horizons],
                         "horizon": horizons, "point": point,
                         **{name: point * factor for name, factor in QUANTILE_FACTORS.items()},
                         "model_version": model_version})
    return features.validate(features.FORECASTS, rows, "test")


def forecast_rows_v1(day: str, point: float = 100.0, model_version: int = 1) -> pd.DataFrame:
    """Ten validated rows of the first version of `solana_forecasts` (point and 80%/95% bounds)."""
    origin = pd.Timestamp(day)
    horizons = list(range(1, 11))
    rows = pd.DataFrame({"forecast_day": origin, "target_day": [origin + pd.Timedelta(days=h) for h in horizons],
                         "horizon": horizons, "point": point, "lower_80": point * 0.9, "upper_80": point * 1.1,
                         "lower_95": point * 0.8, "upper_95": point * 1.2, "model_version": model_version})
    return features.validate(features.FORECASTS_V1, rows, "test")
