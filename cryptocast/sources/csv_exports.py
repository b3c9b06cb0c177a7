"""Backfill from downloaded CSV exports, recognised by their header.

Formats: CryptoCompare's data-API export (35 upper-case columns), a Binance daily export
(`date,open,high,low,close,volume`) and a Fear & Greed export (`date,timestamp,value,classification`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cryptocast.errors import SourceError
from cryptocast.sources.prices import CRYPTOCOMPARE_INSTRUMENTS, candles_from_cryptocompare, day_of

log = logging.getLogger(__name__)

CRYPTOCOMPARE_HEADER = {"UNIT", "TIMESTAMP", "MARKET", "MAPPED_INSTRUMENT", "OPEN", "HIGH", "LOW", "CLOSE",
                        "VOLUME", "LAST_TRADE_TIMESTAMP"}
BINANCE_HEADER = ["date", "open", "high", "low", "close", "volume"]
FEAR_GREED_HEADER = ["date", "timestamp", "value", "classification"]
FORMATS_FOR_GROUP = {"solana": ("cryptocompare", "binance"), "bitcoin": ("cryptocompare", "binance"),
                     "fear_greed": ("fear_greed",)}
PARTIAL_DAY_MARGIN_S = 3600


def _read(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SourceError(f"csv {path}: cannot read: {type(exc).__name__}: {str(exc)[:160]}") from None


def detect_format(columns: list[str]) -> str | None:
    if len(columns) == 35 and CRYPTOCOMPARE_HEADER <= set(columns):
        return "cryptocompare"
    if columns == BINANCE_HEADER:
        return "binance"
    if columns == FEAR_GREED_HEADER:
        return "fear_greed"
    return None


def _drop_partial_last_day(frame: pd.DataFrame, raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    """An export taken mid-day ends with a partial candle: its last trade is hours before midnight."""
    last = frame["day"].idxmax()
    last_trade = pd.to_numeric(raw.loc[last, "LAST_TRADE_TIMESTAMP"], errors="coerce")
    day_end = frame.loc[last, "day"].timestamp() + 86_400
    if pd.notna(last_trade) and last_trade < day_end - PARTIAL_DAY_MARGIN_S:
        log.warning("%s: dropped partial day %s (last trade %s UTC)", origin, frame.loc[last, "day"].date(),
                    pd.Timestamp(last_trade, unit="s").strftime("%H:%M"))
        return frame.drop(index=last)
    return frame


def _cryptocompare(raw: pd.DataFrame, group: str, origin: str) -> pd.DataFrame:
    expected = CRYPTOCOMPARE_INSTRUMENTS[group]
    instruments = set(raw["MAPPED_INSTRUMENT"].dropna())
    if instruments != {expected}:
        raise SourceError(f"{origin}: holds {', '.join(sorted(instruments)) or 'no instrument'}, "
                          f"not {expected} for group {group}")
    frame = candles_from_cryptocompare(raw.to_dict("records"), origin)
    return _drop_partial_last_day(frame, raw, origin) if len(frame) else frame


def _binance(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.rename(columns={"date": "day"})
    frame["day"] = pd.to_datetime(frame["day"], format="%Y-%m-%d", errors="coerce")
    frame["source"] = "binance"
    return frame


def _fear_greed(raw: pd.DataFrame) -> pd.DataFrame:
    frame = raw.rename(columns={"timestamp": "day"}).drop(columns=["date"])
    frame["day"] = day_of(frame["day"])
    return frame


def load_export(group: str, path: Path) -> pd.DataFrame:
    """Rows of `group` from a CSV export, in the group's column names (not yet validated)."""
    origin = f"csv {path.name}"
    raw = _read(path)
    kind = detect_format(list(raw.columns))
    if kind is None:
        header = ",".join(raw.columns)[:120]
        raise SourceError(f"{origin}: unknown CSV format (header: {header})")
    if kind not in FORMATS_FOR_GROUP[group]:
        raise SourceError(f"{origin}: is a {kind} export, which cannot fill group {group}")
    if kind == "cryptocompare":
        return _cryptocompare(raw, group, origin)
    return _binance(raw) if kind == "binance" else _fear_greed(raw)
