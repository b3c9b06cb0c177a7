"""GARCH(1,1) with Student-t errors: the textbook volatility model, and the h-day variance it forecasts.

    sigma2(t + 1) = omega + alpha * r(t) ** 2 + beta * sigma2(t)

The parameters are fitted by `arch` (training only: it is not in the daily environment); the
variance recursion and its h-step forecast are a few lines of NumPy here, so daily inference can
run a version's stored parameters without `arch`. Beyond one day the forecast reverts to the
long-run variance `omega / (1 - alpha - beta)` at the rate `alpha + beta` per day, and the h-day
variance is the sum of the daily ones: a term structure learned from the data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PERCENT = 100.0  # arch's optimiser is happiest with returns in percent; parameters are stored in log units


@dataclass(frozen=True)
class Garch:
    omega: float  # daily variance of a log return, not percent
    alpha: float
    beta: float
    nu: float  # Student-t degrees of freedom of the standardised errors

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta

    def long_run(self) -> float:
        """The unconditional variance omega / (1 - alpha - beta); NaN for an integrated fit (alpha + beta = 1)."""
        return self.omega / (1 - self.persistence) if self.persistence < 1 else math.nan

    def next_variance(self, returns: np.ndarray, days: int) -> np.ndarray:
        """(n,) the variance forecast for the day after each day of `returns` (daily log returns).

        The recursion runs over the last `days` returns only, started at the long-run variance (for an
        integrated fit, which has none, at the mean squared return of those days), so inference, which
        reads only the last months, gets exactly the number the backtest got. A missing return counts
        as that starting variance (its expectation).
        """
        returns = np.asarray(returns, dtype=float)
        n = len(returns)
        known = np.isfinite(returns)
        window = np.ones(days)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_square = (np.convolve(np.where(known, returns**2, 0.0), window)[:n]
                           / np.convolve(known.astype(float), window)[:n])
        start = np.full(n, self.long_run()) if self.persistence < 1 else mean_square
        squared = np.where(known, returns**2, start)
        weights = self.beta ** np.arange(days)
        shocks = np.convolve(squared, weights)[:n]
        # only `days` returns are in each window; the first days have fewer, and the rest start at `start`
        count = np.minimum(np.arange(1, n + 1), days)
        geometric = (1 - self.beta**count) / (1 - self.beta) if self.beta < 1 else count.astype(float)
        return self.omega * geometric + self.alpha * shocks + self.beta**count * start

    def term(self, next_variance: np.ndarray, horizons: int) -> np.ndarray:
        """(n, H) variance of the h-day log return: the sum of the daily forecasts, which revert to the long-run
        variance at the rate alpha + beta per day (an integrated fit's grow by omega a day instead)."""
        step = np.arange(horizons)[None, :]
        next_variance = np.asarray(next_variance, dtype=float)[:, None]
        if self.persistence < 1:
            daily = self.long_run() + self.persistence**step * (next_variance - self.long_run())
        else:
            daily = next_variance + step * self.omega
        return np.cumsum(daily, axis=1)


def fit(returns: np.ndarray) -> Garch:
    """GARCH(1,1)-t with zero mean (the naive centre) fitted by `arch` to daily log returns, NaNs dropped."""
    from arch import arch_model

    known = np.asarray(returns, dtype=float)
    known = known[np.isfinite(known)]
    result = arch_model(known * PERCENT, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(
        disp="off", show_warning=False)
    p = result.params
    return Garch(omega=float(p["omega"]) / PERCENT**2, alpha=float(p["alpha[1]"]), beta=float(p["beta[1]"]),
                 nu=float(p["nu"]))
