"""The local model registry: plain files on disk, the default backend, needing no account.

Layout under `CRYPTOCAST_HOME` (plain files and JSON, no pickle, so a workflow can commit it):

    model_registry/<name>/v<N>/artifacts/...     the model files exactly as training wrote them
    model_registry/<name>/v<N>/version.json      created, description, metrics, metadata
    model_registry/<name>/v<N>/checksums.json    SHA-256 of every other file of the version
    model_registry/<name>/production.json        {"version": N, "checksums": SHA-256 of v<N>/checksums.json}

A version is assembled in a hidden temporary directory beside its siblings and published with one
`os.rename`, so readers see a complete `v<N>` or none; hidden leftovers of a crashed run are ignored
and swept by the next registration. Writers hold `.registry.lock` so two runs cannot take the same N.

Reading a version checks `version.json` against its recorded SHA-256; loading it to serve (`get`,
`production`) checks every artifact, and the production pointer names the checksums of the version
it means, so a flipped bit anywhere is an error naming the file, never another model. A version
without `checksums.json` is refused: were it accepted as one registered before checksums were
recorded, deleting that file (and writing the pointer as `{"version": N}`) would turn every check off.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from filelock import FileLock

from cryptocast.atomic import atomic_write_bytes, sha256_file
from cryptocast.errors import StoreError
from cryptocast.registry.base import (
    DEFAULT_METRIC,
    ModelVersion,
    load_version,
    read_json,
    register_and_promote,
    to_json,
    utc_now,
    version_record,
)
from cryptocast.stores.local import LOCK_TIMEOUT_S, exclusive

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_VERSION_DIR = re.compile(r"v([0-9]+)")
CHECKSUMS = "checksums.json"


def _version_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*")
                  if p.is_file() and p.name != CHECKSUMS)


def checksums_record(directory: Path) -> bytes:
    """What `checksums.json` holds: every file of a version (but itself) by relative path, with its SHA-256."""
    return to_json({"sha256": {name: sha256_file(directory / name) for name in _version_files(directory)}},
                   "checksums")


def check_version(directory: Path, deep: bool) -> None:
    """Compare a version's files with its `checksums.json` (`deep`: every artifact, else version.json).

    StoreError naming the first bad file, or the missing checksums.
    """
    path = directory / CHECKSUMS
    if not path.exists():
        raise StoreError(f"model registry: {path} is missing, so {directory.name} cannot be checked (lost, or "
                         "registered before checksums); restore it from a copy of the store, or remove the version "
                         "and run training_pipeline.py")
    record = read_json(path)
    recorded = record.get("sha256") if isinstance(record, dict) else None
    if not isinstance(recorded, dict):
        raise StoreError(f"model registry: {path} is damaged: no sha256 table")
    names = _version_files(directory) if deep else ["version.json"]
    for name in sorted(set(names) | (set(recorded) if deep else set())):
        file = directory / name
        if name not in recorded:
            raise StoreError(f"model registry: {file} is not in {path} (added after registration?)")
        if not file.is_file():
            raise StoreError(f"model registry: {file} is missing")
        if sha256_file(file) != recorded[name]:
            raise StoreError(f"model registry: {file} is damaged: its SHA-256 does not match {path}")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush the copy before the rename publishes it, so a power cut cannot publish empty files."""
    for path in [*root.rglob("*"), root]:
        _fsync(path)


class LocalModelRegistry:
    """Model versions on local disk; the default backend, needing no account."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.root = home / "model_registry"
        self._lock = FileLock(home / ".registry.lock")

    def _model_dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise StoreError(f"model name {name!r} must be letters, digits, '_', '.' or '-' (not leading)")
        return self.root / name

    def _numbers(self, name: str) -> list[int]:
        directory = self._model_dir(name)
        if not directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _VERSION_DIR.fullmatch(p.name)))

    def get(self, name: str, version: int) -> ModelVersion:
        """A version to load and serve: every file checked against its checksums first."""
        return self._load(name, version, deep=True)

    def _load(self, name: str, version: int, deep: bool) -> ModelVersion:
        directory = self._model_dir(name) / f"v{version}"
        if not directory.is_dir():
            raise StoreError(f"model {name} has no version {version} in {self.root}")
        check_version(directory, deep)
        return load_version(name, version, directory)

    def versions(self, name: str) -> list[ModelVersion]:
        return [self._load(name, n, deep=False) for n in self._numbers(name)]

    def production(self, name: str) -> ModelVersion | None:
        path = self._model_dir(name) / "production.json"
        if not path.exists():
            return None
        record = read_json(path)
        version = record.get("version") if isinstance(record, dict) else None
        if not isinstance(version, int) or isinstance(version, bool):
            raise StoreError(f"model registry: {path} does not hold {{\"version\": <int>}}")
        served = self.get(name, version)
        if record.get("checksums", self._pointer_check(name, version)) != self._pointer_check(name, version):
            raise StoreError(f"model registry: {path} is damaged: it does not match v{version}'s checksums")
        return served

    def _pointer_check(self, name: str, version: int) -> str:
        """The production pointer's check: the SHA-256 of the version's checksums."""
        return sha256_file(self._model_dir(name) / f"v{version}" / CHECKSUMS)

    def set_production(self, name: str, version: int) -> None:
        with self._locked():
            self.get(name, version)
            record = {"version": version, "checksums": self._pointer_check(name, version)}
            atomic_write_bytes(self._model_dir(name) / "production.json",
                               to_json(record, f"model {name}: production version"))
        log.info("model %s: production is now v%d", name, version)

    def register(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                 metadata: dict[str, Any]) -> ModelVersion:
        if not artifacts.is_dir():
            raise StoreError(f"model artifacts {artifacts} is not a directory; nothing registered")
        record = version_record(utc_now(), description, metrics, metadata, name)
        directory = self._model_dir(name)
        with self._locked():
            directory.mkdir(parents=True, exist_ok=True)
            self._sweep(directory)
            number = max(self._numbers(name), default=0) + 1
            self._publish(directory, number, artifacts, record)
        log.info("model %s: registered v%d from %s", name, number, artifacts)
        return self.get(name, number)

    def _publish(self, directory: Path, number: int, artifacts: Path, record: bytes) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f".v{number}-", dir=directory))
        try:
            shutil.copytree(artifacts, tmp / "artifacts")
            atomic_write_bytes(tmp / "version.json", record)
            atomic_write_bytes(tmp / CHECKSUMS, checksums_record(tmp))
            _fsync_tree(tmp)
            os.rename(tmp, directory / f"v{number}")
            _fsync(directory)
        except OSError as exc:
            raise StoreError(f"model {directory.name}: could not register v{number}: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # already gone once the rename succeeded

    @staticmethod
    def _sweep(directory: Path) -> None:
        """Remove hidden half-built versions and temporary files; safe because every writer holds the lock."""
        for path in directory.iterdir():
            if path.name.startswith(".") and path.is_dir():
                shutil.rmtree(path)
            elif path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink()

    def register_and_promote(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                             metadata: dict[str, Any], metric: str = DEFAULT_METRIC) -> tuple[ModelVersion, bool]:
        with self._locked():  # one lock across both steps, so concurrent runs compare against a settled production
            return register_and_promote(self, name, artifacts, metrics, description, metadata, metric)

    def summary(self, name: str | None = None) -> dict:
        names = [name] if name is not None else self._names()
        return {n: self._model_summary(n) for n in names}

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))

    def _model_summary(self, name: str) -> dict:
        production = self.production(name)
        return {
            "production": production.version if production else None,
            "versions": [{"version": v.version, "created": v.created, "description": v.description,
                          "metrics": v.metrics} for v in self.versions(name)],
        }

    def verify(self) -> list[str]:
        """Check every file of every version and each production pointer; one line per model.

        Raises StoreError naming the first damaged file.
        """
        lines = []
        for name in self._names():
            numbers = self._numbers(name)
            for n in numbers:
                check_version(self._model_dir(name) / f"v{n}", deep=True)
                load_version(name, n, self._model_dir(name) / f"v{n}")
            production = self.production(name)
            serving = production.version if production else "none"
            lines.append(f"model {name}: {len(numbers)} version(s) ok, production {serving}")
        return lines

    def _locked(self) -> AbstractContextManager[None]:
        """Reentrant (one FileLock object), so `register_and_promote` can hold it around its own calls."""
        self.home.mkdir(parents=True, exist_ok=True)
        return exclusive(self._lock, f"model registry {self.root}", LOCK_TIMEOUT_S)
