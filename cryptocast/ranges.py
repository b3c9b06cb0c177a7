"""Which ranges to publish: each candidate scored on folds of the history BEFORE the scored backtest year.

Training runs this before its backtest, on naive persistence as the point forecast (ours is shrunk
toward it, and naive needs no training), so the choice never sees a scored outcome. The origins
whose 10-day outcome is known before the first scored origin (after a 400-day start, so every
volatility has history) are cut into three consecutive folds; each candidate walks them as training
walks the scored year: scale refitted every block on what is known then, quantiles from outcomes
known at each origin, after a warm-up of `window + 10` origins that is not scored.

The rule (issue 19): a candidate qualifies when, on the folds' origins, the nominal 80% and 95%
lie inside the 90% block-bootstrap interval of its coverage averaged over horizons, at every
horizon and in every volatility tercile. Among those that qualify (or, when none does, those that
miss the fewest of these checks) the lowest mean pinball loss wins; a market-aware winner whose
pinball loss is not below the fixed band's gives way to the fixed band.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from cryptocast import evaluation
from cryptocast.backtest import RANGE_INDEX, TERCILES, tercile_volatility, terciles
from cryptocast.dataset import HORIZON, FeatureFrame, make_windows
from cryptocast.modeling import calibration
from cryptocast.modeling.calibration import CalibrationConfig

FOLDS = 3
START_DAYS = 400
BLOCK = 20  # origins per bootstrap block: longer than the 10 days two overlapping outcomes can share
REPS = 1000
NOMINAL = {"80": 0.8, "95": 0.95}
# The publishable range methods: our volatility-normalised conformal quantiles on four scales (see
# calibration.scale); "fixed" is the fixed band, read by the same rule from the last year's errors.
# No ACI step (gamma 0): on these folds every scale's pinball loss was 1-2% lower without it and its
# coverage intervals no worse (bench/results/calibration.md).
CANDIDATES = {
    "blend": CalibrationConfig(gamma=0.0),
    "term": CalibrationConfig(scale_kind="term", gamma=0.0),
    "garch": CalibrationConfig(scale_kind="garch", gamma=0.0),
    "fixed": CalibrationConfig(scale_kind="fixed", gamma=0.0),
}
MARKET_AWARE = ("blend", "term", "garch")


@dataclass
class Choice:
    name: str
    config: CalibrationConfig
    reason: str
    folds: list[str]  # "first..last (n origins)" per fold
    scores: dict[str, dict] = field(default_factory=dict)  # candidate (and peer) -> fold scores


def blocks(n: int, first: int, every: int) -> list[int]:
    """Block starts over n origins, aligned so that one starts at index `first` (the first scored origin)."""
    return sorted({0, *range(first % every, n, every)})


def tercile_groups(sigma: np.ndarray, folds: list[np.ndarray]) -> np.ndarray:
    """Each fold origin's volatility tercile among its fold's origins (0 calm, 1 middle, 2 wild), by the
    backtest's own rule, so folds and scored year are judged alike."""
    return np.concatenate([terciles(sigma[f])[0] for f in folds])


def fold_scores(actual: np.ndarray, quantiles: np.ndarray, groups: np.ndarray, fixed_winkler: np.ndarray) -> dict:
    """Mean pinball loss, coverage (mean over horizons, per horizon, per tercile) with 90% block-bootstrap
    intervals, and the checks of the rule, on the folds' origins pooled (they are consecutive)."""
    levels = calibration.LEVELS
    n = len(actual)
    out: dict = {"pinball": float(evaluation.pinball(actual, quantiles, levels).mean()), "checks": 0, "missed": []}
    names = ["mean", *(f"h{h + 1}" for h in range(actual.shape[1])), *TERCILES]
    onehot = (groups[:, None] == np.arange(len(TERCILES))[None, :]).astype(float)
    for pct, nominal in NOMINAL.items():
        lo, hi = RANGE_INDEX[nominal]
        inside = ((actual >= quantiles[..., lo]) & (actual <= quantiles[..., hi])).astype(float)
        # per origin: inside per horizon, and its mean over horizons in its tercile's columns, and the tercile
        rows = np.concatenate([inside, onehot * inside.mean(axis=1, keepdims=True), onehot], axis=1)
        h = inside.shape[1]

        def stat(i: np.ndarray, rows: np.ndarray = rows, h: int = h) -> np.ndarray:
            sums = rows[i].sum(axis=0)
            by_h = sums[:h] / len(i)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.concatenate([[by_h.mean()], by_h, sums[h : h + 3] / sums[h + 3 :]])

        low, high = evaluation.block_bootstrap(stat, n, BLOCK, REPS)
        for name, value, a, b in zip(names, stat(np.arange(n)), low, high, strict=True):
            out[f"coverage_{pct}_{name}"] = [float(value), float(a), float(b)]
            out["checks"] += 1
            if not a <= nominal <= b:
                out["missed"].append(f"{pct}% {name}")
    out["winkler_80_vs_fixed_band"] = float(winkler_80(actual, quantiles).mean() / fixed_winkler.mean())
    return out


def winkler_80(actual: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """(H,) the mean interval score of the 80% range per horizon."""
    lo, hi = RANGE_INDEX[0.8]
    return np.array([r["winkler"] for r in evaluation.interval_scores(actual, quantiles[..., lo], quantiles[..., hi],
                                                                      0.8)])


def choose(frame: FeatureFrame, first_scored: pd.Timestamp, refit_every: int) -> Choice:
    """Score every candidate (and the peers, for the record) on the folds before `first_scored`; pick by the rule."""
    windows = make_windows(frame)
    origins = windows.origins
    actual = windows.last_close[:, None] * np.exp(windows.y)
    point = np.repeat(windows.last_close[:, None], HORIZON, axis=1)
    usable = np.flatnonzero((origins + pd.Timedelta(days=HORIZON) < first_scored)
                            & (origins >= origins[0] + pd.Timedelta(days=START_DAYS)))
    window = max(c.window for c in CANDIDATES.values())
    if len(usable) < FOLDS * BLOCK * 3 or usable[0] < window + HORIZON:
        default = CANDIDATES["blend"]
        return Choice("blend", default, f"too little history before {first_scored.date()} for folds: the default",
                      [], {})
    folds = np.array_split(usable, FOLDS)
    run = np.arange(usable[0] - window - HORIZON, usable[-1] + 1)
    scored = usable - run[0]
    starts = blocks(len(run), origins.get_indexer([first_scored])[0] - run[0], refit_every)
    sigma = tercile_volatility(frame.frame).reindex(origins).to_numpy()
    groups = tercile_groups(sigma, folds)
    quantiles, fits = {}, {}
    for name, config in CANDIDATES.items():
        spread, fits[name] = calibration.block_spreads(frame.frame, origins[run], config, starts, HORIZON)
        issued, _ = calibration.walk(calibration.scores(actual[run], point[run], spread), config, spread)
        quantiles[name] = calibration.to_prices(point[run], spread, issued)[scored]
    quantiles.update(peers(frame.frame, origins[run], actual[run], point[run], sigma[run], fits["garch"], starts,
                           scored))
    fixed_winkler = winkler_80(actual[usable], quantiles["fixed_band"])
    scores = {name: fold_scores(actual[usable], q, groups, fixed_winkler) for name, q in quantiles.items()}
    name, reason = rule(scores)
    config = CANDIDATES[name]
    spans = [f"{origins[f[0]].date()}..{origins[f[-1]].date()} ({len(f)})" for f in folds]
    return Choice(name, config, reason, spans, scores)


def peers(frame: pd.DataFrame, origins: pd.DatetimeIndex, actual: np.ndarray, point: np.ndarray, sigma: np.ndarray,
          garch_fits: list[CalibrationConfig], starts: list[int], scored: np.ndarray) -> dict[str, np.ndarray]:
    """The reference bands around the same point: fixed, EWMA and GARCH(1,1)-t (the latter on the garch fits)."""
    offsets = {"fixed_band": calibration.fixed_band(np.log(actual / point), CalibrationConfig()),
               "ewma_band": calibration.ewma_band(sigma, HORIZON),
               "garch_t_band": garch_t_offsets(frame, origins, garch_fits, starts)}
    return {name: (point[..., None] * np.exp(o))[scored] for name, o in offsets.items()}


def garch_t_offsets(frame: pd.DataFrame, origins: pd.DatetimeIndex, fits: list[CalibrationConfig],
                    starts: list[int]) -> np.ndarray:
    """The GARCH(1,1)-t band's log offsets (n, H, L), each block on its own fit."""
    bounds = [*starts, len(origins)]
    out = np.full((len(origins), HORIZON, len(calibration.LEVELS)), np.nan)
    for config, start, stop in zip(fits, bounds[:-1], bounds[1:], strict=True):
        spread = calibration.scale(calibration.volatilities(frame, config).reindex(origins[start:stop]), HORIZON,
                                   config)
        out[start:stop] = calibration.garch_band(spread, np.full(stop - start, config.garch_nu))
    return out


def rule(scores: dict[str, dict]) -> tuple[str, str]:
    """The module's rule over the candidates' fold scores: (the winner, why, in one sentence)."""
    fewest = min(len(scores[name]["missed"]) for name in CANDIDATES)
    eligible = [name for name in CANDIDATES if len(scores[name]["missed"]) == fewest]
    best = min(eligible, key=lambda name: scores[name]["pinball"])
    s = scores[best]
    how = ("with every coverage interval holding its nominal level" if not fewest else
           f"no candidate's coverage intervals all hold their nominal levels; it misses the fewest ({fewest} of "
           f"{s['checks']})")
    if best in MARKET_AWARE and s["pinball"] >= scores["fixed"]["pinball"]:
        return "fixed", (f"the best market-aware candidate, {best}, has a mean pinball loss of {s['pinball']:.4g}, "
                         f"not below the fixed band's {scores['fixed']['pinball']:.4g}, on the folds: the fixed band "
                         f"is published")
    others = ", ".join(f"{name} {scores[name]['pinball']:.4g}" for name in CANDIDATES if name != best)
    return best, (f"lowest mean pinball loss on the folds, {s['pinball']:.4g} ({others}), {how}")


def summary(choice: Choice) -> dict:
    """The choice as the registry's metrics and the evaluation report keep it."""
    return {"method": choice.name, "reason": choice.reason, "folds": choice.folds,
            "config": asdict(choice.config), "scores": choice.scores}
