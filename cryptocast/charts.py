"""The dashboard's charts, in one style, readable on a phone.

Every chart takes plain frames or dicts (never the store), so tests can feed it edge cases, and
returns a `matplotlib.figure.Figure`. Figures are created directly, not through pyplot, so none
stays registered in a global figure manager: there is nothing to close and nothing accumulates
when a run draws many charts. `png_bytes` turns a figure into the file's bytes.

Dates are UTC days stored as naive timestamps; the axis is formatted in UTC and says so.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
import warnings

import matplotlib
import matplotlib.dates as mdates
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullLocator,
    PercentFormatter,
)

from cryptocast.forecasts import V1_AS_QUANTILES

WIDTH = 5.6  # inches: ~730 px at DPI, shown at half size on a phone, where 12 pt ticks are still ~11 CSS px
HEIGHT = 3.8
DPI = 130
HORIZONS = range(1, 11)
FORECAST_HISTORY_DAYS = 60
COLORS = {
    "actual": "#222222",
    "model": "#1f5fa8",
    "backtest": "#1f5fa8",
    "published": "#d9480f",
    "naive": "#868e96",
    "btc": "#e8890c",
    "fear_greed": "#2b8a3e",
    "band80": "#1f5fa8",
    "band95": "#a5c8ec",
}
SOURCES = {"published": "published", "backtest": "walk-forward backtest, out of sample"}
SCORED_COLUMNS = ("forecast_day", "target_day", "horizon", "point", "naive", "actual", "source")
MODEL_LABELS = {"lstm": "our LSTM", "naive": "naive (persistence)", "drift": "random walk + drift",
                "original": "original system's model"}
MODEL_COLORS = {"lstm": COLORS["model"], "naive": COLORS["naive"], "drift": "#7048e8", "original": "#c92a2a"}
FINE_RATIO_TICKS = (0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6)
COARSE_RATIO_TICKS = (0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3)
RATIO_CAP = 3.0  # the original system's model reaches 10-20x naive on some horizons; above this it is cut off
FEAR_GREED_BANDS = ((0, 25, "Extreme fear", "#e03131"), (25, 46, "Fear", "#f08c00"), (46, 55, "Neutral", "#868e96"),
                    (55, 75, "Greed", "#74b816"), (75, 100, "Extreme greed", "#2b8a3e"))


def use_style() -> None:
    """The one place the look is set, so every chart (and any future one) matches."""
    matplotlib.use("Agg")
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.15)
    matplotlib.rcParams.update({
        "figure.figsize": (WIDTH, HEIGHT),
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "timezone": "UTC",
        "axes.titlesize": 14,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "axes.labelsize": 12.5,
        "xtick.labelsize": 12,
        "ytick.labelsize": 12,
        "legend.fontsize": 11,
        "legend.frameon": False,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "lines.linewidth": 2.0,
    })


def _figure(height: float = HEIGHT) -> Figure:
    use_style()
    return Figure(figsize=(WIDTH, height), layout="constrained")


def png_bytes(fig: Figure) -> bytes:
    """PNG without the matplotlib version stamp, so an unchanged chart is an unchanged file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def placeholder(title: str, message: str) -> Figure:
    """A readable "nothing to show yet" card, so the page never has a hole or a broken chart."""
    fig = _figure(2.2)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.45, textwrap.fill(message, 48), ha="center", va="center", transform=ax.transAxes,
            fontsize=13.5, color="#495057")
    return fig


def _date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6, tz=dt.UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=dt.UTC, show_offset=False))
    ax.set_xlabel("date (UTC)")


def _money_axis(ax: Axes) -> None:
    """Dollar ticks with as many decimals as the visible range needs ($0.50 steps need cents, $50 steps do not)."""
    def label(value: float, _position: int) -> str:
        low, high = ax.get_ylim()
        decimals = 0 if high - low >= 20 else 1 if high - low >= 2 else 2
        return f"${value:,.{decimals}f}"

    ax.yaxis.set_major_formatter(FuncFormatter(label))


def _legend_below(fig: Figure, ax: Axes) -> None:
    """Under the plot, where on a narrow screen it can never hide the data."""
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=10.5, handlelength=1.4,
               columnspacing=1.2)


def forecast_chart(closes: pd.Series, forecast: pd.DataFrame | None, days: int = FORECAST_HISTORY_DAYS) -> Figure:
    """SOL closes (indexed by day) for the last `days` days and one forecast's rows, bands drawn from its origin."""
    title = f"SOL: last {days} days and the 10-day forecast"
    has_forecast = forecast is not None and not forecast.empty
    if closes.empty and not has_forecast:
        return placeholder(title, "No SOL prices in the store yet: run feature_backfill.py.")
    fig = _figure()
    ax = fig.add_subplot()
    recent = closes.sort_index().iloc[-days:]
    ax.plot(recent.index, recent.to_numpy(), color=COLORS["actual"], label="SOL close")
    if has_forecast:
        rows = forecast.sort_values("horizon")
        origin = rows["forecast_day"].iloc[0]
        anchor = closes.get(origin)
        x = list(rows["target_day"])
        columns = {c: list(rows[V1_AS_QUANTILES.get(c, c)]) for c in ("point", *V1_AS_QUANTILES)}
        if anchor is not None and np.isfinite(anchor):  # bands widen from the known close at the origin
            x = [origin, *x]
            columns = {c: [float(anchor), *v] for c, v in columns.items()}
        ax.fill_between(x, columns["lower_95"], columns["upper_95"], color=COLORS["band95"], alpha=0.45, lw=0,
                        label="95% range")
        ax.fill_between(x, columns["lower_80"], columns["upper_80"], color=COLORS["band80"], alpha=0.3, lw=0,
                        label="80% range")
        ax.plot(x, columns["point"], color=COLORS["model"], marker="o", markersize=3.5, label="forecast")
        ax.axvline(origin, color=COLORS["naive"], ls=":", lw=1.2)
    else:
        ax.text(0.02, 0.04, "no forecast yet", transform=ax.transAxes, color="#495057", fontsize=12)
    ax.set_title(title)
    ax.set_ylabel("SOL close")
    _money_axis(ax)
    _date_axis(ax)
    _legend_below(fig, ax)
    return fig


def score_published(forecasts: pd.DataFrame, closes: pd.Series) -> pd.DataFrame:
    """Published forecasts whose outcome is known, beside naive persistence (the close on the forecast day)."""
    out = forecasts[["forecast_day", "target_day", "horizon", "point"]].copy()
    out["naive"] = out["forecast_day"].map(closes).astype(float)
    out["actual"] = out["target_day"].map(closes).astype(float)
    out["source"] = "published"
    return out.dropna(subset=["naive", "actual"]).reset_index(drop=True)[list(SCORED_COLUMNS)]


def score_backtest(rows: pd.DataFrame) -> pd.DataFrame:
    """The training artifact `backtest_forecasts.csv` in the same shape as `score_published`."""
    out = rows[["forecast_day", "target_day", "horizon", "point", "naive", "actual"]].copy()
    for column in ("forecast_day", "target_day"):
        out[column] = pd.to_datetime(out[column], format="%Y-%m-%d")
    out["horizon"] = out["horizon"].astype(int)
    for column in ("point", "naive", "actual"):
        out[column] = out[column].astype(float)
    out["source"] = "backtest"
    return out.dropna().reset_index(drop=True)[list(SCORED_COLUMNS)]


def empty_scored() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in SCORED_COLUMNS})


def hindcast_summary(scored: pd.DataFrame, horizon: int) -> dict[str, dict]:
    """Per source: how many forecasts at this horizon were scored, their span, and MAE vs naive's."""
    summary = {}
    for source in SOURCES:
        rows = scored[(scored["horizon"] == horizon) & (scored["source"] == source)]
        if rows.empty:
            continue
        summary[source] = {
            "n": int(len(rows)),
            "first_target_day": rows["target_day"].min().strftime("%Y-%m-%d"),
            "last_target_day": rows["target_day"].max().strftime("%Y-%m-%d"),
            "mae": float((rows["point"] - rows["actual"]).abs().mean()),
            "naive_mae": float((rows["naive"] - rows["actual"]).abs().mean()),
        }
    return summary


def hindcast_chart(scored: pd.DataFrame, horizon: int) -> Figure:
    """Forecasts `horizon` days ahead vs the actual close, and the running MAE of model and naive per source."""
    title = f"{horizon} day{'s' if horizon > 1 else ''} ahead: forecast vs actual close"
    rows = scored[scored["horizon"] == horizon].sort_values("target_day")
    if rows.empty:
        return placeholder(title, "No scored forecasts yet: a forecast is scored once the close of its target "
                                  "day is in the store.")
    fig = _figure(6.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1.2])
    actual = rows.drop_duplicates("target_day").set_index("target_day")["actual"]
    top.plot(actual.index, actual.to_numpy(), color=COLORS["actual"], lw=1.6, label="actual close")
    for source in SOURCES:
        part = rows[rows["source"] == source]
        if part.empty:
            continue
        color, few = COLORS[source], len(part) < 40
        top.plot(part["target_day"], part["point"], color=color, lw=1.3, marker="o" if few else None,
                 markersize=4, ls="-" if few else "--", label=f"forecast, {SOURCES[source]}")
        days = part["target_day"].to_numpy()
        bottom.plot(days, (part["naive"] - part["actual"]).abs().expanding().mean().to_numpy(),
                    color=COLORS["naive"], lw=5, alpha=0.45, solid_capstyle="butt")
        bottom.plot(days, (part["point"] - part["actual"]).abs().expanding().mean().to_numpy(), color=color, lw=1.8)
    top.set_title(title)
    top.set_ylabel("SOL close")
    _money_axis(top)
    bottom.set_title("Running MAE: model (colour) vs naive (wide grey)", fontsize=12, fontweight="normal")
    bottom.set_ylabel("MAE")
    bottom.set_ylim(bottom=0)
    _money_axis(bottom)
    _date_axis(bottom)
    fig.legend(*top.get_legend_handles_labels(), loc="outside lower center", ncol=1, fontsize=10.5)
    return fig


def _per_horizon(rows: list[dict], key: str) -> list[float]:
    by_horizon = {int(r["horizon"]): r.get(key) for r in rows}
    return [np.nan if by_horizon.get(h) is None else float(by_horizon[h]) for h in HORIZONS]


def scoreboard_chart(evaluation: dict) -> Figure:
    """Relative MAE vs naive per horizon for every backtested model; interval coverage vs nominal below it."""
    intervals = evaluation.get("intervals") or {}
    fig = _figure(8.2 if intervals else HEIGHT + 1.2)
    axes = fig.subplots(2, 1, height_ratios=[1.4, 1]) if intervals else [fig.add_subplot()]
    ax = axes[0]
    values = []
    models = evaluation["models"]
    for name in [n for n in MODEL_LABELS if n in models] + [n for n in models if n not in MODEL_LABELS]:
        rel = _per_horizon(models[name]["per_horizon"], "rel_mae")
        shown = [v for v in rel if np.isfinite(v) and v > 0]
        values += shown
        label = MODEL_LABELS.get(name, name)
        if max(shown, default=0) > RATIO_CAP:
            label += f" (up to {max(shown):.1f}: cut off)"
        ax.plot(list(HORIZONS), rel, marker="o", markersize=4, color=MODEL_COLORS.get(name),
                ls=":" if name == "naive" else "-", label=label)
    ax.set_yscale("log")
    low, high = min(values + [0.9]) * 0.95, min(max(values + [1.1]) * 1.05, RATIO_CAP)
    ticks = FINE_RATIO_TICKS if high / low < 1.8 else COARSE_RATIO_TICKS
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if low <= t <= high]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _position: f"{value:g}"))
    ax.set_ylim(low, high)
    ax.set_title("Relative MAE vs naive (< 1 beats naive)")
    ax.set_ylabel("relative MAE (log)")
    ax.set_xticks(list(HORIZONS))
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.12), ncol=1, fontsize=10)
    if intervals:
        _coverage(axes[1], intervals)
    else:
        ax.set_xlabel("days ahead")
    return fig


def _coverage(ax: Axes, intervals: dict) -> None:
    lowest = 0.5
    for level, color in (("0.8", COLORS["band80"]), ("0.95", COLORS["btc"])):
        if level not in intervals:
            continue
        coverage = _per_horizon(intervals[level]["per_horizon"], "coverage")
        ax.plot(list(HORIZONS), coverage, marker="o", markersize=4, color=color, label=f"{float(level):.0%} range")
        ax.axhline(float(level), color=color, ls="--", lw=1.2)
        lowest = min([lowest, *(c - 0.05 for c in coverage if np.isfinite(c))])
    ax.set_ylim(lowest, 1.01)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title("Share of outcomes inside the range (dashed: target)", fontsize=12, fontweight="normal")
    ax.set_ylabel("coverage")
    ax.set_xticks(list(HORIZONS))
    ax.set_xlabel("days ahead")
    ax.legend(loc="lower left", fontsize=10)


def market_frame(solana: pd.Series, bitcoin: pd.Series, fear_greed: pd.Series) -> pd.DataFrame:
    """SOL close, BTC close and the Fear & Greed value side by side on the days they exist."""
    return pd.concat({"SOL": solana, "BTC": bitcoin, "Fear & Greed": fear_greed}, axis=1).sort_index()


def _last_days(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    if frame.empty:
        return frame
    return frame[frame.index > frame.index.max() - pd.Timedelta(days=days)]


def _span(frame: pd.DataFrame) -> str:
    return f"{frame.index.min():%Y-%m-%d}..{frame.index.max():%Y-%m-%d}"


def correlation_chart(market: pd.DataFrame, days: int = 365) -> Figure:
    """Correlations of daily changes (price returns, index points) and of levels, over the last `days` days."""
    window = _last_days(market, days)
    title = "Correlation of SOL, BTC and Fear & Greed"
    if window.dropna(how="all").shape[0] < 3:
        return placeholder(title, "Not enough data in the store yet.")
    changes = pd.concat([window[["SOL", "BTC"]].pct_change(fill_method=None), window[["Fear & Greed"]].diff()],
                        axis=1)
    fig = _figure(3.3)
    axes = fig.subplots(1, 2)
    labels = ["SOL", "BTC", "F&G"]
    for ax, data, name in ((axes[0], changes, "daily changes"), (axes[1], window, "levels")):
        rounded = data.corr().round(2) + 0.0  # adding 0.0 turns -0.0 into 0.0: no cell reads "-0.00"
        with warnings.catch_warnings():  # seaborn 0.13 calls a colormap method matplotlib 3.11 plans to deprecate
            warnings.filterwarnings("ignore", "The set_bad function", PendingDeprecationWarning)
            sns.heatmap(rounded, ax=ax, vmin=-1, vmax=1, center=0, cmap="vlag", annot=True, fmt=".2f",
                        annot_kws={"fontsize": 13}, square=True, cbar=False, xticklabels=labels, yticklabels=labels,
                        linewidths=1, linecolor="white")
        ax.set_title(name, fontsize=12.5, fontweight="normal")
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle(f"{title}\n{_span(window)} (UTC)", fontsize=13.5, fontweight="bold", x=0.02, ha="left")
    return fig


def trend_chart(market: pd.DataFrame, days: int = 365) -> Figure:
    """The three series over the last `days` days, each divided by its first value there, times 100."""
    window = _last_days(market, days)
    title = "SOL, BTC and Fear & Greed, indexed to 100"
    first = window.bfill().iloc[0] if not window.empty else pd.Series(dtype=float)
    columns = [c for c in ("SOL", "BTC", "Fear & Greed") if c in first and first[c] > 0]
    if not columns:
        return placeholder(title, "Not enough data in the store yet.")
    fig = _figure()
    ax = fig.add_subplot()
    colors = {"SOL": COLORS["model"], "BTC": COLORS["btc"], "Fear & Greed": COLORS["fear_greed"]}
    for column in columns:
        series = (window[column] / first[column] * 100).dropna()
        ax.plot(series.index, series.to_numpy(), color=colors[column], lw=1.7, label=column)
    ax.axhline(100, color=COLORS["naive"], lw=1, ls="--")
    ax.set_title(title)
    ax.set_ylabel(f"{window.index.min():%Y-%m-%d} = 100")
    _date_axis(ax)
    _legend_below(fig, ax)
    return fig


def fear_greed_chart(fear_greed: pd.Series) -> Figure:
    """The index's whole history over its labelled bands, with a 30-day mean to read the trend."""
    title = "Crypto Fear & Greed Index"
    series = fear_greed.dropna().sort_index()
    if series.empty:
        return placeholder(title, "No Fear & Greed data in the store yet.")
    fig = _figure()
    ax = fig.add_subplot()
    for low, high, label, color in FEAR_GREED_BANDS:
        ax.axhspan(low, high, color=color, alpha=0.10, lw=0)
        ax.text(1.01, (low + high) / 2, label.replace(" ", "\n"), transform=ax.get_yaxis_transform(), ha="left",
                va="center", fontsize=10, color=color, linespacing=0.9)
    ax.plot(series.index, series.to_numpy(), color=COLORS["naive"], lw=0.7, alpha=0.8, label="daily")
    monthly = series.rolling("30D").mean()
    ax.plot(monthly.index, monthly.to_numpy(), color=COLORS["actual"], lw=2, label="30-day mean")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.set_ylabel("index (0 = extreme fear)")
    _date_axis(ax)
    _legend_below(fig, ax)
    return fig


def training_chart(history: dict) -> Figure:
    """Loss per epoch on training and validation windows; the marked epoch is the one whose weights were kept."""
    title = "Training curves of the production model"
    loss = [float(v) for v in history.get("loss", [])]
    val = [float(v) for v in history.get("val_loss", [])]
    if not loss and not val:
        return placeholder(title, "This model version has no training history.")
    fig = _figure()
    ax = fig.add_subplot()
    for values, label, color in ((loss, "training", COLORS["model"]), (val, "validation", COLORS["published"])):
        if values:
            ax.plot(range(1, len(values) + 1), values, color=color, marker="o" if len(values) < 30 else None,
                    markersize=3.5, label=label)
    if val:
        best = int(np.nanargmin(val)) + 1
        ax.axvline(best, color=COLORS["naive"], ls="--", lw=1.2, label=f"kept: epoch {best}")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (lower is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")
    return fig
