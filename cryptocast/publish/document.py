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
    verdict            one paragraph: what the backtest says the model can and cannot do, generated
                       from the scores (`verdict`): the ranges against every band peer scored
    forecast           the latest forecast_day's rows of `solana_forecasts`, or null when none:
                       forecast_day, days_old (last_complete_day - forecast_day), last_close (SOL
                       close on forecast_day, null if unknown), model_version, widened (how many
                       quantiles the page moved out so that no range narrows from one day to the
                       next: `widen_with_horizon`; the CSV keeps them as published), path (one sentence
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
    held               per horizon ("1".."10") that has any: how often past 80% / 95% ranges held the
                       outcome, for the headline: source ("published" once MIN_LIVE published forecasts
                       with ranges have matured at that horizon, else "backtest"), n, coverage_80,
                       coverage_95
    health             the latest model_health record in words (health.page_summary), or null
    range_scores       per way of drawing ranges the backtest scored ("calibrated": ours,
                       "fixed_band", "ewma_band", "garch_t_band"), averaged over horizons: coverage_80, coverage_95,
                       coverage_{80,95}_{calm,middle,wild} (by the origin's volatility tercile),
                       pinball, winkler_80, winkler_95, winkler_{80,95}_vs_fixed_band, intervals
                       (the report's 90% block-bootstrap intervals of this method's score ratios to a
                       peer, averaged over horizons: "<score>_vs_<peer>" -> [estimate, low, high];
                       {} for versions evaluated before issue 19); null for a model whose
                       evaluation.json has no `distribution` (registered before it)
    charts             the charts, in page order: page ("index" or "details"), file (wide), narrow_file, title, alt,
                       smallest_text_px (per file: its smallest font in image pixels)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.dataset import HORIZON
from cryptocast.features import BOUND_COLUMNS, FORECAST_QUANTILES, FORECAST_RANGES
from cryptocast.publish import charts
from cryptocast.publish.formats import days_list, money, pct
from cryptocast.publish.gather import SiteInputs
from cryptocast.registry import ModelVersion, is_finite_number
from cryptocast.settings import Settings

NO_MODEL = "No model is in production yet: run training_pipeline.py."
NO_DATA = "No model is in production yet, and the store holds no prices: run feature_backfill.py first."
MIN_LIVE = 30  # matured published forecasts at a horizon before the headline quotes them instead of the backtest
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
    rows, widened = widen_with_horizon(forecasts[forecasts["forecast_day"] == origin].sort_values("horizon"))
    close = closes.get(origin)
    return {
        "forecast_day": origin.strftime("%Y-%m-%d"),
        "days_old": (pd.Timestamp(last_complete) - origin).days,
        "last_close": None if close is None or pd.isna(close) else float(close),
        "model_version": int(rows["model_version"].iloc[-1]),
        "widened": widened,
        "rows": [{"horizon": int(r["horizon"]), "target_day": r["target_day"].strftime("%Y-%m-%d"),
                  "point": float(r["point"]), **{k: float(r[column]) for k, column in BOUND_COLUMNS.items()},
                  **{k: number(r[k]) for k in FORECAST_QUANTILES}} for _, r in rows.iterrows()],
    }


def widen_with_horizon(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The rows with no range narrower than the day before's, and how many quantiles that moved.

    The calibration scales each horizon on its own, so a published edge can dip from one day to the
    next (the 97.5% edge from day 6 to day 7, say) though uncertainty only grows with time. The
    page shows every quantile at least as far from the point forecast, in log terms, as on the day
    before: the upper ones a running maximum, the lower ones a running minimum. Headline, table
    and fan chart all use these; the CSV keeps the rows as published.
    """
    out = rows.copy()
    point = np.log(out["point"].to_numpy(dtype=float))
    moved = 0
    for name, level in FORECAST_QUANTILES.items():
        if level == 0.5:
            continue
        offset = np.log(out[name].to_numpy(dtype=float)) - point
        running = pd.Series(offset).cummax() if level > 0.5 else pd.Series(offset).cummin()
        wider = running.to_numpy()  # NaN stays NaN (rows of version 1 have no such quantile)
        changed = np.isfinite(offset) & (np.abs(wider - offset) > 1e-12)
        moved += int(changed.sum())
        out[name] = np.where(changed, out["point"].to_numpy(dtype=float) * np.exp(wider), out[name])
    return out, moved


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


def verdict(metrics: dict | None, scores: dict | None = None) -> str:
    """What the backtest says the model can and cannot do, generated from the scores the page shows.

    Nothing here is written once for all: the point forecast is judged by its error against naive
    persistence's, the ranges by `range_verdict` against every band peer the backtest scored.
    """
    rel = number((metrics or {}).get("rel_mae_mean"))
    if rel is None:
        return "No backtest figures are recorded for this model, so nothing is known about its accuracy."
    if rel >= 1:
        size = "as large as" if rel < 1.0005 else f"{rel - 1:.1%} larger than"
        point = (f"The middle line does not beat \"no change\": in the backtest its average error is {size} that "
                 f"of the forecast \"the price stays where it is\", so read it as \"about where it is now\", not as a "
                 f"call on where the price goes.")
    else:
        point = (f"The middle line beats \"no change\" (the forecast \"the price stays where it is\"): in the "
                 f"backtest its average error is {1 - rel:.1%} smaller.")
    return f"{point} {range_verdict(scores) if scores else _coverage_verdict(metrics or {})}"


# the scores the ranges are judged by (lower is better for each), with how the verdict names them
RANGE_JUDGED_BY = (("winkler_80", "the interval score of the 80% range"),
                   ("winkler_95", "the interval score of the 95% range"), ("pinball", "the pinball loss"))
# the bootstrap intervals of ours-vs-peer ratios the verdict judges by, when the evaluation has them
# (`range_scores`' intervals: "<score>_vs_<peer>"), with how the verdict names them
RANGE_INTERVALS_JUDGED_BY = (("pinball", "the pinball loss"), ("winkler_80", "the interval score of the 80% range"))
OURS = "calibrated"


def range_verdict(scores: dict) -> str:
    """Whether our ranges beat each band peer in `scores` (method -> the page's range scores), in plain words.

    Generic over the peers: a new band in the backtest's report gets its clause without a change here.
    When the evaluation carries bootstrap intervals of our scores' ratios to a peer's (issue 19), the
    peer is judged by them, so a year's noise is not read as a win: see `_interval_clause`. Without
    them (versions evaluated before), a peer is beaten only when ours score lower on all of
    `RANGE_JUDGED_BY`; lower on none is a loss.
    """
    ours = scores.get(OURS)
    peers = [name for name in scores if name != OURS]
    if not ours or not peers:
        return "The backtest scored no other way of drawing ranges, so how good these ranges are is not known."
    intervals = ours.get("intervals") or {}
    clauses, beaten = [], []
    for name in peers:
        label = charts.RANGE_METHOD_LABELS.get(name, name.replace("_", " "))
        label = f"{'an' if label[0] in 'aeiouAEIO' else 'a'} {label}"
        found = _interval_clause(intervals, name, label) if intervals else None
        if found is None:
            found = _point_clause(ours, scores[name], label, qualified=bool(intervals))
        if found is None:
            continue
        clause, won = found
        clauses.append(clause)
        if won:
            beaten.append(name)
    if not clauses:
        return "How these ranges compare with other ways of drawing them is not recorded."
    judged = "; ".join(clauses)
    if "fixed_band" in peers and "fixed_band" not in beaten:  # the plainest band: not beating it is the news
        return (f"The ranges do no better than a band of fixed width: on the backtest's own scores {judged}. Read "
                f"them as a fair guide to how far SOL can move in that many days, not as finely tuned odds.")
    if len(beaten) == len(clauses):
        return f"The ranges are the useful part: on the backtest's own scores {judged}."
    return f"On the backtest's own scores {judged}."


def _interval_clause(intervals: dict, name: str, label: str) -> tuple[str, bool] | None:
    """The clause for one peer judged by the 90% intervals of our scores' ratios to its, and whether ours won.

    Ours beat the peer only when every interval lies wholly below 1, do worse only when every one lies
    wholly above; when any interval holds 1, one year of forecasts cannot tell the two apart. None
    when the evaluation has no interval against this peer. Only the fixed band's clause carries
    figures (its first judged score and interval, as changes at the page's 0.1%): the main page shows
    every number once, and several peers' ratios and bounds coincide at that precision.
    """
    found = [(what, bounds) for key, what in RANGE_INTERVALS_JUDGED_BY
             if (bounds := _bounds(intervals.get(f"{key}_vs_{name}"))) is not None]
    if not found:
        return None
    below = [hi < 1 for _, (_, _, hi) in found]
    above = [lo > 1 for _, (_, lo, _) in found]
    scored = " and ".join(what for what, _ in found)
    what, (estimate, low, high) = found[0]
    figures = (f"; {what} {_change(estimate)}, 90% interval {_change(low)} to {_change(high)}"
               if name == "fixed_band" else "")
    if all(below):
        return f"they beat {label} (by {scored}, every 90% interval below 1{figures})", True
    if all(above):
        return f"they do worse than {label} (by {scored}, every 90% interval above 1{figures})", False
    if any(below) and any(above):
        return f"against {label} they are mixed (by {scored}, one 90% interval below 1 and one above{figures})", False
    return (f"they cannot be told apart from {label} on one year of forecasts (by {scored}, a 90% interval "
            f"holds 1{figures})"), False


def _change(ratio: float) -> str:
    """A score ratio as the page writes changes: "0.2% lower", "0.7% higher"."""
    return f"{abs(ratio - 1):.1%} {'lower' if ratio < 1 else 'higher'}"


def _bounds(value: Any) -> tuple[float, float, float] | None:
    """(estimate, low, high) from an interval as evaluation.json writes it, None when it is not one."""
    if isinstance(value, (list, tuple)) and len(value) == 3 and all(is_finite_number(v) for v in value):
        return float(value[0]), float(value[1]), float(value[2])
    return None


def _point_clause(ours: dict, theirs: dict, label: str, qualified: bool) -> tuple[str, bool] | None:
    """The clause for one peer judged by point estimates alone, and whether ours won.

    `qualified`: the evaluation has intervals but none against this peer, so the clause claims nothing
    and says so; otherwise (older versions) the clause is the point-estimate verdict.
    """
    diffs = [(label_, ours[key] / theirs[key] - 1) for key, label_ in RANGE_JUDGED_BY
             if is_finite_number(ours.get(key)) and is_finite_number(theirs.get(key)) and theirs[key]]
    if not diffs:
        return None
    if qualified:  # no figure: a point estimate without its interval is the claim issue 19 rules out
        return f"against {label} the backtest gives no interval, so no claim", False
    main = diffs[0]
    worse = [d for d in diffs if d[1] >= 0]
    if not worse:
        return f"they beat {label} ({main[0]} {abs(main[1]):.1%} lower)", True
    if len(worse) == len(diffs):
        return f"they do not beat {label} ({main[0]} {main[1]:.1%} higher, lower is better)", False
    better = [d[0] for d in diffs if d[1] < 0]
    return (f"against {label} they are mixed (better by {' and '.join(better)}, worse by "
            f"{' and '.join(d[0] for d in worse)})"), False


def _coverage_verdict(metrics: dict) -> str:
    """For versions whose report scored no band peers: how often the ranges held, in words only."""
    held = {level: number(metrics.get(f"coverage_{level}_mean")) for level in (80, 95)}
    if None in held.values():
        return "How often its ranges held is not recorded, so read them with care."
    off = {level: share - level / 100 for level, share in held.items()}
    if all(abs(d) <= COVERAGE_SLACK for d in off.values()):
        return "Its ranges held about as often as they promise in the backtest."
    if all(d >= -COVERAGE_SLACK for d in off.values()):
        return "Its ranges held more often than they promise in the backtest: wider than they need to be."
    if all(d <= COVERAGE_SLACK for d in off.values()):
        return "Its ranges held less often than they promise in the backtest: expect misses more often."
    return "In the backtest its 80% ranges held " + ("more" if off[80] > 0 else "less") + " often than promised, " \
        "its 95% ranges " + ("more" if off[95] > 0 else "less") + "."


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
        scores["intervals"] = _ratio_intervals(method.get("intervals") or {})
        out[name] = scores
    return out


def _ratio_intervals(intervals: dict) -> dict:
    """The bootstrap intervals of score ratios to each peer that the report gives, averaged over horizons:
    "<score>_vs_<peer>" -> [estimate, low, high] (an interval with horizons contributes its "mean")."""
    out = {}
    for key, value in intervals.items():
        if "_vs_" not in key:
            continue
        bounds = _bounds(value.get("mean") if isinstance(value, dict) else value)
        if bounds is not None:
            out[key] = list(bounds)
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


def no_model(inputs: SiteInputs) -> str:
    """Why there is no verdict yet, naming the first step actually missing."""
    return NO_DATA if inputs.closes.empty else NO_MODEL


def held(scored: pd.DataFrame) -> dict:
    """Per horizon, how often past ranges held: the published track record once it has `MIN_LIVE`
    matured forecasts with ranges, the walk-forward backtest until then (`source` says which)."""
    out = {}
    for horizon in range(1, HORIZON + 1):
        summary = charts.hindcast_summary(scored, horizon)
        live = summary.get("published", {})
        found = live if live.get("ranged", 0) >= MIN_LIVE else summary.get("backtest")
        if found and found.get("ranged"):
            out[str(horizon)] = {"source": "published" if found is live else "backtest", "n": found["ranged"],
                                 "coverage_80": found["coverage_80"], "coverage_95": found["coverage_95"]}
    return out


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
    scores = range_scores(inputs.evaluation)
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
        "verdict": verdict(metrics, scores) if inputs.model else no_model(inputs),
        "forecast": forecast,
        "published": publication(inputs.forecasts, scored),
        "outcomes": outcomes(inputs.forecasts, inputs.closes),
        "hindcast": {str(h): charts.hindcast_summary(scored, h) for h in hindcast_horizons(horizon)},
        "range_scores": scores,
        "held": held(scored),
        "health": inputs.health,
        "charts": [],
    }


def json_text(doc: dict) -> str:
    """JSON that is also safe inside a <script> element: '<', '>' and '&' only ever appear escaped."""
    text = json.dumps(doc, indent=2, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"
