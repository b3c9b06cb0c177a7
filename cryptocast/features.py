"""Feature groups: their schemas, and the rules every row must pass before it is stored.

A group is named and versioned, keyed by a primary key, and carries an event time, so that a
hosted feature store (Hopsworks) can implement it with its own nouns. Bumping `version` is how a
schema change ships without rewriting history in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptocast.errors import DataValidationError
from cryptocast.settings import EARLIEST_DAY

DAY = "day"
# Plausible bounds for any crypto candle (quote currency USD or USDT, volume in the base asset). The real
# history spans 1.03..108,353 and a high at most 2.2x the low; these are far wider, and only catch garbage
# such as 1e308 or 1e-300 that every other rule lets through.
PRICE_MIN, PRICE_MAX = 1e-4, 1e7
MAX_HIGH_OVER_LOW = 10
VOLUME_MAX = 1e11
# Rule = (mask of bad rows, problem): the problem is text, or made from the first bad row to name its values.
Rule = tuple[pd.Series, "str | Callable[[pd.Series], str]"]


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # one of: date, float, int, str
    description: str
    nullable: bool = False  # a float that may be empty (NaN): a figure that could not be computed


@dataclass(frozen=True)
class GroupSpec:
    name: str
    version: int
    description: str
    primary_key: tuple[str, ...]
    event_time: str
    columns: tuple[Column, ...]
    rules: Callable[[pd.DataFrame], list[Rule]] | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def is_boolean(values: pd.Series) -> np.ndarray:
    """JSON `true` arrives as a Python bool, which pandas would happily read as 1."""
    if values.dtype == bool:
        return np.ones(len(values), dtype=bool)
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)
    return values.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)


def _day_rule(df: pd.DataFrame) -> Rule:
    """A day before any market existed (a CSV's 1900-01-01) would make every update ask for a century."""
    return df[DAY] < pd.Timestamp(EARLIEST_DAY), f"day before {EARLIEST_DAY}"


def _price_rules(df: pd.DataFrame) -> list[Rule]:
    """Checks that catch a corrupt candle; each is a mask of bad rows and what is wrong."""
    prices = df[["open", "high", "low", "close"]]
    return [
        _day_rule(df),
        ((prices <= 0).any(axis=1), "price is zero or negative"),
        ((prices < PRICE_MIN).any(axis=1), f"price below {PRICE_MIN:g} (implausible)"),
        ((prices > PRICE_MAX).any(axis=1), f"price above {PRICE_MAX:.0f} (implausible)"),
        (df["high"] < df["low"], "high < low"),
        (df["high"] > MAX_HIGH_OVER_LOW * df["low"], f"high is more than {MAX_HIGH_OVER_LOW}x low (implausible)"),
        ((prices["open"] > df["high"]) | (prices["close"] > df["high"]), "open or close above high"),
        ((prices["open"] < df["low"]) | (prices["close"] < df["low"]), "open or close below low"),
        (df["volume"] < 0, "volume is negative"),
        (df["volume"] > VOLUME_MAX, f"volume above {VOLUME_MAX:g} (implausible)"),
    ]


# alternative.me's labels and the highest value of each, as in every row it has published (2018-2024:
# 25 is "Extreme Fear", 26 "Fear"; its own page says 0-24, but the data never did).
FEAR_GREED_BANDS = ((25, "Extreme Fear"), (46, "Fear"), (54, "Neutral"), (75, "Greed"), (100, "Extreme Greed"))
FEAR_GREED_CLASSES = tuple(label for _, label in FEAR_GREED_BANDS)


def fear_greed_band(value: int) -> str:
    """The label of the band `value` (0..100) lies in."""
    return next(label for top, label in FEAR_GREED_BANDS if value <= top)


def _fear_greed_rules(df: pd.DataFrame) -> list[Rule]:
    """A new label upstream is refused by name: the model's inputs must not change meaning silently."""
    in_range = (df["value"] >= 0) & (df["value"] <= 100)
    known = df["classification"].isin(FEAR_GREED_CLASSES)
    band = df["value"].where(in_range, 0).map(fear_greed_band)
    return [
        _day_rule(df),
        (~in_range, "value outside 0..100"),
        (~known, lambda row: f"unknown classification {row['classification']!r}"),
        (df["classification"] != band, lambda row: f"classification {row['classification']!r} does not match "
                                                   f"value {row['value']} ({fear_greed_band(row['value'])})"),
    ]


_CANDLE = (
    Column(DAY, "date", "UTC day the daily candle opens (00:00 UTC)"),
    Column("open", "float", "first traded price of the day, in the quote currency"),
    Column("high", "float", "highest traded price of the day"),
    Column("low", "float", "lowest traded price of the day"),
    Column("close", "float", "last traded price of the day"),
    Column("volume", "float", "traded volume in the base asset (SOL or BTC)"),
    Column("source", "str", "where the row came from: kraken (CryptoCompare) or binance"),
)

SOLANA = GroupSpec("solana", 1, "Daily SOL candles, complete UTC days only", (DAY,), DAY, _CANDLE, _price_rules)
BITCOIN = GroupSpec("bitcoin", 1, "Daily BTC candles, complete UTC days only", (DAY,), DAY, _CANDLE, _price_rules)
FEAR_GREED = GroupSpec(
    "fear_greed",
    1,
    "alternative.me Crypto Fear & Greed Index, one value per UTC day; upstream holes are kept as holes",
    (DAY,),
    DAY,
    (
        Column(DAY, "date", "UTC day the index value is published for"),
        Column("value", "int", "index value, 0 (extreme fear) to 100 (extreme greed)"),
        Column("classification", "str", "alternative.me's label for the value"),
    ),
    _fear_greed_rules,
)

INGESTED_GROUPS = (SOLANA, BITCOIN, FEAR_GREED)


@dataclass(frozen=True)
class ViewPart:
    group: GroupSpec
    features: tuple[str, ...]  # besides the join key, which every part selects
    prefix: str = ""


@dataclass(frozen=True)
class ViewSpec:
    """Groups left-joined on the left group's key: a Hopsworks feature view, spelled out once.

    Both stores return a view as the same frame (`view_columns`), so what the model reads does not
    depend on where the rows are kept.
    """

    name: str
    version: int
    description: str
    left: ViewPart
    joins: tuple[ViewPart, ...]

    @property
    def key(self) -> list[str]:
        return list(self.left.group.primary_key)


_CANDLE_VALUES = ("open", "high", "low", "close", "volume")

FEATURE_VIEW = ViewSpec(
    "solana_features",
    1,
    "SOL candles with the same day's BTC candle (btc_) and Fear & Greed (fng_): the model's inputs",
    ViewPart(SOLANA, _CANDLE_VALUES),
    (ViewPart(BITCOIN, _CANDLE_VALUES, "btc_"), ViewPart(FEAR_GREED, ("value",), "fng_")),
)


def _forecast_rules_v1(df: pd.DataFrame) -> list[Rule]:
    ordered = (
        (df["lower_95"] <= df["lower_80"]) & (df["lower_80"] <= df["point"])
        & (df["point"] <= df["upper_80"]) & (df["upper_80"] <= df["upper_95"])
    )
    return [
        ((df[["point", "lower_95"]] <= 0).any(axis=1), "forecast price is zero or negative"),
        (~ordered, "interval bounds are not nested around the point forecast"),
        *_target_day_rule(df),
    ]


def _target_day_rule(df: pd.DataFrame) -> list[Rule]:
    return [(df["target_day"] - df["forecast_day"] != pd.to_timedelta(df["horizon"], unit="D"),
             "target_day is not forecast_day + horizon")]


# Published quantile levels: column name -> level. The 80%, 90% and 95% ranges are pairs of them
# (q10-q90, q5-q95, q2_5-q97_5); 2.5/97.5 exist so that a 95% range can be read off.
FORECAST_QUANTILES = {"q2_5": 0.025, "q5": 0.05, "q10": 0.1, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q90": 0.9,
                      "q95": 0.95, "q97_5": 0.975}
FORECAST_RANGES = {0.8: ("q10", "q90"), 0.9: ("q5", "q95"), 0.95: ("q2_5", "q97_5")}
# The 80% and 95% ranges' bounds under the names version 1 of solana_forecasts gave them (lower_80 ..
# upper_95), which the page's forecast rows keep: name -> the quantile column that is that bound.
BOUND_COLUMNS = {f"{side}_{level * 100:g}": column for level in (0.8, 0.95)
                 for side, column in zip(("lower", "upper"), FORECAST_RANGES[level], strict=True)}


def _forecast_rules(df: pd.DataFrame) -> list[Rule]:
    quantiles = df[list(FORECAST_QUANTILES)]
    decreasing = pd.Series((np.diff(quantiles.to_numpy(dtype=float), axis=1) < 0).any(axis=1), index=df.index)
    return [
        ((df["point"] <= 0) | (quantiles <= 0).any(axis=1), "forecast price is zero or negative"),
        (decreasing, "quantiles decrease with their level"),
        *_target_day_rule(df),
    ]


_FORECAST_KEY = (
    Column("forecast_day", "date", "last complete day the forecast starts from (its close is known)"),
    Column("target_day", "date", "day whose SOL close is forecast: forecast_day + horizon"),
    Column("horizon", "int", "days ahead, 1..10"),
    Column("point", "float", "point forecast of the SOL close"),
)
_MODEL_VERSION = Column("model_version", "int", "registry version of the model that made it")

FORECASTS_V1 = GroupSpec(
    "solana_forecasts",
    1,
    "Every 10-day SOL forecast ever made; a day's rerun replaces only that day's rows",
    ("forecast_day", "target_day"),
    "forecast_day",
    (
        *_FORECAST_KEY,
        Column("lower_80", "float", "80% prediction interval, lower bound"),
        Column("upper_80", "float", "80% prediction interval, upper bound"),
        Column("lower_95", "float", "95% prediction interval, lower bound"),
        Column("upper_95", "float", "95% prediction interval, upper bound"),
        _MODEL_VERSION,
    ),
    _forecast_rules_v1,
)

FORECASTS = GroupSpec(
    "solana_forecasts",
    2,
    "Every 10-day SOL forecast ever made, as a point and quantiles 2.5..97.5; a day's rerun replaces only "
    "that day's rows. Version 1 (point and 80%/95% bounds) stays readable: cryptocast.forecasts reads both",
    ("forecast_day", "target_day"),
    "forecast_day",
    (
        *_FORECAST_KEY,
        *(Column(name, "float", f"{level * 100:g}% quantile of the SOL close: it ends below with that chance")
          for name, level in FORECAST_QUANTILES.items()),
        _MODEL_VERSION,
    ),
    _forecast_rules,
)


def _day_label(df: pd.DataFrame, mask: pd.Series) -> str:
    """The first offending row's day, or its position when the day itself is what is missing."""
    position = int(np.flatnonzero(mask.to_numpy())[0])
    day = pd.to_datetime(df[DAY].iloc[position], errors="coerce") if DAY in df.columns else pd.NaT
    return f"row {position}" if pd.isna(day) else day.strftime("%Y-%m-%d")


def _coerce(df: pd.DataFrame, column: Column, origin: str) -> pd.Series:
    values = df[column.name]
    missing = values.isna()
    if missing.any() and not (column.nullable and column.dtype == "float"):
        raise DataValidationError(f"{origin} {_day_label(df, missing)}: missing value for '{column.name}'")
    if column.dtype == "date":
        days = pd.to_datetime(values, errors="coerce", format="mixed")
        if days.isna().any():
            raise DataValidationError(f"{origin} {_day_label(df, days.isna())}: '{column.name}' is not a date")
        return days.dt.normalize().astype("datetime64[ns]")
    if column.dtype == "str":
        return values.astype(str)
    if is_boolean(values).any():
        flags = pd.Series(is_boolean(values), index=df.index)
        raise DataValidationError(f"{origin} {_day_label(df, flags)}: '{column.name}' is a boolean, not a number")
    numbers = pd.to_numeric(values, errors="coerce")
    bad = ~missing & (numbers.isna() | ~np.isfinite(numbers.astype(float)))
    if bad.any():
        raise DataValidationError(f"{origin} {_day_label(df, bad)}: '{column.name}' is not a finite number")
    if column.dtype == "int":
        fractional = numbers != numbers.round()
        if fractional.any():
            raise DataValidationError(f"{origin} {_day_label(df, fractional)}: '{column.name}' is not an integer")
        return numbers.astype("int64")
    return numbers.astype("float64")


def validate(spec: GroupSpec, df: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Return `df` with exactly the schema's columns and dtypes, sorted by key; or raise.

    `origin` names where the rows came from, so the one-line error says source, day and problem.
    """
    absent = [c for c in spec.column_names if c not in df.columns]
    if absent:
        raise DataValidationError(f"{origin}: missing field(s) {', '.join(absent)}")
    out = pd.DataFrame({c.name: _coerce(df, c, origin) for c in spec.columns}).reset_index(drop=True)
    duplicated = out.duplicated(list(spec.primary_key), keep=False)
    if duplicated.any():
        raise DataValidationError(f"{origin} {_day_label(out, duplicated)}: duplicate {'/'.join(spec.primary_key)}")
    for mask, problem in spec.rules(out) if spec.rules else []:
        if mask.any():
            text = problem if isinstance(problem, str) else problem(out.loc[mask].iloc[0])
            raise DataValidationError(f"{origin} {_day_label(out, mask)}: {text}")
    return out.sort_values(list(spec.primary_key)).reset_index(drop=True)


_DTYPES = {"date": "datetime64[ns]", "float": "float64", "int": "int64", "str": "object"}


def empty_frame(spec: GroupSpec) -> pd.DataFrame:
    """A zero-row frame with the group's columns and dtypes, so callers never special-case 'empty'."""
    return pd.DataFrame({c.name: pd.Series(dtype=_DTYPES[c.dtype]) for c in spec.columns})


def _as_dtype(values: pd.Series, dtype: str, nullable: bool) -> pd.Series:
    """One column as the local store returns it, whatever a remote store's reader handed back.

    Days become naive UTC `datetime64[ns]`; joined columns may be missing, so their ints become floats.
    """
    if dtype == "date":
        return pd.to_datetime(values, utc=True).dt.tz_localize(None).astype("datetime64[ns]")
    if dtype == "str":
        return values.astype(object).where(values.notna(), None)
    return values.astype("float64" if nullable else _DTYPES[dtype])


def conform(spec: GroupSpec, df: pd.DataFrame) -> pd.DataFrame:
    """The group's rows with exactly its columns, dtypes and key order: what every store's `read` returns."""
    if df.empty:
        return empty_frame(spec)
    out = pd.DataFrame({c.name: _as_dtype(df[c.name], c.dtype, False) for c in spec.columns})
    return out.sort_values(list(spec.primary_key)).reset_index(drop=True)


def view_columns(view: ViewSpec) -> list[tuple[str, Column, bool]]:
    """(column in the view's frame, the group column it comes from, whether a join may leave it empty)."""
    key = view.key
    left = {c.name: c for c in view.left.group.columns}
    out = [(name, left[name], False) for name in (*key, *view.left.features)]
    for part in view.joins:
        columns = {c.name: c for c in part.group.columns}
        out += [(part.prefix + name, columns[name], True) for name in part.features]
    return out


def conform_view(view: ViewSpec, df: pd.DataFrame) -> pd.DataFrame:
    """The view's frame with exactly its columns and dtypes, one row per left key, sorted by it."""
    columns = view_columns(view)
    if df.empty:  # a reader may return no columns at all when there are no rows
        df = pd.DataFrame({name: pd.Series(dtype="object") for name, _, _ in columns})
    out = pd.DataFrame({name: _as_dtype(df[name], column.dtype, nullable) for name, column, nullable in columns})
    return out.sort_values(view.key).reset_index(drop=True)


def join_view(view: ViewSpec, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The view computed in pandas from each group's rows (keyed by group name): a left join on the key."""
    key = view.key
    joined = frames[view.left.group.name][[*key, *view.left.features]]
    for part in view.joins:
        right = frames[part.group.name][[*key, *part.features]]
        joined = joined.merge(right.rename(columns={f: part.prefix + f for f in part.features}), on=key, how="left")
    return conform_view(view, joined)


def missing_days(days: pd.Series, first: pd.Timestamp, last: pd.Timestamp) -> list[pd.Timestamp]:
    """Days in [first, last] that are absent: the holes a daily series must not silently have."""
    expected = pd.date_range(first, last, freq="D")
    return list(expected.difference(pd.DatetimeIndex(days)))
