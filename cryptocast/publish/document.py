"""forecast.json: the numbers behind the page, one JSON document the page embeds byte for byte.

Fields (dates are UTC days, YYYY-MM-DD; prices in `unit`):

    generated_utc      when the site was built, ISO 8601 UTC (the wall clock, even in a replay)
    as_of              the day the page is "today" for: the run's as-of day
    replay             true when as_of is before the day the site was built: a past day replayed
    backend            which store it was built from ("local" or "hopsworks")
    last_complete_day  the newest day whose close can be known on as_of (the day before it)
    unit               what the prices are quoted in: "USDT" (Binance) or "USD" (Kraken)
    sources            prices: the markets SOL's closes come from; sentiment: the index's source
    links              repository (its web address, or null when unknown), evaluation (how the
                       model is evaluated, on the repository, or null), forecasts_csv (the file)
    groups             per feature group, `status.freshness`: version, rows, first_day, last_day,
                       missing_days, behind_days (the freshness table)
    model              the production model: name, version, created, description, metrics (as
                       registered: rel_mae_mean, coverage_80_mean, coverage_95_mean,
                       mae_reduction_vs_original, baseline_rel_mae_mean, backtest_origins
                       {first, last, count}, ...), trained_through (the last day whose close the
                       fit saw, or null); null when no model is in production
    verdict            one paragraph: what the backtest says the model can and cannot do
    forecast           the latest forecast_day's rows of `solana_forecasts`, or null when none:
                       forecast_day, days_old (last_complete_day - forecast_day), last_close (SOL
                       close on forecast_day, null if unknown), model_version, path (one sentence
                       on the shape of the forecast: flat, rises, falls, or turns once), and
                       rows: one per horizon 1..10 with horizon, target_day, point, lower_80,
                       upper_80, lower_95, upper_95 (= q10, q90, q2_5, q97_5), and the quantiles
                       q2_5 .. q97_5 (null in rows published before quantiles were)
    published          forecast_days (how many days a forecast was published), matured (published
                       forecasts whose target day's close is known), first_target_day (the
                       earliest target day of any published forecast, or null)
    outcomes           per horizon ("1".."10"), the newest matured published forecasts, newest
                       first: forecast_day, target_day, point, lower_80, upper_80, actual, error
                       (point - actual), inside_80
    hindcast           per horizon charted ("1", the chosen one, "10"), per source ("published",
                       "backtest"): n, first_target_day, last_target_day, mae, naive_mae, ranged
                       (how many of them carry 80%/95% ranges), coverage_80, coverage_95 (the share
                       of those whose outcome fell inside; null when none carries ranges)
    range_scores       per way of drawing ranges the backtest scored ("calibrated": ours,
                       "fixed_band", "ewma_band"), averaged over horizons: coverage_80, coverage_95,
                       coverage_{80,95}_{calm,middle,wild} (by the origin's volatility tercile),
                       pinball, winkler_80, winkler_95, winkler_{80,95}_vs_fixed_band; null for a
                       model whose evaluation.json has no `distribution` (registered before it)
    charts             the charts on the page, in order: file (wide), narrow_file, title, alt,
                       smallest_text_px (per file: its smallest font in image pixels)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pandas as pd

from cryptocast.dataset import HORIZON
from cryptocast.features import BOUND_COLUMNS, FORECAST_QUANTILES, FORECAST_RANGES
from cryptocast.publish import charts
from cryptocast.publish.formats import days_list, money, pct
from cryptocast.publish.gather import SiteInputs
from cryptocast.registry import ModelVersion, is_finite_number
from cryptocast.settings import Settings

NO_MODEL = "No model is in production yet: run training_pipeline.py."
FORECASTS_CSV = "solana_forecasts.csv"
EVALUATION_REPORT = "bench/results/backtest.md"
OUTCOMES_PER_HORIZON = 7
# evaluation.json's distribution.methods.<method>.<key>_mean that the page shows
RANGE_SCORE_KEYS = ("coverage_80", "coverage_95", *(f"coverage_{level}_{tercile}" for level in ("80", "95")
                                                   for tercile in charts.TERCILES),
                    "pinball", "winkler_80", "winkler_95")
COVERAGE_SLACK = 0.02  # a range that held within 2 points of its level held "as promised" (issue 9's target)
SENTIMENT = "the Crypto Fear & Greed Index of alternative.me"


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
                  "point": float(r["point"]), **{k: float(r[column]) for k, column in BOUND_COLUMNS.items()},
                  **{k: number(r[k]) for k in FORECAST_QUANTILES}} for _, r in rows.iterrows()],
    }


def describe_path(forecast: dict, unit: str, rel_mae: float | None, shrinkage: float | None = None) -> str:
    """The shape of the forecast in one sentence, read from its rows, so it stays true whatever the model is.

    `shrinkage` is the factor the model that made it keeps of its network's output (0: none, shown
    as "no change"), when the page knows it; it explains a flat path in the model's own terms.
    """
    rows, last = forecast["rows"], forecast["last_close"]
    end = rows[-1]
    if last is None:
        return f"The forecast ends at {money(end['point'], unit)} on {end['target_day']}."
    flat = [r["horizon"] for r in rows if round(r["point"], 2) == round(last, 2)]
    moves = {r["horizon"]: r["point"] / last - 1 for r in rows if r["horizon"] not in flat}
    no_edge = rel_mae is not None and rel_mae >= 1
    if not moves:
        why = (": its network showed no reliable skill over \"no change\" on the days held back to check it, so "
               "the model says \"no change\"" if shrinkage == 0 else
               ": the model predicts no change, because in its backtest it did not beat that forecast" if no_edge else
               ": the model predicts no change")
        return f"Flat: the forecast is the last close, {money(last, unit)}, on all {len(rows)} days{why}."
    caveat = "; in its backtest the model did not beat \"no change\", so read this move as noise" if no_edge else ""
    if len(flat) * 2 >= len(rows):
        largest = max(moves.values(), key=abs)
        return (f"Mostly flat: the forecast is the last close, {money(last, unit)}, on {len(flat)} of {len(rows)} "
                f"days and differs only on {days_list(sorted(moves))}, by at most {pct(largest, signed=True)}"
                f"{caveat}.")
    points = [r["point"] for r in rows]
    steps = [b - a for a, b in zip([last, *points], points, strict=False)]
    total = f"{money(end['point'], unit)} on {end['target_day']} ({pct(end['point'] / last - 1, signed=True)})"
    start = f"from the last close, {money(last, unit)}"
    if all(s >= 0 for s in steps):
        return f"Rises: {start}, to {total}{caveat}."
    if all(s <= 0 for s in steps):
        return f"Falls: {start}, to {total}{caveat}."
    turn = _single_turn(steps)
    if turn is not None:
        peak = rows[turn - 1]
        first, then = ("Rises", "then falls") if steps[0] > 0 else ("Falls", "then rises")
        return (f"{first}, {then}: {start}, to {money(peak['point'], unit)} on {peak['target_day']} "
                f"({pct(peak['point'] / last - 1, signed=True)}), then to {total}{caveat}.")
    return (f"Moves up and down between {pct(min(moves.values()), signed=True)} and "
            f"{pct(max(moves.values()), signed=True)} of the last close, {money(last, unit)}, ending at {total}"
            f"{caveat}.")


def _single_turn(steps: list[float]) -> int | None:
    """The day after which a path that changes direction exactly once turns (steps of 0 go either way), else None."""
    signs = [1 if s > 0 else -1 for s in steps if s != 0]
    changes = [i for i in range(1, len(signs)) if signs[i] != signs[i - 1]]
    if len(changes) != 1:
        return None
    moving = [day for day, s in enumerate(steps, 1) if s != 0]
    return moving[changes[0] - 1]


def _trained_through(model: ModelVersion) -> str | None:
    """The last day whose close the production fit saw: its newest window's targets end there."""
    window = (model.metadata or {}).get("training_window")
    try:
        return (dt.date.fromisoformat(window["last_origin"]) + dt.timedelta(days=HORIZON)).isoformat()
    except (TypeError, KeyError, ValueError):
        return None


def _model_doc(model: ModelVersion | None) -> dict | None:
    if model is None:
        return None
    return {"name": model.name, "version": model.version, "created": model.created,
            "description": model.description, "metrics": model.metrics, "trained_through": _trained_through(model)}


def verdict(metrics: dict | None) -> str:
    """What the backtest says the model can and cannot do, in one paragraph a visitor can act on."""
    rel = number((metrics or {}).get("rel_mae_mean"))
    if rel is None:
        return "No backtest figures are recorded for this model, so nothing is known about its accuracy."
    origins = (metrics or {}).get("backtest_origins")
    period = (f" ({origins['first']} to {origins['last']}, {origins['count']} daily forecasts)"
              if isinstance(origins, dict) and {"first", "last", "count"} <= set(origins) else "")
    if rel >= 1:
        ranges = _ranges_verdict(metrics or {}, "The ranges are the useful part: its")
        size = "as large as" if rel < 1.005 else f"{rel - 1:.0%} larger than"
        return (f"In its backtest{period} the model does not beat naive persistence, the forecast \"the price stays "
                f"where it is\": its average error is {size} naive's. Read the point forecast as \"about where it "
                f"is now\", not as a call on where the price goes. {ranges}")
    ranges = _ranges_verdict(metrics or {}, "Its")
    return (f"In its backtest{period} the model beats naive persistence, the forecast \"the price stays where it "
            f"is\": its average error is {1 - rel:.0%} smaller. {ranges}")


def _ranges_verdict(metrics: dict, lead: str) -> str:
    """How often the 80% and 95% ranges held in the backtest, against what they promise, and what that means."""
    held = {level: number(metrics.get(f"coverage_{level}_mean")) for level in (80, 95)}
    if None in held.values():
        return "How often its ranges held is not recorded, so read them with care."
    off = {level: share - level / 100 for level, share in held.items()}
    if all(abs(d) <= COVERAGE_SLACK for d in off.values()):
        judged = "about as often as they promise"
    elif all(d >= -COVERAGE_SLACK for d in off.values()):
        judged = "more often than they promise: they are wider than they need to be, on the cautious side"
    elif all(d <= COVERAGE_SLACK for d in off.values()):
        judged = "less often than they promise: expect outcomes outside them more often than that"
    else:
        judged = " and ".join(f"the {level}% ones {'more' if d > 0 else 'less'}" for level, d in off.items())
        judged += " often than they promise"
    return (f"{lead} 80% ranges held the outcome {held[80]:.0%} of the time and its 95% ranges {held[95]:.0%} in the "
            f"backtest, {judged}.{_against_fixed_band(metrics)}")


def _against_fixed_band(metrics: dict) -> str:
    """Whether the ranges beat the plainest alternative, a fixed-width band, by the interval score (issue 9)."""
    ratio = number(metrics.get("interval_score_80_vs_fixed_band_mean"))
    if ratio is None:
        return ""
    if abs(ratio - 1) < 0.005:
        return " By their interval score they are as good as a plain fixed-width band, no better."
    better = "better" if ratio < 1 else "worse"
    return f" By their interval score they are {abs(ratio - 1):.1%} {better} than a plain fixed-width band."


def _shrinkage(model: ModelVersion | None, version: int) -> float | None:
    """The share of its network's output the model that made a forecast keeps, when it is production's and says."""
    if model is None or model.version != version:
        return None
    return number((model.metadata or {}).get("shrinkage"))


def range_scores(evaluation: dict | None) -> dict | None:
    """Each way of drawing ranges the backtest scored (ours, the fixed band, the EWMA band), averaged over
    horizons; None for a version whose report has no `distribution` (registered before issue 9)."""
    methods = ((evaluation or {}).get("distribution") or {}).get("methods") or {}
    if not methods:
        return None
    fixed = methods.get("fixed_band", {}).get("per_horizon", [])
    out = {}
    for name, method in methods.items():
        scores = {key: number(method.get(f"{key}_mean")) for key in RANGE_SCORE_KEYS}
        for level in ("80", "95"):
            scores[f"winkler_{level}_vs_fixed_band"] = _ratio_to(method.get("per_horizon", []), fixed,
                                                                 f"winkler_{level}")
        out[name] = scores
    return out


def _ratio_to(rows: list[dict], base: list[dict], key: str) -> float | None:
    """The mean over horizons of rows[key] / base[key] (issue 9's interval-score ratio), None if not computable."""
    theirs = {r.get("horizon"): number(r.get(key)) for r in base}
    ratios = [value / theirs[r.get("horizon")] for r in rows
              if (value := number(r.get(key))) is not None and theirs.get(r.get("horizon"))]
    return float(sum(ratios) / len(ratios)) if ratios else None


def hindcast_horizons(horizon: int) -> list[int]:
    return sorted({1, horizon, 10})


def scored_forecasts(inputs: SiteInputs) -> pd.DataFrame:
    """Published and walk-forward forecasts whose outcome is known, in one frame (charts.SCORED_COLUMNS)."""
    parts = [charts.score_published(inputs.forecasts, inputs.closes)]
    if inputs.backtest is not None:
        parts.append(inputs.backtest)
    return pd.concat([p for p in parts if not p.empty] or [charts.empty_scored()], ignore_index=True)


def publication(forecasts: pd.DataFrame, scored: pd.DataFrame) -> dict:
    """How much has been published, and whether any of it can be judged yet."""
    return {
        "forecast_days": int(forecasts["forecast_day"].nunique()),
        "matured": int((scored["source"] == "published").sum()),
        "first_target_day": None if forecasts.empty else forecasts["target_day"].min().strftime("%Y-%m-%d"),
    }


def outcomes(forecasts: pd.DataFrame, closes: pd.Series, per_horizon: int = OUTCOMES_PER_HORIZON) -> dict:
    """The newest matured published forecasts at each horizon, beside what happened."""
    rows = forecasts.assign(actual=forecasts["target_day"].map(closes).astype(float)).dropna(subset=["actual"])
    low, high = FORECAST_RANGES[0.8]
    out: dict[str, list[dict]] = {}
    for horizon in range(1, HORIZON + 1):
        newest = rows[rows["horizon"] == horizon].sort_values("target_day", ascending=False).head(per_horizon)
        out[str(horizon)] = [{
            "forecast_day": r.forecast_day.strftime("%Y-%m-%d"), "target_day": r.target_day.strftime("%Y-%m-%d"),
            "point": float(r.point), "lower_80": float(getattr(r, low)), "upper_80": float(getattr(r, high)),
            "actual": float(r.actual), "error": float(r.point - r.actual),
            "inside_80": bool(getattr(r, low) <= r.actual <= getattr(r, high))} for r in newest.itertuples()]
    return out


def _links(repository: str | None) -> dict:
    return {"repository": repository,
            "evaluation": f"{repository}/blob/HEAD/{EVALUATION_REPORT}" if repository else None,
            "forecasts_csv": FORECASTS_CSV}


def forecast_document(inputs: SiteInputs, scored: pd.DataFrame, settings: Settings, horizon: int,
                      generated: dt.datetime) -> dict:
    """forecast.json without its `charts` list, which is known only once they are drawn."""
    metrics = inputs.model.metrics if inputs.model else None
    forecast = latest_forecast(inputs.forecasts, inputs.closes, settings.last_complete_day)
    if forecast:
        forecast["path"] = describe_path(forecast, inputs.unit, number((metrics or {}).get("rel_mae_mean")),
                                         _shrinkage(inputs.model, forecast["model_version"]))
    return {
        "generated_utc": generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "as_of": settings.as_of.isoformat(),
        "replay": settings.as_of < generated.date(),
        "backend": inputs.backend,
        "last_complete_day": settings.last_complete_day.isoformat(),
        "unit": inputs.unit,
        "sources": {"prices": inputs.markets, "sentiment": SENTIMENT},
        "links": _links(inputs.repository),
        "groups": inputs.groups,
        "model": _model_doc(inputs.model),
        "verdict": verdict(metrics) if inputs.model else NO_MODEL,
        "forecast": forecast,
        "published": publication(inputs.forecasts, scored),
        "outcomes": outcomes(inputs.forecasts, inputs.closes),
        "hindcast": {str(h): charts.hindcast_summary(scored, h) for h in hindcast_horizons(horizon)},
        "range_scores": range_scores(inputs.evaluation),
        "health": inputs.health,
        "charts": [],
    }


def json_text(doc: dict) -> str:
    """JSON that is also safe inside a <script> element: '<', '>' and '&' only ever appear escaped."""
    text = json.dumps(doc, indent=2, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
