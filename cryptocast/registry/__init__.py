"""The model registry: pick the backend for this run; the interface is in `base.py`."""

from __future__ import annotations

from cryptocast.registry.base import (
    DEFAULT_METRIC,
    INPUT_EXAMPLE,
    MODEL_NAME,
    ModelRegistry,
    ModelVersion,
    is_finite_number,
    promotion_decision,
)
from cryptocast.registry.local import LocalModelRegistry
from cryptocast.settings import Settings

__all__ = ["DEFAULT_METRIC", "INPUT_EXAMPLE", "MODEL_NAME", "LocalModelRegistry", "ModelRegistry", "ModelVersion",
           "is_finite_number", "open_model_registry", "promotion_decision"]


def open_model_registry(settings: Settings) -> ModelRegistry:
    """The registry for this run's backend. Hopsworks is imported only when it is the chosen backend."""
    if settings.backend == "local":
        return LocalModelRegistry(settings.home)
    from cryptocast.registry.hopsworks import HopsworksModelRegistry

    return HopsworksModelRegistry(settings)
