"""The model registry on Hopsworks: versions in the project's model registry, production chosen as locally.

A version is a Hopsworks model of the same name: `create_model` with the numeric metrics (Hopsworks
accepts only numbers there), the description, the input example and the feature view the model reads
(its provenance; 5.x deprecates hand-written model schemas in its favour), then `save` of a directory
laid out like a local version: `artifacts/` (the trainer's files) and `version.json` (every metric,
including lists, and the metadata).

The input example is what hsml documents, "a single input for the model": the numeric columns of
the trainer's `input_example.csv` (one whole window, a row per day) as an array, which hsml stores
whole as `input_example.json`. Given the DataFrame itself, hsml would keep only its first row, and
it refuses an empty one, so a header-only file registers without an example. The CSV, with its day
column, stays among the artifacts. `get`/`production` download a version once into
`CRYPTOCAST_HOME/hopsworks_cache/model_registry/<name>/v<N>-<identity>/`, so `ModelVersion.path` is a
local directory as with the local registry; registering fills the cache with what it uploaded.

Production is an append-only log of small files in the project's datasets,
`Resources/cryptocast/model_registry/<name>/promotions/<sequence>_v<N>.json`; the newest names the
production version. A file is never overwritten (Hopsworks has no atomic replace) and needs no tag
schema (which only an administrator can create), and the log records every promotion. The promotion
rule is `base.promotion_decision`, the same as locally. `Resources/cryptocast/model_registry/<name>/`
is made when a model is first registered, so `summary()` lists cryptocast's models, not the project's.

The log is read with `DatasetApi.list`, never `exists`: the client's `exists` answers False on any
REST error, so a key without the dataset scopes would read as "no production version yet" (promote
without comparing, retrain every day). Only the backend's not-found answer means "not there" (HTTP 400 with
PATH_NOT_FOUND, decided as the client decides not-found: `hopsworks_session.is_not_found`); any other error is
a StoreError.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from cryptocast.errors import StoreError
from cryptocast.features import FEATURE_VIEW
from cryptocast.hopsworks_session import DATASET_NOT_FOUND, HopsworksSession, is_not_found
from cryptocast.registry.base import (
    DEFAULT_METRIC,
    INPUT_EXAMPLE,
    ModelVersion,
    is_finite_number,
    load_version,
    register_and_promote,
    utc_now,
    version_record,
)
from cryptocast.settings import Settings
from cryptocast.stores.local import LOCK_TIMEOUT_S, exclusive

log = logging.getLogger(__name__)

PROMOTIONS_ROOT = "Resources/cryptocast/model_registry"
AWAIT_REGISTRATION = 480  # seconds Model.save polls for the new version (hsml's default)
PAGE = 1000
_NAME = re.compile(r"[A-Za-z0-9_]+")  # what Hopsworks accepts as a model name
_PROMOTION = re.compile(r"([0-9]+)_v([0-9]+)\.json")


def _promotions_dir(name: str) -> str:
    return f"{PROMOTIONS_ROOT}/{name}/promotions"


def _created(model: Any) -> str:
    """Hopsworks' creation time of a version in the local registry's form (ISO 8601, UTC, seconds)."""
    value = model.created
    if isinstance(value, int | float) and not isinstance(value, bool):
        stamp = dt.datetime.fromtimestamp(value / 1000, dt.UTC)
    elif isinstance(value, str) and value:
        try:
            stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
    else:
        return ""
    return stamp.isoformat(timespec="seconds")


def _entries(datasets: Any, path: str) -> list[str] | None:
    """Everything under `path`, page by page, or None when Hopsworks says it is not there; other errors propagate."""
    found: list[str] = []
    while True:
        try:
            page = datasets.list(path, offset=len(found), limit=PAGE)
        except Exception as exc:
            if is_not_found(exc, DATASET_NOT_FOUND) and not found:
                return None
            raise
        found += page
        if len(page) < PAGE:
            return found


def _input_example(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    window = pd.read_csv(path).select_dtypes("number").to_numpy()
    if not window.size:
        log.info("%s has no rows: registering without an input example", path.name)
        return None
    return window


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if is_finite_number(v)}


class HopsworksModelRegistry:
    """Model versions in a Hopsworks project, with the local registry's interface and promotion rule."""

    def __init__(self, settings: Settings) -> None:
        self.session = HopsworksSession(settings)
        self.home = settings.home
        self.cache = settings.home / "hopsworks_cache" / "model_registry"
        self._lock = FileLock(settings.home / ".hopsworks-registry.lock")

    @property
    def mr(self) -> Any:
        return self.session.service("model registry", "get_model_registry")

    @property
    def fs(self) -> Any:
        return self.session.service("feature store", "get_feature_store")

    @property
    def datasets(self) -> Any:
        return self.session.service("project's datasets", "get_dataset_api")

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME.fullmatch(name):
            raise StoreError(f"model name {name!r} must be letters, digits or '_' on Hopsworks")

    def _model(self, name: str, version: int) -> Any:
        self._check_name(name)
        mr = self.mr
        return self.session.call(f"look up model {name} v{version}", mr.get_model, name=name, version=version)

    def get(self, name: str, version: int) -> ModelVersion:
        model = self._model(name, version)
        if model is None:
            raise StoreError(f"model {name} has no version {version} in the Hopsworks model registry")
        directory = self._cache_dir(model)
        if not directory.is_dir():
            self._download(model, name, version, directory)
        stored = load_version(name, version, directory)
        return ModelVersion(name=name, version=version, created=_created(model), description=stored.description,
                            metrics=stored.metrics, metadata=stored.metadata, path=stored.path)

    def _cache_dir(self, model: Any) -> Path:
        """Named by version and by Hopsworks' identity of it, so a version deleted and made again is fetched anew."""
        identity = hashlib.sha256(f"{model.id} {model.created}".encode()).hexdigest()[:12]
        return self.cache / model.name / f"v{model.version}-{identity}"

    def _download(self, model: Any, name: str, version: int, directory: Path) -> None:
        """Download beside the cache entry and rename it into place, so the cache never holds half a version."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=directory.parent))
        try:
            self.session.call(f"download model {name} v{version}", model.download, local_path=str(tmp))
            if not (tmp / "version.json").is_file() or not (tmp / "artifacts").is_dir():
                raise StoreError(f"model {name} v{version} in Hopsworks has no version.json and artifacts/: "
                                 "it was not registered by cryptocast")
            self._publish(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @staticmethod
    def _publish(source: Path, directory: Path) -> None:
        try:
            os.rename(source, directory)
        except OSError as exc:
            if not directory.is_dir():  # otherwise a concurrent run published the same version first
                raise StoreError(f"model registry: cannot cache {directory}: {exc}") from None

    def versions(self, name: str) -> list[ModelVersion]:
        return [self.get(name, v) for v in sorted(m.version for m in self._models(name))]

    def _models(self, name: str) -> list[Any]:
        self._check_name(name)
        mr = self.mr
        return self.session.call(f"list versions of model {name}", mr.get_models, name=name) or []

    def production(self, name: str) -> ModelVersion | None:
        self._check_name(name)
        latest = self._latest_promotion(name)
        return None if latest is None else self.get(name, latest[1])

    def _latest_promotion(self, name: str) -> tuple[int, int] | None:
        entries = self._entries(_promotions_dir(name), f"read production of model {name}")
        found = sorted((int(m.group(1)), int(m.group(2))) for path in entries or []
                       if (m := _PROMOTION.fullmatch(PurePosixPath(path).name)))
        return found[-1] if found else None

    def _entries(self, path: str, step: str) -> list[str] | None:
        datasets = self.datasets
        return self.session.call(step, _entries, datasets, path)

    def set_production(self, name: str, version: int) -> None:
        with self._locked():
            if self._model(name, version) is None:
                raise StoreError(f"model {name} has no version {version} in the Hopsworks model registry")
            latest = self._latest_promotion(name)
            sequence = (latest[0] if latest else 0) + 1
            self._makedirs(_promotions_dir(name))
            with tempfile.TemporaryDirectory() as tmp:
                pointer = Path(tmp) / f"{sequence:06d}_v{version}.json"
                pointer.write_text(json.dumps({"version": version, "promoted": utc_now()}) + "\n")
                datasets = self.datasets
                self.session.call(f"set production of model {name}", datasets.upload, str(pointer),
                                  _promotions_dir(name), overwrite=False)
        log.info("model %s: production is now v%d", name, version)

    def _makedirs(self, path: str) -> None:
        datasets = self.datasets
        parts = PurePosixPath(path).parts
        for depth in range(2, len(parts) + 1):  # the first part is the dataset itself (Resources)
            directory = "/".join(parts[:depth])
            if self._entries(directory, f"look up {directory}") is None:
                self.session.call(f"create {directory}", datasets.mkdir, directory)

    def register(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                 metadata: dict[str, Any]) -> ModelVersion:
        self._check_name(name)
        if not artifacts.is_dir():
            raise StoreError(f"model artifacts {artifacts} is not a directory; nothing registered")
        record = version_record(utc_now(), description, metrics, metadata, name)
        self._makedirs(f"{PROMOTIONS_ROOT}/{name}")
        mr = self.mr
        self.cache.joinpath(name).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache / name) as tmp:
            staged = Path(tmp) / name
            shutil.copytree(artifacts, staged / "artifacts")
            (staged / "version.json").write_bytes(record)
            view = self._feature_view()
            created, model = self.session.call(f"register model {name}", self._save, mr, name, staged, metrics,
                                               description, view)
            model = model or self._confirm(name, created.version)
            self._publish(staged, self._cache_dir(model))  # what was uploaded needs no download
        log.info("model %s: registered v%d from %s", name, model.version, artifacts)
        return self.get(name, model.version)

    def _feature_view(self) -> Any:
        """The view every cryptocast model reads, for provenance; None before anything has read it."""
        fs = self.fs
        return self.session.call(f"look up feature view {FEATURE_VIEW.name} v{FEATURE_VIEW.version}",
                                 fs.get_feature_view, name=FEATURE_VIEW.name, version=FEATURE_VIEW.version)

    @staticmethod
    def _save(mr: Any, name: str, staged: Path, metrics: dict[str, Any], description: str, view: Any) -> Any:
        model = mr.python.create_model(name=name, metrics=_numeric(metrics), description=description,
                                       input_example=_input_example(staged / "artifacts" / INPUT_EXAMPLE),
                                       feature_view=view)
        try:
            return model, model.save(str(staged), keep_original_files=True, await_registration=AWAIT_REGISTRATION)
        except AttributeError as exc:  # hsml prints `found.get_url()`, and found is None when its poll gave up
            if "get_url" not in str(exc):
                raise
            return model, None

    def _confirm(self, name: str, version: int) -> Any:
        """The version hsml uploaded but did not see registered within its wait: there now, or a clear error."""
        model = self._model(name, version)
        if model is None:
            raise StoreError(f"model {name}: Hopsworks did not confirm version {version} within the client's wait "
                             f"({AWAIT_REGISTRATION} s); it may still appear: check the project's model registry "
                             "before training again")
        return model

    def register_and_promote(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                             metadata: dict[str, Any], metric: str = DEFAULT_METRIC) -> tuple[ModelVersion, bool]:
        with self._locked():
            return register_and_promote(self, name, artifacts, metrics, description, metadata, metric)

    def summary(self, name: str | None = None) -> dict:
        """As locally, from Hopsworks' own records (no downloads): metrics are the numeric ones."""
        names = [name] if name is not None else self._names()
        return {n: self._model_summary(n) for n in names}

    def _names(self) -> list[str]:
        names = (PurePosixPath(path).name for path in self._entries(PROMOTIONS_ROOT, "list cryptocast's models") or [])
        return sorted(n for n in names if _NAME.fullmatch(n))

    def _model_summary(self, name: str) -> dict:
        latest = self._latest_promotion(name)
        models = sorted(self._models(name), key=lambda m: m.version)
        return {
            "production": latest[1] if latest else None,
            "versions": [{"version": m.version, "created": _created(m), "description": m.description or "",
                          "metrics": {k: float(v) for k, v in (m.training_metrics or {}).items()}} for m in models],
        }

    def drop_model(self, name: str) -> list[str]:
        """Delete every version of `name`, its Models folder and its promotion log (the doctor's clean-up).

        Returns what it deleted. hsml's `Model.delete` removes a version, not the folder `save` made for the name.
        """
        dropped = []
        for model in self._models(name):
            self.session.call(f"delete model {name} v{model.version}", model.delete)
            dropped.append(f"model {name} v{model.version}")
        datasets = self.datasets
        for path in (f"Models/{name}", f"{PROMOTIONS_ROOT}/{name}"):
            if self._entries(path, f"look up {path}") is not None:
                self.session.call(f"delete {path}", datasets.remove, path)
                dropped.append(path)
        shutil.rmtree(self.cache / name, ignore_errors=True)
        return dropped

    def _locked(self) -> AbstractContextManager[None]:
        """Serialise promotions on this machine; runs elsewhere rely on the workflow's concurrency group."""
        self.home.mkdir(parents=True, exist_ok=True)
        return exclusive(self._lock, "the hopsworks model registry (on this machine)", LOCK_TIMEOUT_S)
