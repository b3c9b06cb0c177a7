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

    def long_run(self, returns: np.ndarray) -> float:
        """The unconditional variance; for a non-stationary fit (alpha + beta >= 1), the sample's."""
        if self.persistence < 1:
            return self.omega / (1 - self.persistence)
        known = returns[np.isfinite(returns)]
        return float(np.mean(known**2)) if len(known) else math.nan

    def next_variance(self, returns: np.ndarray, days: int) -> np.ndarray:
        """(n,) the variance forecast for the day after each day of `returns` (daily log returns).

        The recursion runs over the last `days` returns only, started at the long-run variance, so
        inference, which reads only the last months, gets exactly the number the backtest got. A
        missing return counts as the long-run variance (its expectation).
        """
        returns = np.asarray(returns, dtype=float)
        n = len(returns)
        long_run = self.long_run(returns)
        squared = np.where(np.isfinite(returns), returns**2, long_run)
        weights = self.beta ** np.arange(days)
        shocks = np.convolve(squared, weights)[:n]
        # only `days` returns are in each window; the first days have fewer, and the rest start at long-run
        count = np.minimum(np.arange(1, n + 1), days)
        geometric = (1 - self.beta**count) / (1 - self.beta) if self.beta < 1 else count.astype(float)
        return self.omega * geometric + self.alpha * shocks + self.beta**count * long_run

    def term(self, next_variance: np.ndarray, horizons: int, long_run: float) -> np.ndarray:
        """(n, H) variance of the h-day log return: the sum of the daily forecasts reverting to `long_run`."""
        decay = self.persistence ** np.arange(horizons)
        daily = long_run + decay[None, :] * (np.asarray(next_variance, dtype=float)[:, None] - long_run)
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
