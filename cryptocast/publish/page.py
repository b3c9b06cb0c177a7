"""index.html from templates/index.html with Jinja2, autoescaping on, so no escaping is hand-written.

The stylesheet and script are files under static/, inlined at build so the page is one file that
works opened from disk (file://) and references nothing outside the site.
"""

from __future__ import annotations

from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cryptocast.publish.document import NO_MODEL, number
from cryptocast.publish.figures import Chart
from cryptocast.publish.formats import days, money, pct, price_range, utc

HEADLINE_HORIZON = 10


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cryptocast.publish", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=False, lstrip_blocks=False)
    env.filters.update(money=money, days=days, pct=pct, utc=utc)
    return env


def _static(name: str) -> Markup:
    """Our own stylesheet or script, inlined as it is (it is not data, so it is not escaped)."""
    return Markup(resources.files("cryptocast.publish").joinpath("static", name).read_text(encoding="utf-8"))


def _headline(forecast: dict) -> dict:
    """The default horizon's row, rendered so the page reads without JavaScript; the script re-renders on change."""
    horizons = [r["horizon"] for r in forecast["rows"]]
    horizon = HEADLINE_HORIZON if HEADLINE_HORIZON in horizons else horizons[-1]
    row = next(r for r in forecast["rows"] if r["horizon"] == horizon)
    last = forecast["last_close"]
    return {**row, "change": pct(row["point"] / last - 1, signed=True) if last else "n/a"}


def _model_rows(model: dict) -> list[list[str]]:
    metrics = model["metrics"]
    origins = metrics.get("backtest_origins") if isinstance(metrics.get("backtest_origins"), dict) else {}
    rel = number(metrics.get("rel_mae_mean"))
    return [
        ["period (forecast days)", f"{origins.get('first', 'n/a')} to {origins.get('last', 'n/a')} "
                                   f"({origins.get('count', 'n/a')} days)"],
        ["error vs naive persistence (mean relative MAE, below 1 beats naive)", "n/a" if rel is None else f"{rel:.3f}"],
        ["error reduction vs the original system's model", pct(metrics.get("mae_reduction_vs_original"))],
        ["80% range: share of outcomes inside (target 80%)", pct(metrics.get("coverage_80_mean"))],
        ["95% range: share of outcomes inside (target 95%)", pct(metrics.get("coverage_95_mean"))],
    ]


def render_page(doc: dict, charts: list[Chart], payload: str) -> str:
    """The whole page; `payload` is forecast.json's exact text, embedded for the script to read."""
    forecast = doc["forecast"]
    context = {
        "doc": doc,
        "charts": charts,
        "generated": doc["generated_utc"].replace("T", " ").replace("Z", " UTC"),
        "headline": _headline(forecast) if forecast else None,
        "forecast_rows": [[r["target_day"], r["horizon"], money(r["point"]), price_range(r["lower_80"], r["upper_80"]),
                           price_range(r["lower_95"], r["upper_95"])] for r in forecast["rows"]] if forecast else [],
        "model_rows": _model_rows(doc["model"]) if doc["model"] else [],
        "freshness_rows": [[f"{name} v{g['version']}", g["rows"], g["last_day"] or "none",
                            "n/a" if g["behind_days"] is None else g["behind_days"], len(g["missing_days"])]
                           for name, g in doc["groups"].items()],
        "no_model": NO_MODEL,
        "css": _static("style.css"),
        "script": _static("page.js"),
        "payload": Markup(payload),  # json_text escapes <, > and &: it cannot close the script element
    }
    return _environment().get_template("index.html").render(context)
