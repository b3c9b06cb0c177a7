"""Getting rows into the feature groups: the full backfill and the daily, gap-filling update.

Both steps fetch and validate every group first and write only when all of them are good, so a
failure anywhere leaves the store exactly as it was. Writes are upserts, so re-running adds nothing.
Stored rows change only through `backfill(..., replace=True)` (feature_backfill.py --replace): the
daily update asks only for missing days, so an upstream revision of a past candle is never taken
silently, and an import that looks like another asset, or that disagrees with what is stored, is
refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cryptocast.errors import DataValidationError, StoreError
from cryptocast.features import BITCOIN, DAY, INGESTED_GROUPS, SOLANA, GroupSpec, missing_days, validate
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


@dataclass
class Batch:
    spec: GroupSpec
    rows: pd.DataFrame
    origin: str


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
        rows = rows[(rows[DAY] >= pd.Timestamp(start)) & (rows[DAY] <= pd.Timestamp(end))]
        return validate(spec, rows, self.origin(spec))


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


def _report_holes(spec: GroupSpec, rows: pd.DataFrame, origin: str) -> None:
    if rows.empty:
        return
    holes = missing_days(rows[DAY], rows[DAY].min(), rows[DAY].max())
    if holes:
        log.warning("%s: %d day(s) absent in %s, kept as holes: %s", spec.name, len(holes), origin,
                    ", ".join(str(d.date()) for d in holes[:10]) + (" ..." if len(holes) > 10 else ""))


def _write(store: FeatureStore, batches: list[Batch], replace: bool = False) -> None:
    for batch in batches:
        started = time.monotonic()
        result = store.get_or_create_feature_group(batch.spec).insert(batch.rows, replace=replace)
        log.info("%s v%d: %s from %s (%.2fs)", batch.spec.name, batch.spec.version, result, batch.origin,
                 time.monotonic() - started)


def backfill(settings: Settings, csv_files: dict[str, Path] | None = None, replace: bool = False) -> None:
    """Load full history into every group, from CSV exports where given and the APIs otherwise.

    `replace` lets the rows change stored ones (each change is logged, and the commit can be rolled back).
    """
    csv_files = csv_files or {}
    store = open_feature_store(settings)
    end = settings.last_complete_day
    upstream = Upstream(settings) if set(g.name for g in INGESTED_GROUPS) - set(csv_files) else None
    with store.lock():
        batches = []
        for spec in INGESTED_GROUPS:
            started = time.monotonic()
            if spec.name in csv_files:
                origin = f"csv {csv_files[spec.name].name}"
                raw = load_export(spec.name, csv_files[spec.name])
                rows = validate(spec, raw[raw[DAY] <= pd.Timestamp(end)], origin)
            else:
                origin = upstream.origin(spec)
                rows = upstream.fetch(spec, settings.history_start, end)
            log.info("%s: read %d rows %s..%s from %s (%.2fs)", spec.name, len(rows),
                     _first(rows), _last(rows), origin, time.monotonic() - started)
            _report_holes(spec, rows, origin)
            batches.append(Batch(spec, rows, origin))
        check_imports(store, batches, replace)
        _write(store, batches, replace)


def update(settings: Settings) -> None:
    """Bring every group up to the last complete day, fetching only the days that are missing."""
    store = open_feature_store(settings)
    end = pd.Timestamp(settings.last_complete_day)
    upstream = Upstream(settings)
    with store.lock():
        batches = []
        for spec in INGESTED_GROUPS:
            group = store.get_feature_group(spec)
            days = group.read()[DAY] if group else pd.Series(dtype="datetime64[ns]")
            if days.empty:
                raise StoreError(f"feature group {spec.name} v{spec.version} is empty: run feature_backfill.py first")
            wanted = missing_days(days, days.min(), end)
            if not wanted:
                log.info("%s: up to date through %s", spec.name, end.date())
                continue
            rows = _fetch_days(upstream, spec, wanted)
            log.info("%s: %d day(s) missing, %d fetched from %s", spec.name, len(wanted), len(rows),
                     upstream.origin(spec))
            absent = sorted(set(wanted) - set(rows[DAY]))
            if absent:
                log.warning("%s: %d day(s) not available upstream, left as holes: %s", spec.name, len(absent),
                            ", ".join(str(d.date()) for d in absent[:10]) + (" ..." if len(absent) > 10 else ""))
            if len(rows):
                batches.append(Batch(spec, rows, upstream.origin(spec)))
        _write(store, batches)


def check_imports(store: FeatureStore, batches: list[Batch], replace: bool) -> None:
    """Refuse prices of the other asset, or prices that disagree with the stored rows they overlap.

    Binance exports carry no symbol, so `--solana-csv BTCUSDT_1d.csv` is an easy mistake; it must
    fail with one line before anything is written. A real disagreement may be overwritten with
    `replace`; swapped assets may not.
    """
    prices = {b.spec.name: b for b in batches if b.spec in (SOLANA, BITCOIN)}
    if prices:
        sol, btc = (_closes(store, prices, spec) for spec in (SOLANA, BITCOIN))
        common = sol[0].index.intersection(btc[0].index)
        ratio = float((sol[0][common] / btc[0][common]).median()) if len(common) else 0.0
        if ratio >= MAX_SOL_BTC_RATIO:
            raise DataValidationError(
                f"{sol[1]} and {btc[1]}: SOL closes at {ratio:.2f}x BTC on {len(common)} common day(s), but SOL has "
                "always closed far below BTC: is one the other asset's export? nothing written")
    for batch in prices.values() if not replace else ():
        _refuse_disagreement(batch, _closes(store, {}, batch.spec)[0])


def _closes(store: FeatureStore, batches: dict[str, Batch], spec: GroupSpec) -> tuple[pd.Series, str]:
    """Close by day of this run's batch for `spec` if there is one, else of the stored rows; and where from."""
    if spec.name in batches:
        return batches[spec.name].rows.set_index(DAY)["close"], f"{spec.name} from {batches[spec.name].origin}"
    group = store.get_feature_group(spec)
    rows = group.read() if group else None
    closes = pd.Series(dtype=float) if rows is None else rows.set_index(DAY)["close"]
    return closes, f"the stored {spec.name} rows"


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


def _first(rows: pd.DataFrame) -> str:
    return str(rows[DAY].min().date()) if len(rows) else "-"


def _last(rows: pd.DataFrame) -> str:
    return str(rows[DAY].max().date()) if len(rows) else "-"
