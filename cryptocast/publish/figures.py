"""The charts the page shows: which, in what order, in which section, with what alt text, as PNG bytes."""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from cryptocast.publish import charts
from cryptocast.publish.document import number
from cryptocast.publish.formats import days, money
from cryptocast.publish.gather import SiteInputs

log = logging.getLogger(__name__)

MARKET_DAYS = 365


@dataclass(frozen=True)
class Chart:
    file: str
    title: str
    alt: str
    section: str
    png: bytes

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in pixels, from the PNG header."""
        return struct.unpack(">II", self.png[16:24])


def _forecast_alt(closes: pd.Series, forecast: dict | None) -> str:
    if closes.empty:
        return "Placeholder: no SOL prices in the store yet."
    recent = closes.iloc[-charts.FORECAST_HISTORY_DAYS:]
    text = (f"Line chart of SOL's daily close from {recent.index[0]:%Y-%m-%d} to {recent.index[-1]:%Y-%m-%d}, "
            f"last close {money(float(recent.iloc[-1]))}")
    if forecast is None:
        return text + "; no forecast yet."
    last = forecast["rows"][-1]
    return (text + f", and the forecast made on {forecast['forecast_day']} for the next 10 days: "
            f"{money(last['point'])} on {last['target_day']}, 80% range {money(last['lower_80'])} to "
            f"{money(last['upper_80'])}, 95% range {money(last['lower_95'])} to {money(last['upper_95'])}.")


def _hindcast_alt(horizon: int, summary: dict) -> str:
    if not summary:
        return f"Placeholder: no forecast {days(horizon)} ahead has been scored yet."
    parts = [f"{charts.SOURCES[source]}: {s['n']} forecasts with targets {s['first_target_day']} to "
             f"{s['last_target_day']}, mean absolute error {money(s['mae'])} vs {money(s['naive_mae'])} for naive"
             for source, s in summary.items()]
    return (f"Forecasts {days(horizon)} ahead against the actual SOL close, and the running mean absolute error. "
            + "; ".join(parts) + ".")


def _scoreboard_alt(evaluation: dict) -> str:
    means = ", ".join(f"{charts.MODEL_LABELS.get(name, name)} {m['rel_mae_mean']:.2f}"
                      for name, m in evaluation["models"].items() if number(m.get("rel_mae_mean")) is not None)
    return (f"Relative MAE vs naive per horizon from the backtest (mean: {means}; below 1 beats naive), and the "
            f"share of outcomes inside the 80% and 95% ranges per horizon.")


def _training_alt(history: dict) -> str:
    val = history.get("val_loss") or []
    if not val:
        return f"Training loss over {len(history.get('loss') or [])} epochs."
    best = min(range(len(val)), key=lambda i: val[i])
    return (f"Training and validation loss over {len(val)} epochs; the lowest validation loss, whose weights were "
            f"kept, is at epoch {best + 1}.")


def _render(file: str, title: str, alt: str, section: str, draw: Callable[[], Any]) -> Chart:
    started = time.monotonic()
    png = charts.png_bytes(draw())
    log.info("chart %s: %d KB in %.2fs", file, len(png) // 1024, time.monotonic() - started)
    return Chart(file, title, alt, section, png)


def render_charts(inputs: SiteInputs, scored: pd.DataFrame, doc: dict) -> list[Chart]:
    """Every chart the page shows, in page order; the model's charts only when its artifacts exist."""
    forecast = doc["forecast"]
    origin_rows = (inputs.forecasts[inputs.forecasts["forecast_day"] == pd.Timestamp(forecast["forecast_day"])]
                   if forecast else None)
    market = inputs.market
    span = f"the last {MARKET_DAYS} days"
    out = [_render("forecast.png", "Forecast", _forecast_alt(inputs.closes, forecast), "forecast",
                   lambda: charts.forecast_chart(inputs.closes, origin_rows))]
    out += [_render(f"hindcast_h{h}.png", f"{days(int(h))} ahead", _hindcast_alt(int(h), summary), "track",
                    lambda h=int(h): charts.hindcast_chart(scored, h)) for h, summary in doc["hindcast"].items()]
    if inputs.evaluation is not None:
        out.append(_render("scoreboard.png", "Backtest scoreboard", _scoreboard_alt(inputs.evaluation), "model",
                           lambda: charts.scoreboard_chart(inputs.evaluation)))
    if inputs.history is not None:
        out.append(_render("training.png", "Training curves", _training_alt(inputs.history), "model",
                           lambda: charts.training_chart(inputs.history)))
    out += [
        _render("trend.png", "Trend", f"SOL, BTC and the Fear & Greed Index over {span}, each indexed to 100 at "
                f"the start.", "market", lambda: charts.trend_chart(market, MARKET_DAYS)),
        _render("correlation.png", "Correlation", f"Heatmaps of the correlation between SOL, BTC and Fear & Greed "
                f"over {span}: daily changes on the left, levels on the right.", "market",
                lambda: charts.correlation_chart(market, MARKET_DAYS)),
        _render("fear_greed.png", "Fear & Greed", "The Crypto Fear & Greed Index, 0 (extreme fear) to 100 "
                "(extreme greed), over its whole stored history with a 30-day mean.", "market",
                lambda: charts.fear_greed_chart(market["Fear & Greed"])),
    ]
    return out
