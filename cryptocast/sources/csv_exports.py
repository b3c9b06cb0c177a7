"""Backfill from downloaded CSV exports, recognised by their header.

Formats: CryptoCompare's data-API export (35 upper-case columns), a daily export
`date,open,high,low,close,volume`, Binance's own spot data dump (data.binance.vision: 12 columns, no
header; open times in milliseconds until 2024 and microseconds from 2025) and a Fear & Greed export
(`date,timestamp,value,classification`). Every date and timestamp must parse: a bad one stops the
import with the file, line and value, never a silently shorter import.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from pathlib import Path

import pandas as pd

from cryptocast.errors import SourceError
from cryptocast.sources.parsing import (
    DAY_S,
    Where,
    csv_line,
    epoch_days,
    epoch_seconds,
    headerless_csv_line,
    iso_days,
    not_after,
)
from cryptocast.sources.prices import CRYPTOCOMPARE_INSTRUMENTS, candles_from_cryptocompare

log = logging.getLogger(__name__)

CRYPTOCOMPARE_HEADER = {"UNIT", "TIMESTAMP", "MARKET", "MAPPED_INSTRUMENT", "OPEN", "HIGH", "LOW", "CLOSE",
                        "VOLUME", "LAST_TRADE_TIMESTAMP"}
BINANCE_HEADER = ["date", "open", "high", "low", "close", "volume"]
BINANCE_DUMP_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
                        "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]
FEAR_GREED_HEADER = ["date", "timestamp", "value", "classification"]
FORMATS_FOR_GROUP = {"solana": ("cryptocompare", "binance", "binance_dump"),
                     "bitcoin": ("cryptocompare", "binance", "binance_dump"), "fear_greed": ("fear_greed",)}
PARTIAL_DAY_MARGIN_S = 3600
# A daily export is under 0.4 MB per asset (CryptoCompare's 35 columns since 2017); a century of days is
# under 8 MB. More is not an export of ours (or /dev/zero), and pandas would hold ~6x its size in memory.
MAX_CSV_BYTES = 32 * 2**20


def _read(path: Path, header: int | None = 0) -> pd.DataFrame:
    data = _bounded(path)
    try:
        _same_width(data.decode("utf-8"), path)
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[""], header=header)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"csv {path}: cannot read: {type(exc).__name__}: {str(exc)[:160]}") from None


def _bounded(path: Path) -> bytes:
    """The file's bytes, refused past MAX_CSV_BYTES before more than that is read (a device never ends)."""
    too_large = SourceError(f"csv {path}: larger than {MAX_CSV_BYTES // 2**20} MB: not a daily export")
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise too_large
        with open(path, "rb") as file:
            data = file.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"csv {path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_CSV_BYTES:
        raise too_large
    return data


def _same_width(text: str, path: Path) -> None:
    """Every line has as many fields as the first: pandas takes a first data row with one more field than the
    header as an index column, and the error then named the wrong column ("date '2.85' is not a date")."""
    width = None
    rows = csv.reader(io.StringIO(text))
    for row in rows:
        if not row:
            continue
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise SourceError(f"csv {path.name} line {rows.line_num}: {len(row)} fields, but the first line has "
                              f"{width} (a stray or missing comma?)")


def detect_format(columns: list[str]) -> str | None:
    if len(columns) == 35 and CRYPTOCOMPARE_HEADER <= set(columns):
        return "cryptocompare"
    if columns == BINANCE_HEADER:
        return "binance"
    if columns == BINANCE_DUMP_COLUMNS or (len(columns) == 12 and str(columns[0]).strip().isdigit()):
        return "binance_dump"
    if columns == FEAR_GREED_HEADER:
        return "fear_greed"
    return None


def _drop_partial_last_day(frame: pd.DataFrame, raw: pd.DataFrame, where: Where, origin: str) -> pd.DataFrame:
    """An export taken mid-day ends with a partial candle: its last trade is hours before midnight."""
    last = frame["day"].idxmax()
    trade = raw.loc[[last], "LAST_TRADE_TIMESTAMP"]
    if trade.isna().iloc[0]:
        return frame
    last_trade = int(epoch_seconds(trade, lambda i: where(last), "LAST_TRADE_TIMESTAMP")[0])
    day_end = frame.loc[last, "day"].timestamp() + DAY_S
    if last_trade < day_end - PARTIAL_DAY_MARGIN_S:
        log.warning("%s: dropped partial day %s (last trade %s UTC)", origin, frame.loc[last, "day"].date(),
                    pd.Timestamp(last_trade, unit="s").strftime("%H:%M"))
        return frame.drop(index=last)
    return frame


def _cryptocompare(raw: pd.DataFrame, group: str, origin: str, today: dt.date) -> pd.DataFrame:
    expected = CRYPTOCOMPARE_INSTRUMENTS[group]
    instruments = set(raw["MAPPED_INSTRUMENT"].dropna())
    if instruments != {expected}:
        raise SourceError(f"{origin}: holds {', '.join(sorted(instruments)) or 'no instrument'}, "
                          f"not {expected} for group {group}")
    where = csv_line(origin)
    frame = candles_from_cryptocompare(raw.to_dict("records"), origin, where)
    not_after(frame["day"], raw["TIMESTAMP"], where, today, "TIMESTAMP")
    return _drop_partial_last_day(frame, raw, where, origin)


def _binance(raw: pd.DataFrame, origin: str, today: dt.date) -> pd.DataFrame:
    frame = raw.rename(columns={"date": "day"})
    frame["day"] = iso_days(raw["date"], csv_line(origin))
    not_after(frame["day"], raw["date"], csv_line(origin), today)
    frame["source"] = "binance"
    return frame


def _binance_dump(path: Path, origin: str, today: dt.date) -> pd.DataFrame:
    """data.binance.vision's klines: open time first, in milliseconds or (from 2025) microseconds."""
    raw = _read(path, header=None)
    where = headerless_csv_line(origin)
    if str(raw.iloc[0, 0]).strip() == BINANCE_DUMP_COLUMNS[0]:
        raw = raw.iloc[1:].reset_index(drop=True)
        where = csv_line(origin)
    raw.columns = BINANCE_DUMP_COLUMNS[: raw.shape[1]]
    frame = raw[BINANCE_HEADER[1:]].copy()
    frame.insert(0, "day", epoch_days(raw["open_time"], where, "open time"))
    not_after(frame["day"], raw["open_time"], where, today, "open time")
    frame["source"] = "binance"
    return frame


def _fear_greed(raw: pd.DataFrame, origin: str, today: dt.date) -> pd.DataFrame:
    """The `date` column must name the same day as `timestamp`: a mismatch means a shifted or edited file."""
    where = csv_line(origin)
    days = epoch_days(raw["timestamp"], where)
    dates = iso_days(raw["date"], where)
    differs = (dates != days).to_numpy()
    if differs.any():
        i = int(differs.nonzero()[0][0])
        raise SourceError(f"{where(i)}: date {raw['date'].iloc[i]!r} does not match timestamp "
                          f"{raw['timestamp'].iloc[i]!r} ({days.iloc[i]:%Y-%m-%d})")
    not_after(days, raw["date"], where, today)
    return raw.drop(columns=["date", "timestamp"]).assign(day=days)


def load_export(group: str, path: Path, today: dt.date) -> pd.DataFrame:
    """Rows of `group` from a CSV export, in the group's column names (not yet validated).

    `today` is the real UTC date: an export cannot hold a day after it.
    """
    origin = f"csv {path.name}"
    raw = _read(path)
    kind = detect_format(list(raw.columns))
    if kind is None:
        header = ",".join(raw.columns)[:120]
        raise SourceError(f"{origin}: unknown CSV format (header: {header})")
    if kind not in FORMATS_FOR_GROUP[group]:
        raise SourceError(f"{origin}: is a {kind} export, which cannot fill group {group}")
    if raw.empty:
        raise SourceError(f"{origin}: no rows")
    if kind == "cryptocompare":
        return _cryptocompare(raw, group, origin, today)
    if kind == "binance_dump":
        return _binance_dump(path, origin, today)
    return _binance(raw, origin, today) if kind == "binance" else _fear_greed(raw, origin, today)
