"""How the calibration's settings were chosen: on the history BEFORE the scored backtest year only.

Uses naive persistence as the point forecast (our model's forecasts are shrunk toward it, and it
needs no training), walks every daily origin of ../shared/data's SOL history with each candidate
setting, and scores origins whose 10-day outcome is known before the first scored backtest origin
(after a 400-day start so every method has a full window). Writes bench/results/calibration.md.
The scored year itself is never looked at here.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from train import AS_OF, DATA, RESULTS, run  # noqa: E402

from cryptocast import backtest, evaluation  # noqa: E402
from cryptocast.dataset import HORIZON, make_windows, read_feature_frame  # noqa: E402
from cryptocast.modeling import calibration  # noqa: E402
from cryptocast.stores.local import LocalFeatureStore  # noqa: E402

BACKTEST_DAYS = 365
GRID = {"beta": (0.5, 0.75, 1.0), "beta_long": (0.0, 0.25, 0.5), "gamma": (0.0, 0.002, 0.005)}


def score(actual: np.ndarray, quantiles: np.ndarray, sigma: np.ndarray) -> dict:
    groups, _ = backtest.terciles(sigma)
    return evaluation.distribution_scores(actual, quantiles, calibration.LEVELS, backtest.RANGE_INDEX, groups,
                                          backtest.TERCILES)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CRYPTOCAST_HOME": str(Path(tmp) / "home"), "CRYPTOCAST_AS_OF": AS_OF,
               "CRYPTOCAST_BACKEND": "local"}
        run("feature_backfill.py", "--solana-csv", str(DATA / "binance/SOLUSDT_1d.csv"), "--bitcoin-csv",
            str(DATA / "binance/BTCUSDT_1d.csv"), "--fear-greed-csv", str(DATA / "fear_greed/fear_greed.csv"), env=env)
        frame = read_feature_frame(LocalFeatureStore(Path(tmp) / "home"), None, dt.date.fromisoformat(AS_OF))
    windows = make_windows(frame)
    actual = windows.last_close[:, None] * np.exp(windows.y)
    point = np.repeat(windows.last_close[:, None], HORIZON, axis=1)
    first_scored = windows.origins[-BACKTEST_DAYS]
    tuned = ((windows.origins + pd.Timedelta(days=HORIZON) < first_scored)
             & (windows.origins >= windows.origins[0] + pd.Timedelta(days=400)))
    base = calibration.CalibrationConfig()
    sigma = calibration.volatility(frame.frame["sol_log_return"], base).reindex(windows.origins).to_numpy()
    peers = {"fixed band": point[..., None] * np.exp(calibration.fixed_band(np.log(actual / point), base)),
             "EWMA band": point[..., None] * np.exp(calibration.ewma_band(sigma, HORIZON))}
    rows = {name: score(actual[tuned], q[tuned], sigma[tuned]) for name, q in peers.items()}
    for beta, beta_long, gamma in itertools.product(*GRID.values()):
        config = calibration.CalibrationConfig(beta=beta, beta_long=beta_long, gamma=gamma)
        quantiles, _ = calibration.walk(calibration.scores(actual, point, sigma, config), config)
        prices = calibration.to_prices(point, sigma, quantiles, config)
        rows[f"beta {beta}..{beta_long}, gamma {gamma}"] = score(actual[tuned], prices[tuned], sigma[tuned])
    fixed = rows["fixed band"]["per_horizon"]
    lines = ["| method | cov80 mean [min, max] | cov95 mean | cov80 calm / middle / wild | IS80 / fixed h1-3 | "
             "IS80 / fixed all h | worst h | pinball |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        ratio = [a["winkler_80"] / b["winkler_80"] for a, b in zip(r["per_horizon"], fixed, strict=True)]
        cov = [a["coverage_80"] for a in r["per_horizon"]]
        chosen = " **(chosen)**" if name == f"beta {base.beta}..{base.beta_long}, gamma {base.gamma}" else ""
        lines.append(f"| {name}{chosen} | {np.mean(cov):.3f} [{min(cov):.2f}, {max(cov):.2f}] | "
                     f"{r['coverage_95_mean']:.3f} | "
                     + " / ".join(f"{r[f'coverage_80_{t}_mean']:.2f}" for t in backtest.TERCILES)
                     + f" | {np.mean(ratio[:3]):.3f} | {np.mean(ratio):.3f} | {max(ratio):.3f} | "
                     f"{r['pinball_mean']:.3f} |")
    origins = windows.origins[tuned]
    text = f"""# Choosing the calibration on the history before the backtest

Point forecast: naive persistence. Scored origins: {origins[0].date()}..{origins[-1].date()} ({tuned.sum()} daily
origins, every 10-day outcome known before the first scored backtest origin {first_scored.date()}); the scored
backtest year is never looked at. Volatility: EWMA (0.97) RMS of SOL's daily log returns over 120 days. Scores:
|log error| / (volatility ** power * sqrt(h)), the power running linearly from `beta` (1 day) to `beta_long`
(10 days); quantiles read from the last 365 known scores, mirrored; ACI step `gamma / h`. IS80 = interval
(Winkler) score of the 80% range, relative to the fixed band (< 1 is better). Tercile = the origin's volatility
tercile among the scored origins.

{chr(10).join(lines)}

Chosen: beta {base.beta}..{base.beta_long}, gamma {base.gamma}: mean coverage within 2 points at 80% and 95%, every
horizon within 5, the calm tercile within 7, and an interval score below the fixed band's at every horizon.
Without ACI (gamma 0) the 80% coverage runs higher; a larger step (0.005) costs interval score.

Found while exploring (same origins; interval scores then taken relative to the price level), and why the code
has no switch for them: reading each tail's
quantile on its own (signed scores, asymmetric ranges) had interval scores 1-3% *worse* than the fixed band,
because each tail then rests on half the data; full volatility normalisation (power 1 at every horizon)
under-covered calm origins (~0.70) and over-covered wild ones (~0.88), because volatility mean-reverts over 10
days; a constant ACI step (no `/ h`) added 1-3% to the long horizons' interval score; blending in BTC's
volatility and a 730-day window did not help consistently.
"""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calibration.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
