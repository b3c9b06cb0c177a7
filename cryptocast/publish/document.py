"""forecast.json: the numbers behind the page, one JSON document the page embeds byte for byte.

Fields (dates are UTC days, YYYY-MM-DD; prices in USD):

    generated_utc      when the site was built, ISO 8601 UTC
    backend            which store it was built from ("local" or "hopsworks")
    last_complete_day  the newest day whose close can be known at build time
    groups             per feature group, `status.freshness`: version, rows, first_day, last_day,
                       missing_days, behind_days (the freshness table)
    model              the production model: name, version, created, description, metrics (as
                       registered: rel_mae_mean, coverage_80_mean, coverage_95_mean,
                       mae_reduction_vs_original, backtest_origins {first, last, count}, ...);
                       null when no model is in production
    verdict            one sentence: what the backtest says the model can and cannot do
    forecast           the latest forecast_day's rows of `solana_forecasts`, or null when none:
                       forecast_day, days_old (last_complete_day - forecast_day), last_close (SOL
                       close on forecast_day, null if unknown), model_version, and rows: one per
                       horizon 1..10 with horizon, target_day, point, lower_80, upper_80,
                       lower_95, upper_95
    hindcast           per horizon charted ("1", "10", the chosen one), per source ("published",
                       "backtest"): n, first_target_day, last_target_day, mae, naive_mae
    charts             the PNGs on the page, in order: file, title, alt
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd

from cryptocast.publish import charts
from cryptocast.publish.gather import SiteInputs
from cryptocast.registry import ModelVersion, is_finite_number
from cryptocast.settings import Settings

PRICE_KEYS = ("point", "lower_80", "upper_80", "lower_95", "upper_95")
NO_MODEL = "No model is in production yet: run training_pipeline.py."


def number(value: Any) -> float | None:
    """A finite number as float, else None: registry metrics and reports may hold nulls."""
    return float(value) if is_finite_number(value) else None


def latest_forecast(forecasts: pd.DataFrame, closes: pd.Series, last_complete: dt.date) -> dict | None:
    """The newest forecast_day's rows, as forecast.json carries them."""
    if forecasts.empty:
        return None
    origin = forecasts["forecast_day"].max()
    rows = forecasts[forecasts["forecast_day"] == origin].sort_values("horizon")
    close = closes.get(origin)
    return {
        "forecast_day": origin.strftime("%Y-%m-%d"),
        "days_old": (pd.Timestamp(last_complete) - origin).days,
        "last_close": None if close is None or pd.isna(close) else float(close),
        "model_version": int(rows["model_version"].iloc[-1]),
        "rows": [{"horizon": int(r["horizon"]), "target_day": r["target_day"].strftime("%Y-%m-%d"),
                  **{k: float(r[k]) for k in PRICE_KEYS}} for _, r in rows.iterrows()],
    }


def _model_doc(model: ModelVersion | None) -> dict | None:
    if model is None:
        return None
    return {"name": model.name, "version": model.version, "created": model.created,
            "description": model.description, "metrics": model.metrics}


def verdict(metrics: dict | None) -> str:
    """What the backtest says the model can do, in one sentence a visitor can act on."""
    rel = number((metrics or {}).get("rel_mae_mean"))
    if rel is None:
        return "No backtest figures are recorded for this model, so nothing is known about its accuracy."
    origins = (metrics or {}).get("backtest_origins")
    period = (f" ({origins['first']} to {origins['last']}, {origins['count']} daily forecasts)"
              if isinstance(origins, dict) and {"first", "last", "count"} <= set(origins) else "")
    if rel >= 1:
        size = "as large as" if rel < 1.005 else f"{rel - 1:.0%} larger than"
        return (f"In its backtest{period} the model does not beat naive persistence (\"the price stays where it "
                f"is\"): its average error is {size} naive's. Read the point forecast as \"about where it is now\"; "
                f"the ranges are the useful part.")
    return (f"In its backtest{period} the model beats naive persistence (\"the price stays where it is\"): its "
            f"average error is {1 - rel:.0%} smaller.")


def hindcast_horizons(horizon: int) -> list[int]:
    return [1, 10] + ([horizon] if horizon not in (1, 10) else [])


def scored_forecasts(inputs: SiteInputs) -> pd.DataFrame:
    """Published and walk-forward forecasts whose outcome is known, in one frame (charts.SCORED_COLUMNS)."""
    parts = [charts.score_published(inputs.forecasts, inputs.closes)]
    if inputs.backtest is not None:
        parts.append(inputs.backtest)
    return pd.concat([p for p in parts if not p.empty] or [charts.empty_scored()], ignore_index=True)


def forecast_document(inputs: SiteInputs, scored: pd.DataFrame, settings: Settings, horizon: int,
                      generated: dt.datetime) -> dict:
    """forecast.json without its `charts` list, which is known only once they are drawn."""
    return {
        "generated_utc": generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "backend": inputs.backend,
        "last_complete_day": settings.last_complete_day.isoformat(),
        "groups": inputs.groups,
        "model": _model_doc(inputs.model),
        "verdict": verdict(inputs.model.metrics) if inputs.model else NO_MODEL,
        "forecast": latest_forecast(inputs.forecasts, inputs.closes, settings.last_complete_day),
        "hindcast": {str(h): charts.hindcast_summary(scored, h) for h in hindcast_horizons(horizon)},
        "charts": [],
    }


def json_text(doc: dict) -> str:
    """JSON that is also safe inside a <script> element: '<', '>' and '&' only ever appear escaped."""
    text = json.dumps(doc, indent=2, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
