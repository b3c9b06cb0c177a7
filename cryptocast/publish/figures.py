"""The charts the page shows: which, in what order, in which section, with what alt text, at both sizes.

Alt texts are sentences that carry the chart's message in numbers, for readers who cannot see it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pandas as pd
from matplotlib.figure import Figure

from cryptocast.features import FORECAST_QUANTILES
from cryptocast.publish import charts
from cryptocast.publish.charts import NARROW, SIZES, WIDE, Rendered, Size
from cryptocast.publish.document import number
from cryptocast.publish.formats import days, money, pct
from cryptocast.publish.gather import SiteInputs

log = logging.getLogger(__name__)

MARKET_DAYS = 365


@dataclass(frozen=True)
class Chart:
    name: str  # the wide file is name.png, the narrow one name-narrow.png
    title: str
    alt: str
    section: str
    renders: dict[str, Rendered]  # by Size.name
    page: str = "details"  # "index" (the short main page) or "details" (the modeller's page)

    def file(self, size: Size = WIDE) -> str:
        return f"{self.name}.png" if size is WIDE else f"{self.name}-{size.name}.png"

    def files(self) -> dict[str, bytes]:
        return {self.file(size): self.renders[size.name].png for size in SIZES}

    def entry(self) -> dict:
        """The chart as forecast.json lists it."""
        return {"page": self.page, "file": self.file(WIDE), "narrow_file": self.file(NARROW), "title": self.title,
                "alt": self.alt,
                "smallest_text_px": {self.file(s): round(self.renders[s.name].smallest_text_px, 1) for s in SIZES}}


def _forecast_alt(closes: pd.Series, forecast: dict | None, unit: str) -> str:
    if closes.empty:
        return "Placeholder: there are no SOL prices in the store yet."
    recent = closes.iloc[-charts.FORECAST_HISTORY_DAYS:]
    text = (f"Line chart of SOL's daily close from {recent.index[0]:%Y-%m-%d} to {recent.index[-1]:%Y-%m-%d}, "
            f"ending at {money(float(recent.iloc[-1]), unit)}.")
    if forecast is None:
        return text + " There is no forecast yet."
    last = forecast["rows"][-1]
    return (f"{text} {forecast['path']} Around it, a fan of ranges widens day by day from the last close. On "
            f"{last['target_day']} the forecast is {money(last['point'], unit)}, an 80% range of "
            f"{money(last['lower_80'], unit)} to {money(last['upper_80'], unit)} and a 95% range of "
            f"{money(last['lower_95'], unit)} to {money(last['upper_95'], unit)}.")


def _hindcast_alt(horizon: int, summary: dict, unit: str) -> str:
    if not summary:
        return f"Placeholder: no forecast {days(horizon)} ahead has been scored yet."
    parts = [f"{charts.SOURCES[source].capitalize()}: {s['n']} forecasts for {s['first_target_day']} to "
             f"{s['last_target_day']}, off by {money(s['mae'], unit)} on average, against "
             f"{money(s['naive_mae'], unit)} for naive persistence." for source, s in summary.items()]
    return (f"How far off each forecast {days(horizon)} ahead was, over time, with naive persistence's errors as a "
            f"grey area; below, the running mean absolute error of both. " + " ".join(parts))


def _ranges_alt(hindcast: dict) -> str:
    if not any(s.get("ranged") for summary in hindcast.values() for s in summary.values()):
        return "Placeholder: no range has been judged yet."
    parts = []
    for horizon, summary in hindcast.items():
        found = [f"{charts.SOURCES[source]}: {s['ranged']} ranges, {pct(s['coverage_80'])} of outcomes inside the "
                 f"80% range and {pct(s['coverage_95'])} inside the 95% range"
                 for source, s in summary.items() if s.get("ranged")]
        parts.append(f"{days(int(horizon))} ahead, " + ("; ".join(found) if found else "no range judged yet") + ".")
    return ("Past forecasts' 80% and 95% ranges over time, drawn around their point forecast, with each outcome as "
            "a dot, dark inside the 80% range and orange outside it. " + " ".join(parts))


def _range_scores_alt(scores: dict) -> str:
    parts = [f"{charts.RANGE_METHOD_LABELS.get(name, name)}: interval score {_ratio(s['winkler_80_vs_fixed_band'])} "
             f"of the fixed band's, {pct(s['coverage_80_calm'])} / {pct(s['coverage_80_middle'])} / "
             f"{pct(s['coverage_80_wild'])} inside the 80% range on calm / middle / wild days"
             for name, s in scores.items()]
    peers = [charts.RANGE_METHOD_LABELS.get(name, name) for name in scores if name != "calibrated"]
    return (f"Our ranges against the other ways of drawing them ({', '.join(peers)}) on the same backtest days: above, "
            "the interval score of the 80% range divided by the fixed band's per horizon (below 1 is better); "
            "below, how often the 80% range held by how volatile the market was. " + "; ".join(parts) + ".")


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}×"


def _scoreboard_alt(evaluation: dict) -> str:
    means = {charts.MODEL_LABELS.get(name, name): number(m.get("rel_mae_mean"))
             for name, m in evaluation["models"].items()}
    shown = [f"{label} {value:.2f}" for label, value in means.items() if value is not None]
    return (f"Each model's average error divided by naive persistence's, per horizon from 1 to 10 days, from the "
            f"backtest; below 1 beats naive. Means: {', '.join(shown)}. A model whose error reaches "
            f"{charts.OFF_SCALE:g} times naive's is named in the legend instead of drawn. Below, the share of "
            f"outcomes inside the 80% and 95% ranges per horizon.")


def _training_alt(history: dict) -> str:
    val = history.get("val_loss") or []
    if not val:
        return f"Training loss over {len(history.get('loss') or [])} epochs."
    best = min(range(len(val)), key=lambda i: val[i])
    return (f"Training and validation loss over {len(val)} epochs. The lowest validation loss, whose weights were "
            f"kept, is at epoch {best + 1}.")


def _correlation_alt(market: pd.DataFrame) -> str:
    window = charts.daily_changes(market.loc[market.index > market.index.max() - pd.Timedelta(days=MARKET_DAYS)]
                                  if not market.empty else market)
    corr = window.corr()
    pairs = [("SOL", "BTC"), ("SOL", "Fear & Greed"), ("BTC", "Fear & Greed")]
    values = [f"{a} and {b} {corr.loc[a, b]:.2f}" for a, b in pairs if pd.notna(corr.loc[a, b])]
    if not values:
        return "Placeholder: there is not enough data in the store yet for correlations."
    return (f"Heatmap of the correlation between daily changes over the last {MARKET_DAYS} days (price returns "
            f"for SOL and BTC, points for Fear & Greed): {', '.join(values)}.")


def _render(name: str, title: str, alt: str, section: str, draw: Callable[[Size], Figure],
            page: str = "details") -> Chart:
    started = time.monotonic()
    renders = {size.name: charts.render(draw, size) for size in SIZES}
    log.info("chart %s: %s in %.2fs", name, ", ".join(f"{s} {r.width}x{r.height} {len(r.png) // 1024} KB"
                                                       for s, r in renders.items()), time.monotonic() - started)
    return Chart(name, title, alt, section, renders, page)


def shown_rows(forecast: dict | None) -> pd.DataFrame | None:
    """The forecast rows as the page shows them (widened, `document.widen_with_horizon`), for the fan chart."""
    if forecast is None:
        return None
    rows = pd.DataFrame(forecast["rows"]).astype({k: float for k in FORECAST_QUANTILES})
    rows["forecast_day"] = pd.Timestamp(forecast["forecast_day"])
    rows["target_day"] = pd.to_datetime(rows["target_day"], format="%Y-%m-%d")
    return rows


def render_charts(inputs: SiteInputs, scored: pd.DataFrame, doc: dict) -> list[Chart]:
    """Every chart the page shows, in page order; the model's charts only when its artifacts exist."""
    forecast, unit, market = doc["forecast"], inputs.unit, inputs.market
    out = [_render("forecast", "Forecast", _forecast_alt(inputs.closes, forecast, unit), "forecast",
                   partial(charts.forecast_chart, inputs.closes, shown_rows(forecast), unit=unit), page="index")]
    out += [_render(f"hindcast_h{h}", f"{days(int(h))} ahead", _hindcast_alt(int(h), summary, unit), "track",
                    partial(charts.hindcast_chart, scored, int(h), unit=unit))
            for h, summary in doc["hindcast"].items() if not charts.same_as_naive(scored, int(h))]
    horizons = [int(h) for h in doc["hindcast"]]
    out.append(_render("ranges", "Ranges over time", _ranges_alt(doc["hindcast"]), "ranges",
                       partial(charts.ranges_chart, scored, horizons)))
    if inputs.evaluation is not None:
        out.append(_render("scoreboard", "Backtest scoreboard", _scoreboard_alt(inputs.evaluation), "model",
                           partial(charts.scoreboard_chart, inputs.evaluation)))
    if inputs.history is not None:
        out.append(_render("training", "Training curves", _training_alt(inputs.history), "model",
                           partial(charts.training_chart, inputs.history)))
    if doc["range_scores"]:  # on the page after the model's own charts, under "How good are the ranges?"
        out.append(_render("range_scores", "Range scores", _range_scores_alt(doc["range_scores"]), "ranges_scored",
                           partial(charts.range_scores_chart, inputs.evaluation["distribution"])))
    out += [
        _render("trend", "Trend", f"SOL and BTC over the last {MARKET_DAYS} days, each indexed to 100 on the first "
                f"day; below, the Fear & Greed Index on its own scale from 0 (extreme fear) to 100 (extreme greed).",
                "market", partial(charts.trend_chart, market, MARKET_DAYS)),
        _render("correlation", "Correlation", _correlation_alt(market), "market",
                partial(charts.correlation_chart, market, MARKET_DAYS)),
        _render("fear_greed", "Fear & Greed", "The Crypto Fear & Greed Index, from 0 (extreme fear) to 100 (extreme "
                "greed), over its whole stored history, with a 30-day mean.", "market",
                partial(charts.fear_greed_chart, market["Fear & Greed"])),
    ]
    return out
