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
BOOTSTRAP_BLOCK = 20  # origins per bootstrap block: twice the 10 days over which two outcomes overlap
BOOTSTRAP_REPS = 1000
GARCH = calibration.CalibrationConfig(scale_kind="garch")  # the textbook peer's fit
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


def blocks(n: int, first: int, every: int) -> list[int]:
    """Refit starts over n consecutive origins, every `every`, aligned so that one starts at index `first`
    (the first scored origin): the scale is refitted on the same walk-forward blocks as the models."""
    return sorted({0, *range(first % every, n, every)})


def peer_offsets(frame: pd.DataFrame, origins: pd.DatetimeIndex, actual: np.ndarray, point: np.ndarray,
                 starts: list[int]) -> dict[str, np.ndarray]:
    """The reference bands around `point` at consecutive `origins`, as log offsets (n, H, L), each from what is
    known at its origin: the fixed band, the EWMA band, and GARCH(1,1)-t refitted at every block start."""
    sigma = tercile_volatility(frame).reindex(origins).to_numpy()
    spread, fits = calibration.block_spreads(frame, origins, GARCH, starts, HORIZON)
    nu = np.concatenate([np.full(stop - start, fit.garch_nu)
                         for fit, start, stop in zip(fits, starts, [*starts[1:], len(origins)], strict=True)])
    return {"fixed_band": calibration.fixed_band(np.log(actual / point), calibration.CalibrationConfig()),
            "ewma_band": calibration.ewma_band(sigma, HORIZON),
            "garch_t_band": calibration.garch_band(spread, nu)}


def distributions(bt: Backtest, frame: pd.DataFrame, config: calibration.CalibrationConfig,
                  refit_every: int = 30) -> Distributions:
    """Ours and the interval peers around our point forecast, each from outcomes known at its origin only.

    `frame` is the feature frame's daily table, from which each origin's volatilities are estimated;
    the scale's parameters (and GARCH's) are refitted at the start of every block of `refit_every`
    origins, as the models are. The state production starts from carries the scale fitted on all of
    `frame`.
    """
    parts = [bt.warmup, bt] if bt.warmup is not None else [bt]
    origins = pd.DatetimeIndex(np.concatenate([p.origins for p in parts]))
    point = np.concatenate([p.forecasts[MODEL] for p in parts])
    actual = np.concatenate([p.actual for p in parts])
    warmup = len(origins) - len(bt.origins)
    starts = blocks(len(origins), warmup, refit_every)
    spread, _ = calibration.block_spreads(frame, origins, config, starts, HORIZON)
    sigma = tercile_volatility(frame).reindex(origins).to_numpy()
    scored = slice(warmup, None)
    ours, state = calibration.walk(calibration.scores(actual, point, spread), config, spread)
    state.config = calibration.fit_scale(config, frame, frame.index[-1], HORIZON)
    offsets = peer_offsets(frame, origins, actual, point, starts)
    quantiles = {"calibrated": calibration.to_prices(point, spread, ours)[scored],
                 **{name: (point[..., None] * np.exp(o))[scored] for name, o in offsets.items()}}
    return Distributions(quantiles, sigma[scored], state, warmup)


def score_intervals(actual: np.ndarray, quantiles: np.ndarray, groups: np.ndarray, fixed: np.ndarray,
                    garch: np.ndarray | None) -> dict:
    """Coverage of the 80% and 95% ranges (mean over horizons, per horizon, per volatility tercile), the
    80% interval score over the fixed band's (per horizon, h = 1-3, mean) and the pinball loss over the
    fixed and the GARCH-t bands', each as [estimate, lower, upper] with the 90% block-bootstrap interval
    (`evaluation.block_bootstrap`, blocks of BOOTSTRAP_BLOCK origins) over these consecutive origins.
    Without a GARCH band (a report built from other methods only) its ratio is None."""
    n, horizons = actual.shape
    onehot = (np.asarray(groups)[:, None] == np.arange(len(TERCILES))[None, :]).astype(float)
    columns = []
    for level in INTERVAL_LEVELS:
        lo, hi = RANGE_INDEX[level]
        inside = ((actual >= quantiles[..., lo]) & (actual <= quantiles[..., hi])).astype(float)
        columns += [inside, onehot * inside.mean(axis=1, keepdims=True)]
    columns += [onehot, _winkler(actual, quantiles), _winkler(actual, fixed),
                *(_pinball_rows(actual, q)[:, None] for q in (quantiles, fixed, quantiles if garch is None else garch))]
    rows = np.concatenate(columns, axis=1)
    h, t = horizons, len(TERCILES)
    cut = np.cumsum([h, t, h, t, t, h, h, 1, 1])

    def stat(i: np.ndarray) -> np.ndarray:
        s = rows[i].sum(axis=0)
        cov80, terc80, cov95, terc95, count, w_ours, w_fixed, p_ours, p_fixed, p_garch = np.split(s, cut)
        ratio = w_ours / w_fixed
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.concatenate([[cov80.mean() / len(i)], cov80 / len(i), terc80 / count,
                                   [cov95.mean() / len(i)], cov95 / len(i), terc95 / count,
                                   ratio, [ratio[:3].mean(), ratio.mean()], p_ours / p_fixed, p_ours / p_garch])

    low, high = evaluation.block_bootstrap(stat, n, min(BOOTSTRAP_BLOCK, n), BOOTSTRAP_REPS)
    triples = [[float(v), float(a), float(b)] for v, a, b in zip(stat(np.arange(n)), low, high, strict=True)]
    out = {}
    for level in INTERVAL_LEVELS:
        pct = f"{level * 100:g}"
        out[f"coverage_{pct}"] = {"mean": triples.pop(0), "by_horizon": [triples.pop(0) for _ in range(h)],
                                  **{name: triples.pop(0) for name in TERCILES}}
    out["winkler_80_vs_fixed_band"] = {"by_horizon": [triples.pop(0) for _ in range(h)], "h1_3": triples.pop(0),
                                       "mean": triples.pop(0)}
    out["pinball_vs_fixed_band"], out["pinball_vs_garch_t_band"] = triples
    if garch is None:
        out["pinball_vs_garch_t_band"] = None
    return out


def _winkler(actual: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(n, H) the interval score of the 80% range at each origin and horizon."""
    lo, hi = RANGE_INDEX[0.8]
    lower, upper = quantiles[..., lo], quantiles[..., hi]
    return upper - lower + 10 * (np.clip(lower - actual, 0, None) + np.clip(actual - upper, 0, None))


def _pinball_rows(actual: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(n,) each origin's pinball loss, averaged over horizons and levels."""
    diff = actual[..., None] - quantiles
    tau = np.asarray(calibration.LEVELS)
    return np.maximum(tau * diff, (tau - 1) * diff).mean(axis=(1, 2))


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
    for name, doc in methods.items():
        for row, base in zip(doc["per_horizon"], fixed, strict=True):
            row["winkler_80_vs_fixed_band"] = row["winkler_80"] / base["winkler_80"]
        ratios = [r["winkler_80_vs_fixed_band"] for r in doc["per_horizon"]]
        doc["winkler_80_vs_fixed_band_h1_3"] = float(np.mean(ratios[:3]))
        doc["winkler_80_vs_fixed_band_mean"] = float(np.mean(ratios))
        doc["intervals"] = score_intervals(bt.actual, dist.quantiles[name], groups, dist.quantiles["fixed_band"],
                                           dist.quantiles.get("garch_t_band"))
    return {"levels": list(calibration.LEVELS), "quantile_columns": _COLUMNS,
            "ranges": {f"{level:g}": list(pair) for level, pair in FORECAST_RANGES.items()},
            "warmup_origins": dist.warmup_origins, "volatility_tercile_edges": edges,
            "bootstrap": {"block": BOOTSTRAP_BLOCK, "reps": BOOTSTRAP_REPS, "level": 0.9},
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


def report(bt: Backtest, insample: np.ndarray, dist: Distributions, choice: dict | None = None) -> dict:
    """The evaluation report: a JSON-ready document, every model on the same origins; `choice` is how the
    published ranges were chosen (`ranges.summary`), kept with it."""
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
        "distribution": {**_distribution_report(bt, dist), "choice": choice},
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
