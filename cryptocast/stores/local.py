"""The embedded feature store: Parquet files under `CRYPTOCAST_HOME`, one directory per group version.

Layout, chosen so a scheduled workflow can commit the store to git with small, stable diffs:

    feature_store/<group>_v<version>/manifest.json     schema + which file holds each year
    feature_store/<group>_v<version>/<year>-<sha>.parquet

Data files are named by a hash of their content and never rewritten in place; the manifest is
replaced atomically (`os.replace`) after the new files are on disk. A crash at any instant
therefore leaves either the old manifest with its old files or the new one with its new files;
files no manifest references are swept on the next write.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock, Timeout

from cryptocast.atomic import atomic_write_bytes
from cryptocast.errors import StoreError
from cryptocast.features import GroupSpec, ViewSpec, empty_frame, join_view
from cryptocast.stores.base import InsertResult, compare_rows, insert_result, view_groups

log = logging.getLogger(__name__)

ARROW_TYPES = {"date": pa.date32(), "float": pa.float64(), "int": pa.int64(), "str": pa.string()}
LOCK_TIMEOUT_S = 600


def _schema_record(spec: GroupSpec) -> dict:
    return {
        "name": spec.name,
        "version": spec.version,
        "description": spec.description,
        "primary_key": list(spec.primary_key),
        "event_time": spec.event_time,
        "columns": [{"name": c.name, "dtype": c.dtype, "description": c.description} for c in spec.columns],
    }


def _to_parquet_bytes(spec: GroupSpec, df: pd.DataFrame) -> bytes:
    """Serialise deterministically: same rows in, same bytes out (no timestamps, no pandas metadata)."""
    arrays = []
    for c in spec.columns:
        values = df[c.name].dt.date if c.dtype == "date" else df[c.name]
        arrays.append(pa.array(values, type=ARROW_TYPES[c.dtype]))
    table = pa.Table.from_arrays(arrays, names=spec.column_names)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=False, store_schema=False)
    return buffer.getvalue()


def _from_parquet(spec: GroupSpec, path: Path) -> pd.DataFrame:
    table = pq.read_table(path)
    df = table.to_pandas(date_as_object=False)
    for c in spec.columns:
        if c.dtype == "date":
            df[c.name] = df[c.name].astype("datetime64[ns]")
    return df[spec.column_names]


class LocalFeatureGroup:
    def __init__(self, spec: GroupSpec, directory: Path) -> None:
        self.spec = spec
        self.directory = directory
        self.manifest_path = directory / "manifest.json"

    def _manifest(self) -> dict:
        try:
            manifest = json.loads(self.manifest_path.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise StoreError(f"feature group {self.spec.name} v{self.spec.version}: unreadable manifest "
                             f"{self.manifest_path}: {type(exc).__name__}: {str(exc)[:120]}") from None
        if {k: manifest.get(k) for k in _schema_record(self.spec)} != _schema_record(self.spec):
            raise StoreError(f"feature group {self.spec.name} v{self.spec.version} at {self.directory} has a "
                             "different schema than this code; bump the group version instead of editing it")
        return manifest

    def _read_partitions(self, partitions: dict[str, str], years: set[str] | None) -> pd.DataFrame:
        frames = [
            _from_parquet(self.spec, self.directory / name)
            for year, name in sorted(partitions.items())
            if years is None or year in years
        ]
        frames = [f for f in frames if len(f)]
        if not frames:
            return empty_frame(self.spec)
        return pd.concat(frames, ignore_index=True)

    def read(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        partitions = self._manifest()["partitions"]
        lo = str(start.year) if start else "0000"
        hi = str(end.year) if end else "9999"
        try:
            df = self._read_partitions({y: n for y, n in partitions.items() if lo <= y <= hi}, None)
        except FileNotFoundError:  # a concurrent writer swept an old file between manifest and read
            df = self._read_partitions(self._manifest()["partitions"], {y for y in partitions if lo <= y <= hi})
        event = df[self.spec.event_time]
        keep = pd.Series(True, index=df.index)
        if start:
            keep &= event >= pd.Timestamp(start)
        if end:
            keep &= event <= pd.Timestamp(end)
        return df[keep].sort_values(list(self.spec.primary_key)).reset_index(drop=True)

    def insert(self, df: pd.DataFrame) -> InsertResult:
        """Upsert rows (already validated against the spec), rewriting only the touched years."""
        key = list(self.spec.primary_key)
        manifest = self._manifest()
        partitions = dict(manifest["partitions"])
        years = df[self.spec.event_time].dt.year.astype(str)
        inserted = updated = unchanged = 0
        new_files: dict[str, bytes] = {}
        for year in sorted(years.unique()):
            incoming = df[years == year]
            old = self._read_partitions(partitions, {year})
            merged = pd.concat([old, incoming], ignore_index=True).drop_duplicates(key, keep="last")
            merged = merged.sort_values(key).reset_index(drop=True)
            counts = insert_result(*compare_rows(self.spec, old, incoming))
            inserted, updated = inserted + counts.inserted, updated + counts.updated
            unchanged += counts.unchanged
            data = _to_parquet_bytes(self.spec, merged)
            name = f"{year}-{hashlib.sha256(data).hexdigest()[:16]}.parquet"
            if partitions.get(year) != name:
                partitions[year] = name
                new_files[name] = data
        if new_files:
            self._commit(manifest, partitions, new_files)
        return InsertResult(inserted, updated, unchanged)

    def _commit(self, manifest: dict, partitions: dict[str, str], new_files: dict[str, bytes]) -> None:
        for name, data in new_files.items():
            atomic_write_bytes(self.directory / name, data)
        manifest = {**manifest, "partitions": dict(sorted(partitions.items()))}
        atomic_write_bytes(self.manifest_path, _dump(manifest))
        self._sweep(set(partitions.values()))

    def _sweep(self, referenced: set[str]) -> None:
        for path in self.directory.iterdir():
            if path.name != "manifest.json" and path.name not in referenced:
                path.unlink()


def _dump(obj: dict) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


class LocalFeatureStore:
    """Feature groups on local disk; the default backend, needing no account."""

    backend = "local"

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "feature_store"

    def _directory(self, spec: GroupSpec) -> Path:
        return self.root / f"{spec.name}_v{spec.version}"

    def get_feature_group(self, spec: GroupSpec) -> LocalFeatureGroup | None:
        directory = self._directory(spec)
        if not (directory / "manifest.json").exists():
            return None
        return LocalFeatureGroup(spec, directory)

    def get_or_create_feature_group(self, spec: GroupSpec) -> LocalFeatureGroup:
        group = self.get_feature_group(spec)
        if group is not None:
            return group
        directory = self._directory(spec)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / "manifest.json", _dump({**_schema_record(spec), "partitions": {}}))
        log.info("created feature group %s v%d at %s", spec.name, spec.version, directory)
        return LocalFeatureGroup(spec, directory)

    def read_feature_view(self, view: ViewSpec, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        return join_view(view, {name: group.read(start, end) for name, group in view_groups(self, view).items()})

    def lock(self) -> AbstractContextManager[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        return exclusive(FileLock(self.home / ".lock"), f"store {self.home}", LOCK_TIMEOUT_S)


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
    try:
        yield
    finally:
        lock.release()
