"""alternative.me's Crypto Fear & Greed Index: `GET /fng/?limit=N&format=json`, newest first.

The API can only be asked for "the newest N days" (N=0: all of them), so reaching back to day D
means asking for every day since D. Values arrive as strings; the API has real holes.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from cryptocast.errors import SourceError
from cryptocast.settings import Settings
from cryptocast.sources.http import HttpClient
from cryptocast.sources.parsing import Where, epoch_days, item

ORIGIN = "alternative.me fear_greed"


def fear_greed_from_records(records: list[dict], origin: str, where: Where) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    names = {"timestamp": "day", "value": "value", "value_classification": "classification"}
    absent = [f for f in names if f not in frame.columns]
    if absent:
        raise SourceError(f"{origin}: missing field(s) {', '.join(absent)}")
    out = frame[list(names)].rename(columns=names)
    out["day"] = epoch_days(out["day"], where, "timestamp")
    return out


class FearGreed:
    def __init__(self, http: HttpClient, settings: Settings) -> None:
        self.http = http
        self.url = f"{settings.fear_greed_url}/fng/"
        self.today = settings.today
        self.history_start = settings.history_start

    def origin(self, asset: str = "fear_greed") -> str:
        return ORIGIN

    def fetch(self, asset: str, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Days in [start, end]; asks for everything when `start` reaches back to the history start."""
        limit = 0 if start <= self.history_start else (self.today - start).days + 2
        body = self.http.get_json(ORIGIN, self.url, {"limit": limit, "format": "json"})
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise SourceError(f"{ORIGIN}: malformed response: expected an object with a 'data' list")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise SourceError(f"{ORIGIN}: malformed response: 'metadata' is a {type(metadata).__name__}, not an object")
        error = metadata.get("error")
        if error:
            raise SourceError(f"{ORIGIN}: API error: {error}")
        if not body["data"]:
            raise SourceError(f"{ORIGIN}: empty data for limit={limit}")
        return fear_greed_from_records(body["data"], ORIGIN, item(ORIGIN))
