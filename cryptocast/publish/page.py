"""index.html from templates/index.html with Jinja2, autoescaping on, so no escaping is hand-written.

The stylesheet and script are files under static/, inlined at build so the page is one file that
works opened from disk (file://) and references nothing outside the site. Everything the page
says is prepared here or in document.py; the template only lays it out.
"""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cryptocast.publish.charts import MODEL_LABELS, NARROW, RANGE_METHOD_LABELS, SOURCES, WIDE
from cryptocast.publish.document import number
from cryptocast.publish.figures import Chart
from cryptocast.publish.formats import amount, days, money, pct, price_range, utc

HEADLINE_HORIZON = 10
NARROW_SCREEN = "(max-width: 599px)"  # where the narrow charts are shown (see charts.Size)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cryptocast.publish", "templates"), autoescape=True,
                      undefined=StrictUndefined)
    env.filters.update(days=days, utc=utc)
    return env


def _static(name: str) -> Markup:
    """Our own stylesheet or script, inlined as it is (it is not data, so it is not escaped)."""
    return Markup(resources.files("cryptocast.publish").joinpath("static", name).read_text(encoding="utf-8"))


def _headline(forecast: dict, unit: str, held: dict) -> dict:
    """The default horizon's answer, rendered so the page reads without JavaScript; page.js re-renders it
    the same way (`answer` there) when the selector changes."""
    horizons = [r["horizon"] for r in forecast["rows"]]
    horizon = HEADLINE_HORIZON if HEADLINE_HORIZON in horizons else horizons[-1]
    row = next(r for r in forecast["rows"] if r["horizon"] == horizon)
    last = forecast["last_close"]
    return {"horizon": horizon, "target_day": row["target_day"], "last": money(last, unit),
            "low_80": amount(row["lower_80"]), "high_80": amount(row["upper_80"]),
            "pct_80": (f"{pct(row['lower_80'] / last - 1, signed=True)} to "
                       f"{pct(row['upper_80'] / last - 1, signed=True)}" if last else "n/a"),
            "range_95": f"{amount(row['lower_95'])} to {money(row['upper_95'], unit)}",
            "held": held_sentence(held.get(str(horizon)), horizon)}


def held_sentence(held: dict | None, horizon: int) -> str:
    """How often such a range held, and where that figure comes from (page.js writes the same sentence)."""
    if not held or held.get("coverage_80") is None:
        return f"No {days(horizon)} range has been judged yet."
    where = ("this site's published forecasts" if held["source"] == "published" else
             "the backtest (no published forecast counts yet)")
    return (f"How often such ranges held: {pct(held['coverage_80'])} of {held['n']} times {days(horizon)} ahead, in "
            f"{where}.")


def track_line(published: dict) -> str:
    """The live track record in one line: what has been published and whether any of it can be judged."""
    if published["forecast_days"] == 0:
        return "Nothing has been published yet, so nothing can be judged."
    if published["matured"] == 0:
        return (f"Forecasts published on {published['forecast_days']} day(s); none has reached its target day yet "
                f"(the first matures on {published['first_target_day']}).")
    return (f"Forecasts published on {published['forecast_days']} day(s); {published['matured']} forecast(s) have "
            f"reached their target day.")


def same_as_naive_line(skipped: list[int]) -> str | None:
    """Said in words for the horizons whose error chart is not drawn: it would repeat naive's."""
    if not skipped:
        return None
    shown = f"{', '.join(map(str, skipped[:-1]))} and {skipped[-1]}" if len(skipped) > 1 else str(skipped[0])
    charts = "no chart is drawn for it" if len(skipped) == 1 else "no charts are drawn for them"
    return (f"At {shown} day{'s' if skipped != [1] else ''} ahead the model's forecast was \"no change\" every "
            f"time, so its errors are naive persistence's: {charts}.")


def _model_rows(model: dict) -> list[list[str]]:
    """The backtest in plain words: what each figure means is in its label."""
    metrics = model["metrics"]
    origins = metrics.get("backtest_origins") if isinstance(metrics.get("backtest_origins"), dict) else {}
    rel = number(metrics.get("rel_mae_mean"))
    baselines = metrics.get("baseline_rel_mae_mean") if isinstance(metrics.get("baseline_rel_mae_mean"), dict) else {}
    original = number(baselines.get("original"))
    reduction = number(metrics.get("mae_reduction_vs_original"))
    against_original = "n/a" if reduction is None else (
        f"{abs(reduction):.0%} {'smaller' if reduction >= 0 else 'larger'} average error"
        + (f" (that model's error is {original:.1f}× naive's)" if original is not None else ""))
    return [
        ["backtest period (days a forecast was made)", f"{origins.get('first', 'n/a')} to {origins.get('last', 'n/a')} "
                                                       f"({origins.get('count', 'n/a')} days)"],
        ["average error ÷ naive persistence's (relative MAE; below 1 beats naive)",
         "n/a" if rel is None else f"{rel:.3f} ({abs(rel - 1):.1%} {'worse' if rel >= 1 else 'better'})"],
        ["against the original system's model: the model of the project this one replaces, re-created and "
         "backtested on the same days", against_original],
        ["other forecasters on the same days: average error ÷ naive persistence's", _peers(baselines)],
        ["80% range: share of outcomes inside (target 80%)", pct(metrics.get("coverage_80_mean"))],
        ["95% range: share of outcomes inside (target 95%)", pct(metrics.get("coverage_95_mean"))],
    ]


def _peers(baselines: dict) -> str:
    """Every peer but naive itself (1 by definition), in the scoreboard's order."""
    names = [n for n in MODEL_LABELS if n in baselines and n != "naive"] + [
        n for n in baselines if n not in MODEL_LABELS]
    found = [f"{MODEL_LABELS.get(n, n)} {value:.3f}" for n in names if (value := number(baselines[n])) is not None]
    return ", ".join(found) or "n/a"


# (label, range_scores key, kind of number): what each row of the range scores table means is in its label
RANGE_ROWS = (
    ("80% range: share of outcomes inside (promises 80%)", "coverage_80", "share"),
    ("… on calm days (the calmest third of the backtest)", "coverage_80_calm", "share"),
    ("… on middle days", "coverage_80_middle", "share"),
    ("… on wild days (the most volatile third)", "coverage_80_wild", "share"),
    ("95% range: share of outcomes inside (promises 95%)", "coverage_95", "share"),
    ("… on calm days", "coverage_95_calm", "share"),
    ("… on middle days", "coverage_95_middle", "share"),
    ("… on wild days", "coverage_95_wild", "share"),
    ("interval score of the 80% range ÷ the fixed band's (below 1 is better)", "winkler_80_vs_fixed_band", "ratio"),
    ("interval score of the 95% range ÷ the fixed band's (below 1 is better)", "winkler_95_vs_fixed_band", "ratio"),
    ("pinball loss over the 9 published quantiles (lower is better)", "pinball", "price"),
)


def _score(value: float | None, kind: str, unit: str) -> str:
    if value is None:
        return "n/a"
    return {"share": pct(value), "ratio": f"{value:.3f}", "price": money(value, unit)}[kind]


def _range_table(scores: dict, unit: str) -> tuple[list[str], list[dict]]:
    """The range scores as a table: one row per measure, one column per way of drawing ranges."""
    names = [n for n in RANGE_METHOD_LABELS if n in scores] + [n for n in scores if n not in RANGE_METHOD_LABELS]
    rows = [{"horizon": None, "cells": [label, *(_score(scores[n].get(key), kind, unit) for n in names)]}
            for label, key, kind in RANGE_ROWS]
    return ["backtest", *(RANGE_METHOD_LABELS.get(n, n) for n in names)], rows


def _outcome_rows(outcomes: dict, horizons: list[int]) -> list[dict]:
    """The charted horizons' recent published outcomes, newest first."""
    rows = []
    for horizon in horizons:
        found = outcomes.get(str(horizon), [])
        if not found:
            rows.append({"horizon": None, "cells": [horizon, "none yet", "", "", "", ""]})
        rows += [{"horizon": None, "cells": [
            horizon, o["target_day"], amount(o["point"]), amount(o["actual"]), f"{o['error']:+,.2f}",
            "yes" if o["inside_80"] else "no"]} for o in found]
    return rows


def _range_track(hindcast: dict) -> list[str]:
    """Per charted horizon and source, how often the outcome fell inside the ranges, as the page says it."""
    return [f"{days(int(h))} ahead, {SOURCES[source]}: {pct(s['coverage_80'])} inside the 80% range, "
            f"{pct(s['coverage_95'])} inside the 95% range ({s['ranged']} forecasts)"
            for h, summary in hindcast.items() for source, s in summary.items() if s.get("ranged")]


def _figure(chart: Chart, eager: bool) -> dict:
    narrow, wide = chart.renders[NARROW.name], chart.renders[WIDE.name]
    return {"section": chart.section, "alt": chart.alt, "narrow": chart.file(NARROW), "wide": chart.file(WIDE),
            "narrow_size": (narrow.width, narrow.height), "wide_size": (wide.width, wide.height),
            "loading": "eager" if eager else "lazy"}


def first_step(doc: dict) -> str:
    """The first step actually missing before there is a forecast to show."""
    if not doc["groups"]["solana"]["rows"]:
        return "the store holds no prices: run feature_backfill.py first."
    if doc["model"] is None:
        return "no model is in production: run training_pipeline.py, then inference_pipeline.py."
    return "run inference_pipeline.py."


def _context(doc: dict, charts: list[Chart], page: str) -> dict:
    forecast, unit = doc["forecast"], doc["unit"]
    shown = [c for c in charts if c.page == page]
    horizons = [int(h) for h in doc["hindcast"]]
    drawn = {c.name for c in charts}
    return {
        "doc": doc,
        "figures": [_figure(chart, eager=i == 0) for i, chart in enumerate(shown)],
        "narrow_screen": NARROW_SCREEN,
        "generated": utc(doc["generated_utc"]),
        "first_step": first_step(doc),
        "headline": _headline(forecast, unit, doc["held"]) if forecast else None,
        "track_line": track_line(doc["published"]),
        "same_as_naive": same_as_naive_line([h for h in horizons if charts and f"hindcast_h{h}" not in drawn]),
        "forecast_rows": [{"horizon": r["horizon"], "cells": [
            r["target_day"], price_range(r["lower_80"], r["upper_80"]), price_range(r["lower_95"], r["upper_95"])]}
            for r in forecast["rows"]] if forecast else [],
        "outcome_rows": _outcome_rows(doc["outcomes"], horizons),
        "range_table": _range_table(doc["range_scores"], unit) if doc["range_scores"] else None,
        "range_track": _range_track(doc["hindcast"]),
        "model_rows": [{"horizon": None, "cells": row} for row in _model_rows(doc["model"])] if doc["model"] else [],
        "freshness_rows": [{"horizon": None, "cells": [
            f"{name} v{g['version']}", g["rows"], g["last_day"] or "none",
            "n/a" if g["behind_days"] is None else g["behind_days"], len(g["missing_days"])]}
            for name, g in doc["groups"].items()],
        "markets": " and ".join(doc["sources"]["prices"]) or "no market yet",
        "no_model": doc["verdict"],
        "css": _static("style.css"),
    }


def render_page(doc: dict, charts: list[Chart], payload: str) -> str:
    """The main page; `payload` is forecast.json's exact text, embedded for the horizon selector to read."""
    context = _context(doc, charts, "index") | {
        "script": _static("page.js"),
        "payload": Markup(payload),  # json_text escapes <, > and &: it cannot close the script element
    }
    return _environment().get_template("index.html").render(context)


def render_details(doc: dict, charts: list[Chart]) -> str:
    """The modeller's page: scores, past forecasts, training, market data; no script."""
    return _environment().get_template("details.html").render(_context(doc, charts, "details"))
