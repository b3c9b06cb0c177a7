"""Getting rows into the feature groups: the full backfill and the daily, gap-filling update.

Each group is fetched, validated and written on its own (each write atomic), so one failing source
never stops the others: a run writes every group that succeeded, then fails naming each one that did
not, and a failed group is left exactly as it was. Writes are upserts, so re-running adds nothing.
A day an upstream keeps not having becomes a known hole (`holes.py`) and is not asked for again.

Stored rows change only through `backfill(..., replace=True)` (feature_backfill.py --replace): the
daily update asks only for missing days, so an upstream revision of a past candle is never taken
silently. Whatever the path (backfill, CSV import, daily update), the rows a run would write pass
the same guards (`sources/guards.py`: another asset, a step too large across any gap, a key in a
text field, a disagreement with the store); a refused group fails alone, before anything of it is
written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from cryptocast.errors import CryptocastError, DataValidationError, SourceError, StoreError
from cryptocast.features import DAY, INGESTED_GROUPS, GroupSpec, missing_days, validate
from cryptocast.holes import CSV_SOURCE, HoleBook
from cryptocast.settings import Settings
from cryptocast.sources.csv_exports import load_export
from cryptocast.sources.fear_greed import FearGreed
from cryptocast.sources.guards import PRICE_GROUPS, Batch, closes, refusals
from cryptocast.sources.http import HttpClient
from cryptocast.sources.prices import price_source
from cryptocast.stores import FeatureStore, open_feature_store

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_GROUP = 20


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
        stored = {spec.name: _stored_rows(store, spec) for spec in INGESTED_GROUPS if spec.name in PRICE_GROUPS}
        _write_all(store, guarded(batches, stored, replace, settings, failures), replace, failures)
        _save_holes(holes)
        failures.raise_any()


def guarded(batches: list[Batch], stored: dict[str, pd.DataFrame | None], replace: bool, settings: Settings,
            failures: Failures) -> list[Batch]:
    """The batches the ingest guards (`sources/guards.py`) let through; each refusal is a failure of its group."""
    closes_by_group = {name: closes(rows) for name, rows in stored.items() if name in PRICE_GROUPS}
    refused: set[str] = set()
    for refusal in refusals(batches, closes_by_group, replace, settings.secrets):
        failures.add(refusal.message)
        refused |= refusal.groups
    return [b for b in batches if b.spec.name not in refused]


def _write_all(store: FeatureStore, batches: list[Batch], replace: bool, failures: Failures) -> None:
    """Write each batch; a failure of the store itself (a full disk) stops the run, saying what was written."""
    written: list[str] = []
    for batch in batches:
        try:
            with failures.guard():  # a refused rewrite of stored rows fails that group alone
                _write(store, batch, replace)
                written.append(f"{batch.spec.name} v{batch.spec.version}")
        except (OSError, StoreError) as exc:
            if isinstance(exc, StoreError) and not written:
                raise  # its line names the group; nothing else to add
            problem = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
            done = f"written in this run: {', '.join(written)}" if written else "no group written in this run"
            raise StoreError(f"{problem} (while writing {batch.spec.name} v{batch.spec.version}; {done}; "
                             "run again to finish)") from exc


def _save_holes(holes: HoleBook) -> None:
    """The known-holes record is written last; its failure says that every group before it was written."""
    try:
        holes.save()
    except (OSError, StoreError) as exc:
        problem = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"{problem} (while writing the known-holes record, after the groups; run again to "
                         "finish)") from exc


def _read_update(upstream: Upstream, holes: HoleBook, spec: GroupSpec, stored: pd.Series,
                 end: pd.Timestamp) -> Batch | None:
    """The rows of the days `spec` is missing (not its known holes), fetched; None when it has all of them."""
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
        return None
    rows = _fetch_days(upstream, spec, wanted)
    log.info("%s: %d day(s) missing, %d fetched from %s%s", spec.name, len(wanted), len(rows), origin, skipped)
    newest = max(stored.max(), rows[DAY].max()) if len(rows) else stored.max()
    inside = [day for day in sorted(set(wanted) - set(rows[DAY])) if day < newest]
    if inside:
        log.warning("%s: %d day(s) not available upstream, left as holes: %s", spec.name, len(inside),
                    _shown_days(inside))
        holes.record(spec.name, origin, inside)
    _warn_if_late(spec, origin, newest, end)
    return Batch(spec, rows, origin) if len(rows) else None


def _stored_rows(store: FeatureStore, spec: GroupSpec) -> pd.DataFrame | None:
    group = store.get_feature_group(spec)
    return group.read() if group else None


def update(settings: Settings) -> None:
    """Bring every group up to the last complete day, fetching only the days that are missing.

    Every group is read first, then the guards see them together (SOL is checked against BTC), then
    each group that passed is written.
    """
    store = open_feature_store(settings)
    end = pd.Timestamp(settings.last_complete_day)
    upstream = Upstream(settings)
    with store.lock():
        stored = {spec.name: _stored_rows(store, spec) for spec in INGESTED_GROUPS}
        days = {name: rows[DAY] if rows is not None else pd.Series(dtype="datetime64[ns]")
                for name, rows in stored.items()}
        holes, failures = HoleBook(store, settings), Failures()
        empty = [f"{spec.name} v{spec.version}" for spec in INGESTED_GROUPS if days[spec.name].empty]
        if empty:  # the other groups still update: an empty one needs a backfill, not a blocked store
            failures.add(f"feature group{'s' if len(empty) > 1 else ''} {', '.join(empty)} "
                         f"{'are' if len(empty) > 1 else 'is'} empty: run feature_backfill.py first")
        batches = []
        for spec in (spec for spec in INGESTED_GROUPS if not days[spec.name].empty):
            with failures.guard():
                batch = _read_update(upstream, holes, spec, days[spec.name], end)
                batches += [batch] if batch is not None else []
        _write_all(store, guarded(batches, stored, False, settings, failures), False, failures)
        _save_holes(holes)
        failures.raise_any()
