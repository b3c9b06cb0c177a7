"""Strict reading of the days and timestamps upstream data carries.

Each value parses or the run stops with one line naming where (file and line, or response and item),
the column and the value. pandas' `errors="coerce"` used to turn a bad date into NaT, which a later
date filter then dropped without a word; nothing here coerces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from cryptocast.errors import SourceError
from cryptocast.features import is_boolean
from cryptocast.settings import ISO_DAY, parse_day

DAY_S = 86_400
# Epoch units told apart by magnitude: below 1e11 seconds (until the year 5138), then milliseconds,
# then microseconds (Binance's spot data dumps from 2025 on, and its API with timeUnit=MICROSECOND).
EPOCH_UNITS = ((1e11, 1), (1e14, 1_000), (1e17, 1_000_000))

Where = Callable[[int], str]


def csv_line(origin: str) -> Where:
    """Row i of a CSV with a header is line i + 2 of the file (what an editor or spreadsheet shows)."""
    return lambda i: f"{origin} line {i + 2}"


def headerless_csv_line(origin: str) -> Where:
    return lambda i: f"{origin} line {i + 1}"


def item(origin: str, noun: str = "item") -> Where:
    """Item i of a JSON response, counted from 1."""
    return lambda i: f"{origin} {noun} {i + 1}"


def _shown(value: object) -> str:
    return repr("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _fail(values: pd.Series, bad: np.ndarray, where: Where, column: str, problem: Callable[[int], str]) -> None:
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise SourceError(f"{where(i)}: {column} {_shown(values.iloc[i])} {problem(i)}")


def iso_days(values: pd.Series, where: Where, column: str = "date") -> pd.Series:
    """Days written exactly as YYYY-MM-DD: no other order, no time of day, no impossible dates."""
    text = values.fillna("").astype(str)
    days = pd.to_datetime(text.where(text.str.fullmatch(ISO_DAY), None), format="%Y-%m-%d", errors="coerce")
    _fail(values, days.isna().to_numpy(), where, column, lambda i: _date_problem(text.iloc[i]))
    return days.reset_index(drop=True)


def _date_problem(text: str) -> str:
    if parse_day(text) is None:
        return "is not a date in YYYY-MM-DD form"
    return "is outside the years 1678..2261"  # a real calendar day that no day of market data can be


def epoch_seconds(values: pd.Series, where: Where, column: str = "timestamp") -> np.ndarray:
    """Whole epoch seconds of timestamps in seconds, milliseconds or microseconds (told apart by magnitude)."""
    values = values.reset_index(drop=True)
    numbers = pd.to_numeric(values.where(~is_boolean(values), None), errors="coerce").astype(float).to_numpy()
    with np.errstate(invalid="ignore"):
        unusable = ~np.isfinite(numbers) | (numbers <= 0) | (numbers >= EPOCH_UNITS[-1][0])
        scale = np.select([numbers < bound for bound, _ in EPOCH_UNITS], [s for _, s in EPOCH_UNITS], 1)
        unusable |= numbers % scale != 0
    _fail(values, unusable, where, column, lambda i: "is not an epoch timestamp")
    return (numbers // scale).astype("int64")


def epoch_days(values: pd.Series, where: Where, column: str = "timestamp") -> pd.Series:
    """UTC days of epoch timestamps (any unit `epoch_seconds` reads), each exactly 00:00 UTC.

    A timestamp at another time of day is a candle of a shifted day (an API's `timeZone`), not the UTC
    day's, so it is refused rather than rounded down to the day.
    """
    seconds = epoch_seconds(values, where, column)
    _fail(values.reset_index(drop=True), seconds % DAY_S != 0, where, column,
          lambda i: f"is not at 00:00 UTC ({dt.datetime.fromtimestamp(seconds[i], dt.UTC):%Y-%m-%d %H:%M})")
    return pd.Series(pd.to_datetime(seconds, unit="s"))


def not_after(days: pd.Series, values: pd.Series, where: Where, last: dt.date, column: str = "date") -> None:
    """Refuse a day after `last` (the real today): an export cannot hold a day that has not begun."""
    _fail(values, (days > pd.Timestamp(last)).to_numpy(), where, column, lambda i: f"is after today ({last})")
