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
from cryptocast.backtest import (
    BOOTSTRAP_BLOCK,
    TERCILES,
    blocks,
    peer_offsets,
    score_intervals,
    tercile_volatility,
    terciles,
)
from cryptocast.dataset import HORIZON, FeatureFrame, make_windows
from cryptocast.modeling import calibration
from cryptocast.modeling.calibration import CalibrationConfig

FOLDS = 3
START_DAYS = 400
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
DEFAULT = "blend"  # what a history too short for folds gets


@dataclass
class Choice:
    name: str
    config: CalibrationConfig
    reason: str
    folds: list[str]  # "first..last (n origins)" per fold
    scores: dict[str, dict] = field(default_factory=dict)  # candidate (and peer) -> fold scores


def fold_scores(actual: np.ndarray, quantiles: np.ndarray, groups: np.ndarray, fixed: np.ndarray,
                garch: np.ndarray) -> dict:
    """Mean pinball loss and the rule's coverage checks on the folds' origins, pooled (they are consecutive),
    beside `backtest.score_intervals`' figures with their intervals."""
    intervals = score_intervals(actual, quantiles, groups, fixed, garch)
    missed, checks = [], 0
    for pct, nominal in NOMINAL.items():
        cov = intervals[f"coverage_{pct}"]
        named = [("mean", cov["mean"]), *((f"h{h + 1}", c) for h, c in enumerate(cov["by_horizon"])),
                 *((name, cov[name]) for name in TERCILES)]
        missed += [f"{pct}% {name}" for name, (_, lo, hi) in named if not lo <= nominal <= hi]
        checks += len(named)
    return {"pinball": float(evaluation.pinball(actual, quantiles, calibration.LEVELS).mean()), "missed": missed,
            "checks": checks, **intervals}


def choose(frame: FeatureFrame, first_scored: pd.Timestamp, refit_every: int,
           candidates: dict[str, CalibrationConfig] | None = None) -> Choice:
    """Score every candidate (and the peers, for the record) on the folds before `first_scored`; pick by the rule.

    `candidates` defaults to CANDIDATES (bench/calibration.py adds variants to show why these)."""
    candidates = CANDIDATES if candidates is None else candidates
    windows = make_windows(frame)
    origins = windows.origins
    actual = windows.last_close[:, None] * np.exp(windows.y)
    point = np.repeat(windows.last_close[:, None], HORIZON, axis=1)
    usable = np.flatnonzero((origins + pd.Timedelta(days=HORIZON) < first_scored)
                            & (origins >= origins[0] + pd.Timedelta(days=START_DAYS)))
    window = max(c.window for c in candidates.values())
    if len(usable) < FOLDS * 3 * BOOTSTRAP_BLOCK or usable[0] < window + HORIZON:
        return Choice(DEFAULT, CANDIDATES[DEFAULT], f"too little history before {first_scored.date()} for "
                      f"{FOLDS} folds: the default, {DEFAULT}", [], {})
    folds = np.array_split(usable, FOLDS)
    run = np.arange(usable[0] - window - HORIZON, usable[-1] + 1)
    scored = usable - run[0]
    starts = blocks(len(run), int(origins.get_indexer([first_scored])[0]) - run[0], refit_every)
    sigma = tercile_volatility(frame.frame).reindex(origins).to_numpy()
    groups = np.concatenate([terciles(sigma[f])[0] for f in folds])  # the backtest's rule, within each fold
    quantiles = {}
    for name, config in candidates.items():
        spread, _ = calibration.block_spreads(frame.frame, origins[run], config, starts, HORIZON)
        issued, _ = calibration.walk(calibration.scores(actual[run], point[run], spread), config, spread)
        quantiles[name] = calibration.to_prices(point[run], spread, issued)[scored]
    offsets = peer_offsets(frame.frame, origins[run], actual[run], point[run], starts)
    quantiles.update({name: (point[run][..., None] * np.exp(o))[scored] for name, o in offsets.items()})
    scores = {name: fold_scores(actual[usable], q, groups, quantiles["fixed_band"], quantiles["garch_t_band"])
              for name, q in quantiles.items()}
    name, reason = rule(scores, list(candidates))
    spans = [f"{origins[f[0]].date()}..{origins[f[-1]].date()} ({len(f)})" for f in folds]
    return Choice(name, candidates[name], reason, spans, scores)


def rule(scores: dict[str, dict], candidates: list[str]) -> tuple[str, str]:
    """The module's rule over the candidates' fold scores: (the winner, why, in one sentence). A candidate
    other than "fixed" is market-aware ("fixed" must be among them)."""
    fewest = min(len(scores[name]["missed"]) for name in candidates)
    eligible = [name for name in candidates if len(scores[name]["missed"]) == fewest]
    best = min(eligible, key=lambda name: scores[name]["pinball"])
    s = scores[best]
    if best != "fixed" and s["pinball"] >= scores["fixed"]["pinball"]:
        return "fixed", (f"the best market-aware candidate, {best}, has a mean pinball loss of {s['pinball']:.4g} on "
                         f"the folds, not below the fixed band's {scores['fixed']['pinball']:.4g}: the fixed band is "
                         f"published")
    how = ("its coverage intervals hold every nominal level (mean, each horizon, each volatility tercile)"
           if not fewest else f"no candidate's coverage intervals hold every nominal level; it misses the fewest "
                              f"({fewest} of {s['checks']}: {', '.join(s['missed'])})")
    others = ", ".join(f"{name} {scores[name]['pinball']:.4g}"
                       + (f" (misses {len(scores[name]['missed'])})" if len(scores[name]["missed"]) > fewest else "")
                       for name in candidates if name != best)
    return best, f"lowest mean pinball loss on the folds, {s['pinball']:.4g} (others: {others}); {how}"


def summary(choice: Choice) -> dict:
    """The choice as the evaluation report keeps it: the winner, why, the folds, every candidate's and peer's
    fold pinball loss and missed coverage checks."""
    return {"method": choice.name, "reason": choice.reason, "folds": choice.folds, "config": asdict(choice.config),
            "fold_pinball": {name: s["pinball"] for name, s in choice.scores.items()},
            "fold_coverage_missed": {name: s["missed"] for name, s in choice.scores.items()},
            "fold_scores": choice.scores}
