"""The feature store on Hopsworks: the same groups, upserts and view as the local store, hosted.

Each group is a Hopsworks feature group of the same name and version, created with its primary key,
event time, description and per-feature descriptions; Hopsworks creates it on the first insert.
It is offline only, in the time-travel format CRYPTOCAST_HOPSWORKS_FORMAT names (default HUDI), and
without statistics: the backend would otherwise run a statistics job after every insert, against the
project's compute quota, for numbers nothing here reads.

Write path (hsfs 5.2, python engine, from outside the cluster): a HUDI group (and ICEBERG) is a stream
group: the client sends the rows to the group's Kafka topic and starts the cluster's materialization
job, which writes them into the offline table; `insert(wait=True)` returns only when that job has
finished (and raises if it failed), and when an execution was already running (hsfs then starts none)
the store waits for it and runs the job again, so what a step wrote is readable by the next one: the
daily run never forecasts from rows still in the topic. A DELTA group is written by the client itself, a
delta-rs merge straight into HopsFS, which needs the cluster's external datanode and namenode load
balancers: a hosted (Serverless) project has none, and the client refuses ("Failed to write to delta
table in external cluster..."), so DELTA is an option for clusters that expose them. Rows are matched
on the primary key (DELTA: primary key plus event time); every group here has its event time in its
key. Days are sent as microsecond timestamps, the precision a DELTA table keeps (nanoseconds would be
cast, with a warning on every insert). Reads go through the Query Service (Arrow Flight).

A group that already exists is used only if it is what this code would create: same format, offline
only, same stream setting, primary key, event time and schema (`_differences`); otherwise one line
names the group, what differs and the fix (a group left behind in another format by a failed first
run is removed with `python -m cryptocast hopsworks-reset --yes-delete-cryptocast-groups`).

Inserts are upserts. Only new or changed rows are sent, after reading the stored rows in the batch's
date range, which is also how the added/updated/unchanged counts match the local store's.
The view is a Hopsworks feature view: the left group's query joined (left) with the others on the
day, read with `get_batch_data` filtered on the left group's day.

Every Hopsworks call goes through `HopsworksSession.call` (timeout, one-line errors, no secrets).
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import AbstractContextManager
from typing import Any

import pandas as pd
from filelock import FileLock

from cryptocast.errors import StoreError
from cryptocast.features import GroupSpec, ViewSpec, conform, conform_view, empty_frame
from cryptocast.hopsworks_session import RESET_COMMAND, HopsworksSession
from cryptocast.settings import HOPSWORKS_FORMATS, Settings
from cryptocast.stores.base import InsertResult, check_changes, compare_rows, insert_result, view_groups
from cryptocast.stores.local import LOCK_TIMEOUT_S, exclusive

log = logging.getLogger(__name__)

HSFS_TYPES = {"date": "timestamp", "float": "double", "int": "bigint", "str": "string"}
# How hsfs 5.2's python engine writes a new group of each format from outside the cluster.
WRITE_PATHS = {"DELTA": "written directly from this machine with delta-rs, no job (needs the cluster's external "
                        "load balancers)",
               "HUDI": "sent through Kafka to a materialization job, which inserts wait for",
               "ICEBERG": "sent through Kafka to a materialization job (from outside the cluster), which inserts "
                          "wait for"}


def label(spec: GroupSpec) -> str:
    return f"{spec.name} v{spec.version}"


def _features(spec: GroupSpec) -> list[Any]:
    from hsfs.feature import Feature

    return [Feature(name=c.name, type=HSFS_TYPES[c.dtype], description=c.description) for c in spec.columns]


def _schema(columns: Any) -> dict[str, str]:
    return {str(name).lower(): str(kind).lower() for name, kind in columns}


def _differences(spec: GroupSpec, handle: Any, fmt: str) -> list[str]:
    """How an existing group differs from the one `get_or_create_feature_group` would make here, in words."""
    found = []
    stored = str(handle.time_travel_format or "NONE").upper()
    if stored != fmt:
        found.append(f"format {stored}, not {fmt}")
    if handle.online_enabled:
        found.append("online-enabled, not offline only")
    if bool(handle.stream) != (fmt != "DELTA"):  # hsfs' python engine streams every format but DELTA
        found.append("a stream group (written through Kafka), not a direct write" if handle.stream
                     else "written directly (no stream), not through Kafka")
    key = [k.lower() for k in handle.primary_key]  # a group read back lists its key in column order
    if sorted(key) != sorted(spec.primary_key):
        found.append(f"primary key {', '.join(key) or 'none'}, not {', '.join(spec.primary_key)}")
    if (handle.event_time or "").lower() != spec.event_time:
        found.append(f"event time {handle.event_time or 'none'}, not {spec.event_time}")
    have = _schema((f.name, f.type) for f in handle.columns)
    want = _schema((c.name, HSFS_TYPES[c.dtype]) for c in spec.columns)
    if have != want:
        changed = sorted(f"{n} {have.get(n, 'missing')} (not {want[n]})" for n in want if have.get(n) != want[n])
        changed += sorted(f"{n} {have[n]} (not in this code)" for n in have if n not in want)
        found.append(f"schema: {', '.join(changed)}")
    return found


def _check_group(spec: GroupSpec, handle: Any, fmt: str) -> None:
    """Refuse a group that is not what this code creates, in one line naming it, what differs and the fix."""
    found = _differences(spec, handle, fmt)
    if not found:
        return
    stored = str(handle.time_travel_format or "").upper()
    keep = (f", or set CRYPTOCAST_HOPSWORKS_FORMAT={stored} to keep it if this cluster takes that format"
            if stored in HOPSWORKS_FORMATS and all(d.startswith(("format", "a stream", "written directly"))
                                                   for d in found) else "")
    if any(d.startswith("schema") for d in found):
        keep += ", or, if this code changed the schema, bump the group's version instead of editing it"
    raise StoreError(f"feature group {label(spec)} in Hopsworks is not what cryptocast creates: {'; '.join(found)}; "
                     f"fix: `{RESET_COMMAND}` removes cryptocast's groups and view (their rows too: run "
                     f"feature_backfill.py after){keep}")


def _day_filter(feature: Any, start: dt.date | None, end: dt.date | None) -> Any:
    """An hsfs filter for start <= event time <= end (either side open when None), or None."""
    conditions = ([feature >= start] if start else []) + ([feature <= end] if end else [])
    if not conditions:
        return None
    return conditions[0] & conditions[1] if len(conditions) == 2 else conditions[0]


def _as_sent(spec: GroupSpec, rows: pd.DataFrame) -> pd.DataFrame:
    return rows.astype({c.name: "datetime64[us]" for c in spec.columns if c.dtype == "date"})


BROKEN_VIEW = "broken"  # a view the client cannot build: one of the groups it reads was deleted


def _view_or_broken(fs: Any, view: ViewSpec) -> Any:
    try:
        return fs.get_feature_view(name=view.name, version=view.version)
    except ValueError as exc:  # hsfs: "... the query defined is no longer valid. Some feature groups ... deleted"
        if "no longer valid" not in str(exc):
            raise
        return BROKEN_VIEW


class HopsworksFeatureGroup:
    def __init__(self, spec: GroupSpec, handle: Any, session: HopsworksSession) -> None:
        self.spec = spec
        self.handle = handle
        self.session = session

    def read(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        if self.handle.id is None:  # not saved yet: Hopsworks creates a group on its first insert
            return empty_frame(self.spec)
        return conform(self.spec, self.session.call(f"read from {label(self.spec)}", self._read, start, end))

    def _read(self, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        query = self.handle.select_all()
        condition = _day_filter(self.handle.get_feature(self.spec.event_time), start, end)
        if condition is not None:
            query = query.filter(condition)
        return query.read(dataframe_type="pandas")

    def insert(self, df: pd.DataFrame, replace: bool = False) -> InsertResult:
        """Upsert validated rows, sending only those that are new or changed."""
        event = df[self.spec.event_time]
        stored = self.read(event.min().date(), event.max().date()) if len(df) else empty_frame(self.spec)
        is_new, changed = compare_rows(self.spec, stored, df)
        check_changes(self.spec, stored, df, changed, replace)
        rows = df[is_new | changed].reset_index(drop=True)
        if len(rows):
            self.session.call(f"insert into {label(self.spec)}", self._write, _as_sent(self.spec, rows))
        return insert_result(is_new, changed)

    def _write(self, rows: pd.DataFrame) -> None:
        """Insert, and return only once the rows are in the offline table.

        `insert(wait=True)` waits for the materialization job it starts, but hsfs' `Job.run` starts none, and
        waits for none, when an execution of that job is still running (`Job._is_materialization_running`: one a
        timed-out run left behind, say), and that execution may have read the topic before these rows. Then the
        store waits for it and runs the job once more (from where it stopped), as hsfs would have.
        """
        self.handle.insert(rows, wait=True)
        if not self.handle.stream:  # DELTA: written by delta-rs from here, no job
            return
        job = self.handle.materialization_job
        if job.get_final_state() != "UNDEFINED":  # the last execution, ours, has ended (it raised if it failed)
            return
        log.info("%s: its materialization job was already running; waiting for it, then running it again",
                 label(self.spec))
        job._wait_for_job(await_termination=True)
        job.run(args=job.config.get("defaultArgs", ""), await_termination=True)
        if job.get_final_state() == "UNDEFINED":
            raise StoreError(f"{label(self.spec)}: another execution of its materialization job started while this "
                             "run waited, so its rows may not be in the offline table yet; run the step again")


class HopsworksFeatureStore:
    """Feature groups and the feature view in a Hopsworks project's feature store."""

    backend = "hopsworks"

    def __init__(self, settings: Settings) -> None:
        self.session = HopsworksSession(settings)
        self.home = settings.home
        self.format = settings.hopsworks_format

    @property
    def fs(self) -> Any:
        return self.session.service("feature store", "get_feature_store")

    def get_feature_group(self, spec: GroupSpec) -> HopsworksFeatureGroup | None:
        fs = self.fs
        handle = self.session.call(f"look up feature group {label(spec)}", fs.get_feature_group,
                                   name=spec.name, version=spec.version)
        if handle is None:
            return None
        _check_group(spec, handle, self.format)
        return HopsworksFeatureGroup(spec, handle, self.session)

    def get_or_create_feature_group(self, spec: GroupSpec) -> HopsworksFeatureGroup:
        fs = self.fs
        handle = self.session.call(
            f"get or create feature group {label(spec)}", fs.get_or_create_feature_group, name=spec.name,
            version=spec.version, description=spec.description, primary_key=list(spec.primary_key),
            event_time=spec.event_time, features=_features(spec), online_enabled=False,
            time_travel_format=self.format, statistics_config=False)
        if handle.id is not None:
            _check_group(spec, handle, self.format)
        return HopsworksFeatureGroup(spec, handle, self.session)

    def read_feature_view(self, view: ViewSpec, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        handles = {name: group.handle for name, group in view_groups(self, view).items()}
        rows = self.session.call(f"read feature view {view.name} v{view.version}", self._view_rows, view, handles,
                                 start, end)
        return conform_view(view, rows)

    def _view_rows(self, view: ViewSpec, handles: dict[str, Any], start: dt.date | None,
                   end: dt.date | None) -> pd.DataFrame:
        left = handles[view.left.group.name]
        query = left.select([*view.key, *view.left.features])
        for part in view.joins:
            query = query.join(handles[part.group.name].select([*view.key, *part.features]), on=view.key,
                               join_type="left", prefix=part.prefix)
        feature_view = self.fs.get_or_create_feature_view(name=view.name, version=view.version, query=query,
                                                          description=view.description)
        condition = _day_filter(left.get_feature(view.left.group.event_time), start, end)
        return feature_view.get_batch_data(extra_filter=condition, primary_key=True, event_time=True,
                                           dataframe_type="pandas")

    def drop_feature_view(self, view: ViewSpec, force: bool = False) -> bool:
        """Delete the view if it exists; True if it did. `force`: also when models use it (every cryptocast model
        is registered with the view, and the client refuses to delete a view in use unless forced).

        It is deleted by name, as hsfs' own `FeatureView.delete` does underneath, because once one of its groups
        is gone the client cannot build the view any more, and `FeatureView.clean`, which the client's error
        message offers for that, calls a method hsfs 5.2.1 has renamed (an AttributeError)."""
        fs = self.fs
        name = f"feature view {view.name} v{view.version}"
        if self.view_state(view) is None:
            return False
        from hsfs.core.feature_view_api import FeatureViewApi

        self.session.call(f"delete {name}", FeatureViewApi(fs.id)._delete_by_name_version, view.name, view.version,
                          force)
        return True

    def view_state(self, view: ViewSpec) -> Any:
        """The view's handle, None if there is none, or BROKEN_VIEW if it exists but one of its groups is gone."""
        fs = self.fs
        return self.session.call(f"look up feature view {view.name} v{view.version}", _view_or_broken, fs, view)

    def drop_feature_group(self, spec: GroupSpec) -> bool:
        """Delete the group if it exists, whatever its schema (the doctor's clean-up); True if it did."""
        fs = self.fs
        handle = self.session.call(f"look up feature group {label(spec)}", fs.get_feature_group, name=spec.name,
                                   version=spec.version)
        if handle is not None:
            self.session.call(f"delete feature group {label(spec)}", handle.delete)
        return handle is not None

    def lock(self) -> AbstractContextManager[None]:
        """Serialise runs on this machine; runs elsewhere rely on the workflow's concurrency group."""
        self.home.mkdir(parents=True, exist_ok=True)
        return exclusive(FileLock(self.home / ".hopsworks.lock"), "the hopsworks store (on this machine)",
                         LOCK_TIMEOUT_S)
