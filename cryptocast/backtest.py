"""Walk-forward (rolling-origin) backtest, and the evaluation report built from it.

One forecast origin per day over the last `days` days; every `refit_every` origins each model is
refitted (one with `refit_blocks` = k, every k-th time) on an expanding window holding only
windows whose targets were already known at that origin (origin + HORIZON <= refit day).
Baselines see the same origins, so every figure compares like with like. Before the scored
origins our model also forecasts a warm-up year (refitted less often), only so that the quantiles
of the first scored origin already rest on a year of known outcomes; nothing of the warm-up is
scored.

Quantiles come from `modeling.calibration` (volatility-normalised, online-recalibrated conformal
scores of our model's errors), beside two interval peers around the same point forecast: the fixed
band we replaced and a textbook EWMA volatility band.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from cryptocast import evaluation
from cryptocast.dataset import HORIZON, LOOKBACK, FeatureFrame, make_windows
from cryptocast.errors import DataValidationError
from cryptocast.features import FORECAST_QUANTILES, FORECAST_RANGES
from cryptocast.modeling import calibration
from cryptocast.modeling.forecasters import Forecaster

log = logging.getLogger(__name__)

MODEL = "lstm"
INTERVAL_LEVELS = (0.8, 0.95)
TERCILES = ("calm", "middle", "wild")
_COLUMNS = list(FORECAST_QUANTILES)
RANGE_INDEX = {level: (_COLUMNS.index(lo), _COLUMNS.index(hi)) for level, (lo, hi) in FORECAST_RANGES.items()}


@dataclass
class Backtest:
    origins: pd.DatetimeIndex
    actual: np.ndarray  # (n, H) realised SOL closes
    last_close: np.ndarray  # (n,)
    forecasts: dict[str, np.ndarray]  # model name -> (n, H) price forecasts
    refits: int
    seconds: dict[str, float]
    warmup: Backtest | None = None  # our model alone at the origins before `origins`, for calibration only


class NotEnoughHistory(DataValidationError, ValueError):
    """Too little history to backtest: the training step's one line (exit 1) says how much it needs."""


def backtest_origins(frame: FeatureFrame, days: int, warmup: int = 0) -> pd.DatetimeIndex:
    """The last `days` origins whose 10-day targets are all known, preceded by up to `warmup` more."""
    origins = make_windows(frame).origins
    if len(origins) < days + 60:
        raise NotEnoughHistory(
            f"only {len(origins)} complete windows; a {days}-day backtest needs {days + 60} (60 to fit on first): "
            f"about {days + 60 + LOOKBACK + HORIZON} days of history with every input, so backfill more history or "
            "lower CRYPTOCAST_BACKTEST_DAYS")
    return origins[max(60, len(origins) - days - warmup):]


def _walk(frame: FeatureFrame, forecasters: list[Forecaster], test: pd.DatetimeIndex, refit_every: int,
          what: str) -> Backtest:
    windows = make_windows(frame)
    forecasts = {f.name: np.empty((len(test), HORIZON)) for f in forecasters}
    seconds = {f.name: 0.0 for f in forecasters}
    blocks = range(0, len(test), refit_every)
    for number, start in enumerate(blocks):
        block = test[start : start + refit_every]
        known = windows.origins[windows.origins + pd.Timedelta(days=HORIZON) <= block[0]]
        for forecaster in forecasters:
            started = time.monotonic()
            if number % getattr(forecaster, "refit_blocks", 1) == 0:
                forecaster.fit(frame, known)
            forecasts[forecaster.name][start : start + len(block)] = forecaster.predict(frame, block)
            seconds[forecaster.name] += time.monotonic() - started
        log.info("%s: origins %s..%s, models fitted on %d windows", what, block[0].date(), block[-1].date(),
                 len(known))
    selected = pd.Index(windows.origins).get_indexer(test)
    last_close = windows.last_close[selected]
    actual = last_close[:, None] * np.exp(windows.y[selected])
    return Backtest(test, actual, last_close, forecasts, len(blocks), seconds)


def walk_forward(frame: FeatureFrame, forecasters: list[Forecaster], days: int, refit_every: int,
                 warmup_days: int = 0, warmup_refit_every: int = 190) -> Backtest:
    """Every forecaster on the last `days` origins; our model (the one named MODEL) also on the warm-up."""
    origins = backtest_origins(frame, days, warmup_days)
    bt = _walk(frame, forecasters, origins[-days:], refit_every, "backtest")
    ours = [f for f in forecasters if f.name == MODEL]
    if len(origins) > days and ours:
        bt.warmup = _walk(frame, ours, origins[:-days], warmup_refit_every, "calibration warm-up")
    return bt


@dataclass
class Distributions:
    """Quantile forecasts (n, H, L) in prices at the scored origins, per interval method, and what made ours."""

    quantiles: dict[str, np.ndarray]
    sigma: np.ndarray  # (n,) `tercile_volatility` at each scored origin
    state: calibration.State  # ours after every backtest outcome: what production starts from
    warmup_origins: int


def tercile_volatility(frame: pd.DataFrame) -> pd.Series:
    """The volatility that sorts origins into calm / middle / wild, and the EWMA peer band's: RiskMetrics'
    monthly EWMA (0.97) of squared daily log returns over 120 days. Fixed here, apart from whatever the
    calibration uses, so a change of calibration cannot move the goalposts it is judged by."""
    return calibration.ewma_rms(frame["sol_log_return"] ** 2, 0.97, 120, 30)


def distributions(bt: Backtest, frame: pd.DataFrame, config: calibration.CalibrationConfig) -> Distributions:
    """Ours and the interval peers around our point forecast, each from outcomes known at its origin only.

    `frame` is the feature frame's daily table, from which each origin's volatilities are estimated.
    """
    parts = [bt.warmup, bt] if bt.warmup is not None else [bt]
    origins = pd.DatetimeIndex(np.concatenate([p.origins for p in parts]))
    point = np.concatenate([p.forecasts[MODEL] for p in parts])
    actual = np.concatenate([p.actual for p in parts])
    spread = calibration.scale(calibration.volatilities(frame, config).reindex(origins), HORIZON, config)
    sigma = tercile_volatility(frame).reindex(origins).to_numpy()
    scored = slice(len(origins) - len(bt.origins), None)
    ours, state = calibration.walk(calibration.scores(actual, point, spread), config)
    offsets = {"fixed_band": calibration.fixed_band(np.log(actual / point), calibration.CalibrationConfig()),
               "ewma_band": calibration.ewma_band(sigma, HORIZON)}
    quantiles = {"calibrated": calibration.to_prices(point, spread, ours)[scored],
                 **{name: (point[..., None] * np.exp(o))[scored] for name, o in offsets.items()}}
    return Distributions(quantiles, sigma[scored], state, len(origins) - len(bt.origins))


def terciles(sigma: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Each origin's volatility tercile (0 calm, 1 middle, 2 wild) among these origins, and the two edges."""
    edges = np.quantile(sigma, [1 / 3, 2 / 3])
    return np.searchsorted(edges, sigma, side="right"), edges.tolist()


def _distribution_report(bt: Backtest, dist: Distributions) -> dict:
    groups, edges = terciles(dist.sigma)
    methods = {}
    for name, q in dist.quantiles.items():
        if not np.isfinite(q).all():
            raise ValueError(f"{name}: no quantiles at some scored origins: the calibration warm-up is too short")
        methods[name] = evaluation.distribution_scores(bt.actual, q, calibration.LEVELS, RANGE_INDEX, groups, TERCILES)
    fixed = methods["fixed_band"]["per_horizon"]
    for doc in methods.values():
        for row, base in zip(doc["per_horizon"], fixed, strict=True):
            row["winkler_80_vs_fixed_band"] = row["winkler_80"] / base["winkler_80"]
        ratios = [r["winkler_80_vs_fixed_band"] for r in doc["per_horizon"]]
        doc["winkler_80_vs_fixed_band_h1_3"] = float(np.mean(ratios[:3]))
        doc["winkler_80_vs_fixed_band_mean"] = float(np.mean(ratios))
    return {"levels": list(calibration.LEVELS), "quantile_columns": _COLUMNS,
            "ranges": {f"{level:g}": list(pair) for level, pair in FORECAST_RANGES.items()},
            "warmup_origins": dist.warmup_origins, "volatility_tercile_edges": edges,
            "config": asdict(dist.state.config), "methods": methods}


def _interval_report(bt: Backtest, dist: Distributions) -> dict:
    """Our 80%/95% ranges in the shape the page's scoreboard reads (coverage, Winkler and width per horizon)."""
    q = dist.quantiles["calibrated"]
    report = {}
    for level in INTERVAL_LEVELS:
        lo, hi = RANGE_INDEX[level]
        report[str(level)] = {"scored_origins": len(bt.origins),
                              "per_horizon": evaluation.interval_scores(bt.actual, q[..., lo], q[..., hi], level)}
    return report


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def report(bt: Backtest, insample: np.ndarray, dist: Distributions) -> dict:
    """The evaluation report: a JSON-ready document, every model on the same origins."""
    models = {}
    for name, forecast in bt.forecasts.items():
        rows = evaluation.horizon_metrics(bt.actual, forecast, bt.last_close, insample)
        models[name] = {"per_horizon": rows, "rel_mae_mean": _mean(rows, "rel_mae"), "mae_mean": _mean(rows, "mae")}
    ours = models[MODEL]["mae_mean"]
    doc = {
        "origins": {"first": str(bt.origins[0].date()), "last": str(bt.origins[-1].date()), "count": len(bt.origins)},
        "horizons": HORIZON,
        "refits": bt.refits,
        "models": models,
        "mae_reduction_vs_original": 1 - ours / models["original"]["mae_mean"] if "original" in models else None,
        "intervals": _interval_report(bt, dist),
        "distribution": _distribution_report(bt, dist),
        "trading": evaluation.trading_check(bt.actual, bt.forecasts[MODEL], bt.last_close),
        "fit_seconds": {k: round(v, 1) for k, v in bt.seconds.items()},
    }
    return evaluation.to_jsonable(doc)


def summary_lines(doc: dict) -> list[str]:
    """A short human-readable scoreboard for the log."""
    models = doc["models"]
    names = list(models)
    lines = [f"backtest {doc['origins']['first']}..{doc['origins']['last']} ({doc['origins']['count']} origins, "
             f"{doc['refits']} refits): relative MAE vs naive (< 1 beats naive)",
             "h   " + " ".join(f"{n:>9}" for n in names)]
    for h in range(doc["horizons"]):
        lines.append(f"{h + 1:<3} " + " ".join(f"{_fmt(models[n]['per_horizon'][h]['rel_mae']):>9}" for n in names))
    lines.append("mean " + " ".join(f"{_fmt(models[n]['rel_mae_mean']):>8}" for n in names))
    if doc.get("mae_reduction_vs_original") is not None:
        lines.append(f"MAE reduction vs the original system's model: {doc['mae_reduction_vs_original']:.1%}")
    return lines + distribution_lines(doc["distribution"])


def distribution_lines(dist: dict) -> list[str]:
    """Ranges and quantiles of every interval method: coverage, interval score vs the fixed band, pinball."""
    methods = dist["methods"]
    ours = methods["calibrated"]
    lines = ["ranges around our point (nominal 0.800 / 0.950); interval score at 80% relative to the fixed band "
             "(< 1 is better); pinball loss in USD averaged over the 9 quantiles",
             "h    cov80  cov95  IS80/fixed  " + " ".join(f"{'pinball ' + n:>20}" for n in methods)]
    for h, row in enumerate(ours["per_horizon"]):
        pin = " ".join(f"{_fmt(m['per_horizon'][h]['pinball']):>20}" for m in methods.values())
        lines.append(f"{h + 1:<3} {_fmt(row['coverage_80']):>6} {_fmt(row['coverage_95']):>6} "
                     f"{_fmt(row['winkler_80_vs_fixed_band']):>11}  {pin}")
    lines.append(f"mean {_fmt(ours['coverage_80_mean']):>6} {_fmt(ours['coverage_95_mean']):>6} "
                 f"{_fmt(ours['winkler_80_vs_fixed_band_mean']):>11}  "
                 + " ".join(f"{_fmt(m['pinball_mean']):>20}" for m in methods.values()))
    for pct in ("80", "95"):
        by = {name: ours[f"coverage_{pct}_{name}_mean"] for name in TERCILES}
        lines.append(f"coverage {pct}% by the origin's volatility tercile: "
                     + ", ".join(f"{name} {_fmt(value)}" for name, value in by.items()))
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
