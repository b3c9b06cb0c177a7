"""How the site writes prices, shares and spans of days: one place, so page, alt texts and charts agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cryptocast.registry import is_finite_number


def days(horizon: int) -> str:
    return f"{horizon} day{'s' if horizon > 1 else ''}"


def money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def pct(value: Any, signed: bool = False) -> str:
    return "n/a" if not is_finite_number(value) else f"{float(value):{'+' if signed else ''}.1%}"


def price_range(low: float, high: float) -> str:
    """Compact for a phone-width table, whose header carries the unit; cents only where they are visible change."""
    decimals = 0 if high >= 100 else 2
    return f"{low:,.{decimals}f}–{high:,.{decimals}f}"


def utc(stamp: str) -> str:
    """The registry's ISO timestamp as people read it; anything unexpected is shown as it is."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    if moment.tzinfo is None:
        return str(stamp)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
