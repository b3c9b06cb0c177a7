"""Walk-forward (rolling-origin) backtest, and the evaluation report built from it.

One forecast origin per day over the last `days` days; every `refit_every` origins each model is
refitted on an expanding window holding only windows whose targets were already known at that
origin (origin + HORIZON <= refit day). Baselines see the same origins, so every figure compares
like with like. Prediction intervals are split conformal on our model's log-return errors.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryptocast import evaluation
from cryptocast.dataset import HORIZON, FeatureFrame, make_windows
from cryptocast.modeling.forecasters import Forecaster

log = logging.getLogger(__name__)

INTERVAL_LEVELS = (0.8, 0.95)
MODEL = "lstm"


@dataclass
class Backtest:
    origins: pd.DatetimeIndex
    actual: np.ndarray  # (n, H) realised SOL closes
    last_close: np.ndarray  # (n,)
    forecasts: dict[str, np.ndarray]  # model name -> (n, H) price forecasts
    refits: int
    seconds: dict[str, float]


def backtest_origins(frame: FeatureFrame, days: int) -> pd.DatetimeIndex:
    """The last `days` origins whose 10-day targets are all known."""
    origins = make_windows(frame).origins
    if len(origins) < days + 60:
        raise ValueError(f"only {len(origins)} complete windows; a {days}-day backtest needs {days + 60}")
    return origins[-days:]


def walk_forward(frame: FeatureFrame, forecasters: list[Forecaster], days: int, refit_every: int) -> Backtest:
    windows = make_windows(frame)
    test = backtest_origins(frame, days)
    forecasts = {f.name: np.empty((len(test), HORIZON)) for f in forecasters}
    seconds = {f.name: 0.0 for f in forecasters}
    blocks = range(0, len(test), refit_every)
    for start in blocks:
        block = test[start : start + refit_every]
        known = windows.origins[windows.origins + pd.Timedelta(days=HORIZON) <= block[0]]
        for forecaster in forecasters:
            started = time.monotonic()
            forecaster.fit(frame, known)
            forecasts[forecaster.name][start : start + len(block)] = forecaster.predict(frame, block)
            seconds[forecaster.name] += time.monotonic() - started
        log.info("backtest: origins %s..%s, models fitted on %d windows", block[0].date(), block[-1].date(),
                 len(known))
    selected = pd.Index(windows.origins).get_indexer(test)
    last_close = windows.last_close[selected]
    actual = last_close[:, None] * np.exp(windows.y[selected])
    return Backtest(test, actual, last_close, forecasts, len(blocks), seconds)


def interval_half_widths(actual: np.ndarray, forecast: np.ndarray) -> dict[float, np.ndarray]:
    """Conformal half-widths (log space) for each level, from these errors."""
    return evaluation.conformal_intervals(np.log(actual / forecast), INTERVAL_LEVELS)


def _interval_report(bt: Backtest) -> dict:
    """Calibrate on the first half of origins, score on the second half (after a HORIZON purge)."""
    point = bt.forecasts[MODEL]
    half = len(bt.origins) // 2
    held_out = slice(half + HORIZON, None)
    widths = interval_half_widths(bt.actual[:half], point[:half])
    report = {}
    for level, width in widths.items():
        lower, upper = evaluation.apply_intervals(point[held_out], width)
        scores = evaluation.interval_scores(bt.actual[held_out], lower, upper, level)
        report[str(level)] = {"calibration_origins": half, "scored_origins": int(len(point[held_out])),
                              "half_width_log": width.tolist(), "per_horizon": scores}
    return report


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
    return float(np.mean(values)) if values else float("nan")


def report(bt: Backtest, insample: np.ndarray) -> dict:
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
        "intervals": _interval_report(bt),
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
             "h   " + " ".join(f"{n:>9}" for n in names) + "   cov80  cov95"]
    cov = {level: doc["intervals"][level]["per_horizon"] for level in doc["intervals"]}
    for h in range(doc["horizons"]):
        rel = " ".join(f"{_fmt(models[n]['per_horizon'][h]['rel_mae']):>9}" for n in names)
        lines.append(f"{h + 1:<3} {rel}   {_fmt(cov['0.8'][h]['coverage']):>5}  {_fmt(cov['0.95'][h]['coverage']):>5}")
    lines.append("mean " + " ".join(f"{_fmt(models[n]['rel_mae_mean']):>8}" for n in names))
    if doc.get("mae_reduction_vs_original") is not None:
        lines.append(f"MAE reduction vs the original system's model: {doc['mae_reduction_vs_original']:.1%}")
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
