"""Pick the storage backend named by the settings; the rest of the code sees only the interface."""

from __future__ import annotations

from cryptocast.settings import Settings
from cryptocast.stores.base import FeatureGroup, FeatureStore, InsertResult
from cryptocast.stores.local import LocalFeatureStore

__all__ = ["FeatureGroup", "FeatureStore", "InsertResult", "open_feature_store"]


def open_feature_store(settings: Settings) -> FeatureStore:
    """The feature store for this run. Hopsworks is imported only when it is the chosen backend."""
    if settings.backend == "local":
        return LocalFeatureStore(settings.home)
    from cryptocast.stores.hopsworks import HopsworksFeatureStore

    return HopsworksFeatureStore(settings)
