"""The dashboard's charts, in one style, drawn for the width they are shown at.

Every chart takes plain frames or dicts (never the store), so tests can feed it edge cases, and
returns a `matplotlib.figure.Figure`. Figures are created directly, not through pyplot, so none
stays registered in a global figure manager: there is nothing to close and nothing accumulates
when a run draws many charts. `render` turns a chart into the file's bytes at one `Size`.

Each chart is drawn twice: narrow for phones and wide for larger screens (the page picks one
with <picture>). A chart is designed at `Size.width` CSS pixels with 1 pt = 1 CSS px, and saved
at twice that resolution for sharp text on high-density screens, so a font of 11 pt reads as
11 CSS px when the chart is shown at its design width.

Dates are UTC days stored as naive timestamps; the axis is formatted in UTC and says so.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib
import matplotlib.dates as mdates
import matplotlib.text
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from cryptocast.backtest import TERCILES
from cryptocast.features import FORECAST_RANGES
from cryptocast.publish.formats import days as days_text


@dataclass(frozen=True)
class Size:
    """One rendering of the charts: its design width in CSS px and its type sizes in pt (= CSS px)."""

    name: str
    width: int
    text: float  # ticks, axis labels, annotations
    small: float  # legends and notes: the smallest text on any chart
    title: float
    legend_columns: int

    def wrap(self, text: str, font: float | None = None, share: float = 0.85) -> str:
        """Break a long title or note so it fits `share` of the chart's width (a character is ~0.6 em wide)."""
        return textwrap.fill(text, max(20, int(self.width * share / ((font or self.text) * 0.6))))


NARROW = Size("narrow", 340, 12.0, 11.0, 13.5, 2)  # a phone: 390 px screens show it at ~366 CSS px
WIDE = Size("wide", 720, 15.0, 14.0, 17.0, 4)  # the page's column is at most 744 CSS px; 600 px shows it at 576
SIZES = (NARROW, WIDE)
SCALE = 2  # image pixels per CSS pixel
DPI = 72 * SCALE
HORIZONS = range(1, 11)
# 7 days of history as context: the 10-day fan, the subject, takes most of the width (30 days left it a quarter)
FORECAST_HISTORY_DAYS = 7
COLORS = {
    "actual": "#222222",
    "model": "#1f5fa8",
    "backtest": "#1f5fa8",
    "published": "#c2410c",
    "naive": "#868e96",
    "btc": "#e8890c",
    "fear_greed": "#2b8a3e",
    "point": "#0b3d75",
    "miss": "#d9480f",
}
# The forecast's nested central ranges, widest first, each a pair of published quantiles; darker inside.
FAN = {level: FORECAST_RANGES[level] for level in (0.95, 0.8)}  # the ranges the headline and the table give
FAN_COLORS = {0.95: "#c6dbf2", 0.8: "#7fa9dc"}  # one hue, darker toward the centre; the middle line darkest
FAN_LABEL_COLORS = {0.95: "#3f5f86", 0.8: "#0b3d75"}  # 4.5:1 on white (WCAG AA)
RANGE_TRACK_COLORS = {"backtest": {0.95: "#dce8f7", 0.8: "#94b8e4"},
                      "published": {0.95: "#fde5d2", 0.8: "#f7b98e"}}
SOURCES = {"published": "published", "backtest": "walk-forward backtest, out of sample"}
MODEL = "lstm"  # our model's name in evaluation.json
# The ranges the track record judges, and the quantile columns that bound them.
TRACKED_RANGES = (0.8, 0.95)
RANGE_COLUMNS = tuple(column for level in TRACKED_RANGES for column in FORECAST_RANGES[level])
SCORED_COLUMNS = ("forecast_day", "target_day", "horizon", "point", *RANGE_COLUMNS, "naive", "actual", "source")
MODEL_LABELS = {"lstm": "our LSTM", "naive": "naive (no change)", "drift": "random walk + drift",
                "ets": "AutoETS (a classical forecaster)", "original": "the original system's model"}
MODEL_COLORS = {"lstm": COLORS["model"], "naive": COLORS["naive"], "drift": "#7048e8", "ets": "#0c8599",
                "original": "#c92a2a"}
# The ways of drawing ranges around our point forecast that evaluation.json's `distribution` scores.
RANGE_METHOD_LABELS = {"calibrated": "our ranges", "fixed_band": "fixed-width band",
                       "ewma_band": "EWMA volatility band", "garch_t_band": "GARCH(1,1)-t band"}
RANGE_METHOD_COLORS = {"calibrated": COLORS["model"], "fixed_band": COLORS["naive"], "ewma_band": "#7048e8",
                       "garch_t_band": "#0c8599"}
OFF_SCALE = 1.5  # a model whose error reaches 1.5x naive's is reported in words, not drawn: it would squash the rest
# (low, high, label, band fill, label colour): label colours keep 4.5:1 contrast on white (WCAG AA)
FEAR_GREED_BANDS = ((0, 25, "Extreme fear", "#e03131", "#c92a2a"), (25, 46, "Fear", "#f08c00", "#a34f00"),
                    (46, 55, "Neutral", "#868e96", "#495057"), (55, 75, "Greed", "#74b816", "#4a7a0a"),
                    (75, 100, "Extreme greed", "#2b8a3e", "#237032"))


def use_style(size: Size = NARROW) -> None:
    """The one place the look is set, so every chart (and any future one) matches."""
    matplotlib.use("Agg")
    sns.set_theme(context="notebook", style="whitegrid")
    matplotlib.rcParams.update({
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "timezone": "UTC",
        "font.size": size.text,
        "axes.titlesize": size.title,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": size.text,
        "xtick.labelsize": size.text,
        "ytick.labelsize": size.text,
        "legend.fontsize": size.small,
        "legend.title_fontsize": size.small,
        "figure.titlesize": size.title,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "lines.linewidth": 2.0,
    })


def _figure(size: Size, heights: tuple[int, int]) -> Figure:
    """A figure `size.width` CSS px wide and (narrow height, wide height)[size] tall."""
    use_style(size)
    height = heights[0] if size is NARROW else heights[1]
    return Figure(figsize=(size.width / 72, height / 72), layout="constrained")


def png_bytes(fig: Figure) -> bytes:
    """PNG without the matplotlib version stamp, so an unchanged chart is an unchanged file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def smallest_text_px(fig: Figure) -> float:
    """The smallest font drawn on a saved figure, in image pixels: what a reader's eye gets, scaled."""
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=0.0) * DPI / 72


@dataclass(frozen=True)
class Rendered:
    png: bytes
    width: int  # image pixels
    height: int
    smallest_text_px: float  # image pixels


def render(draw: Callable[[Size], Figure], size: Size) -> Rendered:
    """Draw a chart at one size and save it; the global style is restored afterwards."""
    with matplotlib.rc_context():
        fig = draw(size)
        png = png_bytes(fig)
        smallest = smallest_text_px(fig)
    width, height = (int(v) for v in np.frombuffer(png[16:24], dtype=">u4"))
    return Rendered(png, width, height, smallest)


def placeholder(title: str, message: str, size: Size = NARROW) -> Figure:
    """A readable "nothing to show yet" card, so the page never has a hole or a broken chart."""
    fig = _figure(size, (170, 190))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(size.wrap(title, size.title))
    ax.text(0.5, 0.45, size.wrap(message), ha="center", va="center", transform=ax.transAxes, fontsize=size.text,
            color="#495057")
    return fig


def _date_axis(ax: Axes, label: bool = True) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6, tz=dt.UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC, show_offset=False))
    if label:
        ax.set_xlabel("date (UTC)")


def _price_axis(ax: Axes) -> None:
    """Plain price ticks (the unit is in the axis label) with the decimals the visible range needs."""
    def label(value: float, _position: int) -> str:
        low, high = ax.get_ylim()
        decimals = 0 if high - low >= 20 else 1 if high - low >= 2 else 2
        return f"{value:,.{decimals}f}"

    ax.yaxis.set_major_formatter(FuncFormatter(label))


def _legend_below(fig: Figure, handles: list, labels: list[str], size: Size, columns: int | None = None) -> None:
    """Under the plot, where on a narrow screen it can never hide the data."""
    fig.legend(handles, labels, loc="outside lower center", ncol=columns or size.legend_columns, handlelength=1.4,
               columnspacing=1.2)


def forecast_chart(closes: pd.Series, forecast: pd.DataFrame | None, size: Size = NARROW, unit: str = "USDT",
                   days: int = FORECAST_HISTORY_DAYS) -> Figure:
    """The forecast as a fan, the subject of the chart: its 95% and 80% ranges (the ones the headline and
    the table give) in one hue darkening to the centre, widening from the known close at the origin,
    and the middle line; the last `days` closes before it as context, and the last day's ranges
    written beside it. Rows published before quantiles were (version 1) carry both ranges too.
    """
    title = f"SOL close ({unit}): the last {days} days and the next 10"
    has_forecast = forecast is not None and not forecast.empty
    if closes.empty and not has_forecast:
        return placeholder(title, "No SOL prices in the store yet: run feature_backfill.py.", size)
    fig = _figure(size, (330, 380))
    ax = fig.add_subplot()
    recent = closes.sort_index().iloc[-days:]
    ax.plot(recent.index, recent.to_numpy(), color=COLORS["actual"], lw=2.2)
    if has_forecast:
        rows = forecast.sort_values("horizon")
        origin = rows["forecast_day"].iloc[0]
        anchor = closes.get(origin)
        x = list(rows["target_day"])
        columns = {c: list(rows[c]) for c in ["point", *(c for pair in FAN.values() for c in pair)]}
        if anchor is not None and np.isfinite(anchor):  # ranges widen from the known close at the origin
            x = [origin, *x]
            columns = {c: [float(anchor), *v] for c, v in columns.items()}
        for level, (low, high) in FAN.items():
            if rows[[low, high]].notna().all(axis=None):
                ax.fill_between(x, columns[low], columns[high], color=FAN_COLORS[level], lw=0,
                                label=f"{level:.0%} range")
        ax.plot(x, columns["point"], color=COLORS["point"], lw=2, label="forecast")
        last = rows.iloc[-1]
        for level, (low, high) in FAN.items():
            for column in (low, high):
                ax.annotate(f"{last[column]:,.2f}", (x[-1], last[column]), xytext=(4, 0), textcoords="offset points",
                            va="center", ha="left", fontsize=size.small if level == 0.95 else size.text,
                            color=FAN_LABEL_COLORS[level], fontweight="bold" if level == 0.8 else "normal")
        ax.set_xlim(recent.index.min() if len(recent) else x[0], x[-1] + pd.Timedelta(days=4.2))
        ax.axvline(origin, color=COLORS["naive"], ls=":", lw=1.2)
        ax.text(origin, 1.0, " forecast →", transform=ax.get_xaxis_transform(), va="top", ha="left",
                fontsize=size.small, color="#495057")
    else:
        ax.text(0.02, 0.04, "no forecast yet", transform=ax.transAxes, color="#495057")
    ax.set_title(size.wrap(title, size.title))
    _price_axis(ax)
    ends = [d for d in (recent.index.min() if len(recent) else None, origin if has_forecast else None,
                        rows["target_day"].iloc[-1] if has_forecast else None) if d is not None]
    ax.set_xticks(ends, [f"{d:%b %-d}" for d in ends])  # first day, forecast day, last day: nothing else to read
    return fig


def _row_major(handles: list, labels: list[str], columns: int) -> tuple[list, list[str]]:
    """Reorder legend entries so they read left to right, then down (matplotlib fills columns first)."""
    rows = -(-len(handles) // columns)
    order = [r * columns + c for c in range(columns) for r in range(rows) if r * columns + c < len(handles)]
    return [handles[i] for i in order], [labels[i] for i in order]


def score_published(forecasts: pd.DataFrame, closes: pd.Series) -> pd.DataFrame:
    """Published forecasts whose outcome is known, beside naive persistence (the close on the forecast day)."""
    out = forecasts[["forecast_day", "target_day", "horizon", "point", *RANGE_COLUMNS]].copy()
    out["naive"] = out["forecast_day"].map(closes).astype(float)
    out["actual"] = out["target_day"].map(closes).astype(float)
    out["source"] = "published"
    return out.dropna(subset=["naive", "actual"]).reset_index(drop=True)[list(SCORED_COLUMNS)]


def score_backtest(rows: pd.DataFrame) -> pd.DataFrame:
    """The training artifact `backtest_forecasts.csv` in the same shape as `score_published`.

    Versions registered before the ranges were kept in it have no quantile columns: their ranges are NaN.
    """
    out = rows[["forecast_day", "target_day", "horizon", "point", "naive", "actual"]].copy()
    for column in ("forecast_day", "target_day"):
        out[column] = pd.to_datetime(out[column], format="%Y-%m-%d")
    out["horizon"] = out["horizon"].astype(int)
    for column in ("point", "naive", "actual", *RANGE_COLUMNS):
        out[column] = rows[column].astype(float) if column in rows else np.nan
    out["source"] = "backtest"
    return out.dropna(subset=["point", "naive", "actual"]).reset_index(drop=True)[list(SCORED_COLUMNS)]


def empty_scored() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORED_COLUMNS})


def inside(rows: pd.DataFrame, level: float) -> pd.Series:
    """Per scored row: was the outcome inside its `level` range (NaN where the row has no such range)."""
    low, high = FORECAST_RANGES[level]
    ranged = rows[low].notna() & rows[high].notna()
    held = (rows[low] <= rows["actual"]) & (rows["actual"] <= rows[high])
    return held.where(ranged).astype(float)


def hindcast_summary(scored: pd.DataFrame, horizon: int) -> dict[str, dict]:
    """Per source: how many forecasts at this horizon were scored, their span, MAE vs naive's, and how
    often the outcome fell inside the 80% and 95% ranges (of the `ranged` ones that carry ranges)."""
    summary = {}
    for source in SOURCES:
        rows = scored[(scored["horizon"] == horizon) & (scored["source"] == source)]
        if rows.empty:
            continue
        held = {level: inside(rows, level) for level in TRACKED_RANGES}
        summary[source] = {
            "n": int(len(rows)),
            "first_target_day": rows["target_day"].min().strftime("%Y-%m-%d"),
            "last_target_day": rows["target_day"].max().strftime("%Y-%m-%d"),
            "mae": float((rows["point"] - rows["actual"]).abs().mean()),
            "naive_mae": float((rows["naive"] - rows["actual"]).abs().mean()),
            "ranged": int(held[TRACKED_RANGES[0]].notna().sum()),
            **{f"coverage_{level * 100:g}": None if share.isna().all() else float(share.mean())
               for level, share in held.items()},
        }
    return summary


def same_as_naive(scored: pd.DataFrame, horizon: int) -> bool:
    """True when every scored forecast `horizon` days ahead is naive's to the cent: its error chart would
    draw the model exactly on top of "no change", one fact twice, so the page says it in words instead."""
    rows = scored[scored["horizon"] == horizon]
    return bool(len(rows)) and bool(((rows["point"] - rows["naive"]).abs() < 0.005).all())


def hindcast_chart(scored: pd.DataFrame, horizon: int, size: Size = NARROW, unit: str = "USDT") -> Figure:
    """Each forecast's error `horizon` days ahead over time, and the running MAE, both against naive's as an area.

    Errors, not prices: drawn as prices, a forecast near the actual close hides it for a year.
    Naive is an area behind the model's line, so the line can never hide it.
    """
    title = f"{horizon} day{'s' if horizon > 1 else ''} ahead: how far off each forecast was"
    rows = scored[scored["horizon"] == horizon].sort_values("target_day")
    if rows.empty:
        return placeholder(title, "No scored forecasts yet: a forecast is scored once the close of its target "
                                  "day is in the store.", size)
    fig = _figure(size, (470, 560))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.2, 1])
    naive_style = {"color": COLORS["naive"], "alpha": 0.35, "lw": 0}
    for source in SOURCES:
        part = rows[rows["source"] == source]
        if part.empty:
            continue
        days = part["target_day"].to_numpy()
        few = len(part) < 40
        top.fill_between(days, 0, (part["naive"] - part["actual"]).to_numpy(), step="mid", **naive_style)
        top.plot(days, (part["point"] - part["actual"]).to_numpy(), color=COLORS[source], lw=1.2,
                 marker="o" if few else None, markersize=3.5, label=f"forecast, {SOURCES[source]}")
        naive_mae = (part["naive"] - part["actual"]).abs().expanding().mean().to_numpy()
        model_mae = (part["point"] - part["actual"]).abs().expanding().mean().to_numpy()
        bottom.fill_between(days, 0, naive_mae, **naive_style)
        bottom.plot(days, model_mae, color=COLORS[source], lw=1.8, marker="o" if few else None, markersize=3.5)
    top.axhline(0, color=COLORS["actual"], lw=0.8)
    top.set_title(size.wrap(title, size.title))
    top.set_ylabel(f"forecast − actual ({unit})")
    bottom.set_title(size.wrap("Running mean absolute error (MAE) since the first forecast"), fontsize=size.text,
                     fontweight="normal")
    bottom.set_ylabel(f"MAE ({unit})")
    bottom.set_ylim(bottom=0)
    for ax in (top, bottom):
        _price_axis(ax)
    _date_axis(bottom)
    handles, labels = top.get_legend_handles_labels()
    handles.append(Patch(**naive_style))
    labels.append("naive (no change): its error, its MAE")
    _legend_below(fig, handles, labels, size, columns=1)
    return fig


def _relative(rows: pd.DataFrame, column: str) -> np.ndarray:
    """A price column as % above (+) or below (-) the point forecast of its row."""
    return ((rows[column] / rows["point"] - 1) * 100).to_numpy(dtype=float)


def _coverage_words(rows: pd.DataFrame) -> str:
    shares = [inside(rows, level).mean() for level in TRACKED_RANGES]
    return " / ".join(f"{share:.0%}" for share in shares)


def _range_panel(ax: Axes, rows: pd.DataFrame, horizon: int, size: Size) -> list[str]:
    """One horizon's ranges over time around the forecast (0), each outcome a dot; returns the sources drawn."""
    ranged = rows.dropna(subset=list(RANGE_COLUMNS))
    drawn = []
    for source in SOURCES:
        part = ranged[ranged["source"] == source]
        if part.empty:
            continue
        drawn.append(source)
        days = part["target_day"].to_numpy()
        for level in reversed(TRACKED_RANGES):  # widest first, the narrower drawn over it
            low, high = FORECAST_RANGES[level]
            ax.fill_between(days, _relative(part, low), _relative(part, high), step="mid", lw=0,
                            color=RANGE_TRACK_COLORS[source][level])
        held = inside(part, TRACKED_RANGES[0]).to_numpy() == 1
        outcome = _relative(part, "actual")
        few = len(part) < 40
        ax.scatter(days[held], outcome[held], s=14 if few else 5, color=COLORS["actual"], lw=0, zorder=3)
        ax.scatter(days[~held], outcome[~held], s=22 if few else 9, color=COLORS["miss"], lw=0, zorder=4)
    ax.axhline(0, color=COLORS["point"], lw=0.8)
    ax.yaxis.set_major_formatter(PercentFormatter(100, decimals=0))
    ax.set_ylabel("vs forecast")
    found = "; ".join(f"{source} {_coverage_words(ranged[ranged['source'] == source])}" for source in drawn)
    ax.set_title(size.wrap(f"{days_text(horizon)} ahead, inside the 80% / 95% range: {found or 'none judged yet'}",
                           size.text), fontsize=size.text, fontweight="normal")
    return drawn


def ranges_chart(scored: pd.DataFrame, horizons: list[int], size: Size = NARROW) -> Figure:
    """Past forecasts' 80% and 95% ranges over time, as % around their point forecast, and each outcome.

    Coverage can be seen: a range that holds what it promises keeps 8 in 10 dots inside its darker
    band. Drawn relative to the forecast, so a calm week's narrow range and a crash's wide one
    compare at a glance whatever SOL's price was.
    """
    title = "Each outcome against its forecast's 80% and 95% ranges, over time"
    ranged = scored.dropna(subset=list(RANGE_COLUMNS))
    if ranged.empty:
        return placeholder(title, "No range has been judged yet: a range is judged once the close of its target "
                                  "day is in the store.", size)
    fig = _figure(size, (140 + 180 * len(horizons), 160 + 180 * len(horizons)))
    axes = fig.subplots(len(horizons), 1, sharex=True, squeeze=False)[:, 0]
    sources: set[str] = set()
    for ax, horizon in zip(axes, horizons, strict=True):
        sources.update(_range_panel(ax, ranged[ranged["horizon"] == horizon], horizon, size))
    fig.suptitle(size.wrap(title, size.title), x=0.02, ha="left", fontweight="bold")
    _date_axis(axes[-1])
    handles: list = []
    labels: list[str] = []
    for source in (s for s in SOURCES if s in sources):
        for level in TRACKED_RANGES:
            handles.append(Patch(color=RANGE_TRACK_COLORS[source][level]))
            labels.append(f"{level:.0%} range, {SOURCES[source]}")
    handles += [Line2D([], [], ls="none", marker="o", color=COLORS["actual"]),
                Line2D([], [], ls="none", marker="o", color=COLORS["miss"])]
    labels += ["outcome inside the 80% range", "outcome outside it"]
    if "published" not in set(scored["source"]):
        handles.append(Line2D([], [], ls="none"))
        labels.append("no published forecast has matured yet")
    _legend_below(fig, handles, labels, size, columns=1 if size is NARROW else 2)
    return fig


def _number_or_nan(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan


def _per_horizon(rows: list[dict], key: str) -> list[float]:
    by_horizon = {int(r["horizon"]): r.get(key) for r in rows}
    return [_number_or_nan(by_horizon.get(h)) for h in HORIZONS]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else np.nan


def scoreboard_chart(evaluation: dict, size: Size = NARROW) -> Figure:
    """Error relative to naive per horizon on a linear axis around 1; interval coverage vs nominal below it.

    A model whose error reaches `OFF_SCALE` times naive's (the original system's model) is named
    in the legend with its figures instead of drawn: on the same axis it would squash the rest.
    """
    intervals = evaluation.get("intervals") or {}
    fig = _figure(size, (620, 640) if intervals else (400, 420))
    axes = fig.subplots(2, 1, height_ratios=[1.3, 1]) if intervals else [fig.add_subplot()]
    ax = axes[0]
    models = evaluation["models"]
    drawn: list[float] = []
    off_scale = []
    ax.axhline(1, color=COLORS["naive"], ls=":", lw=2, label=f"{MODEL_LABELS['naive']}: 1 by definition")
    names = [n for n in MODEL_LABELS if n in models] + [n for n in models if n not in MODEL_LABELS]
    for name in (n for n in names if n != "naive"):  # naive is the line at 1 itself
        rel = _per_horizon(models[name]["per_horizon"], "rel_mae")
        label = MODEL_LABELS.get(name, name)
        if max([v for v in rel if np.isfinite(v)], default=0) >= OFF_SCALE:
            off_scale.append(f"{label}: {_mean(rel):.1f}× naive's error on average, up to {np.nanmax(rel):.1f}× "
                             f"(not drawn: off the scale)")
            continue
        drawn += [v for v in rel if np.isfinite(v)]
        ax.plot(list(HORIZONS), rel, marker="o", markersize=4, color=MODEL_COLORS.get(name), label=label,
                zorder=3 if name == MODEL else 2)  # ours on top: a model equal to naive stays visible
    low, high = min(drawn + [1.0]), max(drawn + [1.0])
    pad = max(0.02, (high - low) * 0.12)
    ax.set_ylim(low - pad, high + pad)
    ax.set_title(size.wrap("Average error ÷ naive's (below 1 beats 'no change')", size.title))
    ax.set_ylabel("error ÷ naive's")
    ax.set_xticks(list(HORIZONS))
    ax.set_xlabel("days ahead")
    handles, labels = ax.get_legend_handles_labels()
    for note in off_scale:
        handles.append(Line2D([], [], ls="none"))
        labels.append(size.wrap(note, size.small, share=0.75))
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0, -0.22), ncol=1, handlelength=1.6)
    if intervals:
        _coverage(axes[1], intervals, size)
    return fig


def _coverage(ax: Axes, intervals: dict, size: Size) -> None:
    lowest = 0.5
    for level, color in (("0.8", COLORS["model"]), ("0.95", COLORS["published"])):
        if level not in intervals:
            continue
        coverage = _per_horizon(intervals[level]["per_horizon"], "coverage")
        ax.plot(list(HORIZONS), coverage, marker="o", markersize=4, color=color, label=f"{float(level):.0%} range")
        ax.axhline(float(level), color=color, ls="--", lw=1.2)
        lowest = min([lowest, *(c - 0.05 for c in coverage if np.isfinite(c))])
    ax.set_ylim(lowest, 1.01)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title(size.wrap("Share of outcomes inside the range (dashed: the target)"), fontsize=size.text,
                 fontweight="normal")
    ax.set_ylabel("inside the range")
    ax.set_xticks(list(HORIZONS))
    ax.set_xlabel("days ahead")
    ax.legend(loc="lower left")


def range_scores_chart(distribution: dict, size: Size = NARROW) -> Figure:
    """Our ranges against the classical ways of drawing them the backtest scored, on the same backtest days.

    Top: the interval score of the 80% range (its width plus a penalty for every outcome outside)
    divided by the fixed-width band's, per horizon. Bottom: how often the 80% range held in the
    calmest, middle and most volatile third of the days, against the 80% it promises.
    """
    methods = {name: m for name, m in distribution["methods"].items() if isinstance(m, dict)}
    names = [n for n in RANGE_METHOD_LABELS if n in methods] + [n for n in methods if n not in RANGE_METHOD_LABELS]
    fig = _figure(size, (600, 620))
    top, bottom = fig.subplots(2, 1, height_ratios=[1.2, 1])
    drawn = [1.0]
    for name in names:
        ratio = _per_horizon(methods[name]["per_horizon"], "winkler_80_vs_fixed_band")
        drawn += [v for v in ratio if np.isfinite(v)]
        top.plot(list(HORIZONS), ratio, marker="o", markersize=4, color=RANGE_METHOD_COLORS.get(name),
                 ls=":" if name == "fixed_band" else "-", label=RANGE_METHOD_LABELS.get(name, name))
    pad = max(0.01, (max(drawn) - min(drawn)) * 0.15)
    top.set_ylim(min(drawn) - pad, max(drawn) + pad)
    top.set_title(size.wrap("Interval score of the 80% range ÷ the fixed band's (below 1 is better)", size.title))
    top.set_ylabel("score ÷ fixed band's")
    top.set_xticks(list(HORIZONS))
    top.set_xlabel("days ahead")
    width = 0.8 / max(1, len(names))
    lowest = 0.5
    for i, name in enumerate(names):
        values = [_number_or_nan(methods[name].get(f"coverage_80_{tercile}_mean")) for tercile in TERCILES]
        bottom.bar(np.arange(len(TERCILES)) + (i - (len(names) - 1) / 2) * width, values, width * 0.95,
                   color=RANGE_METHOD_COLORS.get(name))
        lowest = min([lowest, *(v - 0.05 for v in values if np.isfinite(v))])
    bottom.axhline(0.8, color=COLORS["actual"], ls="--", lw=1.2)
    bottom.set_ylim(lowest, 1.0)
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bottom.set_xticks(range(len(TERCILES)), ["calm days", "middle days", "wild days"])
    bottom.set_title(size.wrap("Share inside the 80% range, by how volatile the market was (dashed: 80%)"),
                     fontsize=size.text, fontweight="normal")
    bottom.set_ylabel("inside the range")
    _legend_below(fig, *top.get_legend_handles_labels(), size, columns=1 if size is NARROW else 3)
    return fig


def market_frame(solana: pd.Series, bitcoin: pd.Series, fear_greed: pd.Series) -> pd.DataFrame:
    """SOL close, BTC close and the Fear & Greed value side by side on the days they exist."""
    return pd.concat({"SOL": solana, "BTC": bitcoin, "Fear & Greed": fear_greed}, axis=1).sort_index()


def _last_days(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[frame.index > frame.index.max() - pd.Timedelta(days=days)]


def _span(frame: pd.DataFrame) -> str:
    return f"{frame.index.min():%Y-%m-%d}..{frame.index.max():%Y-%m-%d}"


def daily_changes(market: pd.DataFrame) -> pd.DataFrame:
    """Price returns of SOL and BTC, and the day-on-day change of Fear & Greed (already a 0-100 score)."""
    return pd.concat([market[["SOL", "BTC"]].pct_change(fill_method=None), market[["Fear & Greed"]].diff()], axis=1)


def correlation_chart(market: pd.DataFrame, days: int = 365, size: Size = NARROW) -> Figure:
    """Correlations of daily changes over the last `days` days.

    Changes, not levels: two prices that both trend over a year correlate strongly in level
    whether or not they move together from day to day.
    """
    window = _last_days(market, days)
    title = "Correlation of daily changes: SOL, BTC and Fear & Greed"
    if window.dropna(how="all").shape[0] < 3:
        return placeholder(title, "Not enough data in the store yet.", size)
    fig = _figure(size, (360, 420))
    ax = fig.add_subplot()
    labels = ["SOL", "BTC", "F&G"]
    rounded = daily_changes(window).corr().round(2) + 0.0  # adding 0.0 turns -0.0 into 0.0: no cell reads "-0.00"
    with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib 3.11 plans to deprecate
        warnings.filterwarnings("ignore", "The set_bad function", PendingDeprecationWarning)
        sns.heatmap(rounded, ax=ax, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f",
                    annot_kws={"fontsize": size.text}, square=True, cbar=False, xticklabels=labels,
                    yticklabels=labels, linewidths=1, linecolor="white")
    ax.tick_params(axis="y", rotation=0)
    # over the figure, not the square heatmap, whose axes are narrower than the chart
    fig.suptitle(size.wrap(f"{title}, {_span(window)} (UTC)", size.title), x=0.02, ha="left", fontweight="bold")
    return fig


def trend_chart(market: pd.DataFrame, days: int = 365, size: Size = NARROW) -> Figure:
    """SOL and BTC over the last `days` days indexed to 100; Fear & Greed below on its own 0-100 scale."""
    window = _last_days(market, days)
    title = "SOL and BTC indexed to 100, and Fear & Greed"
    first = window.bfill().iloc[0] if not window.empty else pd.Series(dtype=float)
    prices = [c for c in ("SOL", "BTC") if c in first and first[c] > 0]
    fear_greed = window["Fear & Greed"].dropna() if "Fear & Greed" in window else pd.Series(dtype=float)
    if not prices and fear_greed.empty:
        return placeholder(title, "Not enough data in the store yet.", size)
    fig = _figure(size, (470, 520))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1.6, 1])
    colors = {"SOL": COLORS["model"], "BTC": COLORS["btc"]}
    for column in prices:
        series = (window[column] / first[column] * 100).dropna()
        top.plot(series.index, series.to_numpy(), color=colors[column], lw=1.7, label=column)
    top.axhline(100, color=COLORS["naive"], lw=1, ls="--")
    top.set_title(size.wrap(title, size.title))
    top.set_ylabel(f"{window.index.min():%Y-%m-%d} = 100")
    top.legend(loc="upper left")
    bottom.plot(fear_greed.index, fear_greed.to_numpy(), color=COLORS["fear_greed"], lw=1.2)
    bottom.set_ylim(0, 100)
    bottom.set_ylabel("Fear & Greed")
    _date_axis(bottom)
    return fig


def fear_greed_chart(fear_greed: pd.Series, size: Size = NARROW) -> Figure:
    """The index's whole history over its labelled bands, with a 30-day mean to read the trend."""
    title = "Crypto Fear & Greed Index"
    series = fear_greed.dropna().sort_index()
    if series.empty:
        return placeholder(title, "No Fear & Greed data in the store yet.", size)
    fig = _figure(size, (330, 400))
    ax = fig.add_subplot()
    for low, high, label, fill, text in FEAR_GREED_BANDS:
        ax.axhspan(low, high, color=fill, alpha=0.10, lw=0)
        ax.text(1.01, (low + high) / 2, label.replace(" ", "\n"), transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontsize=size.small, color=text, linespacing=0.9)
    ax.plot(series.index, series.to_numpy(), color=COLORS["naive"], lw=0.7, alpha=0.8, label="daily")
    monthly = series.rolling("30D").mean()
    ax.plot(monthly.index, monthly.to_numpy(), color=COLORS["actual"], lw=2, label="30-day mean")
    ax.set_ylim(0, 100)
    ax.set_title(size.wrap(title, size.title))
    ax.set_ylabel("index (0 = extreme fear)")
    _date_axis(ax)
    _legend_below(fig, *ax.get_legend_handles_labels(), size)
    return fig


def training_chart(history: dict, size: Size = NARROW) -> Figure:
    """Loss per epoch on training and validation windows; the marked epoch is the one whose weights were kept."""
    title = "Training curves of the production model"
    loss = [float(v) for v in history.get("loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    if not loss and not val:
        return placeholder(title, "This model version has no training history.", size)
    fig = _figure(size, (330, 400))
    ax = fig.add_subplot()
    for values, label, color in ((loss, "training", COLORS["model"]), (val, "validation", COLORS["published"])):
        if values:
            ax.plot(range(1, len(values) + 1), values, color=color, marker="o" if len(values) < 30 else None,
                    markersize=3.5, label=label)
    if val:
        best = int(np.nanargmin(val)) + 1
        ax.axvline(best, color=COLORS["naive"], ls="--", lw=1.2, label=f"kept: epoch {best}")
    ax.set_title(size.wrap(title, size.title))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (lower is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")
    return fig
