"""Forecast quantiles that stay calibrated when the market changes.

A forecast's log error `log(actual / point)` is divided by a volatility forecast for its horizon,
known at its origin: in a calm week and in a crash these normalised scores look alike, so their
quantiles, times today's scale, give ranges that widen and narrow with the market. Four scales
(`scale`, `SCALE_KINDS`): "blend",

    scale(t, h) = short(t) ** w(h) * long(t) ** (1 - w(h)) * sqrt(h)

with `short` an exponentially weighted (RiskMetrics' daily 0.94) volatility of SOL's daily high/low
ranges (Parkinson's estimator: ranges see the whole day's swings, so they are steadier than one
close-to-close return), `long` the same over the last year without weights, and `w` running from
0.75 (1 day) to 0.25 (10 days); "term", the root of an h-day variance forecast that reverts from
short^2 to long^2 at a rate fitted on known outcomes (`fit_scale`); "garch", GARCH(1,1)'s h-day
variance (fitted by `arch`, run in NumPy: modeling/garch.py); and "fixed", no market term (the fixed
band). Volatility mean-reverts: a storm says a lot about tomorrow and less about day ten, when it
has probably passed; a calm week likewise. Which scale is published is chosen on folds before the
scored year (cryptocast/ranges.py). Ranges are read from |score| and mirrored: reading each tail on
its own doubles the tail noise (bench/results/calibration.md); `fan` keeps each edge from stepping
back as the horizon grows.

Two things keep long-run coverage at the nominal level under shift, per horizon and level:
the quantiles come from a window of the most recent scores only, and adaptive conformal
inference (Gibbs & Candes 2021) nudges the level it reads from that window after every outcome:
`tau_eff += gamma / h * (tau - 1[actual <= issued quantile])`, so a quantile that was too low too
often is read higher next time (each level on its own, so the ranges may turn asymmetric). Only
outcomes known at an origin (target_day <= origin) ever enter: the state is built by `ingest` as
outcomes mature and read by `issue`. Every setting was chosen on three folds of the history
before the scored backtest year (bench/calibration.py); the published candidates have no ACI step.

Everything here is NumPy and deterministic: daily inference replays the published forecasts that
matured since training onto the stored state, without TensorFlow and without retraining.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast import evaluation
from cryptocast.features import FORECAST_QUANTILES
from cryptocast.modeling import garch
from cryptocast.modeling.portable import CorruptModelError
from cryptocast.settings import parse_day

LEVELS = tuple(FORECAST_QUANTILES.values())
CALIBRATION_FILE = "calibration.json"
FORMAT = "cryptocast-calibration"
MAX_SCORE = 1e3  # larger is a damaged file: a 90% one-day fall in a calm week (2%/day) scores ~115
FORMAT_VERSION = 3
ESTIMATORS = ("range", "returns")
# How the scale varies with the market and the horizon (see `scale`); "fixed" ignores the market.
SCALE_KINDS = ("blend", "term", "garch", "fixed")
TERM_GRID = np.linspace(0.0, 1.0, 11)  # candidate loads and daily decays of the "term" scale


@dataclass(frozen=True)
class CalibrationConfig:
    """Chosen on folds of the history before the backtest (bench/calibration.py), never on the scored origins."""

    window: int = 365  # most recent known scores a quantile is read from, per horizon
    gamma: float = 0.005  # ACI step at one day; gamma / h at h days, whose overlapping outcomes come in streaks
    estimator: str = "range"  # daily variance from the high/low range (Parkinson) or the squared log return
    ewma_lambda: float = 0.94  # decay of the short-run volatility (RiskMetrics' daily 0.94)
    vol_days: int = 120  # days the short-run volatility looks back over (weights beyond are < 0.1%)
    long_run_days: int = 365  # days the long-run volatility averages over; 0: no long-run term (format 1)
    min_returns: int = 30  # fewer known days than this in those days: no volatility
    min_scores: int = 60  # fewer known scores than this: no quantile is issued
    weight: float = 0.75  # the short-run volatility's share (a power) of the 1-day scale; the rest is long-run's
    weight_long: float = 0.25  # ... of the last horizon's scale (linear in between)
    max_shift: float = 0.2  # |tau_eff - tau| is kept below this, so a long storm cannot wind the state up
    scale_kind: str = "blend"  # one of SCALE_KINDS (see `scale`)
    # "term": the share of today's excess variance over the long run that tomorrow keeps, and its daily decay;
    # fitted on the data known at each refit (`fit_scale`), stored with the version
    term_load: float = 0.0
    term_decay: float = 0.0
    # "garch": GARCH(1,1)-t parameters (daily log-return variance), fitted by `arch` at each refit
    garch_omega: float = 0.0
    garch_alpha: float = 0.0
    garch_beta: float = 0.0
    garch_nu: float = 0.0
    garch_days: int = 365  # days of returns the GARCH variance recursion runs over before each origin

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.scale_kind not in SCALE_KINDS:
            raise ValueError(f"scale_kind must be one of {SCALE_KINDS}, got {self.scale_kind!r}")

    @property
    def history_days(self) -> int:
        """Days of data before an origin that its scale reads."""
        return max(self.vol_days, self.long_run_days, self.garch_days if self.scale_kind == "garch" else 0)

    @property
    def garch(self) -> garch.Garch:
        return garch.Garch(self.garch_omega, self.garch_alpha, self.garch_beta, self.garch_nu)


def ewma_rms(values: pd.Series, decay: float, days: int, min_count: int) -> pd.Series:
    """Root of the exponentially weighted mean of `values` (daily variances) over the last `days` days.

    A fixed-length window (not a recursion from the first day) so that inference, which reads only
    the last months, gets exactly the number the backtest got. Missing days are skipped; fewer than
    `min_count` known days in the window give NaN.
    """
    weights = decay ** np.arange(days)
    squared = values.to_numpy(dtype=float)
    known = np.isfinite(squared)
    n = len(squared)
    numerator = np.convolve(np.where(known, squared, 0.0), weights)[:n]
    denominator = np.convolve(known.astype(float), weights)[:n]
    enough = np.convolve(known.astype(float), np.ones(days))[:n] >= min_count
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = np.sqrt(numerator / denominator)
    return pd.Series(np.where(enough, sigma, np.nan), index=values.index)


def daily_variance(frame: pd.DataFrame, estimator: str) -> pd.Series:
    """One day's variance of SOL's log price: Parkinson's (log high/low)^2 / (4 ln 2), or the squared log return."""
    if estimator == "range":
        return frame["sol_log_range"] ** 2 / (4 * np.log(2))
    return frame["sol_log_return"] ** 2


def volatilities(frame: pd.DataFrame, config: CalibrationConfig) -> pd.DataFrame:
    """Short- and long-run daily volatility known at the end of each day of `frame` (the feature frame).

    `long` is 1 when the config has no long-run term (format 1 files: scale = short ** power * sqrt(h)).
    For the "garch" scale, `garch` is the GARCH variance forecast for the next day.
    """
    variance = daily_variance(frame, config.estimator)
    short = ewma_rms(variance, config.ewma_lambda, config.vol_days, config.min_returns)
    if config.long_run_days:
        long = ewma_rms(variance, 1.0, config.long_run_days, config.min_returns)
    else:
        long = pd.Series(1.0, index=frame.index)
    vol = pd.DataFrame({"short": short, "long": long})
    if config.scale_kind == "garch":
        vol["garch"] = config.garch.next_variance(frame["sol_log_return"].to_numpy(dtype=float), config.garch_days)
    return vol


def term_weights(decay: float, horizons: int) -> np.ndarray:
    """(H,) sum over the first h days of decay ** (day - 1): how much of today's excess variance an h-day sum keeps."""
    return np.cumsum(decay ** np.arange(horizons))


def scale(vol: pd.DataFrame, horizons: int, config: CalibrationConfig) -> np.ndarray:
    """(n, H) scale of a log error at these origins' volatilities: a volatility forecast for each horizon.

    - "blend": short ** w * long ** (1 - w) * sqrt(h), w running linearly from `weight` at one day to
      `weight_long` at the last horizon: volatility mean-reverts, so today's says less about the tenth day.
    - "term": the root of an h-day variance forecast, h * long^2 + load * sum_{k<h} decay^k * (short^2 - long^2):
      tomorrow keeps `load` of today's excess over the long-run variance, each later day `decay` times
      the day before's; both fitted on outcomes known at the refit (`fit_scale`).
    - "garch": the root of GARCH(1,1)'s h-day variance, reverting at its persistence alpha + beta.
    - "fixed": sqrt(h) whatever the market (the quantiles per horizon then make it the fixed band).
    """
    h = np.arange(1, horizons + 1)[None, :]
    short = vol["short"].to_numpy(dtype=float)[:, None]
    long = vol["long"].to_numpy(dtype=float)[:, None]
    if config.scale_kind == "term":
        excess = short**2 - long**2
        return np.sqrt(h * long**2 + config.term_load * term_weights(config.term_decay, horizons)[None, :] * excess)
    if config.scale_kind == "garch":
        return np.sqrt(config.garch.term(vol["garch"].to_numpy(dtype=float), horizons))
    if config.scale_kind == "fixed":
        return np.where(np.isfinite(short), 1.0, np.nan) * np.sqrt(h)
    w = np.linspace(config.weight, config.weight_long, horizons)[None, :]
    return short**w * long ** (1 - w) * np.sqrt(h)


def realised(frame: pd.DataFrame, horizons: int) -> np.ndarray:
    """(n, H) the log change of SOL's close from each day of `frame` to h days later (NaN past the end)."""
    log_close = np.log(frame["sol_close"].to_numpy(dtype=float))
    out = np.full((len(log_close), horizons), np.nan)
    for h in range(1, horizons + 1):
        out[:-h, h - 1] = log_close[h:] - log_close[:-h]
    return out


def fit_scale(config: CalibrationConfig, frame: pd.DataFrame, day: pd.Timestamp, horizons: int) -> CalibrationConfig:
    """The config with its scale's parameters fitted on what is known at the end of `day` (an origin).

    "term": the load and decay minimising the QLIKE loss (Patton 2011: the loss that ranks variance
    forecasts correctly under noisy proxies) of every known h-day log change of the close at horizons
    1..10 (its target day <= `day`), one free level per horizon (the quantiles set the level anyway),
    on a grid of 0, 0.1, .., 1. "garch": GARCH(1,1)-t by `arch` on the daily log returns up to `day`.
    Others have nothing to fit.
    """
    known = frame.loc[:day]
    if config.scale_kind == "garch":
        g = garch.fit(known["sol_log_return"].to_numpy(dtype=float))
        return replace(config, garch_omega=g.omega, garch_alpha=g.alpha, garch_beta=g.beta, garch_nu=g.nu)
    if config.scale_kind != "term":
        return config
    vol = volatilities(known, config)
    change = realised(known, horizons)
    short, long = (vol[c].to_numpy(dtype=float) for c in ("short", "long"))
    usable = np.isfinite(short) & np.isfinite(long)
    change, short, long = change[usable], short[usable, None], long[usable, None]
    h = np.arange(1, horizons + 1)[None, :]
    squared = change**2
    seen = np.isfinite(squared)
    squared = np.where(seen, squared, 0.0)
    count = seen.sum(axis=0)
    loads = TERM_GRID[:, None, None]
    best = (np.inf, 0.0, 0.0)
    for decay in TERM_GRID:
        variance = h * long**2 + loads * term_weights(decay, horizons)[None, :] * (short**2 - long**2)  # (loads, n, H)
        ratio = np.sum(squared / variance * seen, axis=1) / count
        loss = np.sum(np.log(ratio) + np.sum(np.log(variance) * seen, axis=1) / count, axis=1)
        k = int(np.argmin(loss))
        if loss[k] < best[0]:
            best = (float(loss[k]), float(TERM_GRID[k]), float(decay))
    return replace(config, term_load=best[1], term_decay=best[2])


def block_spreads(frame: pd.DataFrame, origins: pd.DatetimeIndex, config: CalibrationConfig, starts: list[int],
                  horizons: int) -> tuple[np.ndarray, list[CalibrationConfig]]:
    """(n, H) scales at `origins`, the scale refitted (`fit_scale`) at each of `starts` (indices into origins)
    on what is known at that origin, and used until the next: the walk-forward of the scale itself."""
    spread = np.full((len(origins), horizons), np.nan)
    fitted = []
    bounds = [*starts, len(origins)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        block = fit_scale(config, frame, origins[start], horizons)
        fitted.append(block)
        spread[start:stop] = scale(volatilities(frame, block).reindex(origins[start:stop]), horizons, block)
    return spread, fitted


def scores(actual: np.ndarray, point: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Normalised signed log errors, (n, H), for scales `spread` from `scale`."""
    return np.log(np.asarray(actual, float) / np.asarray(point, float)) / spread


def fan(spread: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Score quantiles (n, H, L) whose log offsets from the point, spread * quantile, never narrow with the horizon.

    Every scale here forecasts a variance summed over the days ahead, so the range it implies widens
    with the horizon; the quantiles, read per horizon from a year of scores each, carry sampling noise
    that can make an edge step back (a 97.5% edge lower at day 7 than at day 6). Each upper offset is
    raised to the largest before it and each lower one lowered to the smallest (the median's stays).
    """
    spread = np.asarray(spread, dtype=float)[..., None]
    offsets = spread * np.asarray(quantiles, dtype=float)
    upper = np.asarray(LEVELS) > 0.5
    lower = np.asarray(LEVELS) < 0.5
    offsets[..., upper] = np.maximum.accumulate(offsets[..., upper], axis=-2)
    offsets[..., lower] = np.minimum.accumulate(offsets[..., lower], axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return offsets / spread


def to_prices(point: np.ndarray, spread: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Score quantiles (n, H, L) as prices around the point forecast (n, H), for scales `spread` (n, H)."""
    return np.asarray(point, float)[..., None] * np.exp(spread[..., None] * quantiles)


def sorted_quantile(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """np.quantile's default (linear) quantiles of already sorted `values`, without its per-call overhead:
    the walk reads ten of them at every origin."""
    position = np.asarray(levels, dtype=float) * (len(values) - 1)
    below = np.floor(position).astype(int)
    above = np.minimum(below + 1, len(values) - 1)
    return values[below] + (position - below) * (values[above] - values[below])


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
                values = np.sort(np.abs(np.fromiter(window, float, len(window))))
                tau = np.clip(self.tau[h], 0.0, 1.0)
                out[h] = np.sort(np.sign(tau - 0.5) * sorted_quantile(values, np.abs(2 * tau - 1)))
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
            if doc.get("format") != FORMAT or doc.get("format_version") not in (1, 2, FORMAT_VERSION):
                raise ValueError(f"not a {FORMAT} v1, v2 or v{FORMAT_VERSION} file")
            if doc["levels"] != list(LEVELS):
                raise ValueError(f"levels {doc['levels']} are not {list(LEVELS)}")
            config = doc["config"] if doc["format_version"] > 1 else _from_v1(doc["config"])
            state = cls(_checked(CalibrationConfig(**config)), horizons)
            tau = _numbers(doc["tau"])
            if tau.shape != state.tau.shape or not np.isfinite(tau).all():
                raise ValueError(f"tau must be {state.tau.shape} finite numbers")
            if len(doc["scores"]) != horizons:
                raise ValueError(f"scores must hold {horizons} horizons, got {len(doc['scores'])}")
            for h, values in enumerate(doc["scores"]):
                values = _numbers(values)
                if values.ndim != 1 or not (np.abs(values) <= MAX_SCORE).all():
                    raise ValueError(f"scores of horizon {h + 1} must be a list of finite numbers")
                if len(values) < state.config.min_scores:
                    raise ValueError(f"horizon {h + 1} has {len(values)} scores, fewer than the "
                                     f"{state.config.min_scores} a quantile needs")
                state.scores[h].extend(values.tolist())
            state.tau = tau
            last_origin = _day("last_origin", doc["last_origin"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
        return state, last_origin


def _numbers(values: Any) -> np.ndarray:
    """A JSON list (or list of lists) of numbers as floats; `true` is a writer's bug, not 1.0: it becomes NaN."""
    def number(v: Any) -> Any:
        return np.nan if isinstance(v, bool) else v

    if not isinstance(values, list):
        return np.asarray(number(values), dtype=float)
    return np.asarray([[number(v) for v in row] if isinstance(row, list) else number(row) for row in values],
                      dtype=float)


def _day(name: str, value: Any) -> pd.Timestamp:
    """A YYYY-MM-DD day from this century, the only kind training writes."""
    day = parse_day(value)
    if day is None or day.year < 2000:
        raise ValueError(f"{name} {value!r} is not a day")
    return pd.Timestamp(day)


def _from_v1(config: dict) -> dict:
    """A format-1 config (versions registered before the long-run term) in today's terms: the same scale,
    close-to-close volatility to a power, so their forecasts stay what they were until the next training."""
    config = dict(config)
    weight, weight_long = config.pop("beta"), config.pop("beta_long")
    return {**config, "weight": weight, "weight_long": weight_long, "estimator": "returns", "long_run_days": 0}


def _checked(config: CalibrationConfig) -> CalibrationConfig:
    """The config, if every number in it can make a finite scale and a quantile."""
    numbers = [v for v in asdict(config).values() if not isinstance(v, str)]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in numbers):
        raise ValueError(f"config must hold finite numbers: {asdict(config)}")
    if not (0 < config.ewma_lambda <= 1 and 1 <= config.min_scores <= config.window
            and 1 <= config.min_returns <= config.vol_days
            and (config.long_run_days == 0 or config.long_run_days >= config.min_returns)
            and 0 <= config.weight <= 1 and 0 <= config.weight_long <= 1
            and config.gamma >= 0 and 0 <= config.max_shift < 0.5
            and 0 <= config.term_load <= 1 and 0 <= config.term_decay <= 1 and config.garch_days >= 1
            and (config.scale_kind != "garch" or (config.garch_omega > 0 and config.garch_alpha >= 0
                                                  and config.garch_beta >= 0
                                                  and config.garch_alpha + config.garch_beta <= 1
                                                  and config.garch_nu > 2))):
        raise ValueError(f"config is out of range: {asdict(config)}")
    return config


def walk(score: np.ndarray, config: CalibrationConfig, spread: np.ndarray | None = None) -> tuple[np.ndarray, State]:
    """Quantiles (n, H, L) issued at consecutive daily origins, each from outcomes known then.

    Row t's horizon-h outcome is known at origin t + h, so it is ingested just before that
    origin's quantiles are issued; after the last origin every outcome is ingested, giving the
    state as of the day the last target is known. NaN rows (no calibration yet) are skipped.
    With the scales `spread`, the issued quantiles are those of the `fan`, as published.
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
            issued[t] = state.issue() if spread is None else fan(spread[t : t + 1], state.issue()[None])[0]
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
    return np.asarray(sigma, dtype=float)[:, None, None] * np.sqrt(np.arange(1, horizons + 1))[None, :, None] * z


def garch_band(spread: np.ndarray, nu: np.ndarray) -> np.ndarray:
    """The textbook GARCH(1,1)-t band: unit-variance Student-t quantiles (`nu` per origin) times the root of
    the h-day variance forecast, as log offsets (n, H, L) around the naive centre."""
    from scipy.stats import t  # training only

    nu = np.asarray(nu, dtype=float)[:, None]
    z = t.ppf(np.asarray(LEVELS)[None, :], nu) * np.sqrt((nu - 2) / nu)
    return np.asarray(spread, dtype=float)[..., None] * z[:, None, :]
