"""An offline double of the `hopsworks` client (5.2.1), for the parts of it cryptocast uses.

`install(monkeypatch)` puts a fresh module in `sys.modules["hopsworks"]`; its state (feature groups,
feature views, models, project files) lives on the returned `Double` and survives repeated
`hopsworks.login()` calls within one test, the way a real project outlives each script's login.

It behaves like the real client where the backend depends on it:
- `login` prints to stdout, prompts on stdin when several projects exist and none is named, and
  refuses a wrong key or project;
- `get_or_create_feature_group` saves nothing until the first `insert`; `get_feature_group` returns
  None for a group that was never saved; `insert` checks the frame against the declared features
  and upserts on the primary key; reads return timestamps as tz-aware UTC microseconds, rows in no
  particular order; filters are the real hsfs `Filter`/`Logic` objects, evaluated here;
- a feature view is a point-in-time (left) join on the key with prefixed right columns, and
  `get_batch_data` drops key and event-time columns unless asked for them;
- `create_model(...).save(dir)` numbers versions, refuses non-numeric metrics and bad names, and
  keeps the files under `Models/<name>/<version>/Files`; `download` copies them back;
- the dataset API is a small file tree with `Models` and `Resources` as top-level datasets;
  `mkdir` needs the parent to exist and `upload` the target directory.

Every call is recorded in `Double.calls` as (the real callable's dotted path, args, kwargs), so a
test can bind each against the installed package. `fail(target, exc)` makes a call raise and
`block(target)` makes it hang until the test ends, to test failures and timeouts.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
import sys
import threading
import types
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

API_KEY = "hw-double-key-9f3c2e"
PROJECT = "cryptocast_test"

FS = "hsfs.feature_store.FeatureStore"
FG = "hsfs.feature_group.FeatureGroup"
QUERY = "hsfs.constructor.query.Query"
FV = "hsfs.feature_view.FeatureView"
MR = "hsml.model_registry.ModelRegistry"
MODEL = "hsml.model.Model"
DATASETS = "hopsworks_common.core.dataset_api.DatasetApi"
PROJECT_CLASS = "hopsworks_common.project.Project"
PANDAS_TYPES = {"datetime64[ns]": "timestamp", "float64": "double", "int64": "bigint", "object": "string"}


class RestAPIError(Exception):
    pass


class FeatureStoreException(Exception):
    pass


class DatasetException(Exception):
    pass


class ModelRegistryException(Exception):
    pass


TARGETS = {"hopsworks.login", f"{MR}.python"}  # every real callable or property the double stands in for


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

    def __init__(self, projects: tuple[str, ...] = (PROJECT,), api_key: str = API_KEY) -> None:
        self.projects = projects
        self.api_key = api_key
        self.calls: list[tuple[str, tuple, dict, str]] = []
        self.logins = 0
        self.groups: dict[tuple[str, int], FakeFeatureGroup] = {}
        self.views: dict[tuple[str, int], FakeFeatureView] = {}
        self.models: dict[str, dict[int, FakeModel]] = {}
        self.files = FakeFiles()
        self.ids = itertools.count(1)
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

    def targets(self) -> set[str]:
        return {target for target, _, _, _ in self.calls}

    def module(self) -> types.ModuleType:
        module = types.ModuleType("hopsworks")
        module.__doc__ = "offline double of the hopsworks client (tests/hopsworks_double.py)"
        module.login = self.login
        module.double = self
        return module

    def login(self, *args: Any, **kwargs: Any) -> FakeProject:
        self.record("hopsworks.login", args, kwargs)
        return self._login(*args, **kwargs)

    def _login(self, host: str | None = None, port: int = 443, project: str | None = None,
               api_key_value: str | None = None, api_key_file: str | None = None, hostname_verification: bool = False,
               trust_store_path: str | None = None, cert_folder: str | None = None,
               engine: str | None = None) -> FakeProject:
        if api_key_value != self.api_key:
            raise RestAPIError("Metadata operation error: (url: https://c.app.hopsworks.ai/hopsworks-api/api/auth)."
                               "\nServer response: HTTP code: 401, HTTP reason: Unauthorized, error code: 160040")
        if project is None and len(self.projects) > 1:
            print("\nMultiple projects found.")
            input("\nEnter number corresponding to the project to use: ")
        name = project or self.projects[0]
        if name not in self.projects:
            raise RestAPIError(f"Could not find project {name}")
        self.logins += 1
        print("\nLogged in to project, explore it here https://c.app.hopsworks.ai/p/119")
        return FakeProject(self, name)


def install(monkeypatch, **options: Any) -> Double:
    double = Double(**options)
    monkeypatch.setitem(sys.modules, "hopsworks", double.module())
    return double


class FakeProject:
    def __init__(self, double: Double, name: str) -> None:
        self.double = double
        self.name = name

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

    @records(f"{FS}.get_feature_group")
    def get_feature_group(self, name: str, version: int | None = None) -> FakeFeatureGroup | None:
        group = self.double.groups.get((name, version or 1))
        return group if group is not None and group.saved else None

    @records(f"{FS}.get_or_create_feature_group")
    def get_or_create_feature_group(self, name: str, version: int, description: str | None = "",
                                    online_enabled: bool | None = False, primary_key: list[str] | None = None,
                                    event_time: str | None = None, features: list | None = None,
                                    **unsupported: Any) -> FakeFeatureGroup:
        if unsupported:
            raise NotImplementedError(f"the double does not model {sorted(unsupported)}")
        existing = self.double.groups.get((name, version))
        if existing is not None and existing.saved:
            return existing
        group = FakeFeatureGroup(self.double, name, version, description, list(primary_key or []), event_time,
                                 list(features or []))
        self.double.groups[(name, version)] = group
        return group

    @records(f"{FS}.get_feature_view")
    def get_feature_view(self, name: str, version: int | None = None) -> FakeFeatureView | None:
        return self.double.views.get((name, version or 1))

    @records(f"{FS}.get_or_create_feature_view")
    def get_or_create_feature_view(self, name: str, query: FakeQuery, version: int, description: str | None = "",
                                   **unsupported: Any) -> FakeFeatureView:
        if unsupported:
            raise NotImplementedError(f"the double does not model {sorted(unsupported)}")
        return self.double.views.setdefault((name, version), FakeFeatureView(self.double, name, version, query))


class FakeFeatureGroup:
    def __init__(self, double: Double, name: str, version: int, description: str, primary_key: list[str],
                 event_time: str, features: list) -> None:
        self.double = double
        self.name = name
        self.version = version
        self.description = description
        self.primary_key = primary_key
        self.event_time = event_time
        self._features = features
        self._id: int | None = None
        self.rows = pd.DataFrame()
        self.inserts = 0

    id = recorded_property(f"{FG}.id", "_id")
    features = recorded_property(f"{FG}.features", "_features")

    @property
    def saved(self) -> bool:
        return self._id is not None

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
            raise FeatureStoreException(f"features {unknown} are not in feature group {self.name}")
        return FakeQuery(self, list(features))

    @records(f"{FG}.insert")
    def insert(self, features: pd.DataFrame, overwrite: bool = False, operation: str = "upsert",
               storage: str | None = None, write_options: dict | None = None, validation_options: dict | None = None,
               wait: bool = False, **unsupported: Any):
        if unsupported or overwrite or operation != "upsert":
            raise NotImplementedError("the double models upserts only")
        self._check_schema(features)
        if self._id is None:
            self._id = len(self.double.groups) * 100 + self.version
        merged = pd.concat([self.rows, features], ignore_index=True)
        self.rows = merged.drop_duplicates(self.primary_key, keep="last").reset_index(drop=True)
        self.inserts += 1
        return None, None

    def _check_schema(self, df: pd.DataFrame) -> None:
        """As hsfs does on insert: the frame's columns and inferred types must match the declared features."""
        given = sorted((str(c), PANDAS_TYPES.get(str(t), str(t))) for c, t in df.dtypes.items())
        declared = sorted((f.name, f.type) for f in self._features)
        if given != declared:
            raise FeatureStoreException(f"Features are not compatible with Feature Group schema: {given} vs {declared}")

    def stored(self) -> pd.DataFrame:
        """The rows as a read returns them: tz-aware UTC timestamps in microseconds, newest key first."""
        df = self.rows.copy()
        if df.empty:
            return pd.DataFrame({f.name: pd.Series(dtype="object") for f in self._features})
        for f in self._features:
            if f.type == "timestamp":
                df[f.name] = df[f.name].dt.tz_localize("UTC").astype("datetime64[us, UTC]")
        return df.sort_values(self.primary_key, ascending=False).reset_index(drop=True)


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

    def owner_column(self, feature: Any) -> str:
        """The joined frame's column for a feature object taken from one of the query's groups."""
        for query, prefix in [(self, ""), *[(q, p) for q, _, _, p in self.joins]]:
            if any(f is feature for f in query.group._features):
                return prefix + feature.name
        raise FeatureStoreException(f"feature {feature.name} is not in this query")

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
        self.query = query

    @records(f"{FV}.get_batch_data")
    def get_batch_data(self, start_time: Any = None, end_time: Any = None, read_options: dict | None = None,
                       spine: Any = None, primary_key: bool | None = None, event_time: bool | None = None,
                       inference_helper_columns: bool = False, dataframe_type: str = "default",
                       transformed: bool | None = True, transformation_context: dict | None = None,
                       logging_data: bool = False, extra_filter: Any = None, **unsupported: Any) -> pd.DataFrame:
        if start_time or end_time or spine is not None or unsupported:
            raise NotImplementedError("the double models extra_filter windows only")
        df = self.query.evaluate(extra_filter)
        dropped = []
        for query, prefix in [(self.query, ""), *[(q, p) for q, _, _, p in self.query.joins]]:
            if not primary_key:
                dropped += [prefix + k for k in query.group.primary_key]
            if not event_time:
                dropped.append(prefix + query.group.event_time)
        return df.drop(columns=[c for c in set(dropped) if c in df.columns])


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
        return self.double.models.get(name, {}).get(version or 1)

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
        self._created: int | None = None
        self._id: int | None = None

    id = recorded_property(f"{MODEL}.id", "_id")
    name = recorded_property(f"{MODEL}.name", "_name")
    version = recorded_property(f"{MODEL}.version", "_version")
    description = recorded_property(f"{MODEL}.description", "_description")
    created = recorded_property(f"{MODEL}.created", "_created")
    training_metrics = recorded_property(f"{MODEL}.training_metrics", "_metrics")

    def files_path(self) -> str:
        return f"Models/{self._name}/{self._version}/Files"

    @records(f"{MODEL}.save")
    def save(self, model_path: str, await_registration: int = 480, keep_original_files: bool = False,
             upload_configuration: dict | None = None) -> FakeModel:
        if not re.fullmatch(r"[a-zA-Z0-9_]+", self._name):
            raise ModelRegistryException(f"Invalid model name '{self._name}'")
        for value in self._metrics.values():
            float(value)  # as hsml's _validate_metrics: a list raises TypeError, text raises ValueError
        versions = self.double.models.setdefault(self._name, {})
        self._version = self._version or max(versions, default=0) + 1
        if self._version in versions:
            raise ModelRegistryException(f"Model {self._name} version {self._version} already exists")
        self._created = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        self._id = next(self.double.ids)
        self.double.files.put_tree(Path(model_path), self.files_path())
        versions[self._version] = self
        return self

    @records(f"{MODEL}.download")
    def download(self, local_path: str | None = None) -> str:
        if local_path is None:
            raise NotImplementedError("the double downloads to an explicit local_path only")
        self.double.files.get_tree(self.files_path(), Path(local_path))
        return local_path


# --- project files -------------------------------------------------------------------------------


class FakeFiles:
    """A project's file tree: directories and files by project-relative path."""

    def __init__(self) -> None:
        self.dirs = {"Models", "Resources"}
        self.data: dict[str, bytes] = {}

    @staticmethod
    def norm(path: str) -> str:
        return str(PurePosixPath(path.strip("/")))

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


class FakeDatasetApi:
    def __init__(self, double: Double) -> None:
        self.double = double
        self.files = double.files

    @records(f"{DATASETS}.exists")
    def exists(self, path: str) -> bool:
        path = self.files.norm(path)
        return path in self.files.dirs or path in self.files.data

    @records(f"{DATASETS}.mkdir")
    def mkdir(self, path: str) -> str:
        path = self.files.norm(path)
        if str(PurePosixPath(path).parent) not in self.files.dirs:
            raise RestAPIError(f"parent of {path} does not exist")
        self.files.dirs.add(path)
        return path

    @records(f"{DATASETS}.list")
    def list(self, path: str, offset: int = 0, limit: int = 1000) -> list[str]:
        path = self.files.norm(path)
        if path not in self.files.dirs:
            raise RestAPIError(f"{path} not found")
        return self.files.children(path)[offset:offset + limit]

    @records(f"{DATASETS}.upload")
    def upload(self, local_path: str, upload_path: str, overwrite: bool = False, chunk_size: int = 10485760,
               simultaneous_uploads: int = 3, simultaneous_chunks: int = 3, max_chunk_retries: int = 1,
               chunk_retry_interval: int = 1) -> str:
        directory = self.files.norm(upload_path)
        if directory not in self.files.dirs:
            raise RestAPIError(f"{directory} does not exist")
        destination = f"{directory}/{Path(local_path).name}"
        if destination in self.files.data and not overwrite:
            raise DatasetException(f"{destination} already exists, set overwrite=True to overwrite it")
        self.files.data[destination] = Path(local_path).read_bytes()
        return destination
