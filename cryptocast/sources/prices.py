"""Daily candles from CryptoCompare's data API (Kraken, keyed) and Binance (keyless).

Both return rows in the `solana` / `bitcoin` group shape. Both APIs include the day in progress
as a partial candle; only days up to the requested end (the last complete day) are kept.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pandas as pd

from cryptocast.errors import SourceError
from cryptocast.settings import Settings
from cryptocast.sources.http import HttpClient
from cryptocast.sources.parsing import Where, epoch_days, item

log = logging.getLogger(__name__)

# A full history is 1-3 pages; an API that ignores its paging parameters must not keep a run asking.
MAX_PAGES = 100
CRYPTOCOMPARE_INSTRUMENTS = {"solana": "SOL-USD", "bitcoin": "BTC-USD"}
BINANCE_SYMBOLS = {"solana": "SOLUSDT", "bitcoin": "BTCUSDT"}
CRYPTOCOMPARE_FIELDS = {"TIMESTAMP": "day", "OPEN": "open", "HIGH": "high", "LOW": "low", "CLOSE": "close",
                        "VOLUME": "volume"}


def epoch_s(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def candles_from_cryptocompare(records: list[dict[str, Any]], origin: str, where: Where) -> pd.DataFrame:
    """Map CryptoCompare rows (API items and CSV export rows share these field names) to candles."""
    frame = pd.DataFrame.from_records(records)
    absent = [f for f in CRYPTOCOMPARE_FIELDS if f not in frame.columns]
    if absent:
        raise SourceError(f"{origin}: missing field(s) {', '.join(absent)}")
    out = frame[list(CRYPTOCOMPARE_FIELDS)].rename(columns=CRYPTOCOMPARE_FIELDS)
    out["day"] = epoch_days(out["day"], where, "TIMESTAMP")
    out["source"] = frame["MARKET"].astype(str) if "MARKET" in frame.columns else "cryptocompare"
    return out


def empty_candles() -> pd.DataFrame:
    """What a source returns for a range the API has nothing for: not an error by itself."""
    return pd.DataFrame({name: pd.Series(dtype="datetime64[ns]" if name == "day" else "object")
                         for name in (*CRYPTOCOMPARE_FIELDS.values(), "source")})


def span(page: pd.DataFrame) -> str:
    return f"{page['day'].min():%Y-%m-%d}..{page['day'].max():%Y-%m-%d}"


class CryptoCompare:
    """`GET /spot/v1/historical/days`, paged back with `to_ts`; the key goes in a header."""

    max_limit = 5000
    max_pages = MAX_PAGES

    def __init__(self, http: HttpClient, settings: Settings) -> None:
        self.http = http
        self.url = f"{settings.cryptocompare_url}/spot/v1/historical/days"
        self.headers = {"authorization": f"Apikey {settings.crypto_api_key}"}

    def origin(self, asset: str) -> str:
        return f"cryptocompare {CRYPTOCOMPARE_INSTRUMENTS[asset]}"

    def fetch(self, asset: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        pages: list[pd.DataFrame] = []
        cursor = end
        for _ in range(self.max_pages):
            limit = min(self.max_limit, (cursor - start).days + 1)
            page = self._page(asset, cursor, limit)
            if page.empty:
                break
            if page["day"].max() > pd.Timestamp(cursor):
                raise SourceError(f"{self.origin(asset)}: page for days up to {cursor} holds "
                                  f"{span(page)}: the API ignored to_ts")
            pages.append(page)
            oldest = page["day"].min().date()
            if len(page) < limit or oldest <= start:
                break
            cursor = oldest - dt.timedelta(days=1)
        else:
            raise SourceError(f"{self.origin(asset)}: more than {self.max_pages} pages for {start}..{end}")
        return pd.concat(pages, ignore_index=True) if pages else empty_candles()

    def _page(self, asset: str, to_day: dt.date, limit: int) -> pd.DataFrame:
        origin = self.origin(asset)
        params = {"market": "kraken", "instrument": CRYPTOCOMPARE_INSTRUMENTS[asset], "limit": limit,
                  "to_ts": epoch_s(to_day)}
        body = self.http.get_json(origin, self.url, params, self.headers)
        if not isinstance(body, dict) or not isinstance(body.get("Data"), list):
            raise SourceError(f"{origin}: malformed response: expected an object with a 'Data' list")
        if body.get("Err"):
            message = body["Err"].get("message", body["Err"]) if isinstance(body["Err"], dict) else body["Err"]
            raise SourceError(f"{origin}: API error: {message}")
        if not body["Data"]:
            return empty_candles()
        return candles_from_cryptocompare(body["Data"], origin, item(origin))


class Binance:
    """`GET /api/v3/klines?interval=1d`, paged forward with `startTime`; public, no key."""

    max_limit = 1000
    max_pages = MAX_PAGES
    fields = ("day", "open", "high", "low", "close", "volume")

    def __init__(self, http: HttpClient, settings: Settings) -> None:
        self.http = http
        self.url = f"{settings.binance_url}/api/v3/klines"

    def origin(self, asset: str) -> str:
        return f"binance {BINANCE_SYMBOLS[asset]}"

    def fetch(self, asset: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        pages: list[pd.DataFrame] = []
        cursor = start
        for _ in range(self.max_pages):
            limit = min(self.max_limit, (end - cursor).days + 1)
            page = self._page(asset, cursor, end, limit)
            if page.empty:  # nothing (more) in the range: the caller decides whether that is a hole
                break
            if page["day"].min() < pd.Timestamp(cursor) or page["day"].max() > pd.Timestamp(end):
                raise SourceError(f"{self.origin(asset)}: page for {cursor}..{end} holds {span(page)}: "
                                  "the API ignored startTime/endTime")
            pages.append(page)
            cursor = page["day"].max().date() + dt.timedelta(days=1)
            if len(page) < limit or cursor > end:
                break
        else:
            raise SourceError(f"{self.origin(asset)}: more than {self.max_pages} pages for {start}..{end}")
        return pd.concat(pages, ignore_index=True) if pages else empty_candles()

    def _page(self, asset: str, start: dt.date, end: dt.date, limit: int) -> pd.DataFrame:
        origin = self.origin(asset)
        params = {"symbol": BINANCE_SYMBOLS[asset], "interval": "1d", "startTime": epoch_s(start) * 1000,
                  "endTime": epoch_s(end) * 1000, "limit": limit}
        body = self.http.get_json(origin, self.url, params)
        if not isinstance(body, list) or not all(isinstance(row, list) for row in body):
            raise SourceError(f"{origin}: malformed response: expected a list of klines")
        short = [row for row in body if len(row) < len(self.fields)]
        if short:
            raise SourceError(f"{origin}: missing field(s) in kline starting {short[0][:1]}")
        frame = pd.DataFrame([row[: len(self.fields)] for row in body], columns=list(self.fields))
        frame["day"] = epoch_days(frame["day"], item(origin, "kline"), "open time")
        frame["source"] = "binance"
        return frame


def price_source(http: HttpClient, settings: Settings) -> CryptoCompare | Binance:
    """CryptoCompare (Kraken, as the original system) with a key; Binance's public data without one."""
    return CryptoCompare(http, settings) if settings.crypto_api_key else Binance(http, settings)
