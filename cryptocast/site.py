"""The static dashboard: `index.html`, its charts and `forecast.json`, from the stores alone.

Everything is read through the feature store and model registry interfaces (never their files),
so a hosted backend implementing them publishes the same site. The page is plain HTML with inline
CSS and a few lines of JavaScript; it references no external resource and works both opened from
disk (file://, where fetch() is blocked) and served by GitHub Pages: the JavaScript reads the
numbers from a copy of forecast.json embedded in the page, byte for byte the same text.

forecast.json, the numbers behind the page (dates are UTC days, YYYY-MM-DD; prices in USD):

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
                       lower_95, upper_95 (= q10, q90, q2_5, q97_5), and the quantiles q2_5 .. q97_5
                       (null in rows published before quantiles were)
    hindcast           per horizon charted ("1", "10", the chosen one), per source ("published",
                       "backtest"): n, first_target_day, last_target_day, mae, naive_mae
    charts             the PNGs on the page, in order: file, title, alt

Writing is all-or-nothing as far as a reader can tell: everything is rendered in memory, written
into a hidden staging directory inside the output directory, then renamed into place with
index.html last, so a failure before that leaves the previous site as it was.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import re
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cryptocast import charts
from cryptocast.atomic import atomic_write_bytes, fsync_directory
from cryptocast.errors import CryptocastError
from cryptocast.features import BITCOIN, FEAR_GREED, FORECAST_QUANTILES, FORECASTS, SOLANA, GroupSpec, empty_frame
from cryptocast.forecasts import V1_AS_QUANTILES, read_forecasts
from cryptocast.modeling.portable import CorruptModelError
from cryptocast.registry import ModelVersion, is_finite_number, open_model_registry
from cryptocast.settings import Settings
from cryptocast.status import freshness
from cryptocast.stores import FeatureStore, open_feature_store
from cryptocast.training import MODEL_NAME

log = logging.getLogger(__name__)

DEFAULT_HORIZON = 5
HEADLINE_HORIZON = 10
MARKET_DAYS = 365
PRICE_KEYS = ("point", "lower_80", "upper_80", "lower_95", "upper_95")
NO_MODEL = "No model is in production yet: run training_pipeline.py."
OUR_PNG = re.compile(r"(forecast|hindcast_h[0-9]+|scoreboard|training|trend|correlation|fear_greed)\.png")


class PublishError(CryptocastError):
    """The site could not be written where it was asked to go."""


@dataclass(frozen=True)
class SiteInputs:
    """What the page is made of, read once from the stores."""

    backend: str
    closes: pd.Series  # SOL close by day
    market: pd.DataFrame  # SOL, BTC, Fear & Greed by day
    forecasts: pd.DataFrame  # every published forecast
    groups: dict[str, dict]
    model: ModelVersion | None
    evaluation: dict | None
    history: dict | None
    backtest: pd.DataFrame | None  # scored, charts.SCORED_COLUMNS


@dataclass(frozen=True)
class Chart:
    file: str
    title: str
    alt: str
    section: str
    png: bytes


def _read(store: FeatureStore, spec: GroupSpec) -> pd.DataFrame:
    group = store.get_feature_group(spec)
    return group.read() if group else empty_frame(spec)


def _series(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.set_index("day")[column].astype(float).sort_index()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """A finite number as float, else None: registry metrics and reports may hold nulls."""
    return float(value) if is_finite_number(value) else None


def _horizon_rows(rows: Any, key: str) -> bool:
    return isinstance(rows, list) and all(
        isinstance(r, dict) and _is_number(r.get("horizon")) and (r.get(key) is None or _is_number(r.get(key)))
        for r in rows)


def evaluation_problem(doc: dict) -> str | None:
    """What is wrong with the parts of evaluation.json the page reads (see `backtest.report`), if anything."""
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        return "'models' must be a non-empty object"
    for name, model in models.items():
        if not isinstance(model, dict) or not _horizon_rows(model.get("per_horizon"), "rel_mae"):
            return f"models.{name}.per_horizon must be rows with 'horizon' and a numeric 'rel_mae'"
    intervals = doc.get("intervals", {})
    if not isinstance(intervals, dict) or not all(
            isinstance(v, dict) and _horizon_rows(v.get("per_horizon"), "coverage") for v in intervals.values()):
        return "'intervals' must map levels to per_horizon rows with a numeric 'coverage'"
    return None


def history_problem(doc: dict) -> str | None:
    """What is wrong with history.json (Keras' curves: a list of numbers per metric), if anything."""
    for key in ("loss", "val_loss"):
        values = doc.get(key, [])
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            return f"'{key}' must be a list of numbers"
    return None


def _artifact_json(path: Path, problem: Callable[[dict], str | None]) -> dict | None:
    """An optional JSON artifact: None when absent (older versions), an error when unreadable or malformed."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
    found = f"expected a JSON object, got {type(doc).__name__}" if not isinstance(doc, dict) else problem(doc)
    if found:
        raise CorruptModelError(f"{path}: {found}")
    return doc


def _artifact_backtest(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return charts.score_backtest(pd.read_csv(path))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None


def gather(settings: Settings) -> SiteInputs:
    """Read every group and the production model's evidence."""
    store = open_feature_store(settings)
    groups = {spec.name: (spec, _read(store, spec)) for spec in (SOLANA, BITCOIN, FEAR_GREED)}
    groups[FORECASTS.name] = (FORECASTS, read_forecasts(store))
    solana, bitcoin, fear_greed, forecasts = (rows for _, rows in groups.values())
    closes = _series(solana, "close")
    market = charts.market_frame(closes, _series(bitcoin, "close"), _series(fear_greed, "value"))
    model = open_model_registry(settings).production(MODEL_NAME)
    path = model.path if model else None
    return SiteInputs(
        backend=store.backend,
        closes=closes,
        market=market,
        forecasts=forecasts,
        groups={name: freshness(spec, rows, settings) for name, (spec, rows) in groups.items()},
        model=model,
        evaluation=_artifact_json(path / "evaluation.json", evaluation_problem) if path else None,
        history=_artifact_json(path / "history.json", history_problem) if path else None,
        backtest=_artifact_backtest(path / "backtest_forecasts.csv") if path else None,
    )


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
                  **{k: float(r[V1_AS_QUANTILES.get(k, k)]) for k in PRICE_KEYS},
                  **{k: _number(r[k]) for k in FORECAST_QUANTILES}} for _, r in rows.iterrows()],
    }


def _model_doc(model: ModelVersion | None) -> dict | None:
    if model is None:
        return None
    return {"name": model.name, "version": model.version, "created": model.created,
            "description": model.description, "metrics": model.metrics}


def verdict(metrics: dict | None) -> str:
    """What the backtest says the model can do, in one sentence a visitor can act on."""
    rel = _number((metrics or {}).get("rel_mae_mean"))
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


def _days(horizon: int) -> str:
    return f"{horizon} day{'s' if horizon > 1 else ''}"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _forecast_alt(closes: pd.Series, forecast: dict | None) -> str:
    if closes.empty:
        return "Placeholder: no SOL prices in the store yet."
    recent = closes.iloc[-charts.FORECAST_HISTORY_DAYS:]
    text = (f"Line chart of SOL's daily close from {recent.index[0]:%Y-%m-%d} to {recent.index[-1]:%Y-%m-%d}, "
            f"last close {_money(float(recent.iloc[-1]))}")
    if forecast is None:
        return text + "; no forecast yet."
    last = forecast["rows"][-1]
    return (text + f", and the forecast made on {forecast['forecast_day']} for the next 10 days: "
            f"{_money(last['point'])} on {last['target_day']}, 80% range {_money(last['lower_80'])} to "
            f"{_money(last['upper_80'])}, 95% range {_money(last['lower_95'])} to {_money(last['upper_95'])}.")


def _hindcast_alt(horizon: int, summary: dict) -> str:
    if not summary:
        return f"Placeholder: no forecast {_days(horizon)} ahead has been scored yet."
    parts = [f"{charts.SOURCES[source]}: {s['n']} forecasts with targets {s['first_target_day']} to "
             f"{s['last_target_day']}, mean absolute error {_money(s['mae'])} vs {_money(s['naive_mae'])} for naive"
             for source, s in summary.items()]
    return (f"Forecasts {_days(horizon)} ahead against the actual SOL close, and the running mean absolute error. "
            + "; ".join(parts) + ".")


def _scoreboard_alt(evaluation: dict) -> str:
    means = ", ".join(f"{charts.MODEL_LABELS.get(name, name)} {m['rel_mae_mean']:.2f}"
                      for name, m in evaluation["models"].items() if _number(m.get("rel_mae_mean")) is not None)
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
    out += [_render(f"hindcast_h{h}.png", f"{_days(int(h))} ahead", _hindcast_alt(int(h), summary), "track",
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


def _png_size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])


def build_site(settings: Settings, out: Path, horizon: int = DEFAULT_HORIZON) -> None:
    """Gather, render in memory, then publish: nothing is written unless everything rendered."""
    started = time.monotonic()
    _make_directory(out)  # fail before the rendering work if the site cannot be written at all
    inputs = gather(settings)
    log.info("read %s; forecasts %d rows; model %s in %.2fs",
             ", ".join(f"{name} {g['rows']} rows" for name, g in inputs.groups.items() if name != FORECASTS.name),
             len(inputs.forecasts), f"{inputs.model.name} v{inputs.model.version}" if inputs.model else "none",
             time.monotonic() - started)
    scored = scored_forecasts(inputs)
    doc = forecast_document(inputs, scored, settings, horizon, dt.datetime.now(dt.UTC))
    rendered = render_charts(inputs, scored, doc)
    doc["charts"] = [{"file": c.file, "title": c.title, "alt": c.alt} for c in rendered]
    payload = json_text(doc)
    index = render_page(doc, rendered, payload)
    files = {c.file: c.png for c in rendered} | {"forecast.json": payload.encode(), "index.html": index.encode(),
                                                  ".nojekyll": b""}
    started = time.monotonic()
    publish(out, files)
    log.info("site: %d files, %d KB, written to %s in %.2fs", len(files), sum(map(len, files.values())) // 1024, out,
             time.monotonic() - started)


def _make_directory(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc.strerror or exc}") from None


def publish(out: Path, files: dict[str, bytes]) -> None:
    """Stage every file, then rename them into place with index.html last; drop charts no longer drawn."""
    _make_directory(out)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc}") from None
    try:
        for name, data in files.items():
            atomic_write_bytes(staging / name, data)
        for name in sorted(files, key=lambda n: n == "index.html"):
            (staging / name).replace(out / name)
        for stale in out.iterdir():
            if OUR_PNG.fullmatch(stale.name) and stale.name not in files:
                stale.unlink()
        fsync_directory(out)
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: Any, signed: bool = False) -> str:
    number = _number(value)
    return "n/a" if number is None else f"{number:{'+' if signed else ''}.1%}"


def _figure_html(chart: Chart) -> str:
    width, height = _png_size(chart.png)
    return (f'<figure><img src="{escape(chart.file)}" alt="{escape(chart.alt)}" width="{width}" height="{height}" '
            f'loading="lazy"></figure>')


def _figures(rendered: list[Chart], section: str) -> str:
    return "\n".join(_figure_html(c) for c in rendered if c.section == section)


def _table(head: list[str], rows: list[list[Any]], row_attrs: list[str] | None = None, css: str = "") -> str:
    """A table in a horizontally scrolling box, so a narrow screen never cuts a column off.

    `css` "wrap" lets every cell wrap (long labels), "wrap-first" only the first column (names);
    by default nothing wraps, so dates and ranges never break across lines.
    """
    attrs = row_attrs or [""] * len(rows)
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "\n".join(f"<tr{attr}>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>"
                     for row, attr in zip(rows, attrs, strict=True))
    attr = f' class="{css}"' if css else ""
    return (f'<div class="scroll"><table{attr}>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{body}\n</tbody>'
            f"</table></div>")


def _utc(stamp: str) -> str:
    """The registry's ISO timestamp as people read it; anything unexpected is shown as it is."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return str(stamp)
    if moment.tzinfo is None:
        return str(stamp)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _range(low: float, high: float) -> str:
    """Compact for a phone-width table, whose header carries the unit; cents only where they are visible change."""
    decimals = 0 if high >= 100 else 2
    return f"{low:,.{decimals}f}–{high:,.{decimals}f}"


def _row(forecast: dict, horizon: int) -> dict:
    return next(r for r in forecast["rows"] if r["horizon"] == horizon)


def _headline(forecast: dict) -> str:
    """Rendered for the default horizon so it reads without JavaScript; the script re-renders on change."""
    horizons = [r["horizon"] for r in forecast["rows"]]
    horizon = HEADLINE_HORIZON if HEADLINE_HORIZON in horizons else horizons[-1]
    row = _row(forecast, horizon)
    last = forecast["last_close"]
    change = _pct(row["point"] / last - 1, signed=True) if last else "n/a"
    options = "".join(f'<option value="{r["horizon"]}"{" selected" if r["horizon"] == horizon else ""}>'
                      f'{_days(r["horizon"])}</option>' for r in forecast["rows"])
    stale = (f'<p class="notice">This forecast is {forecast["days_old"]} day(s) old: the daily run has not '
             f'produced a newer one.</p>' if forecast["days_old"] > 0 else "")
    return f"""{stale}<div class="headline">
<p><label for="horizon">SOL close in</label> <select id="horizon">{options}</select></p>
<p class="big" id="h-point">{escape(_money(row["point"]))}</p>
<p>on <strong id="h-target">{escape(row["target_day"])}</strong> (UTC), <span id="h-change">{escape(change)}</span>
vs the last close of {escape(_money(last))} on {escape(forecast["forecast_day"])}</p>
<p>80% range: <span id="h-80">{escape(_money(row["lower_80"]))} to {escape(_money(row["upper_80"]))}</span><br>
95% range: <span id="h-95">{escape(_money(row["lower_95"]))} to {escape(_money(row["upper_95"]))}</span></p>
</div>"""


def _forecast_section(doc: dict, rendered: list[Chart]) -> str:
    forecast = doc["forecast"]
    if forecast is None:
        body = ('<p class="empty">No forecast yet: the store holds no forecast. Once a model is trained '
                '(training_pipeline.py) and inference_pipeline.py has run, it appears here.</p>')
        return f'<section id="forecast"><h2>Forecast</h2>\n{body}\n{_figures(rendered, "forecast")}\n</section>'
    rows = [[r["target_day"], r["horizon"], _money(r["point"]), _range(r["lower_80"], r["upper_80"]),
             _range(r["lower_95"], r["upper_95"])] for r in forecast["rows"]]
    table = _table(["target day", "days", "point", "80% range ($)", "95% range ($)"], rows,
                   [f' data-h="{r["horizon"]}"' for r in forecast["rows"]])
    return f"""<section id="forecast"><h2>Forecast</h2>
{_headline(forecast)}
<p class="verdict">{escape(doc["verdict"])}</p>
{_figures(rendered, "forecast")}
<p class="small">Made from the close of {escape(forecast["forecast_day"])} by model version
{escape(forecast["model_version"])}.</p>
{table}
</section>"""


def _track_section(rendered: list[Chart]) -> str:
    return f"""<section id="track"><h2>Track record</h2>
<p>A forecast is scored once the close of its target day is in the store. <em>Published</em> forecasts are the ones
this site showed; the <em>walk-forward backtest</em> forecasts are the production model's out-of-sample forecasts
from its backtest, each made with only the data known on its day. Naive persistence, the benchmark, says the price
stays at the close of the forecast day.</p>
{_figures(rendered, "track")}
</section>"""


def _model_section(doc: dict, rendered: list[Chart]) -> str:
    model = doc["model"]
    if model is None:
        return f'<section id="model"><h2>Model</h2>\n<p class="empty">{escape(NO_MODEL)}</p>\n</section>'
    metrics = model["metrics"]
    origins = metrics.get("backtest_origins") if isinstance(metrics.get("backtest_origins"), dict) else {}
    rel = _number(metrics.get("rel_mae_mean"))
    rows = [
        ["period (forecast days)", f"{origins.get('first', 'n/a')} to {origins.get('last', 'n/a')} "
                                   f"({origins.get('count', 'n/a')} days)"],
        ["error vs naive persistence (mean relative MAE, below 1 beats naive)", "n/a" if rel is None else f"{rel:.3f}"],
        ["error reduction vs the original system's model", _pct(metrics.get("mae_reduction_vs_original"))],
        ["80% range: share of outcomes inside (target 80%)", _pct(metrics.get("coverage_80_mean"))],
        ["95% range: share of outcomes inside (target 95%)", _pct(metrics.get("coverage_95_mean"))],
    ]
    return f"""<section id="model"><h2>Model</h2>
<p>In production: <strong>{escape(model["name"])} v{escape(model["version"])}</strong>, registered
{escape(_utc(model["created"]))}. {escape(model["description"])}</p>
<p class="verdict">{escape(doc["verdict"])}</p>
{_table(["backtest", "value"], rows, css="wrap")}
{_figures(rendered, "model")}
</section>"""


def _market_section(rendered: list[Chart]) -> str:
    return f'<section id="market"><h2>Market</h2>\n{_figures(rendered, "market")}\n</section>'


def _freshness_section(doc: dict) -> str:
    rows = [[f"{name} v{g['version']}", g["rows"], g["last_day"] or "none",
             "n/a" if g["behind_days"] is None else g["behind_days"], len(g["missing_days"])]
            for name, g in doc["groups"].items()]
    table = _table(["group", "rows", "last day", "days behind", "holes"], rows, css="wrap-first")
    return f"""<section id="data"><h2>Data freshness</h2>
<p>The last complete UTC day at build time was {escape(doc["last_complete_day"])}; store backend:
{escape(doc["backend"])}. Holes are days missing between a group's first and last day.</p>
{table}
</section>"""


CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f8f9fa; color: #212529;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 48rem; margin: 0 auto; padding: .75rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: .5rem 0; }
h2 { font-size: 1.3rem; margin: 2rem 0 .5rem; border-bottom: 2px solid #dee2e6; }
.meta, .small, figcaption { color: #495057; font-size: .9rem; }
.notice { background: #fff3bf; border-left: 4px solid #f08c00; padding: .6rem .8rem; }
.empty { background: #e7f5ff; border-left: 4px solid #1c7ed6; padding: .6rem .8rem; }
.verdict { font-style: italic; }
.headline { background: #fff; border: 1px solid #dee2e6; border-radius: 8px; padding: .5rem 1rem; }
.headline p { margin: .4rem 0; }
.big { font-size: 2.4rem; font-weight: 700; line-height: 1.1; }
select { font-size: 1rem; padding: .2rem; }
figure { margin: 1.2rem 0; }
img { display: block; max-width: 100%; height: auto; background: #fff; border-radius: 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; background: #fff; }
table { font-size: .85rem; }
th, td { padding: .3rem .25rem; border-bottom: 1px solid #dee2e6; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th, table.wrap td, table.wrap-first td:first-child { white-space: normal; }
tr.selected { background: #e7f5ff; }
footer { margin: 2rem 0 1rem; color: #495057; font-size: .9rem; }
"""

SCRIPT = """
(function () {
  "use strict";
  var doc = JSON.parse(document.getElementById("forecast-data").textContent);
  var select = document.getElementById("horizon");
  if (!doc.forecast || !select) { return; }
  function money(v) {
    return "$" + v.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }
  function put(id, text) { document.getElementById(id).textContent = text; }
  function show() {
    var h = Number(select.value);
    var row = doc.forecast.rows.filter(function (r) { return r.horizon === h; })[0];
    if (!row) { return; }
    put("h-point", money(row.point));
    put("h-target", row.target_day);
    put("h-80", money(row.lower_80) + " to " + money(row.upper_80));
    put("h-95", money(row.lower_95) + " to " + money(row.upper_95));
    var last = doc.forecast.last_close;
    if (last) {
      var change = (row.point / last - 1) * 100;
      put("h-change", (change >= 0 ? "+" : "") + change.toFixed(1) + "%");
    }
    document.querySelectorAll("tr[data-h]").forEach(function (tr) {
      tr.classList.toggle("selected", Number(tr.getAttribute("data-h")) === h);
    });
  }
  select.addEventListener("change", show);
  show();
})();
"""


def render_page(doc: dict, rendered: list[Chart], payload: str) -> str:
    """The whole page; `payload` is forecast.json's exact text, embedded for the script to read."""
    generated = doc["generated_utc"].replace("T", " ").replace("Z", " UTC")
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>cryptocast: Solana 10-day forecast</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
<h1>Solana (SOL) price: 10-day forecast</h1>
<p class="meta">Last updated <time datetime="{escape(doc["generated_utc"])}">{escape(generated)}</time>; data through
{escape(doc["last_complete_day"])} (UTC).</p>
<p class="notice"><strong>Not financial advice.</strong> This is an experiment in forecasting, published with its
errors. Prices of crypto assets are volatile and largely unpredictable; do not trade on these numbers.</p>
</header>
{_forecast_section(doc, rendered)}
{_track_section(rendered)}
{_model_section(doc, rendered)}
{_market_section(rendered)}
{_freshness_section(doc)}
<footer>
<p><strong>Not financial advice.</strong> The numbers behind this page are in <a href="forecast.json">forecast.json</a>.
Prices: daily SOL and BTC candles; sentiment: the alternative.me Crypto Fear &amp; Greed Index. All dates are UTC.</p>
</footer>
</main>
<script type="application/json" id="forecast-data">{payload}</script>
<script>{SCRIPT}</script>
</body>
</html>
"""
