"""Forecast quantiles that stay calibrated when the market changes.

A forecast's log error `log(actual / point)` is divided by a power of the volatility known at its
origin (an exponentially weighted RMS of SOL's daily log returns) times sqrt(horizon): in a calm
week and in a crash these normalised scores look alike, so their quantiles, times today's scale,
give ranges that widen and narrow with the market. The power is below 1 (0.75 at one day, 0.5 at
ten) because volatility mean-reverts: full normalisation over-reacts. Ranges are read from |score|
and mirrored: on the history before the backtest, reading each tail on its own doubled the tail
noise and lost to the fixed band (bench/results/calibration.md).

Two things keep long-run coverage at the nominal level under shift, per horizon and level:
the quantiles come from a window of the most recent scores only, and adaptive conformal
inference (Gibbs & Candes 2021) nudges the level it reads from that window after every outcome:
`tau_eff += gamma / h * (tau - 1[actual <= issued quantile])`, so a quantile that was too low too
often is read higher next time (each level on its own, so the ranges may turn asymmetric). Only
outcomes known at an origin (target_day <= origin) ever enter: the state is built by `ingest` as
outcomes mature and read by `issue`.

Everything here is NumPy and deterministic: daily inference replays the published forecasts that
matured since training onto the stored state, without TensorFlow and without retraining.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast import evaluation
from cryptocast.features import FORECAST_QUANTILES
from cryptocast.modeling.portable import CorruptModelError

LEVELS = tuple(FORECAST_QUANTILES.values())
CALIBRATION_FILE = "calibration.json"
FORMAT = "cryptocast-calibration"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CalibrationConfig:
    """Chosen on the history before the backtest (bench/calibration.py), never on the scored origins."""

    window: int = 365  # most recent known scores a quantile is read from, per horizon
    gamma: float = 0.002  # ACI step at one day; gamma / h at h days, whose overlapping outcomes come in streaks
    ewma_lambda: float = 0.97  # decay of the volatility estimate (RiskMetrics' monthly 0.97)
    vol_days: int = 120  # returns the volatility looks back over (weights beyond are < 3%)
    min_returns: int = 30  # fewer known returns than this in those days: no volatility
    min_scores: int = 60  # fewer known scores than this: no quantile is issued
    beta: float = 0.75  # errors scale with volatility ** beta: 1 over-reacts (volatility mean-reverts), 0 ignores it
    beta_long: float = 0.5  # the power at the last horizon (linear in between)
    max_shift: float = 0.2  # |tau_eff - tau| is kept below this, so a long storm cannot wind the state up


def volatility(log_returns: pd.Series, config: CalibrationConfig) -> pd.Series:
    """Daily volatility known at the end of each day: exponentially weighted RMS of the last `vol_days` returns.

    A fixed-length window (not a recursion from the first day) so that inference, which reads only
    the last few months, gets exactly the number the backtest got. Missing returns are skipped.
    """
    weights = config.ewma_lambda ** np.arange(config.vol_days)
    squared = log_returns.to_numpy(dtype=float) ** 2
    known = np.isfinite(squared)
    n = len(squared)
    numerator = np.convolve(np.where(known, squared, 0.0), weights)[:n]
    denominator = np.convolve(known.astype(float), weights)[:n]
    enough = np.convolve(known.astype(float), np.ones(config.vol_days))[:n] >= config.min_returns
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(numerator / denominator)
    return pd.Series(np.where(enough, sigma, np.nan), index=log_returns.index)


def scale(sigma: np.ndarray, horizons: int, beta: float, beta_long: float | None = None) -> np.ndarray:
    """(n, H) scale of a log error: volatility at the origin to a power, times sqrt(horizon).

    The power runs linearly from `beta` at one day to `beta_long` at the last horizon: volatility
    mean-reverts, so today's says less about the tenth day than about tomorrow.
    """
    power = np.linspace(beta, beta if beta_long is None else beta_long, horizons)
    return np.asarray(sigma, dtype=float)[:, None] ** power[None, :] * np.sqrt(np.arange(1, horizons + 1))[None, :]


def scores(actual: np.ndarray, point: np.ndarray, sigma: np.ndarray, config: CalibrationConfig) -> np.ndarray:
    """Normalised signed log errors, (n, H)."""
    log_error = np.log(np.asarray(actual, float) / np.asarray(point, float))
    return log_error / scale(sigma, np.shape(point)[1], config.beta, config.beta_long)


def to_prices(point: np.ndarray, sigma: np.ndarray, quantiles: np.ndarray, config: CalibrationConfig) -> np.ndarray:
    """Score quantiles (n, H, L) as prices around the point forecast (n, H)."""
    spread = scale(sigma, np.shape(point)[1], config.beta, config.beta_long)[..., None] * quantiles
    return np.asarray(point, float)[..., None] * np.exp(spread)


class State:
    """Per horizon: the last `window` known scores and the ACI-adjusted levels."""

    def __init__(self, config: CalibrationConfig, horizons: int) -> None:
        self.config = config
        self.scores = [deque(maxlen=config.window) for _ in range(horizons)]
        self.tau = np.tile(np.asarray(LEVELS), (horizons, 1))

    def ingest(self, h: int, score: float, below: np.ndarray | None) -> None:
        """One matured forecast at horizon index h: its score, and per level whether the outcome was at or
        below the quantile issued then (None, or NaN for a level, when none was issued)."""
        self.scores[h].append(float(score))
        if below is None:
            return
        below = np.asarray(below, dtype=float)
        known = np.isfinite(below)
        levels = np.asarray(LEVELS)
        step = self.config.gamma / (h + 1) * (levels - np.where(known, below, 0.0))
        shifted = np.where(known, self.tau[h] + step, self.tau[h])
        self.tau[h] = np.clip(shifted, levels - self.config.max_shift, levels + self.config.max_shift)

    def issue(self) -> np.ndarray:
        """(H, L) quantiles of the normalised score; NaN for a horizon with too few known scores.

        Levels pushed outside (0, 1) read the window's extremes. Sorting across levels keeps the
        quantiles ordered (monotone rearrangement, which never worsens the pinball loss).
        """
        out = np.full(self.tau.shape, np.nan)
        for h, window in enumerate(self.scores):
            if len(window) >= self.config.min_scores:
                values = np.fromiter(window, float, len(window))
                tau = np.clip(self.tau[h], 0.0, 1.0)
                out[h] = np.sort(np.sign(tau - 0.5) * np.quantile(np.abs(values), np.abs(2 * tau - 1)))
        return out

    def to_json(self, last_origin: str) -> str:
        """The state after the backtest: what inference starts from."""
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": asdict(self.config),
               "levels": list(LEVELS), "last_origin": last_origin,
               "tau": self.tau.tolist(), "scores": [list(w) for w in self.scores]}
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def load(cls, path: Path, horizons: int) -> tuple[State, pd.Timestamp]:
        """A state written by `to_json`, checked: anything missing, non-finite or misshapen is corrupt."""
        try:
            doc = json.loads(path.read_text())
            if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
            if doc["levels"] != list(LEVELS):
                raise ValueError(f"levels {doc['levels']} are not {list(LEVELS)}")
            state = cls(CalibrationConfig(**doc["config"]), horizons)
            tau = np.asarray(doc["tau"], dtype=float)
            if tau.shape != state.tau.shape or not np.isfinite(tau).all():
                raise ValueError(f"tau must be {state.tau.shape} finite numbers")
            if len(doc["scores"]) != horizons:
                raise ValueError(f"scores must hold {horizons} horizons, got {len(doc['scores'])}")
            for h, values in enumerate(doc["scores"]):
                values = np.asarray(values, dtype=float)
                if values.ndim != 1 or not np.isfinite(values).all():
                    raise ValueError(f"scores of horizon {h + 1} must be a list of finite numbers")
                if len(values) < state.config.min_scores:
                    raise ValueError(f"horizon {h + 1} has {len(values)} scores, fewer than the "
                                     f"{state.config.min_scores} a quantile needs")
                state.scores[h].extend(values.tolist())
            state.tau = tau
            last_origin = pd.Timestamp(doc["last_origin"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
        return state, last_origin


def walk(score: np.ndarray, config: CalibrationConfig) -> tuple[np.ndarray, State]:
    """Quantiles (n, H, L) issued at consecutive daily origins, each from outcomes known then.

    Row t's horizon-h outcome is known at origin t + h, so it is ingested just before that
    origin's quantiles are issued; after the last origin every outcome is ingested, giving the
    state as of the day the last target is known. NaN rows (no calibration yet) are skipped.
    """
    n, horizons = score.shape
    state = State(config, horizons)
    issued = np.full((n, horizons, len(LEVELS)), np.nan)
    for t in range(n + horizons):
        for h in range(horizons):
            j = t - h - 1
            if 0 <= j < n and np.isfinite(score[j, h]):
                below = np.where(np.isnan(issued[j, h]), np.nan, score[j, h] <= issued[j, h])
                state.ingest(h, score[j, h], below)
        if t < n:
            issued[t] = state.issue()
    return issued, state


def fixed_band(log_errors: np.ndarray, config: CalibrationConfig) -> np.ndarray:
    """The peer we replaced: symmetric split-conformal bands of constant width, recalibrated online.

    At each origin and horizon, the band for each central level is split conformal
    (`evaluation.conformal_intervals`) on the last `window` known |log errors|; returned as log
    offsets from the point (n, H, L), q50 being the point itself. NaN until `min_scores` are known.
    """
    n, horizons = log_errors.shape
    levels = np.asarray(LEVELS)
    central = np.abs(2 * levels - 1)
    sign = np.sign(levels - 0.5)
    out = np.full((n, horizons, len(levels)), np.nan)
    for h in range(horizons):
        for t in range(n):
            known = log_errors[max(0, t - h - config.window) : max(0, t - h), h]
            known = known[np.isfinite(known)]
            if len(known) >= config.min_scores:
                widths = evaluation.conformal_intervals(known[:, None], tuple(central[central > 0]))
                out[t, h] = sign * np.array([widths[c][0] if c > 0 else 0.0 for c in central])
    return out


def ewma_band(sigma: np.ndarray, horizons: int) -> np.ndarray:
    """The textbook volatility band (RiskMetrics): normal quantiles times volatility times sqrt(h), as log offsets."""
    from scipy.stats import norm  # training only: inference must not pay for scipy.stats

    z = norm.ppf(np.asarray(LEVELS))
    return scale(sigma, horizons, 1.0)[..., None] * z
