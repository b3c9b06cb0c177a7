"""A feature group as a Delta Lake table: cryptocast writes its commits, delta-rs reads them.

Delta Lake is the table format Hopsworks writes offline, and delta-rs (`deltalake`), DuckDB, Polars
and Spark read it. Every change is one commit, so each state a group was ever in can be listed and
restored (`python -m cryptocast history` / `rollback`). A group's directory holds:

    _delta_log/<version, 20 digits>.json      one commit: the files it adds and removes, and why
    _delta_log/<v>.checkpoint.parquet         the whole state every 100 commits (written by delta-rs)
    <year>-<sha256>.parquet                   data: rows of one event-time year, named by the SHA-256
                                              of the file's bytes; never rewritten, never deleted

Why the commit files are written here and not by delta-rs: the delta-rs that hopsworks pins
(hops-deltalake 1.4.0.post121) cannot remove files in a commit that adds files it did not write
(`create_write_transaction` ignores `mode="overwrite"`), and the files it writes itself get random
names, so their checksums could not be recorded in the commit that adds them. On a local disk a
Delta commit is one JSON file that is created only if its version does not exist yet (a hard link),
which is `atomic_create_bytes`. delta-rs does the reading (log replay and checkpoints), so every
commit written here is one a Delta reader accepts.

What a read checks, so that a flipped bit is an error naming the file and never different prices:
each data file's size and SHA-256 against its add action and its name, its schema and row count,
and the set of live files against the digest (`cryptocast.state`) that the commit which produced it
recorded, which covers a damaged commit or checkpoint. `verify` also replays every commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptocast.atomic import atomic_create_bytes, atomic_write_bytes, sha256_file
from cryptocast.errors import StoreError
from cryptocast.features import FORECASTS, INGESTED_GROUPS, Column, GroupSpec, empty_frame
from cryptocast.stores.ledger import LEDGER, Ledger

log = logging.getLogger(__name__)

ARROW_TYPES = {"date": pa.date32(), "float": pa.float64(), "int": pa.int64(), "str": pa.string()}
DELTA_TYPES = {"date": "date", "float": "double", "int": "long", "str": "string"}
CHECKPOINT_EVERY = 100
LOG = "_delta_log"
DATA_FILE = re.compile(r"([0-9]{4})-([0-9a-f]{64})\.parquet")
LOG_FILE = re.compile(r"[0-9]{20}\.(json|checkpoint\.parquet)")
PRIMARY_KEY, EVENT_TIME = "cryptocast.primary_key", "cryptocast.event_time"
NULLABLE = "cryptocast.nullable"  # a float column that may hold NaN (a figure not computed yet)
T = TypeVar("T")


@dataclass(frozen=True)
class DataFile:
    """A live data file as the table's log records it."""

    path: str
    size: int
    rows: int

    @property
    def year(self) -> str:
        return self.path[:4]


@dataclass(frozen=True)
class Snapshot:
    """The table at one version: which files hold its rows."""

    version: int
    files: tuple[DataFile, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


EMPTY = Snapshot(-1, ())


@dataclass(frozen=True)
class Commit:
    """One line of a group's history."""

    version: int
    timestamp: str
    operation: str
    summary: str
    rows: int | None
    program: str


def table_name(spec: GroupSpec) -> str:
    return f"{spec.name}_{spec.version}"


def schema_json(spec: GroupSpec) -> dict:
    """The Delta schema of a group, with each column's description and the key and event time marked."""
    fields = []
    for c in spec.columns:
        metadata = {"comment": c.description}
        if c.name in spec.primary_key:
            metadata[PRIMARY_KEY] = str(spec.primary_key.index(c.name))
        if c.name == spec.event_time:
            metadata[EVENT_TIME] = "true"
        if c.nullable:
            metadata[NULLABLE] = "true"
        fields.append({"name": c.name, "type": DELTA_TYPES[c.dtype], "nullable": True, "metadata": metadata})
    return {"type": "struct", "fields": fields}


def spec_from_table(name: str, description: str, schema: dict) -> GroupSpec:
    """The group a table holds, from its own metadata (for versions this code no longer defines)."""
    group, _, version = name.rpartition("_")
    dtypes = {v: k for k, v in DELTA_TYPES.items()}
    columns, keys, event_time = [], {}, ""
    for f in schema["fields"]:
        meta = f.get("metadata", {})
        columns.append(Column(f["name"], dtypes[f["type"]], meta.get("comment", ""), meta.get(NULLABLE) == "true"))
        if PRIMARY_KEY in meta:
            keys[int(meta[PRIMARY_KEY])] = f["name"]
        if meta.get(EVENT_TIME) == "true":
            event_time = f["name"]
    return GroupSpec(group, int(version), description, tuple(keys[i] for i in sorted(keys)), event_time,
                     tuple(columns))


def group_argument(spec: GroupSpec) -> str:
    """How `history`/`rollback` name a group: the bare name means this code's version only."""
    current = any((s.name, s.version) == (spec.name, spec.version) for s in (*INGESTED_GROUPS, FORECASTS))
    return spec.name if current else f"{spec.name}_v{spec.version}"


def table_exists(directory: Path) -> bool:
    """A directory is a table once its log holds a commit (a crash before the first leaves only loose files).

    Any commit or checkpoint counts, not only commit 0: a table that lost its first commit is damaged
    (reads and `verify` say so), not absent, or the next write would start a second history at 0.
    """
    log_dir = directory / LOG
    if (log_dir / f"{0:020d}.json").exists():
        return True
    return log_dir.is_dir() and any(LOG_FILE.fullmatch(p.name) for p in log_dir.iterdir())


def read_spec(directory: Path) -> GroupSpec:
    """The group a table on disk holds, from its own metadata."""
    from deltalake import DeltaTable

    where = f"cannot read the Delta table at {directory}"
    table = _delta(where, DeltaTable, str(directory))
    metadata = _delta(where, table.metadata)
    try:
        return spec_from_table(metadata.name, metadata.description, json.loads(table.schema().to_json()))
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{where}: its metadata does not describe a cryptocast group ({type(exc).__name__})") from None


def parquet_bytes(spec: GroupSpec, df: pd.DataFrame) -> bytes:
    """Serialise deterministically: same rows in, same bytes out (no timestamps, no pandas metadata)."""
    arrays = []
    for c in spec.columns:
        values = df[c.name].dt.date if c.dtype == "date" else df[c.name]
        arrays.append(pa.array(values, type=ARROW_TYPES[c.dtype]))
    table = pa.Table.from_arrays(arrays, names=spec.column_names)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", write_statistics=False, store_schema=False)
    return buffer.getvalue()


def stats_json(spec: GroupSpec, df: pd.DataFrame) -> str:
    """Delta's per-file statistics, which readers such as DuckDB use to skip files; derived from the rows."""
    def scalar(column: Column, value: Any) -> Any:
        if pd.isna(value):  # a nullable column with no value in this file: JSON has no NaN
            return None
        if column.dtype == "date":
            return value.strftime("%Y-%m-%d")
        return {"float": float, "int": int, "str": str}[column.dtype](value)

    stats = {"numRecords": len(df),
             "minValues": {c.name: scalar(c, df[c.name].min()) for c in spec.columns},
             "maxValues": {c.name: scalar(c, df[c.name].max()) for c in spec.columns},
             "nullCount": {c.name: 0 for c in spec.columns}}
    return json.dumps(stats, sort_keys=True, separators=(",", ":"))


def state_digest(files: Iterable[DataFile]) -> str:
    """What a commit records about the table it leaves: every live file with its size and rows."""
    lines = sorted(f"{f.path} {f.size} {f.rows}" for f in files)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _add_action(path: str, size: int, stats: str) -> dict:
    return {"path": path, "partitionValues": {}, "size": size, "modificationTime": _now_ms(), "dataChange": True,
            "stats": stats}


def _program() -> str:
    """Which command made a commit, for the history: a script's name, or `cryptocast <command>`."""
    path = Path(sys.argv[0])
    if path.name == "__main__.py" and path.parent.name == "cryptocast" and len(sys.argv) > 1:
        return f"cryptocast {sys.argv[1]}"
    return path.name


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def _delta(what: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call delta-rs; any failure, including a Rust panic (a BaseException), becomes one StoreError line."""
    try:
        return call(*args, **kwargs)
    except BaseException as exc:
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise  # Ctrl-C and exits pass; pyo3's PanicException (a Rust panic) is a BaseException too
        text = (str(exc).strip().splitlines() or [""])[0][:300]  # delta-rs appends a Rust backtrace
        raise StoreError(f"{what}: {type(exc).__name__}: {text}") from None


class GroupTable:
    """One feature group version's Delta table: snapshots, verified reads, commits, history."""

    def __init__(self, spec: GroupSpec, directory: Path) -> None:
        self.spec = spec
        self.directory = directory
        self.log_dir = directory / LOG
        self.label = f"feature group {spec.name} v{spec.version}"
        self.ledger = Ledger(directory.parent)
        self.key = directory.name

    def commit_path(self, version: int) -> Path:
        return self.log_dir / f"{version:020d}.json"

    def checkpoint_path(self, version: int) -> Path:
        return self.log_dir / f"{version:020d}.checkpoint.parquet"

    # --- the record outside the log (see ledger.py) ---------------------------------------------------

    def entry(self) -> dict | None:
        """This group's entry in the store's record, or None for a group written before the record."""
        return self.ledger.group(self.key)

    def recorded(self) -> bool:
        """The record says this group has commits (even if its log is gone: then it is damaged, not absent)."""
        entry = self.entry()
        return entry is not None and self._audit(entry, None, False)[0] >= 0

    def check_log(self, upto: int | None = None, everything: bool = False) -> int | None:
        """The newest version, after checking every restorable commit and checkpoint up to `upto` (default:
        the newest) against the record, and (`upto` None, or `everything`) that no commit follows the newest.

        None for a group written before the record (its first write records it). Raises one line naming
        what is lost or edited and the rollback that continues from the newest intact version.
        """
        for _ in range(3):  # a concurrent run may commit between reading the record and the log
            entry = self.entry()
            if entry is None:
                self._check_unrecorded()
                return None
            latest, damage = self._audit(entry, upto, everything)
            if damage is None or entry == self.entry():
                break
        if damage is not None:
            raise self._damage_error(entry, *damage)
        if upto is not None and not entry["first"] <= upto <= latest:
            older = (f"; versions before {entry['first']} are older than the time-travel window and cannot be "
                     "restored") if entry["first"] > 0 and upto < entry["first"] else ""
            raise StoreError(f"{self.label} has versions {entry['first']}..{latest}, not {upto}{older}")
        return latest

    def _audit(self, entry: dict, upto: int | None, everything: bool) -> tuple[int, tuple[int, str] | None]:
        """The newest version the record vouches for, and the first damage in what is read: (version, what)."""
        latest, first, commits = entry["latest"], entry["first"], entry["commits"]
        on_disk = self.versions()
        pending = entry.get("pending")
        if pending and pending["version"] == latest + 1 and latest + 1 in on_disk:
            if sha256_file(self.commit_path(latest + 1)) == pending["sha256"]:  # created; the run died before
                latest += 1                                                 # recording it as done
                commits = {**commits, str(latest): pending["sha256"]}
        if latest < 0:
            return latest, None
        where = self.ledger.path
        if not self.log_dir.is_dir():
            return latest, (first, f"its log {self.log_dir} is missing, but {where} records commits {first}..{latest}")
        if upto is None or everything:
            extra = [v for v in on_disk if v > latest]
            if extra:
                return latest, (latest + 1, f"commit {self.commit_path(extra[0])} is not in {where} (written by "
                                            "another program, or an old copy of the log)")
            upto = latest
        upto = min(upto, latest)  # a version out of range is the caller's error, not damage
        start = first  # every restorable commit, not only those after a checkpoint: an edited old commit is
        for version in range(start, upto + 1):  # damage too, and a window of small files hashes in milliseconds
            path = self.commit_path(version)
            actual = sha256_file(path)
            if actual is None:
                return latest, (version, f"commit {path} is missing ({where} records commits {first}..{latest})")
            if actual != commits.get(str(version)):
                return latest, (version, f"commit {path} is not the one {where} recorded (edited or damaged)")
        for version, recorded in sorted(entry["checkpoints"].items(), key=lambda item: int(item[0])):
            path = self.checkpoint_path(int(version))
            if start <= int(version) <= upto and sha256_file(path) != recorded:
                return latest, (int(version), f"checkpoint {path} is missing or not the one {where} recorded")
        return latest, None

    def _damage_error(self, entry: dict, version: int, what: str) -> StoreError:
        name = group_argument(self.spec)
        if version - 1 >= entry["first"]:
            return StoreError(f"{self.label}: {what}; run `python -m cryptocast rollback {name} --to {version - 1}` "
                              "to continue from the newest intact version (later versions are lost)")
        return StoreError(f"{self.label}: {what}; no intact version is left: restore {self.directory} from a copy of "
                          f"the store, or run `python -m cryptocast rollback {name} --to -1` to start it empty")

    def _check_unrecorded(self) -> None:
        """A group missing from the record is one written before it, unless its own commits say otherwise."""
        versions = self.versions()
        if versions and self.commit_info(versions[-1]).get("cryptocast.ledger") == LEDGER:
            raise StoreError(f"{self.label}: {self.ledger.path} does not list this group, yet its commits were "
                             "recorded there; restore the record from a copy of the store")

    def _adopt(self) -> dict:
        """The entry for a group written before the record: its commits on disk, as they are now."""
        versions = self.versions()
        checkpoints = sorted(int(p.name.split(".")[0]) for p in self.log_dir.glob("*.checkpoint.parquet"))
        return {"first": versions[0] if versions else 0, "latest": versions[-1] if versions else -1,
                "commits": {str(v): sha256_file(self.commit_path(v)) for v in versions},
                "checkpoints": {str(v): sha256_file(self.checkpoint_path(v)) for v in checkpoints},
                "maintained": 0}

    def exists(self) -> bool:
        return table_exists(self.directory)

    # --- reading -----------------------------------------------------------------------------------

    def snapshot(self, version: int | None = None) -> Snapshot:
        """The live files at `version` (default: the newest), checked against the record and what that commit
        recorded."""
        latest = self.check_log(version)
        return self._snapshot(version if version is not None else latest)

    def _snapshot(self, version: int | None) -> Snapshot:
        """The live files at `version` as delta-rs reads them, checked against the digest its commit recorded."""
        from deltalake import DeltaTable

        where = f"{self.label}: cannot read the Delta table at {self.directory}"
        table = _delta(where, DeltaTable, str(self.directory), version=version)
        self._check_schema(table)
        actions = pa.table(_delta(where, table.get_add_actions, flatten=True))
        files = ()
        if actions.num_rows:
            columns = [actions.column(c).to_pylist() for c in ("path", "size_bytes", "num_records")]
            files = tuple(DataFile(*row) for row in zip(*columns, strict=True))
        snap = Snapshot(_delta(where, table.version), files)
        recorded = self.commit_info(snap.version).get("cryptocast.state")
        if recorded != state_digest(files):
            raise StoreError(f"{self.label}: the files live at version {snap.version} are not those its commit "
                             f"recorded: {self.log_dir} is damaged (a commit or checkpoint); run "
                             "`python -m cryptocast verify`")
        return snap

    def _check_schema(self, table: Any) -> None:
        where = f"{self.label}: cannot read the Delta table at {self.directory}"
        metadata = _delta(where, table.metadata)
        schema = json.loads(_delta(where, lambda: table.schema().to_json()))
        if (metadata.name, metadata.description, schema) != (table_name(self.spec), self.spec.description,
                                                             schema_json(self.spec)):
            raise StoreError(f"{self.label} at {self.directory} has a different schema than this code; "
                             "bump the group version instead of editing it")

    def commit_info(self, version: int) -> dict:
        """The commitInfo action of one commit, read from its file (commits are immutable)."""
        path = self.commit_path(version)
        try:
            for line in path.read_text().splitlines():
                action = json.loads(line) if line.strip() else {}
                if not isinstance(action, dict):
                    raise ValueError("a line is not a JSON object")
                if isinstance(action.get("commitInfo"), dict):
                    return action["commitInfo"]
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise StoreError(f"{self.label}: unreadable commit {path}: {type(exc).__name__}") from None
        raise StoreError(f"{self.label}: commit {path} has no commitInfo")

    def file_bytes(self, f: DataFile) -> bytes:
        """A data file's bytes, after checking its size and SHA-256 against the log and its name."""
        path = self.directory / f.path
        match = DATA_FILE.fullmatch(f.path)
        if match is None:
            raise StoreError(f"{self.label}: {path}: not a data file name cryptocast writes (damaged commit?)")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.label}: data file {path} is missing") from None
        except OSError as exc:
            raise StoreError(f"{self.label}: cannot read {path}: {exc.strerror or exc}") from None
        if len(data) != f.size:
            raise StoreError(f"{self.label}: {path} is damaged: {len(data)} bytes, the log recorded {f.size}")
        if hashlib.sha256(data).hexdigest() != match.group(2):
            raise StoreError(f"{self.label}: {path} is damaged: its SHA-256 does not match its name")
        return data

    def arrow_table(self, f: DataFile, decode: bool = True) -> pa.Table | None:
        """One verified data file, parsed and checked against the schema and the row count in the log.

        `decode=False` checks the file's bytes and its Parquet footer only (None): enough for `verify`
        once the bytes are the ones its name and a recorded commit vouch for.
        """
        data = self.file_bytes(f)
        path = self.directory / f.path
        try:
            parquet = pq.ParquetFile(pa.BufferReader(data))
            table = parquet.read(use_threads=False) if decode else None  # 5x faster than read_table (no dataset)
            schema, rows = (table.schema, table.num_rows) if table is not None else (parquet.schema_arrow,
                                                                                     parquet.metadata.num_rows)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise StoreError(f"{self.label}: {path} is not readable Parquet: {exc}") from None
        expected = pa.schema([(c.name, ARROW_TYPES[c.dtype]) for c in self.spec.columns])
        if not schema.equals(expected) or rows != f.rows:
            raise StoreError(f"{self.label}: {path} does not hold the {f.rows} rows of the schema its log records")
        return table

    def read_file(self, f: DataFile) -> pd.DataFrame:
        return self.read_files([f])

    def read_files(self, files: Iterable[DataFile]) -> pd.DataFrame:
        """Verified data files as one frame with the group's dtypes (converted once: it is the slow part)."""
        tables = [self.arrow_table(f) for f in files]
        if not any(t.num_rows for t in tables):
            return empty_frame(self.spec)
        df = pa.concat_tables(tables).to_pandas(date_as_object=False)
        for c in self.spec.columns:
            if c.dtype == "date":
                df[c.name] = df[c.name].astype("datetime64[ns]")
        return df[self.spec.column_names]

    def history(self) -> list[Commit]:
        """Every commit still restorable, newest first, each checked against the record first."""
        latest = self.check_log(everything=True)
        entry = self.entry()
        versions = range(entry["first"], latest + 1) if entry is not None and latest is not None else self.versions()
        out = []
        for version in sorted(versions, reverse=True):
            c = self.commit_info(version)
            stamp = dt.datetime.fromtimestamp(_number(c.get("timestamp")) / 1000, dt.UTC)
            rows = c.get("cryptocast.rows")
            out.append(Commit(version, stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), str(c.get("operation", "?")),
                              str(c.get("cryptocast.summary", "")), int(rows) if str(rows).isdigit() else None,
                              str(c.get("cryptocast.program", ""))))
        return out

    # --- writing -----------------------------------------------------------------------------------

    def write_data_file(self, frame: pd.DataFrame) -> dict:
        """Write one year's rows as a content-named file; its add action (the file stays if the commit fails)."""
        data = parquet_bytes(self.spec, frame)
        year = frame[self.spec.event_time].dt.year.iloc[0]
        name = f"{year:04d}-{hashlib.sha256(data).hexdigest()}.parquet"
        self._make_log_dir()
        atomic_write_bytes(self.directory / name, data)
        return _add_action(name, len(data), stats_json(self.spec, frame))

    def readd(self, f: DataFile) -> dict:
        """The add action that brings back a file an earlier version had (verified first)."""
        return _add_action(f.path, f.size, stats_json(self.spec, self.read_file(f)))

    def commit(self, base: Snapshot, operation: str, summary: str, adds: list[dict],
               removed: Iterable[DataFile] = (), data_change: bool = True,
               parameters: dict[str, str] | None = None, replace: bool = False) -> Snapshot:
        """Commit `adds` (written by `write_data_file` or `readd`) and `removed` as version base + 1.

        The commit file appears whole or not at all, so a crash before it leaves `base` live (and at
        most some unreferenced data files); after it, the new version. The record announces the
        commit (`pending`) before its file is created and lists it once it is. `replace`: a repair
        writes over a lost or damaged commit file (see `repair`).
        """
        removed = list(removed)
        gone = {f.path for f in removed}
        live = {f.path: f for f in base.files if f.path not in gone}
        for add in adds:
            add["dataChange"] = data_change
            live[add["path"]] = DataFile(add["path"], add["size"], json.loads(add["stats"])["numRecords"])
        snap = Snapshot(base.version + 1, tuple(live.values()))
        now = _now_ms()
        info = {"timestamp": now, "operation": operation, "operationParameters": parameters or {},
                "isolationLevel": "Serializable", "isBlindAppend": not removed, "engineInfo": "cryptocast",
                "cryptocast.summary": summary, "cryptocast.rows": str(snap.rows),
                "cryptocast.state": state_digest(snap.files), "cryptocast.program": _program(),
                "cryptocast.ledger": LEDGER}
        if base.version >= 0:
            info["readVersion"] = base.version
        actions: list[dict] = [{"commitInfo": info}]
        if base.version < 0:
            actions += [{"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}, {"metaData": self._metadata(now)}]
        actions += [{"remove": {"path": f.path, "deletionTimestamp": now, "dataChange": data_change,
                                "extendedFileMetadata": True, "partitionValues": {}, "size": f.size}} for f in removed]
        actions += [{"add": add} for add in adds]
        data = "".join(json.dumps(a, separators=(",", ":")) + "\n" for a in actions).encode()
        self._make_log_dir()  # for a commit that adds no file (the conversion of an empty group)
        entry = self._entry_for(base.version, now)
        sha = hashlib.sha256(data).hexdigest()
        self.ledger.put(self.key, {**entry, "pending": {"version": snap.version, "sha256": sha}})
        try:
            if replace:
                atomic_write_bytes(self.commit_path(snap.version), data)
            else:
                atomic_create_bytes(self.commit_path(snap.version), data)
        except FileExistsError:
            raise StoreError(f"{self.label}: another writer committed version {snap.version} first; "
                             "nothing written") from None
        entry["commits"][str(snap.version)] = sha
        self.ledger.put(self.key, {**entry, "latest": snap.version})
        if snap.version and snap.version % CHECKPOINT_EVERY == 0:
            self.checkpoint()
        return snap

    def _entry_for(self, base: int, now: int) -> dict:
        """The record a commit on top of version `base` extends: nothing recorded after `base` survives it."""
        entry = self.entry()
        if entry is None:
            entry = self._adopt() if base >= 0 else {"first": 0, "latest": -1, "commits": {}, "checkpoints": {},
                                                      "maintained": now}
        keep = {k: v for k, v in entry["commits"].items() if int(k) <= base}
        points = {k: v for k, v in entry["checkpoints"].items() if int(k) <= base}
        return {"first": entry["first"], "latest": base, "commits": keep, "checkpoints": points,
                "maintained": entry["maintained"]}

    def restore(self, current: Snapshot, version: int, replace: bool = False) -> Snapshot:
        """Make the rows of `version` live again, as a new commit (so a rollback can itself be undone)."""
        target = self.snapshot(version)
        now, then = {f.path for f in current.files}, {f.path for f in target.files}
        adds = [self.readd(f) for f in target.files if f.path not in now]
        removed = [f for f in current.files if f.path not in then]
        return self.commit(current, "RESTORE", f"rollback to version {version}", adds, removed,
                           parameters={"version": str(version)}, replace=replace)

    def damage(self) -> int | None:
        """The first version the record finds lost or edited (None: the log is as recorded, or unrecorded)."""
        entry = self.entry()
        return None if entry is None else (self._audit(entry, None, True)[1] or (None,))[0]

    def repair(self, version: int) -> Snapshot:
        """Roll a damaged group back to `version`, an intact one before the first damage.

        The rollback commit takes the number of the first damaged version, written over its file (a
        lost or edited commit cannot be built on), after the record has dropped it and every later
        commit and checkpoint file is deleted: a crash in between leaves a group that says to run the
        same rollback again.
        """
        entry, broken = self.entry(), self.damage()
        if entry is None or broken is None:
            raise StoreError(f"{self.label}: nothing to repair")
        if not entry["first"] <= version < broken:
            raise StoreError(f"{self.label}: version {version} is not intact; versions {entry['first']}..{broken - 1} "
                             "are" if broken > entry["first"] else f"{self.label}: no intact version is left")
        self.check_log(broken - 1)
        base = self._snapshot(broken - 1)
        self.ledger.put(self.key, self._entry_for(broken - 1, _now_ms()))
        self._delete_log_files(lambda v: v >= broken, broken)  # the commit at `broken` is written over
        return self.restore(base, version, replace=True)

    def forget(self) -> None:
        """Start a group whose every version is lost empty again: delete what is left of its log, then its record."""
        entry, broken = self.entry(), self.damage()
        if entry is None or broken is None or broken > entry["first"]:
            raise StoreError(f"{self.label}: `--to -1` only starts a group empty when no intact version is left")
        self._delete_log_files(lambda v: True, None)
        self.ledger.put(self.key, None)

    def _delete_log_files(self, chosen: Callable[[int], bool], keep_commit: int | None) -> None:
        """Delete the commits and checkpoints `chosen` picks by version, oldest first (and the checkpoint hint)."""
        if not self.log_dir.is_dir():
            return
        (self.log_dir / "_last_checkpoint").unlink(missing_ok=True)
        for path in sorted(self.log_dir.iterdir()):
            match = LOG_FILE.fullmatch(path.name)
            version = int(path.name.split(".")[0]) if match else None
            if version is not None and chosen(version) and not (version == keep_commit and match.group(1) == "json"):
                path.unlink()

    def checkpoint(self) -> None:
        """Let delta-rs summarise the log at its newest version, and record the checkpoint's SHA-256."""
        from deltalake import DeltaTable

        try:
            table = _delta(f"{self.label}: checkpoint", DeltaTable, str(self.directory))
            _delta(f"{self.label}: checkpoint", table.create_checkpoint)
        except StoreError as exc:  # the commit stands; the next checkpoint covers this one
            log.warning("%s", exc)
            return
        entry, version = self.entry(), table.version()
        sha = sha256_file(self.checkpoint_path(version))
        if entry is not None and sha is not None and entry["latest"] == version:
            self.ledger.put(self.key, {**entry, "checkpoints": {**entry["checkpoints"], str(version): sha}})

    def commit_times(self) -> dict[int, int]:
        """Each restorable version's commit time (ms since the epoch), from its own commit."""
        entry = self.entry()
        latest = self.check_log(everything=True)
        if entry is None or latest is None:
            raise StoreError(f"{self.label}: not in {self.ledger.path}")
        return {v: _number(self.commit_info(v).get("timestamp")) for v in range(entry["first"], latest + 1)}

    def trim(self, first: int, maintained: int) -> tuple[int, int]:
        """Make `first` (a recorded checkpoint, or the current first) the oldest restorable version.

        The record changes first; then older commits and checkpoints, and every data file that no
        version from `first` on uses (older versions' files, leftovers of killed runs), are deleted,
        so a crash in between leaves only files nothing reads. Returns (log files, data files) deleted.
        """
        entry = self.entry()
        latest = self.check_log(everything=True)
        if entry is None or latest is None:
            raise StoreError(f"{self.label}: not in {self.ledger.path}")
        if first != entry["first"] and str(first) not in entry["checkpoints"]:
            raise StoreError(f"{self.label}: version {first} has no recorded checkpoint to start the log from")
        keep = {f.path for f in self._snapshot(first).files}
        for version in range(first + 1, latest + 1):
            keep |= {add["path"] for add in self._actions(self.commit_path(version))[1]}
        self.ledger.put(self.key, {**entry, "first": first, "maintained": maintained,
                                   "commits": {k: v for k, v in entry["commits"].items() if int(k) >= first},
                                   "checkpoints": {k: v for k, v in entry["checkpoints"].items() if int(k) >= first}})
        logs = [p for p in self.log_dir.iterdir() if LOG_FILE.fullmatch(p.name) and int(p.name.split(".")[0]) < first]
        data = [p for p in self.directory.iterdir() if DATA_FILE.fullmatch(p.name) and p.name not in keep]
        for path in sorted(logs) + data:
            path.unlink()
        return len(logs), len(data)

    def verify(self) -> tuple[Snapshot, pd.DataFrame]:
        """Check the log against the record, replay every restorable commit and check every file any of
        those versions uses; raise naming the first damaged file. Returns the newest version and its rows.

        The replay starts from the checkpoint at the oldest restorable version (what delta-rs reads),
        so it costs the time-travel window, not the group's whole life.
        """
        latest = self.check_log(everything=True)
        entry = self.entry()
        if latest is None or entry is None:  # written before the record: every commit from 0
            versions = self.versions()
            if versions != list(range(len(versions))) or not versions:
                raise StoreError(f"{self.label}: {self.log_dir} does not hold commits 0..{len(versions) - 1} "
                                 f"(found {versions[:5]}...)")
            first, latest, loads = 0, versions[-1], self._loads_that_read_every_log_file(versions[-1])
        else:
            first = entry["first"]
            recorded = {int(v) for v in entry["checkpoints"]}
            loads = [v for v in self._checkpoints() if first <= v <= latest and v not in recorded]
        deep = entry is None  # unrecorded: a commit's statistics are checked against the rows of its files
        live: dict[str, tuple[DataFile, str | None]] = {}
        if first > 0:
            live = {f.path: (f, None) for f in self._snapshot(first).files}
        checked: set[str] = set()
        self._check_live(live, checked, self.commit_path(first), deep)
        for version in range(first + 1 if first else 0, latest + 1):
            path = self.commit_path(version)
            info, adds, removes = self._actions(path)
            for remove in removes:
                if live.pop(remove.get("path"), None) is None:
                    raise StoreError(f"{self.label}: {path} removes a file that is not live")
            for add in adds:
                live[add["path"]] = (DataFile(add["path"], add["size"], json.loads(add["stats"])["numRecords"]),
                                     add["stats"])
            if info.get("cryptocast.state") != state_digest(f for f, _ in live.values()):
                raise StoreError(f"{self.label}: {path} is damaged: its files are not the state it recorded")
            self._check_live(live, checked, path, deep)
        for version in loads:
            self.snapshot(version)
        snap = self.snapshot(latest)  # not a newer one a concurrent run may have committed meanwhile
        return snap, self.read_files(snap.files)

    def _check_live(self, live: dict[str, tuple[DataFile, str | None]], checked: set[str], path: Path,
                    deep: bool) -> None:
        """Check (once) every live file: its bytes and footer; `deep`: its rows against the add action's statistics.

        A recorded group needs no statistics check: the record vouches for the commit's bytes, and the
        file's name for the file's.
        """
        for f, stats in live.values():
            if f.path in checked:
                continue
            checked.add(f.path)
            if not deep:
                self.arrow_table(f, decode=False)
            elif stats is not None and stats_json(self.spec, self.read_file(f)) != stats:
                raise StoreError(f"{self.label}: {path}: the statistics of {f.path} do not match its rows")

    def _checkpoints(self) -> list[int]:
        return sorted(int(p.name.split(".")[0]) for p in self.log_dir.glob("*.checkpoint.parquet"))

    def _loads_that_read_every_log_file(self, latest: int) -> list[int]:
        """Versions whose loading makes delta-rs read each checkpoint and each commit file at least once.

        delta-rs opens version v from the newest checkpoint at or before v plus the commits after it,
        so loading each checkpoint's version and the version before each checkpoint covers them all.
        """
        checkpoints = self._checkpoints()
        return sorted({*checkpoints, *(c - 1 for c in checkpoints if c > 0), latest})

    def versions(self) -> list[int]:
        if not self.log_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.log_dir.iterdir() if re.fullmatch(r"[0-9]{20}\.json", p.name))

    def _actions(self, path: Path) -> tuple[dict, list[dict], list[dict]]:
        """A commit's commitInfo, add and remove actions, with the fields verification relies on typed."""
        try:
            actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if not all(isinstance(a, dict) and len(a) == 1 and isinstance(next(iter(a.values())), dict)
                       for a in actions):
                raise TypeError("a line is not one action")
            info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
            adds = [a["add"] for a in actions if "add" in a]
            removes = [a["remove"] for a in actions if "remove" in a]
            for add in adds:
                if not (isinstance(add["path"], str) and isinstance(add["size"], int)
                        and isinstance(json.loads(add["stats"])["numRecords"], int)):
                    raise TypeError("an add action lacks path, size or numRecords")
        except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
            raise StoreError(f"{self.label}: unreadable commit {path}: {type(exc).__name__}") from None
        return info, adds, removes

    def _make_log_dir(self) -> None:
        if not self.log_dir.is_dir():
            self.log_dir.mkdir(parents=True, exist_ok=True)

    def _metadata(self, now: int) -> dict:
        # Expired-log cleanup off: another Delta writer's post-commit hook must never delete the history.
        return {"id": str(uuid.uuid4()), "name": table_name(self.spec), "description": self.spec.description,
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps(schema_json(self.spec), separators=(",", ":")), "partitionColumns": [],
                "configuration": {"delta.enableExpiredLogCleanup": "false"}, "createdTime": now}


def _number(value: Any) -> int:
    """A commit's timestamp as an int (0 if a commit lacks one)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
