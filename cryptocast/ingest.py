"""Getting rows into the feature groups: the full backfill and the daily, gap-filling update.

Both steps fetch and validate every group first and write only when all of them are good, so a
failure anywhere leaves the store exactly as it was. Writes are upserts, so re-running adds nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cryptocast.errors import SourceError, StoreError
from cryptocast.features import DAY, INGESTED_GROUPS, GroupSpec, missing_days, validate
from cryptocast.settings import Settings
from cryptocast.sources.csv_exports import load_export
from cryptocast.sources.fear_greed import FearGreed
from cryptocast.sources.http import HttpClient
from cryptocast.sources.prices import price_source
from cryptocast.stores import FeatureStore, open_feature_store

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_GROUP = 20


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


def _report_holes(spec: GroupSpec, rows: pd.DataFrame, origin: str) -> None:
    if rows.empty:
        return
    holes = missing_days(rows[DAY], rows[DAY].min(), rows[DAY].max())
    if holes:
        log.warning("%s: %d day(s) absent in %s, kept as holes: %s", spec.name, len(holes), origin,
                    ", ".join(str(d.date()) for d in holes[:10]) + (" ..." if len(holes) > 10 else ""))


def _write(store: FeatureStore, batches: list[Batch]) -> None:
    for batch in batches:
        started = time.monotonic()
        result = store.get_or_create_feature_group(batch.spec).insert(batch.rows)
        log.info("%s v%d: %s from %s (%.2fs)", batch.spec.name, batch.spec.version, result, batch.origin,
                 time.monotonic() - started)


def backfill(settings: Settings, csv_files: dict[str, Path] | None = None) -> None:
    """Load full history into every group, from CSV exports where given and the APIs otherwise."""
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
                raw = load_export(spec.name, csv_files[spec.name], settings.today)
                rows = validate(spec, within(raw, None, end), origin)
                if rows.empty:
                    raise SourceError(f"{origin}: no complete day on or before {end}")
            else:
                origin = upstream.origin(spec)
                rows = upstream.fetch(spec, settings.history_start, end)
            log.info("%s: read %d rows %s..%s from %s (%.2fs)", spec.name, len(rows),
                     _first(rows), _last(rows), origin, time.monotonic() - started)
            _report_holes(spec, rows, origin)
            batches.append(Batch(spec, rows, origin))
        _write(store, batches)


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


def _first(rows: pd.DataFrame) -> str:
    return str(rows[DAY].min().date()) if len(rows) else "-"


def _last(rows: pd.DataFrame) -> str:
    return str(rows[DAY].max().date()) if len(rows) else "-"
