"""The storage interface the pipeline is written against, in a feature store's own nouns.

The local store implements it on disk; a Hopsworks implementation maps the same calls onto
`get_or_create_feature_group`, `insert` (upsert on the primary key) and filtered reads.
"""

from __future__ import annotations

import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from cryptocast.features import GroupSpec


@dataclass(frozen=True)
class InsertResult:
    inserted: int
    updated: int
    unchanged: int

    def __str__(self) -> str:
        return f"{self.inserted} added, {self.updated} updated, {self.unchanged} unchanged"


class FeatureGroup(Protocol):
    spec: GroupSpec

    def read(self, start: dt.date | None = None, end: dt.date | None = None) -> pd.DataFrame:
        """Rows whose event time lies in [start, end] (inclusive; None = open), sorted by key."""
        ...

    def insert(self, df: pd.DataFrame) -> InsertResult:
        """Upsert validated rows on the primary key, atomically."""
        ...


class FeatureStore(Protocol):
    backend: str

    def get_or_create_feature_group(self, spec: GroupSpec) -> FeatureGroup: ...

    def get_feature_group(self, spec: GroupSpec) -> FeatureGroup | None:
        """The group if it exists, without creating it (status must not change the store)."""
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Serialise whole pipeline runs against the same store."""
        ...
