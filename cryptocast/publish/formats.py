"""How the site writes prices, shares and spans of days: one place, so page, alt texts and charts agree.

Prices always in cents with their unit written out (USDT or USD), never "$": Binance quotes SOL
in USDT, a stablecoin near but not equal to one US dollar. page.js writes them the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptocast.registry import is_finite_number


def days(horizon: int) -> str:
    return f"{horizon} day{'s' if horizon != 1 else ''}"


def days_list(horizons: list[int]) -> str:
    """"day 3", "days 3 and 7", "days 2, 3 and 7"."""
    if len(horizons) == 1:
        return f"day {horizons[0]}"
    return f"days {', '.join(map(str, horizons[:-1]))} and {horizons[-1]}"


def amount(value: float) -> str:
    """A price in cents without its unit, for tables whose header carries it."""
    return f"{value:,.2f}"


def money(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{amount(value)} {unit}"


def pct(value: Any, signed: bool = False) -> str:
    return "n/a" if not is_finite_number(value) else f"{float(value):{'+' if signed else ''}.1%}"


def price_range(low: float, high: float) -> str:
    return f"{amount(low)}–{amount(high)}"


def utc(stamp: str) -> str:
    """An ISO timestamp as people read it; anything unexpected is shown as it is."""
    try:
        moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except (AttributeError, TypeError, ValueError):
        return str(stamp)
    if moment.tzinfo is None:
        return str(stamp)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
