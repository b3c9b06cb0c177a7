"""An offline double of the `hopsworks` client (5.2.1), for the parts of it cryptocast uses.

`install(monkeypatch)` puts a fresh module in `sys.modules["hopsworks"]`; its state (feature groups,
feature views, models, project files) lives on the returned `Double` and survives repeated
`hopsworks.login()` calls within one test, the way a real project outlives each script's login.
By default it is a fresh hosted (Serverless) project: no group, no model, no external load balancers
(`install(monkeypatch, load_balancers=True)` for a cluster that exposes them).

Where the service decides (a missing path, model version, group or view, a missing scope, a wrong
key, a table not yet written...), the double answers what the backend answers: every such error is
built from the table in tests/hopsworks_answers.py (status, error code, message, the backend source
it comes from), and tests/code/test_hopsworks_answers.py checks each case against it. Lookups the
client wraps in its own `_catch_not_found` (groups, views, model versions) raise that answer through
the client's real decorator, which decides that it means None.

Where the installed client decides something without the network, the double runs the client's own
code, so a change in the client shows up here as a failing test instead of a silent difference:
- `login` IS the real `hopsworks.login`: its reading of the environment, its host default, its
  project prompt and its errors; only the connection underneath (`Connection._connect`, where the
  network starts) is replaced. That connection refuses an empty host, a wrong key and any engine
  but "python" (left to itself the client picks Spark when pyspark is installed);
- a feature group's metadata is a real `hsfs.feature_group.FeatureGroup`, built by the real
  `FeatureStore.get_or_create_feature_group`, so its defaults (time-travel format, write path,
  statistics) are the client's;
- `insert` parses the frame's schema and checks it against the group with hsfs' own functions, and
  saves the group before writing, as hsfs does. A DELTA group (not a stream) goes through hsfs' own
  delta-rs set-up, which refuses with the client's own message when the cluster has no external load
  balancers; otherwise it is prepared with hsfs' own `_prepare_df_for_delta` (and its warnings) and
  upserted on the key hsfs' own delta-rs merge query uses (primary key + event time). A stream group
  (HUDI, ICEBERG from outside) gets its rows in a Kafka topic; only its materialization job (run by
  `wait=True`, or `FakeFeatureGroup.materialise()`) upserts them into the offline table on the primary
  key, and reading a saved group whose table was never written fails as the Query Service does. A
  statistics job is counted after each insert when the group's statistics are enabled;
- `Model.save` validates metrics and the name and converts the input example with hsml's own
  functions, numbers the version with hsml's own `_set_model_version` from the folders under
  `Models/<name>`, stores `input_example.json` as the client uploads it, and ends with hsml's poll:
  a look every 5 s (counted in `Double.waited`, never slept), await_registration/5 looks;
- a feature view is deleted by name with hsfs' own `FeatureViewApi` (it needs no view built, which fails once
  one of its groups is gone): its request is the one the double's REST client answers (a
  "request" in `Double.calls`); a view models use is refused unless forced;
- the dataset API has no `exists`: the real one answers False on any REST error (a 403 included),
  which made an unreadable registry look empty; `Model.save` runs the real `exists` over the
  double's files where hsml does (checking for the Models dataset). Errors are the client's classes.

Reads return timestamps as tz-aware UTC microseconds, rows in no particular order; filters are the
real hsfs `Filter`/`Logic` objects, evaluated here; a feature view is a left join on the key with
prefixed right columns, and `get_batch_data` drops key and event-time columns unless asked for them.

Every call is recorded in `Double.calls` as (the real callable's dotted path, args, kwargs), so a
test can bind each against the installed package. Faults: `fail(target, exc)` makes a call raise,
`block(target)` makes it hang until the test ends, `write_fault = exc` makes inserts fail after the
group's metadata was saved, `job_fault = exc` makes materialization jobs fail (as
`JobExecutionException`, say), `group.job.elsewhere()` leaves an execution of a group's materialization
job running (hsfs' `Job.run` then starts none and waits for none), `deny_datasets()` answers every dataset
call with the 403 a key without the dataset scopes gets (or a 401), and `registration = "late"` or
`"lost"` makes `Model.save` end as hsml's does when its registration poll finds nothing
(`None.get_url()`), with the version visible afterwards or not.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import itertools
import json
import os
import re
import sys
import threading
import types
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import requests

from hopsworks_answers import ANSWERS

API_KEY = "hw-double-key-9f3c2e"
PROJECT = "cryptocast_test"
URL = "https://eu-west.cloud.hopsworks.ai/hopsworks-api/api"

FS = "hsfs.feature_store.FeatureStore"
FG = "hsfs.feature_group.FeatureGroup"
QUERY = "hsfs.constructor.query.Query"
FV = "hsfs.feature_view.FeatureView"
MR = "hsml.model_registry.ModelRegistry"
MODEL = "hsml.model.Model"
DATASETS = "hopsworks_common.core.dataset_api.DatasetApi"
PROJECT_CLASS = "hopsworks_common.project.Project"
JOB = "hopsworks_common.job.Job"
NO_URL = "'NoneType' object has no attribute 'get_url'"  # what hsml's save raises when its poll found nothing
# What the double models of `get_or_create_feature_group`; anything else it refuses rather than pretends.
GROUP_OPTIONS = {"description", "online_enabled", "time_travel_format", "primary_key", "event_time", "features",
                 "statistics_config"}

# every real callable or property the double stands in for
TARGETS = {"hopsworks.login", f"{MR}.python", f"{QUERY}.featuregroups"}


def rest_error(status: int, reason: str, error_code: int | None = None, message: str = "",
               path: str = "", user_message: str | None = None) -> Exception:
    """The client's own RestAPIError, as `_send_request` raises it for a response with this status and body
    (the backend's RESTException body: the code's message, and the thrower's own message when it gave one)."""
    from hopsworks_common.client.exceptions import RestAPIError

    response = requests.Response()
    response.status_code, response.reason, response.url = status, reason, f"{URL}/{path}"
    body = {"errorCode": error_code, "errorMsg": message, "usrMsg": message if user_message is None else user_message}
    response._content = json.dumps({k: v for k, v in body.items() if v or k != "usrMsg"}).encode()
    return RestAPIError(response.url, response)


def answer_error(case: str, path: str = "", user_message: str = "") -> Exception:
    """The service's answer to `case`, from the table in tests/hopsworks_answers.py: a RestAPIError with the
    backend's status and error code, or the client's own exception where the client decides."""
    row = ANSWERS[case]
    if row.status is None:
        from hopsworks_common.client.exceptions import FeatureStoreException

        return FeatureStoreException(f"{row.message}{': ' + user_message if user_message else ''}")
    return rest_error(row.status, row.reason, row.code, row.message, path, user_message)


def records(target: str):
    """Record every call under the real callable's dotted path, then apply any injected fault."""
    TARGETS.add(target)

    def wrap(method):
        @functools.wraps(method)
        def recorded(self, *args, **kwargs):
            self.double.record(target, args, kwargs)
            return method(self, *args, **kwargs)
        return recorded
    return wrap


def recorded_property(target: str, attribute: str) -> property:
    TARGETS.add(target)

    def get(self):
        self.double.record(target, (), {}, kind="property")
        return getattr(self, attribute)
    return property(get)


class Double:
    """The project behind the fake client: everything a test may inspect or break."""

    def __init__(self, real: types.ModuleType, projects: tuple[str, ...] = (PROJECT,), api_key: str = API_KEY,
                 load_balancers: bool = False) -> None:
        self.real = real
        self.load_balancers = load_balancers  # a hosted (Serverless) project exposes none
        self.projects = projects
        self.api_key = api_key
        self.calls: list[tuple[str, tuple, dict, str]] = []
        self.connections: list[dict[str, Any]] = []
        self.logins = 0
        self.groups: dict[tuple[str, int], FakeFeatureGroup] = {}
        self.views: dict[tuple[str, int], FakeFeatureView] = {}
        self.models: dict[str, dict[int, FakeModel]] = {}
        self.files = FakeFiles()
        self.ids = itertools.count(1)
        self.registration = "confirmed"
        self.dataset_fault: Exception | None = None
        self.write_fault: Exception | None = None
        self.job_fault: Exception | None = None
        self.waited = 0.0  # seconds the client would have slept (hsml's registration poll), counted, never slept
        self.answers: list[tuple[str, Exception]] = []
        self._faults: dict[str, BaseException] = {}
        self._blocks: dict[str, threading.Event] = {}
        self.released = threading.Event()

    def record(self, target: str, args: tuple, kwargs: dict, kind: str = "call") -> None:
        self.calls.append((target, args, kwargs, kind))
        if target in self._blocks:
            self._blocks[target].wait(60)
        if target in self._faults:
            raise self._faults[target]

    def fail(self, target: str, exc: BaseException) -> None:
        self._faults[target] = exc

    def block(self, target: str) -> None:
        self._blocks[target] = self.released

    def deny_datasets(self, status: int = 403) -> None:
        """Every dataset call fails: 403 as for a key without the dataset scopes, 401 as for a key revoked since."""
        self.dataset_fault = self.answer("no scope" if status == 403 else "wrong key", "project/119/dataset")

    def check_direct_write(self, metadata: Any) -> None:
        """hsfs' own delta-rs set-up for an external client: it refuses when the cluster publishes no external
        datanode load balancer (`loadbalancer_external_domain_datanode` unset), with the client's own message
        (hsfs 5.2.1 `hsfs/core/delta_engine.py:179-182` and `:745-764`)."""
        from hsfs.core.delta_engine import DeltaEngine

        def domain(kind: str) -> str:
            if not self.load_balancers:
                self.answers.append(("no load balancers", None))
            return f"{kind}.loadbalancer.example" if self.load_balancers else ""
        engine = types.SimpleNamespace(
            _feature_group=metadata, _variable_api=types.SimpleNamespace(_get_loadbalancer_external_domain=domain),
            _project_api=types.SimpleNamespace(_get_user_info=lambda: {"username": "meb10000"}))
        touched = ("PEMS_DIR", "HOPSFS_CLOUD_DATANODE_HOSTNAME_OVERRIDE", "LIBHDFS_DEFAULT_USER")
        before = {name: os.environ.get(name) for name in touched}
        try:
            DeltaEngine._setup_delta_rs(engine)
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def lookup(self, class_path: str, case: str, found: Any, path: str, user_message: str = "") -> Any:
        """A GET the client wraps in its own `_catch_not_found(class_path)`: when nothing is `found` the backend
        answers `case`, and the client's decorator (run here) decides whether that means None."""
        from hopsworks_common import decorators

        @decorators._catch_not_found(class_path, fallback_return=None)
        def get() -> Any:
            if found is None:
                raise self.answer(case, path, user_message)
            return found
        return get()

    def model(self, name: str, version: int) -> FakeModel | None:
        """`ModelApi._get` (GET models/<name>_<version>), which the client wraps in `_catch_not_found`."""
        return self.lookup("hsml.model.Model", "missing model version", self.models.get(name, {}).get(version),
                           f"project/119/modelregistries/119/models/{name}_{version}")

    def registered(self, name: str, version: int, model_registry_id: int | None = None,
                   shared_registry_project_name: str | None = None) -> FakeModel | None:
        """hsml's own view of `model` (its `_get` signature), for the client code the double runs."""
        return self.model(name, version)

    def delete_view(self, name: str, version: int, force: bool) -> None:
        """DELETE featurestores/67/featureview/<name>/version/<version>[?force=true], by name: the view is not built,
        so this works on a view one of whose groups is gone."""
        path = f"featurestores/67/featureview/{name}/version/{version}"
        view = self.views.get((name, version))
        if view is None:
            raise self.answer("missing feature view", path)
        if not force and any(m.feature_view is view for versions in self.models.values() for m in versions.values()):
            raise self.answer("view in use", path)
        del self.views[(name, version)]

    def answer(self, case: str, path: str = "", user_message: str = "") -> Exception:
        """The service's answer to `case` (tests/hopsworks_answers.py), kept in `answers` for the table's test."""
        error = answer_error(case, path, user_message)
        self.answers.append((case, error))
        return error

    def targets(self) -> set[str]:
        """The client callables and properties reached (not the raw requests the client's own code sent)."""
        return {target for target, _, _, kind in self.calls if kind != "request"}

    def named(self, prefix: str) -> list[str]:
        """Everything in the project whose name starts with `prefix`: what a clean-up must leave empty."""
        found = [f"feature group {n} v{v}" for (n, v), g in self.groups.items() if n.startswith(prefix) and g.saved]
        found += [f"feature view {n} v{v}" for n, v in self.views if n.startswith(prefix)]
        found += [f"model {n} v{v}" for n, versions in self.models.items() for v in versions if n.startswith(prefix)]
        return found + [f"file {p}" for p in sorted(self.files.dirs | set(self.files.data)) if prefix in p]

    def module(self) -> types.ModuleType:
        module = types.ModuleType("hopsworks")
        module.__doc__ = "offline double of the hopsworks client (tests/hopsworks_double.py)"
        module.login = self.login
        module.double = self
        return module

    def login(self, *args: Any, **kwargs: Any) -> FakeProject:
        self.record("hopsworks.login", args, kwargs)
        project = self.real.login(*args, **kwargs)
        self.logins += 1
        return project

    def connect(self, connection: Any) -> None:
        """Stands in for `Connection._connect`: where the real client first talks to the cluster."""
        from hopsworks_common import client
        from hopsworks_common import connection as connection_module

        self.connections.append({name: getattr(connection, f"_{name}") for name in
                                 ("host", "port", "project", "engine", "api_key_value", "trust_store_path")})
        if not connection._host:
            raise requests.exceptions.InvalidURL(f"Invalid URL 'https://:{connection._port}/hopsworks-api/api/"
                                                 "variables/hopsworks': No host supplied")
        if connection._engine != "python":
            raise NotImplementedError(f"engine={connection._engine!r}: the double models the python engine only")
        if connection._api_key_value != self.api_key:
            raise self.answer("wrong key", "auth")
        connection._connected = True
        connection._project_api = FakeProjectApi(self)
        connection_module._hsfs_engine_type = connection._engine  # as the real `_connect` sets it
        client._client = FakeRestClient(self)


def install(monkeypatch, **options: Any) -> Double:
    real = importlib.import_module("hopsworks")
    assert not hasattr(real, "double"), "install the double once per test"
    from hopsworks_common import client, connection

    double = Double(real, **options)
    monkeypatch.setattr(connection.Connection, "_connect", lambda conn: double.connect(conn))
    monkeypatch.setattr(connection, "_hsfs_engine_type", None)
    monkeypatch.setattr(client, "_client", None)
    monkeypatch.setattr(real, "_hw_connection", real._make_connection)
    monkeypatch.setattr(real, "_connected_project", None)

    monkeypatch.setitem(sys.modules, "hopsworks", double.module())
    return double


class FakeRestClient:
    """The REST client the login hands the project to; nothing here talks to a network. The one request the client
    code cryptocast runs sends through it itself is a feature view's deletion by name (hsfs' FeatureViewApi)."""

    _project_name = None
    _project_id = 119

    def __init__(self, double: Double | None = None) -> None:
        self.double = double

    def _send_request(self, method: str, path_params: list, query_params: dict | None = None, **unused: Any) -> Any:
        match [str(p) for p in path_params]:
            case ["project", "119", "featurestores", "67", "featureview", name, "version", version] if (
                    method == "DELETE"):
                force = bool((query_params or {}).get("force"))
                self.double.record("DELETE featureview", (name, int(version)), {"force": force}, kind="request")
                return self.double.delete_view(name, int(version), force)
        raise NotImplementedError(f"the double does not answer {method} {'/'.join(map(str, path_params))}")

    @property
    def project_name(self) -> str | None:
        return self._project_name

    def _is_external(self) -> bool:
        return True

    def _get_certs_folder(self) -> str:
        return "/tmp/hopsworks-double-certs"

    def _provide_project(self, name: str, project_id: int | None = None) -> None:
        self._project_name = name

    def _close(self) -> None:
        pass


class FakeProjectApi:
    def __init__(self, double: Double) -> None:
        self.double = double

    def _get_projects(self) -> list[FakeProject]:
        return [FakeProject(self.double, name) for name in self.double.projects]

    def _get_project(self, name: str) -> FakeProject:
        if name not in self.double.projects:
            raise self.double.answer("missing project", f"project/getProjectInfo/{name}")
        return FakeProject(self.double, name)


class FakeProject:
    def __init__(self, double: Double, name: str) -> None:
        self.double = double
        self._name = name
        self.id = 119

    name = recorded_property(f"{PROJECT_CLASS}.name", "_name")

    def get_url(self) -> str:
        return "https://eu-west.cloud.hopsworks.ai/p/119"

    @records(f"{PROJECT_CLASS}.get_feature_store")
    def get_feature_store(self, name: str | None = None) -> FakeFeatureStore:
        return FakeFeatureStore(self.double)

    @records(f"{PROJECT_CLASS}.get_model_registry")
    def get_model_registry(self) -> FakeModelRegistry:
        return FakeModelRegistry(self.double)

    @records(f"{PROJECT_CLASS}.get_dataset_api")
    def get_dataset_api(self) -> FakeDatasetApi:
        return FakeDatasetApi(self.double)


# --- feature store ---------------------------------------------------------------------------------


class FakeFeatureStore:
    def __init__(self, double: Double) -> None:
        self.double = double
        self._id = 67

    id = recorded_property(f"{FS}.id", "_id")

    @records(f"{FS}.get_feature_group")
    def get_feature_group(self, name: str, version: int | None = None) -> FakeFeatureGroup | None:
        version = version or 1
        group = self.double.groups.get((name, version))
        return self.double.lookup(
            "hsfs.feature_group.FeatureGroupBase", "missing feature group", group if group and group.saved else None,
            f"featurestores/67/featuregroups/{name}?version={version}",
            f"feature group name: {name} feature group version: {version}")

    @records(f"{FS}.get_or_create_feature_group")
    def get_or_create_feature_group(self, name: str, version: int, **options: Any) -> FakeFeatureGroup:
        unmodelled = sorted(set(options) - GROUP_OPTIONS)
        if unmodelled or options.get("online_enabled"):
            raise NotImplementedError(f"the double does not model {unmodelled or 'online feature groups'}")
        existing = self.get_feature_group.__wrapped__(self, name, version)  # the same GET, not recorded twice
        if existing is not None:
            return existing
        group = FakeFeatureGroup(self.double, group_metadata(name, version, **options))
        self.double.groups[(name, version)] = group
        return group

    @records(f"{FS}.get_feature_view")
    def get_feature_view(self, name: str, version: int | None = None) -> FakeFeatureView | None:
        version = version or 1
        view = self.double.lookup("hsfs.feature_view.FeatureView", "missing feature view",
                                  self.double.views.get((name, version)), f"featurestores/67/featureview/{name}/"
                                  f"version/{version}", f"There exists no feature view with the name {name} and "
                                  f"version {version}.")
        if view is not None and not view._query.intact():
            raise ValueError("Cannot get back the feature view because the query defined is no longer valid. Some "
                             "feature groups used in the query may have been deleted. You can clean up this feature "
                             "view on the UI or `FeatureView.clean`.")  # hsfs/core/feature_view_api.py
        return view

    @records(f"{FS}.get_or_create_feature_view")
    def get_or_create_feature_view(self, name: str, query: FakeQuery, version: int, description: str | None = "",
                                   **unsupported: Any) -> FakeFeatureView:
        if unsupported:
            raise NotImplementedError(f"the double does not model {sorted(unsupported)}")
        return self.double.views.setdefault((name, version), FakeFeatureView(self.double, name, version, query))


def group_metadata(name: str, version: int, **options: Any) -> Any:
    """A new group's metadata as the real `FeatureStore.get_or_create_feature_group` builds it (needs the
    connection's engine type set, as after a login), with every default the client applies."""
    from hsfs.feature_store import FeatureStore

    lookup = types.SimpleNamespace(_get=lambda *_: None)  # the backend knows no such group yet
    store = types.SimpleNamespace(_feature_group_api=lookup, id=67, _id=67, _name=f"{PROJECT}_featurestore",
                                  _normalize_tags=lambda tags: tags)
    return FeatureStore.get_or_create_feature_group(store, name=name, version=version, **options)


def merge_key(metadata: Any) -> list[str]:
    """The columns hsfs' delta-rs upsert matches rows on, read from hsfs' own merge query."""
    from hsfs.core.delta_engine import DeltaEngine

    query = DeltaEngine._generate_merge_query(types.SimpleNamespace(_feature_group=metadata), "old", "new")
    return list(dict.fromkeys(re.findall(r"old\.(\w+) == new\.", query)))


def metadata_property(name: str) -> property:
    """A group's setting as the backend stored it: read from its real hsfs metadata, recorded."""
    target = f"{FG}.{name}"
    TARGETS.add(target)

    def get(self):
        self.double.record(target, (), {}, kind="property")
        return getattr(self.metadata, name)
    return property(get)


class FakeFeatureGroup:
    """A feature group: real hsfs metadata, rows kept here."""

    def __init__(self, double: Double, metadata: Any) -> None:
        self.double = double
        self.metadata = metadata
        self.name = metadata.name
        self.version = metadata.version
        self._primary_key = list(metadata.primary_key)
        self._event_time = metadata.event_time
        self._features = metadata.columns
        self._id: int | None = None
        self.rows = pd.DataFrame()  # what the offline table holds (what reads see)
        self.topic: list[pd.DataFrame] = []  # rows sent through Kafka that no materialization job has written yet
        self.commits = 0
        self.inserts = 0
        self.jobs = 0
        self.statistics_jobs = 0
        self.job = FakeJob(self)

    id = recorded_property(f"{FG}.id", "_id")
    columns = recorded_property(f"{FG}.columns", "_features")
    primary_key = recorded_property(f"{FG}.primary_key", "_primary_key")
    event_time = recorded_property(f"{FG}.event_time", "_event_time")
    time_travel_format = metadata_property("time_travel_format")
    online_enabled = metadata_property("online_enabled")
    stream = metadata_property("stream")
    materialization_job = recorded_property(f"{FG}.materialization_job", "job")

    @property
    def saved(self) -> bool:
        return self._id is not None

    @property
    def direct_write(self) -> bool:
        """hsfs' python engine writes DELTA itself (delta-rs); other formats go through a materialization job."""
        return not self.metadata.stream

    @records(f"{FG}.get_feature")
    def get_feature(self, name: str):
        return self._feature(name)

    def _feature(self, name: str):
        return next((f for f in self._features if f.name == name), None)

    @records(f"{FG}.select_all")
    def select_all(self, include_primary_key: bool = True, include_foreign_key: bool = True,
                   include_partition_key: bool = True, include_event_time: bool = True) -> FakeQuery:
        return FakeQuery(self, [f.name for f in self._features])

    @records(f"{FG}.select")
    def select(self, features: list) -> FakeQuery:
        unknown = [f for f in features if self._feature(f) is None]
        if unknown:
            raise _fs_exception(f"features {unknown} are not in feature group {self.name}")
        return FakeQuery(self, list(features))

    @records(f"{FG}.insert")
    def insert(self, features: pd.DataFrame, overwrite: bool = False, operation: str = "upsert",
               storage: str | None = None, write_options: dict | None = None, validation_options: dict | None = None,
               wait: bool = False, **unsupported: Any):
        """As hsfs 5.2's python engine: save the metadata, then a DELTA group is merged by delta-rs from here (which
        needs the cluster's external load balancers) and any other is sent through Kafka to a materialization job,
        whose rows reach the offline table only when the job has run (waited for when `wait`)."""
        if unsupported or overwrite or operation != "upsert" or storage is not None:
            raise NotImplementedError("the double models upserts to both stores only")
        self._check_schema(features)
        rows = self._as_written(features)
        if self._id is None:  # hsfs saves the group's metadata before it writes the first rows
            self._id = len(self.double.groups) * 100 + self.version
        if self.direct_write:
            self.double.check_direct_write(self.metadata)
        if self.double.write_fault is not None:
            raise self.double.write_fault
        self.inserts += 1
        if self.metadata.statistics_config.enabled:
            self.statistics_jobs += 1
        if self.direct_write:
            self._merge(rows, merge_key(self.metadata))
            return None, None
        self.topic.append(rows)
        self.jobs += 1
        self.job.start(wait)
        return None, None

    def materialise(self, batches: int | None = None) -> None:
        """The materialization job: the topic's rows (the first `batches` sent, else all) into the offline
        table, upserted on the primary key."""
        if self.double.job_fault is not None:
            raise self.double.job_fault
        batches = len(self.topic) if batches is None else batches
        for rows in self.topic[:batches]:
            self._merge(rows, self._primary_key)
        self.topic = self.topic[batches:]

    def _merge(self, rows: pd.DataFrame, key: list[str]) -> None:
        merged = pd.concat([self.rows, rows], ignore_index=True)
        self.rows = merged.drop_duplicates(key, keep="last").reset_index(drop=True)
        self.commits += 1

    def _check_schema(self, df: pd.DataFrame) -> None:
        """As hsfs does on insert: the frame's schema, parsed by hsfs, must match the group's features."""
        from hsfs.core.feature_group_base_engine import FeatureGroupBaseEngine
        from hsfs.engine.python import Engine

        parsed = Engine._parse_schema_feature_group(None, df, self.metadata.time_travel_format, self._features)
        FeatureGroupBaseEngine._verify_schema_compatibility(None, self._features, parsed)

    def _as_written(self, df: pd.DataFrame) -> pd.DataFrame:
        """The rows as the offline table keeps them: for DELTA, what hsfs' delta-rs preparation makes of them."""
        if not self.direct_write:
            return df.copy()
        from hsfs.core.delta_engine import DeltaEngine

        return DeltaEngine._prepare_df_for_delta(df.copy()).to_pandas()

    @records(f"{FG}.delete")
    def delete(self, force: bool = False, delete_feature_views: bool = False) -> None:
        if self.double.groups.get((self.name, self.version)) is not self or not self.saved:
            raise self.double.answer("missing feature group", f"featurestores/67/featuregroups/{self._id}",
                                     f"Feature group id: {self._id}")
        del self.double.groups[(self.name, self.version)]

    def stored(self) -> pd.DataFrame:
        """The rows as a read returns them: tz-aware UTC timestamps in microseconds, newest key first; a group
        whose offline table has no commit yet cannot be read (the Query Service finds no table to read)."""
        if self.saved and not self.commits:
            raise self.double.answer("not materialised", user_message=f"featuregroup {self.name}_{self.version}")
        df = self.rows.copy()
        if df.empty:
            return pd.DataFrame({f.name: pd.Series(dtype="object") for f in self._features})
        for f in self._features:
            if f.type == "timestamp":
                df[f.name] = df[f.name].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        return df.sort_values(self._primary_key, ascending=False).reset_index(drop=True)


class FakeJob:
    """A stream group's materialization job, one execution at a time. As hsfs' `Job.run` does, starting it while
    an execution still runs starts nothing and waits for nothing (`Job._is_materialization_running`: a warning,
    and None; hopsworks_common 5.2.1 `hopsworks_common/job.py:180-293` run, `:394-416` the check); that running
    execution writes only the rows that were in the topic when it started."""

    def __init__(self, group: FakeFeatureGroup) -> None:
        self.group = group
        self.double = group.double
        self.running: int | None = None  # while an execution runs: how many topic batches it will write
        self.executions = 0
        self.config = {"defaultArgs": f"-op offline_fg_materialization -path hdfs:///Projects/{PROJECT}/Resources/"
                                      f"jobs/{group.name}_{group.version}_offline_fg_materialization/config.json"}

    def start(self, wait: bool) -> Any:
        """What hsfs does after sending rows to the topic (`_run_materialization_job`): run the job, waiting for it
        when asked, unless an execution is already running."""
        if self.running is not None:
            warnings.warn("Materialization job is already running, aborting new execution.Please wait for the "
                          "current execution to finish before triggering a new one.", stacklevel=2)
            return None
        self.executions += 1
        if wait:
            self.group.materialise()
        else:
            self.running = len(self.group.topic)
        return self

    def elsewhere(self) -> None:
        """An execution started outside this run (one a timed-out run left behind, the UI's), still running."""
        self.executions += 1
        self.running = len(self.group.topic)

    def finish(self) -> None:
        """The running execution ends, having written the batches it started with."""
        if self.running is not None:
            covered, self.running = self.running, None
            self.group.materialise(covered)

    @records(f"{JOB}.get_final_state")
    def get_final_state(self) -> str:
        if not self.executions:
            from hopsworks_common.client.exceptions import JobException

            raise JobException("No executions found for job")
        return "UNDEFINED" if self.running is not None else "SUCCEEDED"

    @records(f"{JOB}._wait_for_job")
    def _wait_for_job(self, await_termination: bool = True, timeout: float | None = None) -> None:
        if await_termination:
            self.finish()

    @records(f"{JOB}.run")
    def run(self, args: str | None = None, await_termination: bool = True) -> Any:
        if args != self.config["defaultArgs"]:
            raise NotImplementedError("the double runs a materialization job with its default arguments only")
        return self.start(await_termination)


def _fs_exception(message: str) -> Exception:
    from hopsworks_common.client.exceptions import FeatureStoreException

    return FeatureStoreException(message)


def _matches(df: pd.DataFrame, condition: Any, column_of) -> pd.Series:
    """Evaluate a real hsfs Filter or Logic on `df`; `column_of(feature)` names the feature's column."""
    spec = condition.to_dict()
    if "condition" in spec:
        values = df[column_of(spec["feature"])]
        target = spec["value"]
        if spec["feature"].type == "timestamp":
            target = pd.Timestamp(target, tz="UTC")
        ops = {"GREATER_THAN_OR_EQUAL": values.__ge__, "LESS_THAN_OR_EQUAL": values.__le__,
               "GREATER_THAN": values.__gt__, "LESS_THAN": values.__lt__, "EQUALS": values.__eq__}
        return ops[spec["condition"]](target).fillna(False).astype(bool)
    parts = [_matches(df, spec[k], column_of) for k in ("leftFilter", "leftLogic", "rightFilter", "rightLogic")
             if spec.get(k) is not None]
    if spec["type"] == "OR":
        return parts[0] | parts[1]
    return functools.reduce(lambda a, b: a & b, parts)


class FakeQuery:
    def __init__(self, group: FakeFeatureGroup, columns: list[str]) -> None:
        self.double = group.double
        self.group = group
        self.columns = columns
        self.joins: list[tuple[FakeQuery, list[str], str, str]] = []
        self.condition: Any = None

    @property
    def featuregroups(self) -> list[FakeFeatureGroup]:
        """The groups the query reads, left first."""
        self.double.record(f"{QUERY}.featuregroups", (), {}, kind="property")
        return [self.group, *[q.group for q, _, _, _ in self.joins]]

    @records(f"{QUERY}.join")
    def join(self, sub_query: FakeQuery, on: list[str] | None = None, left_on: list[str] | None = None,
             right_on: list[str] | None = None, join_type: str | None = "left", prefix: str | None = None) -> FakeQuery:
        if left_on or right_on or join_type != "left" or not on:
            raise NotImplementedError("the double models left joins on shared key names only")
        self.joins.append((sub_query, list(on), join_type, prefix or ""))
        return self

    @records(f"{QUERY}.filter")
    def filter(self, f: Any) -> FakeQuery:
        self.condition = f if self.condition is None else self.condition & f
        return self

    @records(f"{QUERY}.read")
    def read(self, online: bool = False, dataframe_type: str = "default", read_options: dict | None = None,
             start_time: Any = None, end_time: Any = None) -> pd.DataFrame:
        if online or start_time or end_time:
            raise NotImplementedError("the double reads the offline store, without commit-time windows")
        return self.evaluate(self.condition)

    def intact(self) -> bool:
        """Whether every group the query reads still exists (the backend cannot expand it otherwise)."""
        return all(self.double.groups.get((q.group.name, q.group.version)) is q.group
                   for q in [self, *[j[0] for j in self.joins]])

    def owner_column(self, feature: Any) -> str:
        """The joined frame's column for a feature object taken from one of the query's groups."""
        for query, prefix in [(self, ""), *[(q, p) for q, _, _, p in self.joins]]:
            if any(f is feature for f in query.group._features):
                return prefix + feature.name
        raise _fs_exception(f"feature {feature.name} is not in this query")

    def evaluate(self, condition: Any) -> pd.DataFrame:
        left = self.group.stored()[self.columns]
        for query, on, _, prefix in self.joins:
            right = query.group.stored()[query.columns]
            right = right.rename(columns={c: prefix + c for c in right.columns})
            left = left.merge(right, left_on=on, right_on=[prefix + k for k in on], how="left")
        if condition is not None:
            left = left[_matches(left, condition, self.owner_column)]
        return left.reset_index(drop=True)


class FakeFeatureView:
    def __init__(self, double: Double, name: str, version: int, query: FakeQuery) -> None:
        self.double = double
        self.name = name
        self.version = version
        self._query = query

    query = recorded_property(f"{FV}.query", "_query")

    @records(f"{FV}.get_batch_data")
    def get_batch_data(self, start_time: Any = None, end_time: Any = None, read_options: dict | None = None,
                       spine: Any = None, primary_key: bool | None = None, event_time: bool | None = None,
                       inference_helper_columns: bool = False, dataframe_type: str = "default",
                       transformed: bool | None = True, transformation_context: dict | None = None,
                       logging_data: bool = False, extra_filter: Any = None, **unsupported: Any) -> pd.DataFrame:
        if start_time or end_time or spine is not None or unsupported:
            raise NotImplementedError("the double models extra_filter windows only")
        df = self._query.evaluate(extra_filter)
        dropped = []
        for query, prefix in [(self._query, ""), *[(q, p) for q, _, _, p in self._query.joins]]:
            if not primary_key:
                dropped += [prefix + k for k in query.group._primary_key]
            if not event_time:
                dropped.append(prefix + query.group._event_time)
        return df.drop(columns=[c for c in set(dropped) if c in df.columns])

    def delete(self, force: bool = False) -> None:
        """`FeatureView.delete`: the request hsfs' `FeatureViewApi._delete_by_name_version` sends."""
        self.double.delete_view(self.name, self.version, force)


# --- model registry ------------------------------------------------------------------------------


class FakeModelRegistry:
    def __init__(self, double: Double) -> None:
        self.double = double

    @property
    def python(self) -> FakePythonModels:
        self.double.record(f"{MR}.python", (), {}, kind="property")
        return FakePythonModels(self.double)

    @records(f"{MR}.get_model")
    def get_model(self, name: str, version: int | None = None) -> FakeModel | None:
        return self.double.model(name, version or 1)

    @records(f"{MR}.get_models")
    def get_models(self, name: str) -> list[FakeModel]:
        return sorted(self.double.models.get(name, {}).values(), key=lambda m: m._version, reverse=True)


class FakePythonModels:
    def __init__(self, double: Double) -> None:
        self.double = double

    @records("hsml.python.signature.create_model")
    def create_model(self, name: str, version: int | None = None, metrics: dict | None = None,
                     description: str | None = None, input_example: Any = None, model_schema: Any = None,
                     feature_view: Any = None, training_dataset_version: int | None = None,
                     tags: Any = None) -> FakeModel:
        if model_schema is not None or training_dataset_version or tags:
            raise NotImplementedError("the double models metrics, description, input_example and feature_view")
        model = FakeModel(self.double, name, version, metrics or {}, description or "", feature_view)
        model.input_example = input_example
        return model


class FakeModel:
    def __init__(self, double: Double, name: str, version: int | None, metrics: dict, description: str,
                 feature_view: Any) -> None:
        self.double = double
        self._name = name
        self._version = version
        self._metrics = metrics
        self._description = description
        self.feature_view = feature_view
        self.input_example: Any = None
        self._created: int | None = None
        self._id: int | None = None
        self.model_registry_id = 119

    id = recorded_property(f"{MODEL}.id", "_id")
    name = recorded_property(f"{MODEL}.name", "_name")
    version = recorded_property(f"{MODEL}.version", "_version")
    description = recorded_property(f"{MODEL}.description", "_description")
    created = recorded_property(f"{MODEL}.created", "_created")
    training_metrics = recorded_property(f"{MODEL}.training_metrics", "_metrics")

    def version_path(self) -> str:
        return f"Models/{self._name}/{self._version}"

    @records(f"{MODEL}.save")
    def save(self, model_path: str, await_registration: int = 480, keep_original_files: bool = False,
             upload_configuration: dict | None = None) -> FakeModel:
        """As hsml's `ModelEngine._save`: checks, `Models/<name>`, the version numbered by hsml's own code from
        the folders there, upload, input_example.json, the registration (PUT), then hsml's poll for it, which
        sleeps 5 s before each look (counted in `Double.waited`, not slept) and looks await_registration/5 times
        (hsml 5.2.1 `hsml/engine/model_engine.py:408-539` save, `:315-371` numbering, `:81-102` poll)."""
        from hopsworks_common import util
        from hopsworks_common.client.exceptions import ModelRegistryException
        from hopsworks_common.core.dataset_api import DatasetApi
        from hsml.engine.model_engine import ModelEngine

        util._validate_metrics(self._metrics)
        util._validate_model_name(self._name)
        datasets = FakeDatasetApi(self.double)
        if not DatasetApi.exists(datasets, "Models"):
            raise AssertionError("Models dataset does not exist in this project. Please enable the Serving "
                                 "service or create it manually.")
        if not DatasetApi.exists(datasets, f"Models/{self._name}"):
            self.double.files.mkdirs(f"Models/{self._name}")
        engine = types.SimpleNamespace(_dataset_api=types.SimpleNamespace(_list_dataset_path=datasets.listing),
                                       _model_api=types.SimpleNamespace(_get=self.double.registered))
        ModelEngine._set_model_version(engine, self, "Models", f"Models/{self._name}")
        versions = self.double.models.setdefault(self._name, {})
        if self._version in versions:
            raise ModelRegistryException(f"Model with name {self._name} and version {self._version} already exists, "
                                         "please select another version.")
        example = None if self.input_example is None else util._input_example_to_json(self.input_example)
        self.double.files.put_tree(Path(model_path), f"{self.version_path()}/Files")
        if example is not None:
            self.double.files.data[f"{self.version_path()}/input_example.json"] = json.dumps(
                example, cls=util.NumpyEncoder).encode()
        self._created = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        self._id = next(self.double.ids)
        if self.double.registration != "lost":  # the backend's PUT registers the version (ModelsResource.put)
            versions[self._version] = self
        polls = int(await_registration / 5)
        found = None
        for _ in range(polls if self.double.registration == "confirmed" else 0):
            self.double.waited += 5
            found = self.double.registered(self._name, self._version, self.model_registry_id)
            if found is not None:
                break
        if found is None:  # hsml prints `model_instance.get_url()` on what its poll returned
            self.double.waited += 5 * polls
            raise AttributeError(NO_URL)
        return found

    @records(f"{MODEL}.download")
    def download(self, local_path: str | None = None) -> str:
        if local_path is None:
            raise NotImplementedError("the double downloads to an explicit local_path only")
        self.double.files.get_tree(f"{self.version_path()}/Files", Path(local_path))
        return local_path

    @records(f"{MODEL}.delete")
    def delete(self) -> None:
        self.double.models.get(self._name, {}).pop(self._version, None)
        self.double.files.remove(self.version_path())


# --- project files -------------------------------------------------------------------------------


class FakeFiles:
    """A project's file tree: directories and files by project-relative path."""

    def __init__(self) -> None:
        self.dirs = {"Models", "Resources"}
        self.data: dict[str, bytes] = {}

    @staticmethod
    def norm(path: str) -> str:
        return str(PurePosixPath(path.strip("/")))

    def exists(self, path: str) -> bool:
        return path in self.dirs or path in self.data

    def mkdirs(self, path: str) -> None:
        parts = PurePosixPath(path).parts
        self.dirs.update("/".join(parts[:n]) for n in range(1, len(parts) + 1))

    def put_tree(self, source: Path, destination: str) -> None:
        self.mkdirs(destination)
        for path in source.rglob("*"):
            target = f"{destination}/{path.relative_to(source).as_posix()}"
            if path.is_dir():
                self.mkdirs(target)
            else:
                self.data[target] = path.read_bytes()

    def get_tree(self, source: str, destination: Path) -> None:
        destination.mkdir(parents=True, exist_ok=True)
        for path, data in self.data.items():
            if path.startswith(source + "/"):
                target = destination / path[len(source) + 1:]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)

    def children(self, path: str) -> list[str]:
        entries = self.dirs | set(self.data)
        return sorted(p for p in entries if str(PurePosixPath(p).parent) == path)

    def remove(self, path: str) -> None:
        inside = path + "/"
        self.dirs = {d for d in self.dirs if d != path and not d.startswith(inside)}
        self.data = {p: b for p, b in self.data.items() if p != path and not p.startswith(inside)}


class FakeDatasetApi:
    def __init__(self, double: Double) -> None:
        self.double = double
        self.files = double.files

    def _get(self, path: str) -> dict:
        """The metadata request (GET dataset/<path>) every dataset call starts with: scope check, then the path."""
        self._check(path)
        path = self.files.norm(path)
        if not self.files.exists(path):
            raise self.double.answer("missing path", f"project/119/dataset/{path}")
        return {"name": PurePosixPath(path).name}

    def _check(self, path: str) -> None:
        """What every dataset endpoint checks first: the key's scope, then the path's top-level dataset."""
        if self.double.dataset_fault is not None:
            raise self.double.dataset_fault
        path = self.files.norm(path)
        if not self.files.exists(PurePosixPath(path).parts[0]):
            raise self.double.answer("missing dataset", f"project/119/dataset/{path}", f"path: {path}")

    @records(f"{DATASETS}.mkdir")
    def mkdir(self, path: str) -> str:
        self._check(path)
        path = self.files.norm(path)
        if self.files.exists(path):
            raise self.double.answer("directory exists", f"project/119/dataset/{path}",
                                     f"The given path: /Projects/{PROJECT}/{path} already exists")
        if not self.files.exists(str(PurePosixPath(path).parent)):
            raise self.double.answer("parent missing", f"project/119/dataset/{path}")
        self.files.dirs.add(path)
        return path

    def listing(self, path: str, cls: Any = None, offset: int = 0, limit: int = 1000,
                sort_by: str = "ID:asc") -> tuple[int, list[Any]]:
        """`_list_dataset_path` as hsml calls it: (count, items with the path hsml splits the name from)."""
        self._get(path)
        names = self.files.children(self.files.norm(path))
        if sort_by == "NAME:desc":
            names = sorted(names, reverse=True)
        items = [types.SimpleNamespace(path=f"/Projects/{PROJECT}/{name}") for name in names[offset:offset + limit]]
        return len(names), items

    @records(f"{DATASETS}.list")
    def list(self, path: str, offset: int = 0, limit: int = 1000) -> list[str]:
        self._get(path)
        return self.files.children(self.files.norm(path))[offset:offset + limit]

    @records(f"{DATASETS}.upload")
    def upload(self, local_path: str, upload_path: str, overwrite: bool = False, chunk_size: int = 10485760,
               simultaneous_uploads: int = 3, simultaneous_chunks: int = 3, max_chunk_retries: int = 1,
               chunk_retry_interval: int = 1) -> str:
        from hopsworks_common.client.exceptions import DatasetException

        directory = self.files.norm(upload_path)
        self._get(directory)
        destination = f"{directory}/{Path(local_path).name}"
        if destination in self.files.data and not overwrite:
            raise DatasetException(f"{destination} already exists, set overwrite=True to overwrite it")
        self.files.data[destination] = Path(local_path).read_bytes()
        return destination

    @records(f"{DATASETS}.remove")
    def remove(self, path: str) -> None:
        """Deleting a path that is not there succeeds (204), as the backend's rm does."""
        self._check(path)
        if not self.files.exists(self.files.norm(path)):
            self.double.answers.append(("delete a missing path", None))
            return
        self.files.remove(self.files.norm(path))
