"""`feature_store/groups.json`: the store's own record of every group's commits, kept outside their logs.

A Delta log cannot vouch for itself: delete its newest commit and a reader sees the version before,
delete the whole `_delta_log` and the group reads as never written, edit a `commitInfo` and
`history` shows what the edit says. So the store records, for every group version it wrote:

    first        the oldest version still restorable (the start of the time-travel window)
    latest       the newest version committed
    commits      the SHA-256 of every commit file first..latest
    checkpoints  the SHA-256 of every checkpoint the store made in that range
    pending      the commit being made (version, SHA-256), written before its file is created
    maintained   when the group's log was last checkpointed, trimmed and vacuumed (ms since the epoch)

`pending` makes a crash harmless: a commit whose file was never created is not missing, and one
that was created is accepted only with the bytes announced. Each change is one atomic write of
the whole file, made by a run that holds the store lock.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptocast.atomic import atomic_write_bytes
from cryptocast.errors import StoreError

LEDGER = "groups.json"
FORMAT = 1


class Ledger:
    """The record file of one store; every method re-reads it, so separate objects never disagree."""

    def __init__(self, root: Path) -> None:
        self.path = root / LEDGER

    def groups(self) -> dict[str, dict]:
        try:
            data = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"the feature store's record {self.path} is unreadable ({type(exc).__name__}); "
                             "restore it from a copy of the store") from None
        groups = data.get("groups") if isinstance(data, dict) and data.get("format") == FORMAT else None
        if not isinstance(groups, dict) or not all(_sound(e) for e in groups.values()):
            raise StoreError(f"the feature store's record {self.path} is damaged; restore it from a copy of the store")
        return groups

    def group(self, key: str) -> dict | None:
        return self.groups().get(key)

    def put(self, key: str, entry: dict | None) -> None:
        """Replace (or with None, drop) one group's entry, atomically; the caller holds the store lock."""
        groups = self.groups()
        if entry is None:
            groups.pop(key, None)
        else:
            groups[key] = entry
        text = json.dumps({"format": FORMAT, "groups": groups}, sort_keys=True, separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path, text.encode() + b"\n")


def _sound(entry: object) -> bool:
    """An entry has the fields every reader relies on, with their types."""
    if not isinstance(entry, dict):
        return False
    ints = all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool)
               for k in ("first", "latest", "maintained"))
    tables = all(isinstance(entry.get(k), dict) and all(isinstance(v, str) for v in entry[k].values())
                 for k in ("commits", "checkpoints"))
    pending = entry.get("pending")
    announced = pending is None or (isinstance(pending, dict) and isinstance(pending.get("version"), int)
                                    and isinstance(pending.get("sha256"), str))
    # the oldest restorable version is the first commit, or one a checkpoint lets delta-rs open alone
    starts = ints and tables and (entry["first"] == 0 or str(entry["first"]) in entry["checkpoints"])
    return starts and announced
