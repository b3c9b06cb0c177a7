"""`python -m cryptocast doctor`: every kind of call the daily workflow makes, tried once on scratch objects.

Run it once against your own project before trusting the scheduled runs: it logs in, creates two
feature groups and a feature view under a unique `cryptocast_doctor_<hex>_` prefix, writes a few rows,
upserts one, reads them back, reads the view, reads the real model's production pointer, registers
and promotes a tiny model, downloads it into an empty cache and compares it byte for byte; then it opens
the real groups, view and model the daily run will touch, as the run opens them (a group that is not what
cryptocast creates, left in another format by a failed first run, say, fails here with its fix), and
deletes every scratch object, also when a check fails. One line per check with its time on stdout;
the first failure ends the run with one line naming the check, the reason and a hint, exit code 1.

Everything goes through the same store and registry interfaces the pipeline uses; only the clean-up
is per backend. Locally the scratch objects live in a scratch home that is removed afterwards (the
real home is only read, for the production pointer); on Hopsworks they live in the project, and the
scratch home holds only the download caches.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from cryptocast.errors import CryptocastError
from cryptocast.features import FEAR_GREED, FEATURE_VIEW, SOLANA, GroupSpec, ViewPart, ViewSpec, join_view, validate
from cryptocast.hopsworks_reset import GROUPS
from cryptocast.registry import MODEL_NAME, ModelRegistry, open_model_registry
from cryptocast.settings import Settings
from cryptocast.stores import FeatureStore, InsertResult, open_feature_store

PREFIX = "cryptocast_doctor_"
# Calls that wait on the cluster, each up to CRYPTOCAST_HOPSWORKS_TIMEOUT: three inserts that wait for a
# materialization job (write x2, upsert), two Query Service reads (read back, feature view), and the
# registration hsml polls for. doctor.yml's timeout is sized to them.
SLOW_CALLS = 6
DAYS = pd.date_range("2024-01-01", periods=5, freq="D")


class DoctorFailure(CryptocastError):
    """A check failed; the message names it, says why and what to look at."""


@dataclasses.dataclass(frozen=True)
class Scratch:
    """The scratch objects of one run, all named with its prefix."""

    prefix: str
    candles: GroupSpec
    index: GroupSpec
    view: ViewSpec
    model: str

    @classmethod
    def named(cls, token: str) -> Scratch:
        prefix = f"{PREFIX}{token}"
        note = "cryptocast doctor scratch object: deleted when the check ends"
        candles = dataclasses.replace(SOLANA, name=f"{prefix}_candles", description=note)
        index = dataclasses.replace(FEAR_GREED, name=f"{prefix}_index", description=note)
        view = ViewSpec(f"{prefix}_view", 1, note, ViewPart(candles, ("close", "volume")),
                        (ViewPart(index, ("value",), "fng_"),))
        return cls(prefix, candles, index, view, f"{prefix}_model")


def scratch_rows(scratch: Scratch) -> dict[str, pd.DataFrame]:
    """A few valid rows per scratch group, in the real groups' schemas (every column type the pipeline writes)."""
    opens = 100.0 + np.arange(len(DAYS))
    candles = pd.DataFrame({"day": DAYS, "open": opens, "high": opens + 2, "low": opens - 2, "close": opens + 1,
                            "volume": 1000.5 + np.arange(len(DAYS)), "source": "doctor"})
    index = pd.DataFrame({"day": DAYS, "value": 47 + np.arange(len(DAYS)), "classification": "Neutral"})
    return {scratch.candles.name: validate(scratch.candles, candles, "doctor"),
            scratch.index.name: validate(scratch.index, index, "doctor")}


class Backend(ABC):
    """What differs per backend: where scratch objects live, the login line, and the clean-up."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings
        self.scratch_settings = dataclasses.replace(settings, home=home)

    @abstractmethod
    def login(self, store: FeatureStore) -> str:
        """Connect, and say where the scratch objects go."""

    @abstractmethod
    def production_registry(self) -> ModelRegistry:
        """The registry holding the real production pointer, opened so reading it changes nothing here."""

    @abstractmethod
    def download_registry(self) -> ModelRegistry:
        """The scratch registry seen from an empty cache, so reading a version really fetches it."""

    def real_view(self) -> str:
        """The state of the real feature view the daily run reads."""
        return f"feature view {FEATURE_VIEW.name} v{FEATURE_VIEW.version} is computed on each read"

    @abstractmethod
    def clean(self, store: FeatureStore, registry: ModelRegistry, scratch: Scratch, touched: set[str]) -> list[str]:
        """Delete what the checks may have made in `touched` ("groups", "view", "model"); return what remains."""


class LocalBackend(Backend):
    def login(self, store: FeatureStore) -> str:
        return f"local backend; scratch objects in {self.scratch_settings.home}, {self.settings.home} only read"

    def production_registry(self) -> ModelRegistry:
        return open_model_registry(self.settings)

    def download_registry(self) -> ModelRegistry:
        return open_model_registry(self.scratch_settings)  # files on disk: the registry's own copy is the download

    def clean(self, store: FeatureStore, registry: ModelRegistry, scratch: Scratch, touched: set[str]) -> list[str]:
        return []  # everything is inside the scratch home, which the caller removes


class HopsworksBackend(Backend):
    def login(self, store: FeatureStore) -> str:
        from hopsworks_common.constants import HOSTS

        from cryptocast.stores.hopsworks import WRITE_PATHS

        project = store.session.project
        host = self.settings.hopsworks_host or f"{HOSTS.SAAS_HOST} (the client's default)"
        fmt = self.settings.hopsworks_format
        return f"project {project.name} on {host}; new feature groups {fmt}, {WRITE_PATHS[fmt]}"

    def production_registry(self) -> ModelRegistry:
        return open_model_registry(self.scratch_settings)  # same project; downloads land in the scratch home

    def real_view(self) -> str:
        store = open_feature_store(self.settings)
        fs = store.fs
        name = f"feature view {FEATURE_VIEW.name} v{FEATURE_VIEW.version}"
        found = store.session.call(f"look up {name}", fs.get_feature_view, name=FEATURE_VIEW.name,
                                   version=FEATURE_VIEW.version)
        return f"{name} {'exists' if found is not None else 'not created yet (the first training run makes it)'}"

    def download_registry(self) -> ModelRegistry:
        home = self.scratch_settings.home.with_name("download")
        return open_model_registry(dataclasses.replace(self.scratch_settings, home=home))

    def clean(self, store: Any, registry: Any, scratch: Scratch, touched: set[str]) -> list[str]:
        steps: list[tuple[str, Callable[[], Any]]] = []
        if "view" in touched:
            steps.append((f"feature view {scratch.view.name}", lambda: store.drop_feature_view(scratch.view)))
        if "groups" in touched:
            steps += [(f"feature group {spec.name}", lambda spec=spec: store.drop_feature_group(spec))
                      for spec in (scratch.candles, scratch.index)]
        if "model" in touched:
            steps.append((f"model {scratch.model}", lambda: registry.drop_model(scratch.model)))
        left = []
        for what, drop in steps:
            try:
                drop()
            except CryptocastError as exc:
                left.append(f"{what} ({exc})")
        return left


class Run:
    """Prints one line per check and turns the first failure into a DoctorFailure carrying its hint."""

    def __init__(self, out: TextIO, hints: dict[str, str]) -> None:
        self.out = out
        self.hints = hints

    def check(self, name: str, kind: str, step: Callable[[], str]) -> None:
        """Run `step`; a failure's hint is the one for `kind` ("login", "write", ...), or for a timeout."""
        started = time.monotonic()
        try:
            detail = step()
        except CryptocastError as exc:
            self.line("FAIL", started, name, "")
            hint = self.hints["timeout" if "timed out after" in str(exc) else kind]
            raise DoctorFailure(f"{name}: {exc} (hint: {hint})") from None
        self.line("ok", started, name, detail)

    def line(self, status: str, started: float, name: str, detail: str) -> None:
        print(f"{status:<4} {time.monotonic() - started:7.2f}s  {name}{': ' + detail if detail else ''}",
              file=self.out, flush=True)


def _hints(settings: Settings, scratch: Scratch) -> dict[str, str]:
    """What to look at when a kind of check fails, on this backend."""
    if settings.backend == "local":
        where = f"check that {settings.home} and the temporary directory are writable"
        return {**dict.fromkeys(("login", "write", "read", "registry", "timeout"), where),
                "real": "the daily run opens the store the same way: see the line above for what to do"}
    from hopsworks_common.constants import HOSTS

    host = settings.hopsworks_host or f"{HOSTS.SAAS_HOST} (the client's default; set HOPSWORKS_HOST for your own)"
    project = settings.hopsworks_project or "the key's only project (set HOPSWORKS_PROJECT if it has several)"
    return {
        "login": f"host {host}, project {project}; the key must be one made on that host",
        "write": f"new groups are {settings.hopsworks_format} (CRYPTOCAST_HOPSWORKS_FORMAT); HUDI and ICEBERG go "
                 "through Kafka and the materialization job (the key needs the FEATURESTORE, KAFKA and JOB scopes); "
                 "DELTA is written from here and needs the cluster's external load balancers, which no hosted "
                 "Serverless project has",
        "read": "reads go through the Feature Query Service (Arrow Flight): check that it runs on the cluster and "
                "that the key has the FEATURESTORE scope",
        "registry": "the key needs the MODELREGISTRY and DATASET_VIEW, DATASET_CREATE, DATASET_DELETE scopes",
        "real": "the daily run opens these groups the same way and would stop there: apply the fix the line "
                "names before its next run (guide/hopsworks.md, 'When doctor fails')",
        "timeout": f"raise CRYPTOCAST_HOPSWORKS_TIMEOUT if the cluster is slow; a call that timed out may still "
                   f"finish: look for objects named {scratch.prefix}* and delete them",
    }


def _equal(what: str, got: pd.DataFrame, expected: pd.DataFrame) -> None:
    if not got.reset_index(drop=True).equals(expected.reset_index(drop=True)):
        raise DoctorFailure(f"{what}: {len(got)} rows read back differ from the {len(expected)} written")


def _counts(result: InsertResult, expected: tuple[int, int, int]) -> str:
    if (result.inserted, result.updated, result.unchanged) != expected:
        raise DoctorFailure(f"expected {expected[0]} added, {expected[1]} updated, {expected[2]} unchanged; "
                            f"got {result}")
    return str(result)


def _write_artifacts(directory: Path, token: str) -> dict[str, bytes]:
    directory.mkdir()
    (directory / "weights.bin").write_bytes(np.random.default_rng(int(token, 16)).bytes(64 * 1024))
    (directory / "input_example.csv").write_text("day,x\n2024-01-01,0.5\n2024-01-02,-0.25\n")
    return {p.name: p.read_bytes() for p in directory.iterdir()}


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _checks(run: Run, backend: Backend, store: FeatureStore, registry: ModelRegistry, scratch: Scratch,
            touched: set[str], home: Path) -> None:
    run.check("login", "login", lambda: backend.login(store))
    rows = scratch_rows(scratch)

    def write() -> str:
        touched.add("groups")
        results = [store.get_or_create_feature_group(spec).insert(rows[spec.name])
                   for spec in (scratch.candles, scratch.index)]
        return "; ".join(f"{spec.name} v{spec.version}: {_counts(r, (len(DAYS), 0, 0))}"
                         for spec, r in zip((scratch.candles, scratch.index), results, strict=True))
    run.check("write", "write", write)

    changed = rows[scratch.candles.name].copy()
    changed.loc[2, "close"] += 0.5

    def upsert() -> str:
        result = store.get_or_create_feature_group(scratch.candles).insert(changed, replace=True)
        return f"one changed row among {len(changed)}: {_counts(result, (0, 1, len(DAYS) - 1))}"
    run.check("upsert", "write", upsert)

    def read() -> str:
        group = store.get_feature_group(scratch.candles)
        if group is None:
            raise DoctorFailure(f"feature group {scratch.candles.name} was written but cannot be found")
        _equal(scratch.candles.name, group.read(), changed)
        return f"{len(changed)} rows equal to what was written, the upsert included"
    run.check("read back", "read", read)

    def view() -> str:
        touched.add("view")
        got = store.read_feature_view(scratch.view, None, None)
        _equal(scratch.view.name, got, join_view(scratch.view, {scratch.candles.name: changed,
                                                                 scratch.index.name: rows[scratch.index.name]}))
        return f"{scratch.view.name} v1: {len(got)} rows equal to the join computed here"
    run.check("feature view", "read", view)

    def production_pointer() -> str:
        current = backend.production_registry().production(MODEL_NAME)
        return f"{MODEL_NAME} serves v{current.version}" if current else f"{MODEL_NAME} has no production version yet"
    run.check("production pointer", "registry", production_pointer)

    artifacts = home / "artifacts"
    sent = _write_artifacts(artifacts, scratch.prefix.removeprefix(PREFIX))

    def register() -> str:
        touched.add("model")
        version, promoted = registry.register_and_promote(scratch.model, artifacts, {"rel_mae_mean": 1.0},
                                                          "cryptocast doctor scratch model", {"doctor": True})
        if not promoted:
            raise DoctorFailure(f"{scratch.model} v{version.version} was registered but not promoted")
        return f"{scratch.model} v{version.version} registered and promoted"
    run.check("register", "registry", register)

    def download() -> str:
        got = _files(backend.download_registry().get(scratch.model, 1).path)
        if got != sent:
            raise DoctorFailure(f"downloaded {sorted(got)} differ from the registered {sorted(sent)}")
        return f"{len(got)} files, {sum(map(len, got.values()))} bytes, equal byte for byte"
    run.check("download", "registry", download)

    def production() -> str:
        current = registry.production(scratch.model)
        if current is None or current.version != 1:
            raise DoctorFailure(f"{scratch.model} should serve v1, the registry says {current}")
        return f"{scratch.model} serves v1"
    run.check("production", "registry", production)
    run.check("real objects", "real", lambda: _real_objects(backend))


def _real_objects(backend: Backend) -> str:
    """The groups, view and model the daily run will touch, opened as it opens them (the same comparison with
    what cryptocast creates), so a group left in another format fails here and not at 06:00."""
    store = open_feature_store(backend.settings)
    groups = {spec: store.get_feature_group(spec) for spec in GROUPS}
    found = [f"{s.name} v{s.version}" for s, group in groups.items() if group is not None]
    absent = [f"{s.name} v{s.version}" for s, group in groups.items() if group is None]
    models = backend.production_registry().summary(MODEL_NAME)[MODEL_NAME]["versions"]
    return "; ".join([f"groups {', '.join(found)} as cryptocast creates them" if found else "no group yet",
                      *([f"not created yet: {', '.join(absent)}"] if found and absent else []),
                      backend.real_view(), f"model {MODEL_NAME}: {len(models)} version(s)"])


def doctor(settings: Settings, out: TextIO | None = None) -> None:
    """Run every check, then clean up; raise DoctorFailure on the first failed check or on leftovers."""
    scratch = Scratch.named(secrets.token_hex(4))
    home = Path(tempfile.mkdtemp(prefix="cryptocast-doctor-"))
    backend = (LocalBackend if settings.backend == "local" else HopsworksBackend)(settings, home / "home")
    store, registry = open_feature_store(backend.scratch_settings), open_model_registry(backend.scratch_settings)
    run, touched, failure = Run(out or sys.stdout, _hints(settings, scratch)), set(), None
    try:
        _checks(run, backend, store, registry, scratch, touched, home)
    except DoctorFailure as exc:
        failure = exc
    finally:
        started = time.monotonic()
        left = backend.clean(store, registry, scratch, touched)
        shutil.rmtree(home, ignore_errors=True)
        run.line("ok" if not left else "FAIL", started, "clean up",
                 "no scratch object left" if not left else f"left {', '.join(left)}")
    leftovers = f"clean-up left {', '.join(left)}: delete them by hand" if left else ""
    if failure is not None:
        raise DoctorFailure(f"{failure}{'; ' + leftovers if left else ''}")
    if left:
        raise DoctorFailure(leftovers)
