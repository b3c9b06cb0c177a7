"""A stand-in for CryptoCompare, Binance and alternative.me that answers in each API's real shape.

Tests serve it through pytest-httpserver; `python tests/fakeapi.py` serves it standalone so the
README's pipeline command and the benchmarks can run here, where the real APIs are out of reach.
History comes from frames (synthetic, or the real CSVs in ../shared/data); the day `now` is
served as a partial candle, exactly like the live APIs serve the day in progress.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd

DAY_S = 86_400
Reply = tuple[int, bytes]
CC_PATH, BINANCE_PATH, FNG_PATH = "/spot/v1/historical/days", "/api/v3/klines", "/fng/"
INSTRUMENTS = {"SOL-USD": "solana", "BTC-USD": "bitcoin"}
SYMBOLS = {"SOLUSDT": "solana", "BTCUSDT": "bitcoin"}
# Bands as in every row alternative.me has published (kept apart from cryptocast's, which the tests check).
FNG_CLASSES = [(26, "Extreme Fear"), (47, "Fear"), (55, "Neutral"), (76, "Greed"), (101, "Extreme Greed")]


def synthetic_history(start: str, days: int, seed: int = 7, fng_holes: tuple[str, ...] = ()) -> dict:
    """Consistent random-walk candles for SOL and BTC and a Fear & Greed series with chosen holes."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=days, freq="D")
    out = {}
    for asset, price in (("solana", 20.0), ("bitcoin", 30_000.0)):
        closes = price * np.exp(np.cumsum(rng.normal(0, 0.04, days)))
        opens = np.r_[price, closes[:-1]]
        spread = np.abs(rng.normal(0, 0.02, days))
        out[asset] = pd.DataFrame({
            "day": index, "open": opens.round(4), "close": closes.round(4),
            "high": (np.maximum(opens, closes) * (1 + spread)).round(4),
            "low": (np.minimum(opens, closes) * (1 - spread)).round(4),
            "volume": rng.uniform(1e3, 1e5, days).round(3),
        })
    values = np.clip(np.round(50 + np.cumsum(rng.normal(0, 4, days))), 0, 100).astype(int)
    fng = pd.DataFrame({"day": index, "value": values, "classification": [fng_class(v) for v in values]})
    out["fear_greed"] = fng[~fng["day"].isin(pd.to_datetime(list(fng_holes)))].reset_index(drop=True)
    return out


def fng_class(value: int) -> str:
    return next(name for bound, name in FNG_CLASSES if value < bound)


def shared_history(data_dir: Path) -> dict:
    """The real histories in ../shared/data, in the groups' column names."""
    def candles(path: Path) -> pd.DataFrame:
        df = pd.read_csv(path)
        return df.assign(day=pd.to_datetime(df["date"])).drop(columns=["date"])

    fng = pd.read_csv(data_dir / "fear_greed" / "fear_greed.csv")
    return {
        "solana": candles(data_dir / "binance" / "SOLUSDT_1d.csv"),
        "bitcoin": candles(data_dir / "binance" / "BTCUSDT_1d.csv"),
        "fear_greed": fng.assign(day=pd.to_datetime(fng["date"]))[["day", "value", "classification"]],
    }


def _json(status: int, body: object) -> Reply:
    return status, json.dumps(body).encode()


@dataclass
class FakeMarket:
    history: dict
    now: dt.date
    api_key: str = "test-key"
    faults: dict[str, Callable[[dict], Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict]] = field(default_factory=list)

    def _visible(self, group: str) -> pd.DataFrame:
        """History up to `now`, where `now` is a partial candle (closes early, 40% of the volume)."""
        df = self.history[group]
        df = df[df["day"] <= pd.Timestamp(self.now)].copy()
        if group != "fear_greed" and len(df) and df["day"].iloc[-1] == pd.Timestamp(self.now):
            last = df.index[-1]
            df.loc[last, ["close", "volume"]] = [df.loc[last, "open"] * 1.01, df.loc[last, "volume"] * 0.4]
            df.loc[last, "high"] = max(df.loc[last, "high"], df.loc[last, "close"])
        return df

    def handle(self, path: str, query: dict, headers: dict) -> Reply:
        self.requests.append((path, query))
        if path in self.faults:
            return self.faults[path](query)
        routes = {CC_PATH: self._cryptocompare, BINANCE_PATH: self._binance, FNG_PATH: self._fear_greed}
        if path not in routes:
            return _json(404, {"error": f"no route {path}"})
        return routes[path](query, headers)

    def _cryptocompare(self, query: dict, headers: dict) -> Reply:
        if headers.get("authorization") != f"Apikey {self.api_key}":
            return _json(401, {"Data": {}, "Err": {"type": 1, "message": "Unauthorized: invalid api key"}})
        group = INSTRUMENTS.get(query.get("instrument", ""))
        if query.get("market") != "kraken" or group is None:
            return _json(400, {"Data": {}, "Err": {"type": 2, "message": "instrument not found"}})
        limit, to_ts = int(query.get("limit", 30)), int(query.get("to_ts", 10**10))
        df = self._visible(group)
        df = df[df["day"] <= pd.Timestamp(to_ts, unit="s")].tail(limit)
        return _json(200, {"Data": [self._cc_item(row, query["instrument"]) for row in df.itertuples()], "Err": {}})

    def _cc_item(self, row, instrument: str) -> dict:
        ts = int(row.day.timestamp())
        partial = row.day == pd.Timestamp(self.now)
        base, quote = instrument.split("-")
        return {
            "UNIT": "DAY", "TIMESTAMP": ts, "TYPE": "954", "MARKET": "kraken", "INSTRUMENT": base + quote,
            "MAPPED_INSTRUMENT": instrument, "BASE": base, "QUOTE": quote, "BASE_ID": 1, "QUOTE_ID": 5,
            "TRANSFORM_FUNCTION": "", "OPEN": row.open, "HIGH": row.high, "LOW": row.low, "CLOSE": row.close,
            "FIRST_TRADE_TIMESTAMP": ts, "LAST_TRADE_TIMESTAMP": ts + (43_000 if partial else DAY_S - 5),
            "FIRST_TRADE_PRICE": row.open, "HIGH_TRADE_PRICE": row.high, "HIGH_TRADE_TIMESTAMP": ts + 3600,
            "LOW_TRADE_PRICE": row.low, "LOW_TRADE_TIMESTAMP": ts + 7200, "LAST_TRADE_PRICE": row.close,
            "TOTAL_TRADES": 1000, "TOTAL_TRADES_BUY": 500, "TOTAL_TRADES_SELL": 500, "TOTAL_TRADES_UNKNOWN": 0,
            "VOLUME": row.volume, "QUOTE_VOLUME": row.volume * row.close, "VOLUME_BUY": row.volume / 2,
            "QUOTE_VOLUME_BUY": row.volume * row.close / 2, "VOLUME_SELL": row.volume / 2,
            "QUOTE_VOLUME_SELL": row.volume * row.close / 2, "VOLUME_UNKNOWN": 0, "QUOTE_VOLUME_UNKNOWN": 0,
        }

    def _binance(self, query: dict, headers: dict) -> Reply:
        group = SYMBOLS.get(query.get("symbol", ""))
        if group is None:
            return _json(400, {"code": -1121, "msg": "Invalid symbol."})
        limit = min(int(query.get("limit", 500)), 1000)
        start = pd.Timestamp(int(query.get("startTime", 0)), unit="ms")
        end = pd.Timestamp(int(query.get("endTime", 10**13)), unit="ms")
        df = self._visible(group)
        df = df[(df["day"] >= start) & (df["day"] <= end)].head(limit)
        rows = []
        for row in df.itertuples():
            ms = int(row.day.timestamp()) * 1000
            rows.append([ms, f"{row.open:.8f}", f"{row.high:.8f}", f"{row.low:.8f}", f"{row.close:.8f}",
                         f"{row.volume:.8f}", ms + DAY_S * 1000 - 1, f"{row.volume * row.close:.8f}", 1000,
                         f"{row.volume / 2:.8f}", f"{row.volume * row.close / 2:.8f}", "0"])
        return _json(200, rows)

    def _fear_greed(self, query: dict, headers: dict) -> Reply:
        limit = int(query.get("limit", 1))
        df = self._visible("fear_greed").iloc[::-1]
        df = df if limit == 0 else df.head(limit)
        data = [{"value": str(int(r.value)), "value_classification": r.classification,
                 "timestamp": str(int(r.day.timestamp()))} for r in df.itertuples()]
        if data:
            data[0]["time_until_update"] = "3600"
        return _json(200, {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}})


def serve(market: FakeMarket, port: int) -> ThreadingHTTPServer:
    """A plain-stdlib HTTP server for the market (no test dependencies needed)."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            status, body = market.handle(url.path, dict(parse_qsl(url.query)), {k.lower(): v for k, v in
                                                                                  self.headers.items()})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--now", default="2025-01-01", help="the day served as the partial candle")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    market = FakeMarket(shared_history(args.data), dt.date.fromisoformat(args.now))
    print(f"fake APIs for {args.data} (today={args.now}) on http://127.0.0.1:{args.port}", flush=True)
    serve(market, args.port).serve_forever()


if __name__ == "__main__":
    main()
