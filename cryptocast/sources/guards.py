"""The ingest guards: one set of checks on the rows a run would write, whichever path read them.

Backfill from the APIs, a CSV import and the daily update all hand their validated rows here before
anything is written (`validate` has already checked each row on its own: ranges, prices, labels).
These checks need more than one row: the stored history, and the other asset.

- **No key in a text field.** An upstream that echoes the API key into a field (a market name)
  would have it stored and published: refused, the key never shown.
- **Asset identity.** SOL has always closed far below BTC (at most 0.0042x, 2020-2024), so a SOL
  close not below BTC's / 1.5 on the same day is the other asset: BTC served as SOL, swapped exports,
  a few BTC rows pasted into a SOL file. Checked per day against BTC's rows (stored, or read in this
  run). Nothing passes it, not even `--replace`.
- **Steps, measured across gaps.** A close more than 3x (or under 1/3) of the last close before it,
  stored or in the same rows, is another asset's rows or a wrong scale (SOL x10): the real SOL and
  BTC histories never moved more than 1.46x up or 0.58x down in a day. Over a gap of g days the bound
  widens as volatility does, to 3 * sqrt(g) (the real moves over up to 90 days stay at most 0.6 of it),
  so a one-day hole no longer hides a swap. A gap over 90 days is not judged: SOL rose 36x in 120 days
  of 2021 (the identity check above still applies). `--replace` lets a step through.
- **An export must be checkable.** A price export with no day in common with the other asset cannot
  be told apart from the other asset's export: refused (import both, or the other one first).
- **No silent disagreement.** An import whose closes differ from the stored ones by a median over
  10% is another asset or venue: refused unless `--replace`.

A refusal fails that group alone (both price groups when they contradict each other and neither is
more recent than the other), with one line; the other groups are written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

from cryptocast.features import BITCOIN, DAY, SOLANA, GroupSpec
from cryptocast.logs import holds_secret

# SOL has always closed below 1/100 of BTC; a SOL close not below BTC's / 1.5 is the wrong asset.
MAX_SOL_BTC_RATIO = 1 / 1.5
# Two venues quote the same asset within a percent or so; more is another asset, or broken data.
MAX_OVERLAP_DISAGREEMENT = 0.10
# One asset's close from one day to the next: at most 1.46x up and 0.58x down in the real SOL and BTC
# history; a 3x step is another asset's rows. Over g days: 3 * sqrt(g), for gaps up to MAX_GAP_JUDGED days
# (real SOL and BTC moves over any such gap, 2017-2024, reach at most 0.6 of the bound).
MAX_DAILY_STEP = 3.0
MAX_GAP_JUDGED = 90
ASSETS = {SOLANA.name: "SOL", BITCOIN.name: "BTC"}
PRICE_GROUPS = tuple(ASSETS)
TAKE_ANYWAY = "if they are right, feature_backfill.py --replace takes them"


@dataclass
class Batch:
    """Rows one run would write into one group, and where they came from."""

    spec: GroupSpec
    rows: pd.DataFrame
    origin: str
    from_export: bool = False  # a CSV export: nothing in it says which asset it holds


@dataclass(frozen=True)
class Refusal:
    """Groups that must not be written in this run, and the one line that says why."""

    groups: frozenset[str]
    message: str


def max_step(days: float) -> float:
    """The largest factor one asset's close may move over `days` days (any, past MAX_GAP_JUDGED)."""
    return MAX_DAILY_STEP * math.sqrt(max(days, 1.0)) if days <= MAX_GAP_JUDGED else math.inf


def refusals(batches: Iterable[Batch], stored: Mapping[str, pd.Series], replace: bool,
             secrets: Iterable[str] = ()) -> list[Refusal]:
    """Every refusal for these batches; `stored` holds each price group's stored closes by day.

    Checks run in order and a refused group drops out of the later ones, so one bad group is named
    once and cannot make a good one look wrong.
    """
    batches = list(batches)
    secrets = tuple(secrets)
    found: list[Refusal] = []

    def refused() -> set[str]:
        return {g for r in found for g in r.groups}

    for batch in batches:
        found += _secret_in_text(batch, secrets)
    prices = {b.spec.name: b for b in batches if b.spec.name in PRICE_GROUPS}
    if not replace:
        for name, batch in prices.items():
            if name not in refused():
                found += _steps(batch, stored.get(name, _no_closes()))
    live = {n: b for n, b in prices.items() if n not in refused()}
    if live:
        found += _identity(live, stored)
    live = {n: b for n, b in live.items() if n not in refused()}
    found += _uncheckable(live, stored, batches)
    if not replace:
        for name, batch in live.items():
            if name not in refused():
                found += _disagreement(batch, stored.get(name, _no_closes()))
    return found


def _no_closes() -> pd.Series:
    return pd.Series(dtype=float, index=pd.DatetimeIndex([], name=DAY))


def closes(rows: pd.DataFrame | None) -> pd.Series:
    """Close by day of a price group's rows (empty for none)."""
    return _no_closes() if rows is None or rows.empty else rows.set_index(DAY)["close"]


def _secret_in_text(batch: Batch, secrets: tuple[str, ...]) -> list[Refusal]:
    if not secrets:
        return []
    for column in batch.rows.columns:
        if batch.rows[column].dtype != object:
            continue
        hit = batch.rows[column].map(lambda v: isinstance(v, str) and holds_secret(v, secrets))
        if hit.any():
            day = batch.rows.loc[hit.idxmax(), DAY]
            return [Refusal(frozenset({batch.spec.name}),
                            f"{batch.origin} {pd.Timestamp(day).date()}: field '{column}' holds an API key (not "
                            "shown); nothing written: the upstream echoed a secret")]
    return []


def _steps(batch: Batch, stored: pd.Series) -> list[Refusal]:
    """The first close (of this batch, or the stored one right after it) beyond `max_step` of the close before it."""
    ours = closes(batch.rows)
    kept = stored[~stored.index.isin(ours.index)]
    series = (pd.concat([kept, ours]) if len(kept) else ours).sort_index()
    days = series.index.to_series()
    gap = days.diff().dt.days
    factor = series / series.shift(1)
    bound = gap.map(lambda g: max_step(g) if g == g else math.inf)
    mine = days.isin(ours.index) | days.shift(1).isin(ours.index)
    bad = mine & ((factor > bound) | (factor < 1 / bound))
    if not bad.any():
        return []
    i = int(bad.to_numpy().nonzero()[0][0])
    day, before, days_between = days.iloc[i], days.iloc[i - 1], int(gap.iloc[i])
    span = "one day" if days_between == 1 else f"{days_between} days (nothing between)"
    return [Refusal(frozenset({batch.spec.name}),
                    f"{batch.origin}: close {series.iloc[i]:g} on {day.date()} after {series.iloc[i - 1]:g} on "
                    f"{before.date()} ({factor.iloc[i]:.2f}x in {span}, more than one asset ever moves, at most "
                    f"{bound.iloc[i]:.1f}x): rows of another asset? nothing written ({TAKE_ANYWAY})")]


def _overlaid(stored: Mapping[str, pd.Series], batches: Mapping[str, Batch], name: str) -> tuple[pd.Series, set]:
    """Closes of `name` as they would be after this run (its rows over the stored ones), and the days it brings."""
    old = stored.get(name, _no_closes())
    if name not in batches:
        return old, set()
    ours = closes(batches[name].rows)
    return pd.concat([old[~old.index.isin(ours.index)], ours]).sort_index(), set(ours.index)


def _label(batches: Mapping[str, Batch], name: str) -> str:
    return f"{name} from {batches[name].origin}" if name in batches else f"the stored {name} rows"


def _identity(batches: Mapping[str, Batch], stored: Mapping[str, pd.Series]) -> list[Refusal]:
    """SOL far below BTC on every day this run touches: by the median first (one file is the other asset's),
    then day by day (a few rows of the other asset)."""
    (sol, sol_new), (btc, btc_new) = (_overlaid(stored, batches, spec.name) for spec in (SOLANA, BITCOIN))
    common = sol.index.intersection(btc.index)
    touched = common[common.isin(list(sol_new | btc_new))]
    if not len(touched):
        return []
    ratio = sol[touched] / btc[touched]
    both = frozenset(n for n in (SOLANA.name, BITCOIN.name) if n in batches)
    median = float(ratio.median())
    if median >= MAX_SOL_BTC_RATIO:
        return [Refusal(both, f"{_label(batches, SOLANA.name)} and {_label(batches, BITCOIN.name)}: SOL closes at "
                              f"{median:.2f}x BTC on {len(touched)} common day(s), but SOL has always closed far "
                              "below BTC: is one the other asset's export? nothing written")]
    bad = ratio[ratio >= MAX_SOL_BTC_RATIO]
    if bad.empty:
        return []
    day = bad.index[0]
    if day in sol_new:
        name, other, close = SOLANA.name, BITCOIN.name, sol[day]
    else:
        name, other, close = BITCOIN.name, SOLANA.name, btc[day]
    return [Refusal(frozenset({name}),
                    f"{batches[name].origin}: close {close:g} on {day.date()} is {bad.iloc[0]:.2f}x the BTC close "
                    f"that day ({_label(batches, other)}), but SOL has always closed far below BTC: rows of another "
                    f"asset? nothing written")]


def _uncheckable(batches: Mapping[str, Batch], stored: Mapping[str, pd.Series], every: list[Batch]) -> list[Refusal]:
    """An export (no symbol in it) with no day in common with the other asset, stored or read in this run."""
    read = {b.spec.name: b for b in every}
    found = []
    for name, batch in batches.items():
        if not batch.from_export:  # an API names its symbol; an export could be any asset's
            continue
        other = BITCOIN.name if name == SOLANA.name else SOLANA.name
        theirs = stored.get(other, _no_closes()).index
        if other in read:
            theirs = theirs.union(closes(read[other].rows).index)
        if not len(closes(batch.rows).index.intersection(theirs)):
            found.append(Refusal(frozenset({name}),
                                 f"{name} from {batch.origin}: no {other} rows (stored or read in this run) to check "
                                 f"that it holds {ASSETS[name]} prices; nothing written (import {other} first, or "
                                 "in the same run)"))
    return found


def _disagreement(batch: Batch, stored: pd.Series) -> list[Refusal]:
    ours = closes(batch.rows)
    common = ours.index.intersection(stored.index)
    if not len(common):
        return []
    gap = float((ours[common] / stored[common] - 1).abs().median())
    if gap <= MAX_OVERLAP_DISAGREEMENT:
        return []
    return [Refusal(frozenset({batch.spec.name}),
                    f"{batch.origin}: its closes differ from the stored {batch.spec.name} rows by a median {gap:.0%} "
                    f"on {len(common)} overlapping day(s); nothing written (another asset's export? --replace "
                    "overwrites the stored rows, as a commit that can be rolled back)")]
