"""The model registry's interface and the rules every backend shares.

Every training run becomes a numbered version; one version per model serves (production). Each
backend keeps a `version.json` beside a version's artifacts (created, description, metrics,
metadata) and promotes by the same rule, `promotion_decision`. Backends live beside this module
(`local.py`, `hopsworks.py`) and depend on it, never the other way round; `open_model_registry` in
`__init__` picks one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptocast.errors import StoreError

log = logging.getLogger(__name__)

# The model training registers and the daily steps serve. Here, not in training.py, so that inference and
# the site name it without importing the training code and what it needs (SciPy, via the backtest).
MODEL_NAME = "sol_lstm"
DEFAULT_METRIC = "rel_mae_mean"
# An artifact a trainer may include: one input of the model as a table; registries that can show one do.
INPUT_EXAMPLE = "input_example.csv"
_RECORD_TYPES = {"created": str, "description": str, "metrics": dict, "metadata": dict}


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    created: str
    description: str
    metrics: dict[str, Any]
    metadata: dict[str, Any]
    path: Path


class ModelRegistry(Protocol):
    def register(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                 metadata: dict[str, Any]) -> ModelVersion:
        """Store a new version (number = newest + 1) without changing which version serves."""
        ...

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of the model, oldest first; empty if the model was never registered."""
        ...

    def get(self, name: str, version: int) -> ModelVersion: ...

    def production(self, name: str) -> ModelVersion | None:
        """The version the daily forecast must use, or None before the first promotion."""
        ...

    def set_production(self, name: str, version: int) -> None: ...

    def register_and_promote(self, name: str, artifacts: Path, metrics: dict[str, Any], description: str,
                             metadata: dict[str, Any], metric: str = DEFAULT_METRIC) -> tuple[ModelVersion, bool]:
        """Register, then promote only if `metric` is no worse than production's (see `promotion_decision`)."""
        ...

    def summary(self, name: str | None = None) -> dict:
        """`{name: {"production": N | None, "versions": [...]}}` for the status command."""
        ...


COVERAGE_METRIC = "coverage_80_mean"
COVERAGE_NOMINAL = 0.8
COVERAGE_TOLERANCE = 0.05
# Fewer backtest origins than this cannot measure coverage to within 5 points (overlapping outcomes).
COVERAGE_MIN_ORIGINS = 180


def promotion_decision(candidate: ModelVersion, current: ModelVersion | None, metric: str) -> tuple[bool, str]:
    """Lower is better and ties promote, so retraining on newer data wins unless it is measurably worse.

    A version whose 80% ranges covered more than 5 points away from 80% on its backtest is refused
    whatever its accuracy: its ranges would mislead a reader. A backtest of fewer than 180 origins
    (a test-sized run) is too short to tell, so the rule waits for a longer one.
    """
    new = candidate.metrics[metric]
    coverage = candidate.metrics.get(COVERAGE_METRIC)
    origins = candidate.metrics.get("backtest_origins")
    measured = not isinstance(origins, dict) or origins.get("count", 0) >= COVERAGE_MIN_ORIGINS
    if measured and is_finite_number(coverage) and abs(coverage - COVERAGE_NOMINAL) > COVERAGE_TOLERANCE:
        return False, (f"{COVERAGE_METRIC} {coverage:.3f} is more than {COVERAGE_TOLERANCE:.2f} from the nominal "
                       f"{COVERAGE_NOMINAL:.2f}")
    if current is None:
        return True, f"{metric} {new:.6g}; no production version yet"
    old = current.metrics.get(metric)
    if not is_finite_number(old):
        return True, f"{metric} {new:.6g}; production v{current.version} has no usable {metric} ({old!r})"
    verdict = "<=" if new <= old else ">"
    return new <= old, f"{metric} {new:.6g} {verdict} {old:.6g} of production v{current.version}"


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def to_json(obj: Any, what: str) -> bytes:
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    except ValueError:
        raise StoreError(f"{what} contains NaN or infinity, which JSON cannot represent; nothing registered") from None
    except TypeError as exc:
        raise StoreError(f"{what} is not JSON-serialisable ({exc}); nothing registered") from None
    return (text + "\n").encode()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"model registry: unreadable {path}: {exc}") from None


def version_record(created: str, description: str, metrics: dict[str, Any], metadata: dict[str, Any],
                   name: str) -> bytes:
    """The `version.json` every backend keeps beside a version's artifacts; refuses what JSON cannot hold."""
    return to_json({"created": created, "description": description, "metrics": metrics, "metadata": metadata},
                    f"model {name}: metrics or metadata")


def load_version(name: str, version: int, directory: Path) -> ModelVersion:
    """A version from its directory (`version.json` + `artifacts/`), checked so a damaged copy fails loudly."""
    path = directory / "version.json"
    record = read_json(path)
    if not isinstance(record, dict) or any(not isinstance(record.get(k), t) for k, t in _RECORD_TYPES.items()):
        raise StoreError(f"model registry: {path} lacks one of {', '.join(_RECORD_TYPES)} or has a wrong type")
    if not (directory / "artifacts").is_dir():
        raise StoreError(f"model registry: {directory / 'artifacts'} is missing")
    return ModelVersion(name=name, version=version, created=record["created"], description=record["description"],
                        metrics=record["metrics"], metadata=record["metadata"], path=directory / "artifacts")


def register_and_promote(registry: ModelRegistry, name: str, artifacts: Path, metrics: dict[str, Any],
                         description: str, metadata: dict[str, Any], metric: str) -> tuple[ModelVersion, bool]:
    """Register, then promote by `promotion_decision`; the caller holds its registry's lock around this."""
    if not is_finite_number(metrics.get(metric)):
        raise StoreError(f"model {name}: metric {metric!r} must be a finite number, got "
                         f"{metrics.get(metric)!r}; nothing registered")
    current = registry.production(name)
    candidate = registry.register(name, artifacts, metrics, description, metadata)
    promoted, reason = promotion_decision(candidate, current, metric)
    if promoted:
        registry.set_production(name, candidate.version)
    log.info("model %s v%d %s: %s", name, candidate.version, "promoted" if promoted else "not promoted", reason)
    return candidate, promoted
