"""Getting rows into the feature groups: the full backfill and the daily, gap-filling update.

Each group is fetched, validated and written on its own (each write atomic), so one failing source
never stops the others: a run writes every group that succeeded, then fails naming each one that did
not, and a failed group is left exactly as it was. Writes are upserts, so re-running adds nothing.
A day an upstream keeps not having becomes a known hole (`holes.py`) and is not asked for again.

Stored rows change only through `backfill(..., replace=True)` (feature_backfill.py --replace): the
daily update asks only for missing days, so an upstream revision of a past candle is never taken
silently, and an import that looks like another asset, or that disagrees with what is stored, is
refused (that group fails alone) before anything of it is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cryptocast.errors import CryptocastError, DataValidationError, SourceError
from cryptocast.features import BITCOIN, DAY, INGESTED_GROUPS, SOLANA, GroupSpec, missing_days, validate
from cryptocast.holes import CSV_SOURCE, HoleBook
from cryptocast.settings import Settings
from cryptocast.sources.csv_exports import load_export
from cryptocast.sources.fear_greed import FearGreed
from cryptocast.sources.http import HttpClient
from cryptocast.sources.prices import price_source
from cryptocast.stores import FeatureStore, open_feature_store

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_GROUP = 20
# SOL has always closed below 1/100 of BTC; a SOL close not below BTC's / 1.5 is the wrong asset.
MAX_SOL_BTC_RATIO = 1 / 1.5
# Two venues quote the same asset within a percent or so; more is another asset, or broken data.
MAX_OVERLAP_DISAGREEMENT = 0.10
# One asset's close from one day to the next: at most 1.46x up and 0.58x down in the real SOL and BTC
# history; a 3x step is another asset's rows pasted into the export.
MAX_DAILY_STEP = 3.0
ASSETS = {SOLANA.name: "SOL", BITCOIN.name: "BTC"}


@dataclass
class Batch:
    spec: GroupSpec
    rows: pd.DataFrame
    origin: str
    from_export: bool = False  # a CSV export: nothing in it says which asset it holds


class Upstream:
    """The API behind each group, chosen once per run from the settings."""

    def __init__(self, settings: Settings) -> None:
        http = HttpClient(settings)
        prices = price_source(http, settings)
        self.by_group = {"solana": prices, "bitcoin": prices, "fear_greed": FearGreed(http, settings)}

    def origin(self, spec: GroupSpec) -> str:
        return self.by_group[spec.name].origin(spec.name)

    def fetch(self, spec: GroupSpec, start: dt.date, end: dt.date) -> pd.DataFrame:
        """Validated rows for days in [start, end]; the API's partial 'today' never gets through."""
        rows = self.by_group[spec.name].fetch(spec.name, start, end)
        return validate(spec, within(rows, start, end), self.origin(spec))


def within(rows: pd.DataFrame, start: dt.date | None, end: dt.date) -> pd.DataFrame:
    """Rows outside [start, end] dropped; a row without a day is kept, so validation names it."""
    outside = rows[DAY] > pd.Timestamp(end)
    if start is not None:
        outside |= rows[DAY] < pd.Timestamp(start)
    return rows[~outside]


def contiguous_runs(days: list[pd.Timestamp]) -> list[tuple[dt.date, dt.date]]:
    """Group sorted days into [first, last] runs so a gap costs one request, not one per day."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in sorted(days):
        d = day.date()
        if runs and (d - runs[-1][1]).days == 1:
            runs[-1] = (runs[-1][0], d)
        else:
            runs.append((d, d))
    return runs


def _fetch_days(upstream: Upstream, spec: GroupSpec, wanted: list[pd.Timestamp]) -> pd.DataFrame:
    runs = contiguous_runs(wanted)
    if spec.name == "fear_greed" or len(runs) > MAX_REQUESTS_PER_GROUP:
        runs = [(runs[0][0], runs[-1][1])]
    frames = [upstream.fetch(spec, first, last) for first, last in runs]
    rows = pd.concat(frames, ignore_index=True)
    return rows[rows[DAY].isin(wanted)].reset_index(drop=True)


class Failures:
    """What failed in one run, group by group: each failure is kept and the other groups carry on.

    Only a group's own input fails alone (its upstream, its export, its rows). A failing store is
    shared by every group, so a StoreError still stops the run at once: waiting on a hung backend
    once per group would only multiply the wait.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    @contextmanager
    def guard(self) -> Iterator[None]:
        try:
            yield
        except (SourceError, DataValidationError) as exc:
            self.add(str(exc))

    def raise_any(self) -> None:
        """One line naming every failure; the groups that succeeded are written by now."""
        if self.messages:
            raise CryptocastError("; ".join(self.messages))


def _shown_days(days: list[pd.Timestamp]) -> str:
    return ", ".join(str(d.date()) for d in days[:10]) + (" ..." if len(days) > 10 else "")


def _write(store: FeatureStore, batch: Batch, replace: bool = False) -> None:
    started = time.monotonic()
    result = store.get_or_create_feature_group(batch.spec).insert(batch.rows, replace=replace)
    log.info("%s v%d: %s from %s (%.2fs)", batch.spec.name, batch.spec.version, result, batch.origin,
             time.monotonic() - started)


def _warn_if_late(spec: GroupSpec, origin: str, newest: pd.Timestamp, end: pd.Timestamp) -> None:
    """Days after the newest the upstream has are late, not holes: the next run asks again.

    Not a failure: the group is behind (status says how far), inference refuses stale prices, and a
    Fear & Greed day that never comes is a hole the model fills (at most 3 days in a row).
    """
    if newest < end:
        log.warning("%s: no rows for %s..%s from %s yet; the group ends %s", spec.name,
                    (newest + pd.Timedelta(days=1)).date(), end.date(), origin, newest.date())


def _read_backfill(settings: Settings, spec: GroupSpec, csv_file: Path | None, upstream: Upstream | None,
                   holes: HoleBook) -> Batch:
    """A group's full history from its export or its upstream, validated; the upstream's holes are recorded."""
    started = time.monotonic()
    end = settings.last_complete_day
    if csv_file is not None:
        origin = f"{CSV_SOURCE}{csv_file.name}"
        raw = load_export(spec.name, csv_file, settings.today)
        rows = validate(spec, within(raw, None, end), origin)
        if rows.empty:
            raise SourceError(f"{origin}: no complete day on or before {end}")
    else:
        origin = upstream.origin(spec)
        rows = upstream.fetch(spec, settings.history_start, end)
        if rows.empty:
            raise SourceError(f"{origin}: no rows for {settings.history_start}..{end}")
    log.info("%s: read %d rows %s..%s from %s (%.2fs)", spec.name, len(rows), rows[DAY].min().date(),
             rows[DAY].max().date(), origin, time.monotonic() - started)
    absent = missing_days(rows[DAY], rows[DAY].min(), rows[DAY].max())
    if absent:
        log.warning("%s: %d day(s) absent in %s, kept as holes: %s", spec.name, len(absent), origin,
                    _shown_days(absent))
    holes.record(spec.name, origin, absent)  # an export's are "csv FILE"'s: never an upstream's known holes
    if csv_file is None:
        _warn_if_late(spec, origin, rows[DAY].max(), pd.Timestamp(end))
    return Batch(spec, rows, origin, from_export=csv_file is not None)


def backfill(settings: Settings, csv_files: dict[str, Path] | None = None, replace: bool = False) -> None:
    """Load full history into every group, from CSV exports where given and the APIs otherwise.

    `replace` lets the rows change stored ones (each change is logged, and the commit can be rolled back).
    """
    csv_files = csv_files or {}
    absent = [f"--{group.replace('_', '-')}-csv {path}" for group, path in csv_files.items() if not path.is_file()]
    if absent:  # before any request for the other groups: a typo costs no network retries
        raise SourceError(f"no such file: {', '.join(absent)}; nothing written")
    store = open_feature_store(settings)
    upstream = Upstream(settings) if set(g.name for g in INGESTED_GROUPS) - set(csv_files) else None
    with store.lock():
        holes, failures = HoleBook(store, settings), Failures()
        batches = []
        for spec in INGESTED_GROUPS:
            with failures.guard():
                batches.append(_read_backfill(settings, spec, csv_files.get(spec.name), upstream, holes))
        for batch in checked_imports(store, batches, replace, failures):
            with failures.guard():  # a refused rewrite of stored rows fails that group alone
                _write(store, batch, replace)
        holes.save()
        failures.raise_any()


def checked_imports(store: FeatureStore, batches: list[Batch], replace: bool, failures: Failures) -> list[Batch]:
    """The batches that may be written: not the other asset's prices, nor prices disagreeing with the store.

    Binance exports carry no symbol, so `--solana-csv BTCUSDT_1d.csv` is an easy mistake; it must
    fail with one line before anything of those groups is written (the other groups carry on). An
    export with no day in common with the other asset (stored or in this run) cannot be checked, so it
    is refused too. A real disagreement may be overwritten with `replace`; swapped assets may not.
    """
    prices = {b.spec.name: b for b in batches if b.spec in (SOLANA, BITCOIN)}
    refused: set[str] = set()
    compared = True
    if prices:
        with failures.guard():
            try:
                compared = _refuse_swapped_assets(store, prices)
            except DataValidationError:
                refused |= set(prices)
                raise
    for batch in prices.values() if not compared else ():
        if batch.from_export:  # an API names its symbol; an export could be any asset's
            other = BITCOIN.name if batch.spec == SOLANA else SOLANA.name
            refused.add(batch.spec.name)
            failures.add(f"{batch.spec.name} from {batch.origin}: no {other} rows (stored or read in this run) to "
                         f"check that it holds {ASSETS[batch.spec.name]} prices; nothing written (import {other} "
                         "first, or in the same run)")
    for batch in prices.values():
        if batch.spec.name not in refused:
            with failures.guard():
                try:
                    stored = _closes(store, {}, batch.spec)[0]
                    _refuse_steps(batch, stored)  # even with --replace, as swapped assets are
                    if not replace:
                        _refuse_disagreement(batch, stored)
                except DataValidationError:
                    refused.add(batch.spec.name)
                    raise
    return [b for b in batches if b.spec.name not in refused]


def _refuse_swapped_assets(store: FeatureStore, prices: dict[str, Batch]) -> bool:
    """Refuse SOL closes that are not far below BTC's; False when there is no common day to compare on."""
    sol, btc = (_closes(store, prices, spec) for spec in (SOLANA, BITCOIN))
    common = sol[0].index.intersection(btc[0].index)
    if not len(common):
        return False
    ratio = float((sol[0][common] / btc[0][common]).median())
    if ratio >= MAX_SOL_BTC_RATIO:
        raise DataValidationError(
            f"{sol[1]} and {btc[1]}: SOL closes at {ratio:.2f}x BTC on {len(common)} common day(s), but SOL has "
            "always closed far below BTC: is one the other asset's export? nothing written")
    return True


def _closes(store: FeatureStore, batches: dict[str, Batch], spec: GroupSpec) -> tuple[pd.Series, str]:
    """Close by day of this run's batch for `spec` if there is one, else of the stored rows; and where from."""
    if spec.name in batches:
        return batches[spec.name].rows.set_index(DAY)["close"], f"{spec.name} from {batches[spec.name].origin}"
    group = store.get_feature_group(spec)
    rows = group.read() if group else None
    closes = pd.Series(dtype=float) if rows is None else rows.set_index(DAY)["close"]
    return closes, f"the stored {spec.name} rows"


def _refuse_steps(batch: Batch, stored: pd.Series) -> None:
    """Refuse a close that jumps more than `MAX_DAILY_STEP` from the day before (or after) it.

    The asset checks compare medians, so a few rows of the other asset in an otherwise right export
    (appended new days, or a --replace) passed them; no single day of one asset moves this far.
    """
    ours = batch.rows.set_index(DAY)["close"]
    kept = stored[~stored.index.isin(ours.index)]
    closes = (pd.concat([kept, ours]) if len(kept) else ours).sort_index()
    days = closes.index.to_series()
    step = (closes / closes.shift(1)).where(days.diff() == pd.Timedelta(days=1))
    mine = days.isin(ours.index) | days.shift(1).isin(ours.index)
    bad = mine & ((step > MAX_DAILY_STEP) | (step < 1 / MAX_DAILY_STEP))
    if bad.any():
        day = days[bad].iloc[0]
        before = day - pd.Timedelta(days=1)
        raise DataValidationError(
            f"{batch.origin}: close {closes[day]:g} on {day.date()} after {closes[before]:g} on {before.date()} "
            f"({closes[day] / closes[before]:.2f}x in one day, more than one asset ever moves): rows of another "
            "asset? nothing written")


def _refuse_disagreement(batch: Batch, stored: pd.Series) -> None:
    ours = batch.rows.set_index(DAY)["close"]
    common = ours.index.intersection(stored.index)
    if not len(common):
        return
    gap = float((ours[common] / stored[common] - 1).abs().median())
    if gap > MAX_OVERLAP_DISAGREEMENT:
        raise DataValidationError(
            f"{batch.origin}: its closes differ from the stored {batch.spec.name} rows by a median {gap:.0%} on "
            f"{len(common)} overlapping day(s); nothing written (another asset's export? --replace overwrites "
            "the stored rows, as a commit that can be rolled back)")


def _update_group(store: FeatureStore, upstream: Upstream, holes: HoleBook, spec: GroupSpec,
                  stored: pd.Series, end: pd.Timestamp) -> None:
    origin = upstream.origin(spec)
    known = holes.known(spec.name, origin)
    missing = missing_days(stored, stored.min(), end)
    # the days an import lacked are asked for only when the upstream is asked anyway (the group is behind)
    imported = holes.absent_from_imports(spec.name) if stored.max() >= end else set()
    wanted = [day for day in missing if day not in known and day not in imported]
    skipped = (f" ({len(missing) - len(wanted)} known hole(s) not asked for)"
               if (known | imported) & set(missing) else "")
    if not wanted:
        log.info("%s: up to date through %s%s", spec.name, end.date(), skipped)
        return
    rows = _fetch_days(upstream, spec, wanted)
    log.info("%s: %d day(s) missing, %d fetched from %s%s", spec.name, len(wanted), len(rows), origin, skipped)
    newest = max(stored.max(), rows[DAY].max()) if len(rows) else stored.max()
    inside = [day for day in sorted(set(wanted) - set(rows[DAY])) if day < newest]
    if inside:
        log.warning("%s: %d day(s) not available upstream, left as holes: %s", spec.name, len(inside),
                    _shown_days(inside))
        holes.record(spec.name, origin, inside)
    if len(rows):
        _write(store, Batch(spec, rows, origin))
    _warn_if_late(spec, origin, newest, end)


def _stored_days(store: FeatureStore, spec: GroupSpec) -> pd.Series:
    group = store.get_feature_group(spec)
    return group.read()[DAY] if group else pd.Series(dtype="datetime64[ns]")


def update(settings: Settings) -> None:
    """Bring every group up to the last complete day, fetching only the days that are missing."""
    store = open_feature_store(settings)
    end = pd.Timestamp(settings.last_complete_day)
    upstream = Upstream(settings)
    with store.lock():
        stored = {spec.name: _stored_days(store, spec) for spec in INGESTED_GROUPS}
        holes, failures = HoleBook(store, settings), Failures()
        empty = [f"{spec.name} v{spec.version}" for spec in INGESTED_GROUPS if stored[spec.name].empty]
        if empty:  # the other groups still update: an empty one needs a backfill, not a blocked store
            failures.add(f"feature group{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                         f"{'are' if len(empty) > 1 else 'is'} empty: run feature_backfill.py first")
        for spec in (spec for spec in INGESTED_GROUPS if not stored[spec.name].empty):
            with failures.guard():
                _update_group(store, upstream, holes, spec, stored[spec.name], end)
        holes.save()
        failures.raise_any()
