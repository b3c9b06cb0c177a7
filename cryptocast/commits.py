"""`history` and `rollback`: every write to a local group is a commit that can be listed and undone.

Both are features of the local (Delta Lake) store. Hopsworks keeps its own commit history per
feature group in the cluster; these commands say so instead of pretending to manage it.
"""

from __future__ import annotations

from cryptocast.errors import CryptocastError, StoreError
from cryptocast.status import ALL_GROUPS
from cryptocast.stores import FeatureStore
from cryptocast.stores.delta import group_argument
from cryptocast.stores.local import LocalFeatureGroup, LocalFeatureStore


def local_store(store: FeatureStore, command: str) -> LocalFeatureStore:
    if not isinstance(store, LocalFeatureStore):
        raise CryptocastError(f"{command} is a local-backend feature (Delta Lake commits under CRYPTOCAST_HOME); "
                              f"the {store.backend} backend keeps its own commit history, in {store.backend}")
    return store


def find_group(store: LocalFeatureStore, name: str) -> LocalFeatureGroup:
    """A group by name (this code's version) or as `<name>_v<version>` (any version on disk)."""
    if name in ALL_GROUPS:
        group = store.get_feature_group(ALL_GROUPS[name])
        if group is None:
            raise StoreError(f"feature group {name} v{ALL_GROUPS[name].version} does not exist in {store.root}")
        return group
    stored = store.stored_groups()
    if name in stored:
        return stored[name]
    known = sorted({*ALL_GROUPS, *stored})
    raise CryptocastError(f"unknown group '{name}'; known: {', '.join(known)}")


def history_lines(group: LocalFeatureGroup) -> list[str]:
    """Newest first: version, UTC time, operation, rows after it, what it did and which program did it."""
    lines = []
    for c in group.history():
        rows = "?" if c.rows is None else str(c.rows)
        by = f" ({c.program})" if c.program else ""
        lines.append(f"{c.version:>5}  {c.timestamp}  {c.operation:<12} {rows:>6} rows  {c.summary}{by}")
    return lines


def command_name(group: LocalFeatureGroup) -> str:
    """The name `find_group` reaches this group by: the bare name means this code's version only."""
    return group_argument(group.spec)


def rollback(group: LocalFeatureGroup, version: int) -> str:
    snap = group.rollback(version)
    if snap is None:
        return (f"{group.spec.name} v{group.spec.version}: started empty; its next write begins a new history "
                "(feature_backfill.py refetches its rows)")
    return (f"{group.spec.name} v{group.spec.version}: rows of version {version} are live again as version "
            f"{snap.version} ({snap.rows} rows); undo with `rollback {command_name(group)} --to {snap.version - 1}`")
