"""Scoring of multi-horizon price forecasts made at many forecast origins.

Array conventions shared by every function:

* ``actual`` / ``forecast``: shape ``(n_origins, H)``; column ``h - 1`` holds the
  price ``h`` days after the origin (realised / predicted).
* ``last_close``: shape ``(n_origins,)``, the last known close at each origin.  The
  naive persistence forecast repeats it for every horizon, so it is the benchmark a
  model has to beat to be worth running.
* Rows are consecutive daily origins in time order (the DM autocovariances and the
  non-overlapping trade selection rely on it).

Everything here is pure NumPy/SciPy so the evaluation can run (and be tested)
without the deep-learning stack. SciPy's stats module is imported where a test
needs it: daily inference imports this module and should not pay ~1 s for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "block_bootstrap",
    "conformal_intervals",
    "diebold_mariano",
    "distribution_scores",
    "horizon_metrics",
    "interval_scores",
    "pinball",
    "to_jsonable",
    "trading_check",
]


def _as_panel(
    actual: np.ndarray, forecast: np.ndarray, last_close: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coerce to float arrays and fail early on shape mismatches, which would
    otherwise broadcast silently into wrong numbers."""
    actual = np.asarray(actual, dtype=float)
    forecast = np.asarray(forecast, dtype=float)
    last_close = np.asarray(last_close, dtype=float)
    if actual.ndim != 2 or actual.shape != forecast.shape:
        raise ValueError(f"actual {actual.shape} and forecast {forecast.shape} must be equal 2-D")
    if last_close.shape != (actual.shape[0],):
        raise ValueError(f"last_close {last_close.shape} must be ({actual.shape[0]},)")
    return actual, forecast, last_close


def _ratio(num: float, den: float) -> float:
    """Ratio that is nan instead of inf/error when the benchmark is exactly zero."""
    return float(num / den) if den != 0 else math.nan


def _binom_greater(successes: int, trials: int) -> float:
    """One-sided exact binomial p-value for H1: success rate > 0.5 (nan if no trials)."""
    from scipy import stats

    if trials == 0:
        return math.nan
    return float(stats.binomtest(successes, trials, 0.5, alternative="greater").pvalue)


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, h: int) -> tuple[float, float]:
    """Diebold-Mariano test of equal predictive accuracy with the HLN correction.

    ``d = loss_a - loss_b``, so a negative statistic means ``a`` has the lower loss.
    The long-run variance uses autocovariances up to lag ``h - 1`` because
    ``h``-step-ahead errors from consecutive origins overlap and are MA(h-1).  The
    Harvey-Leybourne-Newbold factor ``sqrt((n + 1 - 2h + h(h-1)/n) / n)`` and a
    Student-t(n-1) reference fix the badly oversized original test in small samples.

    Degenerate cases return ``(nan, nan)`` rather than raising, so one bad horizon
    does not kill a whole report: a constant loss differential (zero variance, e.g.
    identical forecasts), fewer than two observations, or ``n`` so small relative
    to ``h`` that the HLN factor is not positive.  If the truncated long-run
    variance estimate is not positive (possible with negative autocovariances), it
    falls back to the lag-0 variance, i.e. the test ignores serial correlation.

    Returns ``(statistic, two-sided p-value)``.
    """
    d = np.asarray(loss_a, dtype=float) - np.asarray(loss_b, dtype=float)
    if d.ndim != 1:
        raise ValueError("losses must be 1-D")
    if h < 1:
        raise ValueError("h must be >= 1")
    n = d.size
    hln = (n + 1 - 2 * h + h * (h - 1) / n) / n if n else 0.0
    if n < 2 or hln <= 0 or np.ptp(d) == 0:
        return math.nan, math.nan
    dev = d - d.mean()
    gamma = [dev[k:] @ dev[: n - k] / n for k in range(min(h, n))]
    long_run_var = gamma[0] + 2 * sum(gamma[1:])
    if long_run_var <= 0:
        long_run_var = gamma[0]
    from scipy import stats

    stat = d.mean() / math.sqrt(long_run_var / n) * math.sqrt(hln)
    return float(stat), float(2 * stats.t.sf(abs(stat), df=n - 1))


def _direction(actual: np.ndarray, forecast: np.ndarray, last_close: np.ndarray) -> dict:
    """Directional hit rate; origins with no realised move carry no information
    about direction and are dropped.  A flat forecast counts as a miss."""
    moved = actual != last_close
    hits = int(np.sum(np.sign(forecast - last_close)[moved] == np.sign(actual - last_close)[moved]))
    n = int(moved.sum())
    return {
        "direction_accuracy": _ratio(hits, n),
        "direction_n": n,
        "direction_pvalue": _binom_greater(hits, n),
    }


def horizon_metrics(
    actual: np.ndarray, forecast: np.ndarray, last_close: np.ndarray, insample: np.ndarray
) -> list[dict]:
    """Per-horizon accuracy of point forecasts, each judged against persistence.

    Keys per horizon: ``horizon`` (1-based), ``mae``, ``rmse``, ``mape`` (percent),
    ``mase`` (MAE scaled by the in-sample mean absolute one-step naive difference,
    Hyndman & Koehler, m=1, so it is comparable across price levels), ``rel_mae``
    (MAE / MAE of persistence at that horizon; < 1 beats persistence),
    ``direction_accuracy`` / ``direction_n`` / ``direction_pvalue`` (ties where the
    actual equals ``last_close`` are excluded; one-sided exact binomial vs 0.5),
    ``dm_stat`` / ``dm_pvalue`` (:func:`diebold_mariano` on **absolute-error** loss,
    model minus persistence, so negative = model better; p-value two-sided).
    Ratios with a zero denominator are nan.
    """
    actual, forecast, last_close = _as_panel(actual, forecast, last_close)
    insample = np.asarray(insample, dtype=float)
    if insample.ndim != 1 or insample.size < 2:
        raise ValueError("insample must be 1-D with at least two points")
    scale = float(np.mean(np.abs(np.diff(insample))))
    rows = []
    for i in range(actual.shape[1]):
        y, f = actual[:, i], forecast[:, i]
        abs_err, naive_abs_err = np.abs(y - f), np.abs(y - last_close)
        mae = float(abs_err.mean())
        dm_stat, dm_pvalue = diebold_mariano(abs_err, naive_abs_err, h=i + 1)
        rows.append(
            {
                "horizon": i + 1,
                "mae": mae,
                "rmse": float(np.sqrt(np.mean((y - f) ** 2))),
                "mape": float(100 * np.mean(abs_err / np.abs(y))),
                "mase": _ratio(mae, scale),
                "rel_mae": _ratio(mae, float(naive_abs_err.mean())),
                **_direction(y, f, last_close),
                "dm_stat": dm_stat,
                "dm_pvalue": dm_pvalue,
            }
        )
    return rows


def conformal_intervals(
    calib_log_errors: np.ndarray, levels: Sequence[float] = (0.8, 0.95)
) -> dict[float, np.ndarray]:
    """Split-conformal half-widths, in log space, per horizon.

    ``calib_log_errors`` has shape ``(n_calib, H)`` and holds
    ``log(actual / forecast)`` on a calibration set not used for fitting.  For each
    level the half-width is the ``k``-th smallest ``|error|`` with
    ``k = ceil((n + 1) * level)``, i.e. the empirical quantile at level ``k / n``;
    this finite-sample correction gives coverage >= level for exchangeable data.
    When ``k > n`` the calibration set is too small to guarantee the level and the
    half-width is ``inf`` (an unbounded interval) rather than a silently too-narrow
    maximum.  A 1e-9 tolerance keeps float noise such as ``100 * 0.55 = 55.000...01``
    from bumping ``k`` by one.

    Returns ``{level: array of shape (H,)}``.
    """
    scores = np.sort(np.abs(np.asarray(calib_log_errors, dtype=float)), axis=0)
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise ValueError("calib_log_errors must be 2-D (n_calib, H) with n_calib >= 1")
    n = scores.shape[0]
    widths = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        k = math.ceil((n + 1) * level - 1e-9)
        widths[level] = scores[k - 1] if k <= n else np.full(scores.shape[1], np.inf)
    return widths


def interval_scores(
    actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float
) -> list[dict]:
    """Per-horizon calibration and sharpness of prediction intervals.

    ``coverage`` is the share of actuals inside ``[lower, upper]`` (inclusive);
    ``winkler`` is the mean interval score ``width + (2/alpha) * miss distance``
    with ``alpha = 1 - level``, which rewards narrow intervals but penalises misses
    enough that honest coverage is optimal; ``mean_width`` is reported so coverage
    gains can be weighed against width.  Inputs share shape ``(n_origins, H)``.
    """
    actual = np.asarray(actual, dtype=float)
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if not (actual.ndim == 2 and actual.shape == lower.shape == upper.shape):
        raise ValueError("actual, lower and upper must share a 2-D shape")
    penalty = 2 / (1 - level)
    width = upper - lower
    score = (
        width
        + penalty * np.clip(lower - actual, 0, None)
        + penalty * np.clip(actual - upper, 0, None)
    )
    covered = (actual >= lower) & (actual <= upper)
    return [
        {
            "horizon": i + 1,
            "coverage": float(covered[:, i].mean()),
            "winkler": float(score[:, i].mean()),
            "mean_width": float(width[:, i].mean()),
        }
        for i in range(actual.shape[1])
    ]


def pinball(actual: np.ndarray, quantiles: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Mean pinball (quantile) loss per horizon, averaged over the levels; shape (H,).

    ``quantiles`` has shape ``(n_origins, H, L)``.  For level tau the loss is
    ``max(tau * (y - q), (tau - 1) * (y - q))``: a proper scoring rule whose
    average over many levels approximates the CRPS, so it judges the whole
    distribution, not only its ranges.
    """
    diff = np.asarray(actual, dtype=float)[..., None] - np.asarray(quantiles, dtype=float)
    tau = np.asarray(levels, dtype=float)
    return np.maximum(tau * diff, (tau - 1) * diff).mean(axis=(0, 2))


def distribution_scores(
    actual: np.ndarray,
    quantiles: np.ndarray,
    levels: Sequence[float],
    ranges: dict[float, tuple[int, int]],
    groups: np.ndarray,
    group_names: Sequence[str],
) -> dict:
    """Per-horizon scores of quantile forecasts, and coverage within groups of origins.

    ``ranges`` maps a central level to the (lower, upper) indices of its quantiles
    in ``levels``; ``groups`` gives each origin's group index (e.g. its volatility
    tercile) into ``group_names``.  Per horizon: ``pinball`` (see :func:`pinball`),
    and per range ``coverage_<pct>``, ``winkler_<pct>`` and ``width_<pct>`` as in
    :func:`interval_scores`, plus ``coverage_<pct>_by_<group>`` for every group.
    """
    actual = np.asarray(actual, dtype=float)
    quantiles = np.asarray(quantiles, dtype=float)
    groups = np.asarray(groups)
    rows = [{"horizon": h + 1} for h in range(actual.shape[1])]
    for h, value in enumerate(pinball(actual, quantiles, levels)):
        rows[h]["pinball"] = float(value)
    for level, (lo, hi) in ranges.items():
        pct = f"{level * 100:g}"
        scored = interval_scores(actual, quantiles[..., lo], quantiles[..., hi], level)
        covered = (actual >= quantiles[..., lo]) & (actual <= quantiles[..., hi])
        for h, row in enumerate(scored):
            rows[h][f"coverage_{pct}"] = row["coverage"]
            rows[h][f"winkler_{pct}"] = row["winkler"]
            rows[h][f"width_{pct}"] = row["mean_width"]
            for g, name in enumerate(group_names):
                inside = covered[groups == g, h]
                rows[h][f"coverage_{pct}_{name}"] = float(inside.mean()) if inside.size else math.nan
    return {"per_horizon": rows, **{f"{key}_mean": float(np.mean([r[key] for r in rows]))
                                    for key in rows[0] if key != "horizon"}}


def block_bootstrap(statistic: Callable[[np.ndarray], Any], n: int, block: int = 20, reps: int = 1000,
                    level: float = 0.9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of `statistic` under the circular block bootstrap of `n` consecutive origins.

    `statistic` maps the indices of one resample (n,) to a number or an array (e.g. coverage per
    horizon). Each resample strings together blocks of `block` consecutive origins, each starting
    anywhere and wrapping round the end (Politis & Romano's circular bootstrap), so the serial
    dependence within a block survives: outcomes 10 days ahead from consecutive origins overlap, and
    resampling single origins would make an interval far too narrow. Seeded: the same call gives the
    same interval. Returns (lower, upper) at the central `level`.
    """
    if not 1 <= block <= n:
        raise ValueError(f"block must be in 1..{n}, got {block}")
    rng = np.random.default_rng(seed)
    blocks = -(-n // block)
    starts = rng.integers(0, n, (reps, blocks))
    indices = ((starts[:, :, None] + np.arange(block)[None, None, :]) % n).reshape(reps, -1)[:, :n]
    draws = np.asarray([statistic(i) for i in indices], dtype=float)
    tail = (1 - level) / 2
    return np.quantile(draws, tail, axis=0), np.quantile(draws, 1 - tail, axis=0)


def trading_check(actual: np.ndarray, forecast: np.ndarray, last_close: np.ndarray) -> list[dict]:
    """Would trading the forecast direction have made money, per horizon?

    At horizon ``h`` the position is long if ``forecast > last_close``, short if
    below, flat if equal, held from the origin close to the close ``h`` days later:
    ``r = sign * (actual_h / last_close - 1)``.  Only every ``h``-th origin
    (rows 0, h, 2h, ...) is used so holding periods do not overlap and returns can
    be compounded: ``cumulative_return = prod(1 + r) - 1``.  ``buy_and_hold_return``
    compounds ``actual_h / last_close`` over the same selected periods (flat ones
    included, since buy-and-hold is always invested).  ``n_trades`` counts non-flat
    positions; ``hit_rate`` is the share of them with ``r > 0`` (a zero-return trade
    is not a hit); ``hit_pvalue`` is the one-sided exact binomial p-value vs 0.5.
    Rate and p-value are nan with no trades.
    """
    actual, forecast, last_close = _as_panel(actual, forecast, last_close)
    rows = []
    for i in range(actual.shape[1]):
        h = i + 1
        gross = actual[::h, i] / last_close[::h]
        position = np.sign(forecast[::h, i] - last_close[::h])
        returns = position * (gross - 1)
        n_trades = int(np.count_nonzero(position))
        hits = int(np.sum(returns > 0))
        rows.append(
            {
                "horizon": h,
                "cumulative_return": float(np.prod(1 + returns) - 1),
                "buy_and_hold_return": float(np.prod(gross) - 1),
                "hit_rate": _ratio(hits, n_trades),
                "n_trades": n_trades,
                "hit_pvalue": _binom_greater(hits, n_trades),
            }
        )
    return rows


def to_jsonable(obj: Any) -> Any:
    """Recursively convert NumPy values to plain Python for strict ``json.dumps``.

    Non-finite floats (nan, +-inf) become ``None`` because strict JSON
    (``allow_nan=False``) has no representation for them.  Dict keys that are
    NumPy scalars become Python scalars.
    """
    if isinstance(obj, dict):
        return {to_jsonable(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
