"""The pipeline watches its own health: live scores against what the backtest makes plausible, and input drift.

Every daily run (at the end of inference_pipeline.py, after the forecast is stored) writes one
`model_health` row per check, each with its statistic, its threshold, its window and its verdict:

- Live scores, per horizon group (1-3, 4-7, 8-10 days ahead), over the published forecasts whose
  outcome became known in the last `health_days` (90) days: how often the close fell inside the 80%
  and 95% ranges, the pinball loss over the quantiles and the point forecast's MAE, both relative to
  the naive forecast's (no change) MAE over the same forecasts, so that a wild quarter and a calm one,
  a $20 SOL and a $200 SOL, score alike for the same model.
- The range each live score must lie in is what the production version's own backtest makes
  plausible for a window of that length: a moving-block bootstrap of its per-origin scores
  (`backtest_forecasts.csv`, stored with every version): windows of `health_days` origins are
  assembled from randomly placed blocks of `BLOCK_DAYS` consecutive origins (so the overlap of
  10-day outcomes and a few weeks of volatility regime stay in each block), `RESAMPLES` times with a
  fixed seed, and the central `health_level` (95%) of the window's score is the range. Coverage fails
  outside it on either side (too narrow or too wide ranges both mislead); pinball and relative MAE
  fail only above it (better than the backtest is no fault).
- Inputs, each of the model's features in a scale-free form (`scale_free`): the population-stability
  index (PSI) of the last `drift_days` (30) days against the days the production version was trained
  on (five bins at the training window's quintiles, stored with the version as `input_profile.json`),
  failing above `drift_psi`; and frozen inputs: the same value `frozen_days` days running (a Fear &
  Greed feed stuck at one value, a SOL range of zero).

A check that cannot be computed yet (too few matured forecasts, no backtest artifact) is recorded as
`unknown` with the reason. Health never stops the forecast: `inference` logs a failure to compute it
and carries on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from cryptocast.dataset import FEATURES, LOOKBACK, read_feature_frame
from cryptocast.features import FORECAST_QUANTILES, FORECAST_RANGES, Column, GroupSpec, validate
from cryptocast.forecasts import read_forecasts
from cryptocast.modeling.portable import CorruptModelError
from cryptocast.registry import ModelVersion
from cryptocast.settings import Settings
from cryptocast.stores.base import FeatureStore

log = logging.getLogger(__name__)

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
LIVE, INPUT = "live", "input"
HORIZON_GROUPS = {"h1-3": (1, 3), "h4-7": (4, 7), "h8-10": (8, 10)}
LIVE_SCORES = ("coverage_80", "coverage_95", "pinball", "rel_mae")
# Scores that are a ratio of two sums, so the market's own volatility cancels: a quarter twice as wild
# doubles the pinball loss of a good model and the naive forecast's error alike.
RATIOS = {"pinball": ("pinball", "naive_where_pinball"), "rel_mae": ("abs_error", "abs_naive")}
NOMINAL = {"coverage_80": 0.8, "coverage_95": 0.95}
BLOCK_DAYS = 30
RESAMPLES = 2000
SEED = 21
PSI_BINS = 5
BACKTEST_ARTIFACT = "backtest_forecasts.csv"
INPUT_PROFILE = "input_profile.json"  # written by training: each input's bins and shares in the training window

HEALTH = GroupSpec(
    "model_health",
    1,
    "The daily health record: one row per day and check (live scores vs the backtest, input drift); "
    "a day's rerun replaces that day's rows",
    ("day", "health_check"),
    "day",
    (
        Column("day", "date", "last complete day the record was computed for"),
        Column("health_check", "str", "what is checked, e.g. 'coverage_80 h1-3' or 'drift fear_greed'"),
        Column("kind", "str", "live (scores of matured forecasts) or input (drift and frozen inputs)"),
        Column("statistic", "float", "the checked figure; empty when it cannot be computed yet", nullable=True),
        Column("threshold_low", "float", "lowest healthy value; empty: no lower limit", nullable=True),
        Column("threshold_high", "float", "highest healthy value; empty: no upper limit", nullable=True),
        Column("time_window", "str", "the days the statistic is computed over, and how many observations"),
        Column("verdict", "str", "ok, fail, or unknown (cannot be computed yet)"),
        Column("failing_since", "str", "first day of the current run of failures (YYYY-MM-DD), else empty"),
        Column("detail", "str", "the check in words: what was found, against what"),
        Column("model_version", "int", "production model version the record judges"),
    ),
    lambda df: [(~df["verdict"].isin((OK, FAIL, UNKNOWN)), "verdict is not ok, fail or unknown"),
                (~df["kind"].isin((LIVE, INPUT)), "kind is not live or input")],
)


@dataclass(frozen=True)
class Thresholds:
    """The settings a record is judged by (see the settings table in guide/usage.md)."""

    days: int = 90
    min_days: int = 30
    level: float = 0.95
    drift_days: int = 30
    psi: float = 2.0
    frozen_days: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        return cls(settings.health_days, settings.health_min_days, settings.health_level, settings.drift_days,
                   settings.drift_psi, settings.frozen_days)


def _check(day: pd.Timestamp, name: str, kind: str, statistic: float | None, low: float | None,
           high: float | None, window: str, verdict: str, detail: str) -> dict:
    return {"day": day, "health_check": name, "kind": kind, "statistic": math.nan if statistic is None else statistic,
            "threshold_low": math.nan if low is None else low, "threshold_high": math.nan if high is None else high,
            "time_window": window, "verdict": verdict, "failing_since": "", "detail": detail}


# ---------------------------------------------------------------------------------------------------
# Live scores


def scored(rows: pd.DataFrame) -> pd.DataFrame:
    """Per forecast (columns of `solana_forecasts` plus `naive` and `actual`): what each live score averages.

    Pinball loss (in price, averaged over the quantiles) is NaN where a row lacks quantiles (version 1
    of the forecasts group kept only the 80% and 95% bounds); `naive_where_pinball` is the naive error
    of the rows that have it, so that the ratio of the two compares like with like.
    """
    actual, naive = rows["actual"].to_numpy(float), rows["naive"].to_numpy(float)
    out = pd.DataFrame({"forecast_day": rows["forecast_day"].to_numpy(), "horizon": rows["horizon"].to_numpy()})
    for level, (lo, hi) in FORECAST_RANGES.items():
        if f"coverage_{level * 100:g}" in LIVE_SCORES:
            inside = (actual >= rows[lo].to_numpy(float)) & (actual <= rows[hi].to_numpy(float))
            out[f"coverage_{level * 100:g}"] = np.where(rows[[lo, hi]].notna().all(axis=1), inside, np.nan)
    quantiles = rows[list(FORECAST_QUANTILES)].to_numpy(float)
    diff = actual[:, None] - quantiles
    tau = np.asarray(list(FORECAST_QUANTILES.values()))
    out["pinball"] = np.maximum(tau * diff, (tau - 1) * diff).mean(axis=1)
    out["abs_error"] = np.abs(actual - rows["point"].to_numpy(float))
    out["abs_naive"] = np.abs(actual - naive)
    out["naive_where_pinball"] = out["abs_naive"].where(out["pinball"].notna())
    return out


def _by_origin(rows: pd.DataFrame, low: int, high: int) -> pd.DataFrame:
    """One row per forecast day: each part of a score averaged over the horizons of the group."""
    part = rows[(rows["horizon"] >= low) & (rows["horizon"] <= high)]
    return part.groupby("forecast_day", sort=True)[["coverage_80", "coverage_95", *RATIOS["pinball"],
                                                    *RATIOS["rel_mae"]]].mean()


def _statistic(origins: pd.DataFrame, score: str) -> float:
    if score in RATIOS:
        top, bottom = (origins[c].sum() for c in RATIOS[score])
        return float(top / bottom) if bottom > 0 else math.nan
    values = origins[score].dropna()
    return float(values.mean()) if len(values) else math.nan


@dataclass(frozen=True)
class Range:
    low: float | None
    high: float | None
    backtest: float  # the score over the whole backtest, as the version reported it

    def holds(self, value: float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


def backtest_ranges(backtest: pd.DataFrame, days: int, level: float, block: int = BLOCK_DAYS,
                    resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Range]:
    """The range of each live score a `days`-long window of the backtest makes plausible (moving-block bootstrap).

    Coverage ranges are centred on the nominal level (80%, 95%): the backtest's own year may sit a few
    points off it by the luck of that year (the promotion gate allows 5), and a live window is not
    expected to repeat that luck; and they are never narrower than the binomial range of `days`
    independent outcomes (a backtest that never missed would otherwise allow no miss at all).
    Pinball and relative MAE keep the backtest's own level.

    `backtest` is a version's `backtest_forecasts.csv`: one row per origin and horizon with the
    quantiles, the point, `naive` and `actual`. Deterministic: the same artifact gives the same ranges.
    """
    rows = scored(backtest)
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    ranges = {}
    for group, (low, high) in HORIZON_GROUPS.items():
        origins = _by_origin(rows, low, high)
        n = len(origins)
        size = min(block, n)
        starts = rng.integers(0, n - size + 1, size=(resamples, math.ceil(days / size)))
        picks = (starts[..., None] + np.arange(size)).reshape(resamples, -1)[:, :days]
        for score in LIVE_SCORES:
            if score in RATIOS:
                top, bottom = (np.nansum(origins[c].to_numpy()[picks], axis=1) for c in RATIOS[score])
                stats = top / bottom
            else:
                stats = np.nanmean(origins[score].to_numpy()[picks], axis=1)
            whole = _statistic(origins, score)
            if score in NOMINAL:  # the spread of the backtest's windows, around what the ranges promise
                stats = np.clip(stats - whole + NOMINAL[score], 0, 1)
            lo, hi = np.nanquantile(stats, [tail, 1 - tail])
            if score in NOMINAL:  # never narrower than `days` independent outcomes allow
                p = NOMINAL[score]
                half = NormalDist().inv_cdf(1 - tail) * math.sqrt(p * (1 - p) / days)
                lo, hi = max(0.0, min(lo, p - half)), min(1.0, max(hi, p + half))
            ranges[f"{score} {group}"] = Range(float(lo) if score in NOMINAL else None, float(hi), whole)
    return ranges


def matured(forecasts: pd.DataFrame, closes: pd.Series, day: pd.Timestamp, days: int) -> pd.DataFrame:
    """Published forecasts whose target day lies in the `days` days ending `day` and whose close is known."""
    window = forecasts[(forecasts["target_day"] > day - pd.Timedelta(days=days)) & (forecasts["target_day"] <= day)]
    out = window.assign(actual=closes.reindex(window["target_day"]).to_numpy(),
                        naive=closes.reindex(window["forecast_day"]).to_numpy())
    return out[out["actual"].notna() & out["naive"].notna()].reset_index(drop=True)


_WORDS = {"coverage_80": "80% ranges held", "coverage_95": "95% ranges held", "pinball": "pinball loss vs naive MAE",
          "rel_mae": "MAE vs naive"}


def _figure(score: str, value: float) -> str:
    return f"{value:.0%}" if score in NOMINAL else f"{value:.2f}"


def _limits(score: str, limits: Range) -> str:
    low, high = (None if v is None else _figure(score, v) for v in (limits.low, limits.high))
    return f"{low}..{high}" if low and high else f"at most {high}" if high else f"at least {low}"


def live_checks(forecasts: pd.DataFrame, closes: pd.Series, ranges: dict[str, Range] | None, day: pd.Timestamp,
                limits: Thresholds, why_no_ranges: str = "") -> list[dict]:
    """One row per live score and horizon group, judged against the backtest's ranges."""
    rows = matured(forecasts, closes, day, limits.days)
    per = scored(rows) if len(rows) else None
    first = (day - pd.Timedelta(days=limits.days - 1)).date()
    out = []
    for group, (low, high) in HORIZON_GROUPS.items():
        origins = _by_origin(per, low, high) if per is not None else pd.DataFrame()
        for score in LIVE_SCORES:
            name = f"{score} {group}"
            column = RATIOS[score][0] if score in RATIOS else score
            known = origins[column].notna() if column in origins else pd.Series(dtype=bool)
            count = int(known.sum())
            window = f"{first}..{day.date()} (targets), {count} forecast days"
            limit = ranges.get(name) if ranges else None
            value = _statistic(origins[known], score) if count else math.nan
            what = f"live {_WORDS[score]} at {low}-{high} days ahead"
            if count < limits.min_days or not math.isfinite(value):
                out.append(_check(day, name, LIVE, None if not math.isfinite(value) else value, None, None, window,
                                  UNKNOWN, f"{what}: {count} matured forecast day(s) of the {limits.min_days} "
                                           "needed: cannot tell yet"))
            elif limit is None:
                out.append(_check(day, name, LIVE, value, None, None, window, UNKNOWN,
                                  f"{what}: {_figure(score, value)}; no backtest range to compare with"
                                  f" ({why_no_ranges or 'the production version has none'})"))
            else:
                verdict = OK if limit.holds(value) else FAIL
                out.append(_check(day, name, LIVE, value, limit.low, limit.high, window, verdict,
                                  f"{what}: {_figure(score, value)} over the last {limits.days} days, "
                                  f"{'as expected' if verdict == OK else 'outside'} "
                                  f"{_limits(score, limit)} (backtest {_figure(score, limit.backtest)})"))
    return out


# ---------------------------------------------------------------------------------------------------
# Inputs


def profile(reference: np.ndarray, bins: int = PSI_BINS) -> dict:
    """The reference's bins (edges at its quantiles) and its share in each: what PSI compares with.

    Ties (a bounded index, a price that did not move) merge bins, so a value repeated in the
    reference does not split into empty bins. Shares are smoothed by half a count per bin, so an
    empty bin does not make the index infinite.
    """
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    return {"edges": edges.tolist(), "shares": _shares(edges, reference).tolist(), "days": len(reference)}


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return (counts + 0.5) / (len(values) + 0.5 * len(counts))


def psi_against(reference: dict, recent: np.ndarray) -> float:
    """Population-stability index of `recent` against a reference `profile`:
    sum((p_recent - p_ref) * ln(p_recent / p_ref)), 0 when the shares match, growing as they part."""
    ref = np.asarray(reference["shares"], dtype=float)
    now = _shares(np.asarray(reference["edges"], dtype=float), recent)
    return float(np.sum((now - ref) * np.log(now / ref)))


def psi(reference: np.ndarray, recent: np.ndarray) -> float:
    return psi_against(profile(reference), recent)


def frozen_run(values: pd.Series) -> tuple[int, pd.Timestamp | None]:
    """How many days running, up to the last, the series has held its last value; and the first of them."""
    values = values.dropna()
    if values.empty:
        return 0, None
    changed = values.ne(values.shift())
    start = changed[changed].index[-1]
    return int((values.index >= start).sum()), start


def scale_free(frame: pd.DataFrame) -> pd.DataFrame:
    """Each input in the form drift is measured on: returns as they are, the others as day-over-day changes.

    Levels of volume, of the daily range and of Fear & Greed stay put for months (a fearful quarter,
    a busy year): every third day of 2021-09..2024-12, their 30-day PSI against the history before
    exceeded 2 on 22% of days for BTC volume and 30% for Fear & Greed. Their daily changes are as
    steady as returns (at most 1.23; returns 1.48), yet a feed that stops moving shows at once.
    """
    return pd.DataFrame({f: frame[f] if f.endswith("_return") else frame[f].diff() for f in FEATURES})


def input_profile(frame: pd.DataFrame, training: tuple[pd.Timestamp, pd.Timestamp]) -> dict:
    """Each input's reference `profile` over the training window's input days (stored with a version as
    `input_profile.json`, so the daily check reads 30 days, not the whole history)."""
    first, last = training
    reference = scale_free(frame).loc[first - pd.Timedelta(days=LOOKBACK - 1): last]
    return {"training_window": {"first_origin": str(first.date()), "last_origin": str(last.date())},
            "features": {f: profile(reference[f].dropna().to_numpy(float)) for f in FEATURES
                         if reference[f].notna().sum() >= 2 * PSI_BINS}}


def input_checks(frame: pd.DataFrame, reference: dict | None, day: pd.Timestamp, limits: Thresholds) -> list[dict]:
    """Drift (PSI) and frozen-value rows for each model input: recent days against the training window.

    `frame` is the feature frame's daily table (`dataset.features_from_view`) covering at least the last
    `drift_days` + 1 days; `reference` an `input_profile` of the production version's training window
    (None: the version records no training window, so drift cannot be told; frozen inputs still can).
    """
    window = reference["training_window"] if reference else {"first_origin": "?", "last_origin": "?"}
    recent_first = day - pd.Timedelta(days=limits.drift_days - 1)
    recent = frame.loc[recent_first:day]
    changes = scale_free(frame).loc[recent_first:day]
    out = []
    for feature in FEATURES:
        now = changes[feature].dropna().to_numpy(float)
        form = "" if feature.endswith("_return") else " (daily changes)"
        known = reference["features"].get(feature) if reference else None
        span = f"{recent_first.date()}..{day.date()} ({len(now)} days) vs {window['first_origin']}.." \
               f"{window['last_origin']} (training)"
        if len(now) < limits.drift_days // 2 or known is None:
            why = ("the production version records no training window" if reference is None else
                   f"{len(now)} recent days with a value{'' if known else ' and too few in the training window'}")
            out.append(_check(day, f"drift {feature}", INPUT, None, None, None, span, UNKNOWN,
                              f"{feature}: {why}: cannot compare"))
        else:
            index = psi_against(known, now)
            verdict = OK if index <= limits.psi else FAIL
            out.append(_check(day, f"drift {feature}", INPUT, index, None, limits.psi, span, verdict,
                              f"{feature}{form}: PSI {index:.2f} of the last {limits.drift_days} days against the "
                              f"training window, {'within' if verdict == OK else 'above'} {limits.psi:g}"))
        series = recent[feature] if feature in recent else pd.Series(dtype=float)
        run, since = frozen_run(series.loc[:day])
        last_value = series.dropna().iloc[-1] if series.notna().any() else None
        verdict = FAIL if run >= limits.frozen_days else OK if run else UNKNOWN
        detail = (f"{feature}: no value in the last {limits.drift_days} days" if not run else
                  f"{feature}: the same value ({last_value:.6g}) {run} day(s) running since {since.date()}, "
                  f"{'at or above' if verdict == FAIL else 'below'} the {limits.frozen_days} allowed")
        out.append(_check(day, f"frozen {feature}", INPUT, float(run), None, float(limits.frozen_days - 1),
                          f"{recent_first.date()}..{day.date()}", verdict, detail))
    return out


# ---------------------------------------------------------------------------------------------------
# The record


def _backtest(version: ModelVersion) -> tuple[pd.DataFrame | None, str]:
    path = version.path / BACKTEST_ARTIFACT
    if not path.exists():
        return None, f"v{version.version} has no {BACKTEST_ARTIFACT}"
    try:
        rows = pd.read_csv(path, parse_dates=["forecast_day", "target_day"])
        rows[["point", "naive", "actual", *FORECAST_QUANTILES]].astype(float)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
    return rows, ""


def training_window(version: ModelVersion) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    window = version.metadata.get("training_window")
    try:
        return pd.Timestamp(window["first_origin"]), pd.Timestamp(window["last_origin"])
    except (TypeError, KeyError, ValueError):
        return None


def with_since(rows: pd.DataFrame, previous: pd.DataFrame) -> pd.DataFrame:
    """Carry each failing check's first day of failure from the newest earlier record, if it failed then too."""
    earlier = previous[previous["verdict"] == FAIL].set_index("health_check")["failing_since"]
    failing = rows["verdict"] == FAIL
    carried = rows["health_check"].map(earlier)
    since = carried.where(carried.notna() & (carried != ""), rows["day"].dt.strftime("%Y-%m-%d"))
    return rows.assign(failing_since=since.where(failing, ""))


def _stored_profile(version: ModelVersion) -> dict | None:
    """The version's `input_profile.json` (None for versions trained before it was written)."""
    path = version.path / INPUT_PROFILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        for item in doc["features"].values():
            if len(item["shares"]) != len(item["edges"]) + 1 or min(item["shares"]) <= 0:
                raise ValueError("every feature needs one share more than edges, all positive")
        doc["training_window"]["first_origin"], doc["training_window"]["last_origin"]  # noqa: B018 - must exist
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
    return doc


def evaluate(store: FeatureStore, version: ModelVersion, day: dt.date, limits: Thresholds) -> pd.DataFrame:
    """The day's health record, validated, with `failing_since` carried from the previous record.

    Reads the last `health_days` + 10 days of inputs and forecasts; the whole training window only for a
    version without `input_profile.json` (trained before health existed).
    """
    timestamp = pd.Timestamp(day)
    backtest, why = _backtest(version)
    ranges = backtest_ranges(backtest, limits.days, limits.level) if backtest is not None else None
    reference, training = _stored_profile(version), training_window(version)
    start = timestamp - pd.Timedelta(days=max(limits.days + 10, limits.drift_days + 1))
    if reference is None and training is not None:
        start = min(start, training[0] - pd.Timedelta(days=LOOKBACK))
    frame = read_feature_frame(store, start.date(), day).frame
    forecasts = read_forecasts(store, (timestamp - pd.Timedelta(days=limits.days + 10)).date(), day)
    rows = live_checks(forecasts, frame["sol_close"], ranges, timestamp, limits, why)
    if reference is None and training is not None:
        reference = input_profile(frame, training)
    rows += input_checks(frame, reference, timestamp, limits)
    record = pd.DataFrame(rows).assign(model_version=version.version)
    group = store.get_feature_group(HEALTH)
    previous = pd.DataFrame(columns=HEALTH.column_names)
    if group is not None:
        before = group.read(day - dt.timedelta(days=30), day - dt.timedelta(days=1))
        previous = before[before["day"] == before["day"].max()] if len(before) else before
    return validate(HEALTH, with_since(record, previous), "model_health")


def record_health(settings: Settings, store: FeatureStore, version: ModelVersion) -> pd.DataFrame:
    """Compute and store the day's record (a rerun replaces that day's rows); returns it."""
    started = time.monotonic()
    rows = evaluate(store, version, settings.last_complete_day, Thresholds.from_settings(settings))
    result = store.get_or_create_feature_group(HEALTH).insert(rows, replace=True)
    counts = rows["verdict"].value_counts()
    log.info("health %s: %d ok, %d fail, %d unknown (%s) in %.2fs", settings.last_complete_day, counts.get(OK, 0),
             counts.get(FAIL, 0), counts.get(UNKNOWN, 0), result, time.monotonic() - started)
    for row in rows[rows["verdict"] == FAIL].itertuples():
        log.warning("health: %s fails since %s: %s", row.health_check, row.failing_since, row.detail)
    return rows


# ---------------------------------------------------------------------------------------------------
# Reading it back: the command, the page


def latest(store: FeatureStore) -> pd.DataFrame:
    """The newest day's record (empty when there is none)."""
    group = store.get_feature_group(HEALTH)
    if group is None:
        return pd.DataFrame(columns=HEALTH.column_names)
    rows = group.read()
    return rows[rows["day"] == rows["day"].max()].reset_index(drop=True) if len(rows) else rows


def _number(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def as_json(rows: pd.DataFrame) -> dict:
    """`health --json`: the record's day, overall verdict and one object per check (a contract: keys only added)."""
    if rows.empty:
        return {"day": None, "model_version": None, "verdict": UNKNOWN, "failing": [], "checks": []}
    checks = [{"check": r.health_check, "kind": r.kind, "statistic": _number(r.statistic),
               "threshold_low": _number(r.threshold_low), "threshold_high": _number(r.threshold_high),
               "window": r.time_window, "verdict": r.verdict, "failing_since": r.failing_since or None,
               "detail": r.detail} for r in rows.itertuples()]
    failing = [c["check"] for c in checks if c["verdict"] == FAIL]
    return {"day": rows["day"].iloc[0].strftime("%Y-%m-%d"), "model_version": int(rows["model_version"].iloc[0]),
            "verdict": FAIL if failing else OK if all(c["verdict"] == OK for c in checks) else UNKNOWN,
            "failing": failing, "live_failing": [c["check"] for c in checks if c["verdict"] == FAIL
                                                 and c["kind"] == LIVE],
            "input_failing": [c["check"] for c in checks if c["verdict"] == FAIL and c["kind"] == INPUT],
            "checks": checks}


def format_lines(rows: pd.DataFrame) -> list[str]:
    """`health`: one line per check, failures first."""
    doc = as_json(rows)
    if doc["day"] is None:
        return ["no health record yet: inference_pipeline.py writes one each day"]
    order = {FAIL: 0, UNKNOWN: 1, OK: 2}
    lines = [f"health {doc['day']} (model v{doc['model_version']}): {doc['verdict']}"]
    for c in sorted(doc["checks"], key=lambda c: order[c["verdict"]]):
        since = f" since {c['failing_since']}" if c["failing_since"] else ""
        lines.append(f"{c['verdict']:<7} {c['check']:<24} {c['detail']}{since} [{c['window']}]")
    return lines


def page_summary(rows: pd.DataFrame) -> dict | None:
    """The page's health sentence (`health` in forecast.json): plain words, and each failing check since when."""
    doc = as_json(rows)
    if doc["day"] is None:
        return None
    checks = {c["check"]: c for c in doc["checks"]}
    failing = [{"check": c["check"], "since": c["failing_since"], "detail": c["detail"]}
               for c in doc["checks"] if c["verdict"] == FAIL]
    lead = checks.get("coverage_80 h1-3")
    if lead and lead["statistic"] is not None and lead["verdict"] != UNKNOWN:
        held = (f"live 80% ranges 1-3 days ahead held {lead['statistic']:.0%} of the last "
                f"{lead['window'].split(', ')[-1]}")
        sentence = f"{held}, as expected." if lead["verdict"] == OK else f"{held}, outside the expected " \
            f"{_limits('coverage_80', Range(lead['threshold_low'], lead['threshold_high'], math.nan))}."
    else:
        sentence = "Too few published forecasts have matured yet to judge the live ranges."
    inputs_ok = all(c["verdict"] == OK for c in doc["checks"] if c["kind"] == INPUT)
    sentence += " The model's inputs look like those it was trained on." if inputs_ok else ""
    status = {OK: "all checks pass", FAIL: f"{len(failing)} check(s) fail", UNKNOWN: "some checks cannot tell yet"}
    return {"day": doc["day"], "verdict": doc["verdict"], "status": status[doc["verdict"]],
            "sentence": sentence[0].upper() + sentence[1:], "failing": failing}

