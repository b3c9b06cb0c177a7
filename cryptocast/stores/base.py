"""The storage interface the pipeline is written against, in a feature store's own nouns.

The local store implements it on disk; the Hopsworks store maps the same calls onto
`get_or_create_feature_group`, `insert` (upsert on the primary key), filtered reads and a feature view.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from cryptocast.errors import DataValidationError, StoreError
from cryptocast.features import GroupSpec, ViewSpec

log = logging.getLogger(__name__)


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

    def insert(self, df: pd.DataFrame, replace: bool = False) -> InsertResult:
        """Upsert validated rows on the primary key, atomically.

        Rows whose key is stored with other values are refused (DataValidationError, nothing written)
        unless `replace`; then each change is logged (`check_changes`).
        """
        ...


class FeatureStore(Protocol):
    backend: str

    def get_or_create_feature_group(self, spec: GroupSpec) -> FeatureGroup: ...

    def get_feature_group(self, spec: GroupSpec) -> FeatureGroup | None:
        """The group if it exists, without creating it (status must not change the store)."""
        ...

    def read_feature_view(self, view: ViewSpec, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
        """The view's rows whose left event time lies in [start, end], as `features.conform_view` shapes them.

        Raises StoreError naming the first group of the view that does not exist.
        """
        ...

    def lock(self) -> AbstractContextManager[None]:
        """Serialise whole pipeline runs against the same store."""
        ...


def view_groups(store: FeatureStore, view: ViewSpec) -> dict[str, FeatureGroup]:
    """Every group the view reads, by name; a missing one stops the read with what to run."""
    groups = {}
    for part in (view.left, *view.joins):
        group = store.get_feature_group(part.group)
        if group is None:
            raise StoreError(f"feature group {part.group.name} v{part.group.version} does not exist: "
                             "run feature_backfill.py")
        groups[part.group.name] = group
    return groups


def compare_rows(spec: GroupSpec, stored: pd.DataFrame, incoming: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Masks over `incoming`: rows whose key is new, and rows whose key exists with different values.

    Every store counts an upsert this way, so "2 added, 1 updated" means the same on each backend.
    """
    key = list(spec.primary_key)
    joined = incoming.merge(stored, on=key, how="left", suffixes=("", "_old"), indicator=True)
    is_new = joined["_merge"] == "left_only"
    same = pd.Series(True, index=joined.index)
    for c in spec.column_names:
        if c not in key:
            same &= (joined[c] == joined[f"{c}_old"]) | (joined[c].isna() & joined[f"{c}_old"].isna())
    return is_new.set_axis(incoming.index), (~is_new & ~same).set_axis(incoming.index)


def insert_result(is_new: pd.Series, changed: pd.Series) -> InsertResult:
    return InsertResult(int(is_new.sum()), int(changed.sum()), int((~is_new & ~changed).sum()))


def check_changes(spec: GroupSpec, stored: pd.DataFrame, incoming: pd.DataFrame, changed: pd.Series,
                  replace: bool) -> None:
    """No silent rewrite of history: changed stored rows need `replace`, and then each one is logged.

    A CSV export of the wrong asset, or an API that revised a past candle, must not overwrite what
    is stored unless the operator asked for it (feature_backfill.py --replace). The refusal is about the
    rows, not the store, so a run fails that group alone and still writes the others.
    """
    if not changed.any():
        return
    key = list(spec.primary_key)
    pairs = incoming[changed].merge(stored, on=key, suffixes=("", "_old"))
    lines = [_describe_change(spec, row) for row in pairs.to_dict("records")]
    label = f"feature group {spec.name} v{spec.version}"
    if not replace:
        raise DataValidationError(f"{label}: {len(lines)} stored row(s) would change ({lines[0]}"
                         f"{' ...' if len(lines) > 1 else ''}); nothing written; pass --replace to "
                         "feature_backfill.py to change stored rows")
    for line in lines:
        log.warning("%s: replacing %s", label, line)


def _describe_change(spec: GroupSpec, row: dict) -> str:
    def text(value: object) -> str:
        return value.strftime("%Y-%m-%d") if isinstance(value, pd.Timestamp) else f"{value:.10g}" \
            if isinstance(value, float) else str(value)

    key = " ".join(text(row[k]) for k in spec.primary_key)
    diffs = [f"{c} {text(row[f'{c}_old'])} -> {text(row[c])}" for c in spec.column_names
             if c not in spec.primary_key and row[c] != row[f"{c}_old"]]
    return f"{key}: {', '.join(diffs)}"
