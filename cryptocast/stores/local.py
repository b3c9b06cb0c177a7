"""The embedded feature store: one Delta Lake table per group version under `CRYPTOCAST_HOME`.

    feature_store/<group>_v<version>/       a Delta table (see `delta.py` for its files and checks)

Writes are upserts on the primary key. New rows go to a new small file (one per event-time year),
changed rows rewrite only the files that hold them, and each write is one commit, so a crash at
any instant leaves the group at its old version or its new one. A commit never changes stored rows
unless the caller asked for it (`replace=True`), and then every changed row is logged.

Small files: a daily update adds one file per group, so when a group holds more than
`COMPACT_SLACK` files beyond one per year, the years with several files are rewritten as one file
each, in a commit of their own that changes no rows (Delta's OPTIMIZE).

Maintenance, so ten years of daily runs stay small and fast: a write finds each group's last
maintenance in the store's record (`ledger.py`) and, once `MAINTAIN_EVERY_DAYS` have passed, lets
delta-rs checkpoint the log, makes the newest checkpoint at or before the start of the time-travel
window (`WINDOW_DAYS`) the oldest restorable version, deletes the commits before it and every data
file no restorable version uses (VACUUM), and removes temporary files killed runs left. Every
version committed within the window, and the one live when it began, stays restorable; older ones
cannot be. delta-rs's own vacuum and log clean-up are not used: they write commits of their own
without the checks (`delta.py`), and judge age by the wall clock and file times rather than by
the commits' own times.

A store written before Delta (manifest.json + yearly Parquet, see `legacy.py`) is converted the
first time this store is opened, under the lock, with every row checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from cryptocast.errors import DataValidationError, StoreError
from cryptocast.features import FORECASTS, FORECASTS_V1, INGESTED_GROUPS, GroupSpec, ViewSpec, join_view, validate
from cryptocast.stores import delta, legacy
from cryptocast.stores.base import InsertResult, check_changes, compare_rows, insert_result, view_groups
from cryptocast.stores.delta import EMPTY, LOG, Commit, GroupTable, Snapshot, read_spec, table_exists
from cryptocast.stores.ledger import Ledger

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 600
COMPACT_SLACK = 30
WINDOW_DAYS = 90
MAINTAIN_EVERY_DAYS = 7
DAY_MS = 86_400_000
_GROUP_DIR = re.compile(r"(.+)_v([0-9]+)")


class LocalFeatureGroup:
    def __init__(self, spec: GroupSpec, directory: Path, store: LocalFeatureStore) -> None:
        self.spec = spec
        self.directory = directory
        self.table = GroupTable(spec, directory)
        self.store = store

    def read(self, start: dt.date | None = None, end: dt.date | None = None, version: int | None = None
             ) -> pd.DataFrame:
        """Rows whose event time lies in [start, end], checked against what their commit recorded."""
        snap = self._snapshot(version)
        lo, hi = (f"{start.year:04d}" if start else "0000"), (f"{end.year:04d}" if end else "9999")
        df = self._validated(self.table.read_files(f for f in snap.files if lo <= f.year <= hi), snap)
        event = df[self.spec.event_time]
        keep = pd.Series(True, index=df.index)
        if start:
            keep &= event >= pd.Timestamp(start)
        if end:
            keep &= event <= pd.Timestamp(end)
        return df[keep].reset_index(drop=True)

    def _snapshot(self, version: int | None = None) -> Snapshot:
        """The table at `version`; a group not yet written reads as an empty table (one the record lists is
        never taken for that: with its log gone it is damaged, and the next write must not start afresh)."""
        if version is not None or self.table.exists() or self.table.recorded():
            return self.table.snapshot(version)
        return EMPTY

    def _validated(self, df: pd.DataFrame, snap: Snapshot) -> pd.DataFrame:
        """Stored rows pass the same rules as incoming ones, so damage that slipped past the checksums shows."""
        try:
            return validate(self.spec, df, f"{self.table.label} version {snap.version}")
        except DataValidationError as exc:
            raise StoreError(f"stored rows are invalid: {exc}") from None

    def insert(self, df: pd.DataFrame, replace: bool = False) -> InsertResult:
        """Upsert validated rows as one commit; refuses to change stored rows unless `replace`.

        Then the group's maintenance, if it is due: the daily run is what keeps the store small.
        """
        with self.store.lock():
            result = self._upsert(df, replace)
            self.maintain()
        return result

    def _upsert(self, df: pd.DataFrame, replace: bool) -> InsertResult:
        snap = self._snapshot()
        years = df[self.spec.event_time].dt.year.map("{:04d}".format)
        candidates = [f for f in snap.files if f.year in set(years)]
        stored = self.table.read_files(candidates)
        owner = np.repeat([f.path for f in candidates], [f.rows for f in candidates])  # file of each row
        is_new, changed = compare_rows(self.spec, stored, df)
        result = insert_result(is_new, changed)
        check_changes(self.spec, stored, df, changed, replace)
        if not len(df) or not (is_new | changed).any():
            return result
        key = list(self.spec.primary_key)
        hit = stored[key].merge(df.loc[changed, key], on=key, how="left", indicator=True)["_merge"] == "both"
        touched = [f for f in candidates if f.path in set(owner[hit.to_numpy()])]
        kept = stored[pd.Series(owner).isin([f.path for f in touched]).to_numpy()]
        rows = pd.concat([kept, df[is_new | changed]], ignore_index=True)
        rows = rows.drop_duplicates(key, keep="last")
        adds = [self.table.write_data_file(part) for part in _by_year(self.spec, rows)]
        snap = self.table.commit(snap, "MERGE" if touched else "WRITE", str(result), adds, touched,
                                 parameters={"mode": "Upsert"})
        if snap.version == 0:
            log.info("created feature group %s v%d at %s", self.spec.name, self.spec.version, self.directory)
        self._compact(snap)
        return result

    def _compact(self, snap: Snapshot) -> None:
        """Fold each year that has several files into one, once there are enough extra files to matter."""
        years: dict[str, list] = {}
        for f in snap.files:
            years.setdefault(f.year, []).append(f)
        if len(snap.files) <= len(years) + COMPACT_SLACK:
            return
        merge = [f for files in years.values() if len(files) > 1 for f in files]
        rows = self.table.read_files(merge)
        adds = [self.table.write_data_file(part) for part in _by_year(self.spec, rows)]
        self.table.commit(snap, "OPTIMIZE", f"compacted {len(merge)} files into {len(adds)}", adds, merge,
                          data_change=False)
        log.info("%s v%d: compacted %d files into %d", self.spec.name, self.spec.version, len(merge), len(adds))

    def maintain(self) -> bool:
        """Checkpoint, trim the log to the time-travel window and vacuum, if due; True if it ran.

        The window and the schedule are measured in the commits' own times (`delta._now_ms`).
        """
        entry = self.table.entry()
        now = delta._now_ms()
        if entry is None or entry["latest"] < 0 or now - entry["maintained"] < MAINTAIN_EVERY_DAYS * DAY_MS:
            return False
        with self.store.lock():
            self.table.checkpoint()
            entry = self.table.entry() or entry
            times = self.table.commit_times()
            cutoff = now - WINDOW_DAYS * DAY_MS
            start = max([v for v, t in times.items() if t <= cutoff], default=entry["first"])  # live at the cutoff
            first = max([entry["first"], *(int(v) for v in entry["checkpoints"] if int(v) <= start)])
            logs, data = self.table.trim(first, now)
            temps = self.store.sweep()
        log.info("%s v%d: maintenance: versions %d..%d restorable, deleted %d log file(s), %d data file(s), "
                 "%d temporary file(s)", self.spec.name, self.spec.version, first, max(times), logs, data, temps)
        return True

    def history(self) -> list[Commit]:
        return self.table.history() if self.table.exists() or self.table.recorded() else []

    def rollback(self, version: int) -> Snapshot | None:
        """Make the rows of an earlier version live again, as a new commit (None: `-1` started it empty).

        On a group whose log lost or has an edited commit, the target must come before the damage,
        and the rollback replaces it (`GroupTable.repair`); `-1` starts a group with no intact version empty.
        """
        with self.store.lock():
            if version == -1:
                self.table.forget()
                return None
            broken = self.table.damage()
            if broken is not None:
                if version < broken:
                    target = self.table.snapshot(version)
                    self._validated(self.table.read_files(target.files), target)
                return self.table.repair(version)
            current = self.table.snapshot()
            self._validated(self.table.read_files(self.table.snapshot(version).files), current)
            return self.table.restore(current, version)

    def verify(self) -> Snapshot:
        """Every commit and every file any version uses; then the newest rows against the group's rules."""
        snap, rows = self.table.verify()
        self._validated(rows, snap)
        return snap


def _known_spec(name: str, version: int) -> GroupSpec | None:
    """The spec this code has for a group version (None: read it from the table's own metadata)."""
    return next((s for s in (*INGESTED_GROUPS, FORECASTS, FORECASTS_V1) if (s.name, s.version) == (name, version)),
                None)


def _by_year(spec: GroupSpec, rows: pd.DataFrame) -> list[pd.DataFrame]:
    """Rows split by event-time year, each sorted by key: the unit a data file holds."""
    years = rows[spec.event_time].dt.year
    key = list(spec.primary_key)
    return [part.sort_values(key).reset_index(drop=True) for _, part in rows.groupby(years, sort=True)]


class LocalFeatureStore:
    """Feature groups on local disk; the default backend, needing no account."""

    backend = "local"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "feature_store"
        # One lock object per path in this process: a run that holds it can still write through
        # another store object; other threads and processes wait.
        self._lock = FileLock(home / ".lock", is_singleton=True)
        self._converted = False

    def _directory(self, spec: GroupSpec) -> Path:
        return self.root / f"{spec.name}_v{spec.version}"

    def get_feature_group(self, spec: GroupSpec) -> LocalFeatureGroup | None:
        self._convert_legacy()
        group = LocalFeatureGroup(spec, self._directory(spec), self)
        return group if group.table.exists() or group.table.recorded() else None

    def get_or_create_feature_group(self, spec: GroupSpec) -> LocalFeatureGroup:
        """The group; its table is created by its first insert (as Hopsworks creates a group), so the
        history starts with data and a run that writes nothing leaves no trace."""
        self._convert_legacy()
        return LocalFeatureGroup(spec, self._directory(spec), self)

    def stored_groups(self) -> dict[str, LocalFeatureGroup]:
        """Every group version on disk by `<name>_v<version>`, described by its own table metadata."""
        self._convert_legacy()
        groups = {}
        for directory in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            match = _GROUP_DIR.fullmatch(directory.name)
            if match and table_exists(directory):  # a version this code defines needs no read of a maybe damaged log
                spec = _known_spec(match.group(1), int(match.group(2))) or read_spec(directory)
                groups[directory.name] = LocalFeatureGroup(spec, directory, self)
        for name in sorted(set(Ledger(self.root).groups()) - set(groups)):  # listed, but its log is gone
            match = _GROUP_DIR.fullmatch(name)
            if match:
                name_, version = match.group(1), int(match.group(2))
                spec = _known_spec(name_, version) or GroupSpec(name_, version, "", (), "", ())
                group = LocalFeatureGroup(spec, self.root / name, self)
                if group.table.recorded():
                    groups[name] = group
        return dict(sorted(groups.items()))

    def sweep(self) -> int:
        """Delete temporary files killed runs left in the feature store; safe only under the store lock.

        Ours (`atomic.py`) are hidden and end in `.tmp`; delta-rs stages a checkpoint as `<name>#<n>`.
        """
        temps = [p for d in [self.root, *self.root.glob("*"), *self.root.glob(f"*/{LOG}")] if d.is_dir()
                 for p in d.iterdir() if p.is_file() and ((p.name.startswith(".") and p.name.endswith(".tmp"))
                                                          or (d.name == LOG and "#" in p.name))]
        for path in temps:
            path.unlink(missing_ok=True)
        return len(temps)

    def read_feature_view(self, view: ViewSpec, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        return join_view(view, {name: group.read(start, end) for name, group in view_groups(self, view).items()})

    def lock(self) -> AbstractContextManager[None]:
        """Held for a whole run; re-entrant within this store object, so a run's own writes pass."""
        try:
            if not self.home.is_dir():
                self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the store directory {self.home}: {exc.strerror or exc}") from None
        return exclusive(self._lock, f"store {self.home}", LOCK_TIMEOUT_S)

    def _convert_legacy(self) -> None:
        """Convert every group directory still in the pre-Delta layout, once per process."""
        if self._converted:
            return
        manifests = sorted(self.root.glob(f"*/{legacy.MANIFEST}")) if self.root.is_dir() else []
        if manifests:
            with self.lock():
                for manifest in manifests:
                    convert(manifest.parent)
        self._converted = True


def convert(directory: Path) -> None:
    """Turn a legacy group directory into a Delta table holding the same rows, then drop the old files.

    The table's first commit is made before any old file is removed, and a directory with both is
    finished by removing the old files, so a crash anywhere loses nothing.
    """
    if not table_exists(directory):
        spec, rows = legacy.read_legacy(directory)
        table = GroupTable(spec, directory)
        adds = [table.write_data_file(part) for part in _by_year(spec, rows)] if len(rows) else []
        table.commit(EMPTY, "CONVERT", f"converted from manifest.json and {len(adds)} yearly Parquet file(s)",
                     adds, parameters={"from": "cryptocast manifest.json store"})
        log.info("feature group %s v%d: converted to Delta Lake at %s (%d rows)", spec.name, spec.version,
                 directory, len(rows))
    for path in sorted(directory.iterdir()):
        if legacy.is_legacy_file(path):
            path.unlink()


@contextmanager
def exclusive(lock: FileLock, what: str, timeout: float) -> Iterator[None]:
    """Hold `lock` for a whole run, waiting up to `timeout` seconds for another run to finish first."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("another run holds %s; waiting up to %ds", lock.lock_file, timeout)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise StoreError(f"{what} is locked by another run") from None
    except OSError as exc:
        raise StoreError(f"cannot lock {what}: {exc.strerror or exc}: {lock.lock_file}") from None
    try:
        yield
    finally:
        lock.release()

