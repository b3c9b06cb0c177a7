"""`python -m cryptocast verify`: read back everything the local store and registry ever recorded.

Every commit of every group version is replayed and every data file any version uses is checked
against its SHA-256, size, row count and statistics; every model version's files against its
checksums. The first damaged file stops the check with its name (exit 1).
"""

from __future__ import annotations

from cryptocast.commits import local_store
from cryptocast.registry import LocalModelRegistry
from cryptocast.settings import Settings
from cryptocast.stores import open_feature_store


def verify(settings: Settings) -> list[str]:
    """One line per group version and per model; raises StoreError at the first damaged file."""
    store = local_store(open_feature_store(settings), "verify")
    lines = []
    for name, group in store.stored_groups().items():
        snap = group.verify()
        lines.append(f"{name}: {snap.version + 1} commit(s), {len(snap.files)} live file(s), {snap.rows} rows ok")
    return lines + LocalModelRegistry(settings.home).verify()
