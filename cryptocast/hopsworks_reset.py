"""`python -m cryptocast hopsworks-reset --yes-delete-cryptocast-groups`: start over on Hopsworks.

A group Hopsworks keeps is used as it is (`get_or_create` returns it unchanged), so a group that is not
what cryptocast creates (left in the client's DELTA format by a first run a hosted project refused, say)
stays in the way whatever the settings say; the store refuses it in one line that names this command.
It deletes cryptocast's own feature view and feature groups, each named here in full with its version,
and nothing else: not other groups in the project, not the model registry or its promotion log. Their
rows go with them: `feature_backfill.py` writes them again, and the forecasts made so far are lost.

The view goes first: once one of its groups is gone, the client cannot even look the view up. It goes even
though the models were registered with it (forced: the client refuses a view in use otherwise); the model
versions stay, their link to the view does not. Without
the confirmation flag nothing is deleted; the error line lists what would be.

A name is not proof: `bitcoin` v1 may be any project's own group. A group is cryptocast's when its features
are exactly the ones cryptocast gives it (whatever its format or types, so a group left in another format
qualifies), the view when it reads only cryptocast's groups (a view one of whose groups is gone reads nothing
and goes); if one under cryptocast's names is not, nothing at all is deleted and the line names it.
"""

from __future__ import annotations

from typing import Any, TextIO

from cryptocast.errors import CryptocastError
from cryptocast.features import FEATURE_VIEW, INGESTED_GROUPS
from cryptocast.holes import HOLES
from cryptocast.settings import Settings
from cryptocast.status import ALL_GROUPS
from cryptocast.stores import open_feature_store

CONFIRM = "--yes-delete-cryptocast-groups"
# Every group the scripts write: the known groups (status.ALL_GROUPS: forecasts, and any group added there later)
# and the hole book, which status does not list. The doctor inspects the same ones.
GROUPS = (*INGESTED_GROUPS, HOLES, *(g for g in ALL_GROUPS.values() if g not in INGESTED_GROUPS))
VIEWS = (FEATURE_VIEW,)


def targets() -> list[str]:
    """What the command deletes, in the order it does."""
    return ([f"feature view {v.name} v{v.version}" for v in VIEWS]
            + [f"feature group {g.name} v{g.version}" for g in GROUPS])


def reset(settings: Settings, confirmed: bool, out: TextIO) -> None:
    """Delete cryptocast's view and groups on Hopsworks, one line each; without `confirmed`, refuse."""
    if settings.backend != "hopsworks":
        raise CryptocastError("nothing to reset on the local backend: this deletes cryptocast's groups on Hopsworks "
                              "(set HOPSWORKS_API_KEY); the local store has `rollback` instead")
    if not confirmed:
        raise CryptocastError(f"this deletes {', '.join(targets())} on Hopsworks, with their rows; nothing was "
                              f"deleted: run it again with {CONFIRM} to do it")
    store = open_feature_store(settings)
    with store.lock():
        _refuse_foreign(store)
        _delete(store, out)


def _refuse_foreign(store: Any) -> None:
    """Raise, before anything is deleted, if the view under cryptocast's name reads groups cryptocast does not make,
    or a group under one of cryptocast's names has features cryptocast does not give it."""
    from cryptocast.stores.hopsworks import BROKEN_VIEW

    for view in VIEWS:
        handle = store.view_state(view)
        if handle is None or handle == BROKEN_VIEW:  # a broken view reads nothing any more
            continue
        read = sorted({str(g.name) for g in handle.query.featuregroups})
        if not set(read) <= {part.group.name for part in (view.left, *view.joins)}:
            raise CryptocastError(_foreign(f"feature view {view.name} v{view.version}",
                                           f"reads groups ({', '.join(read)})"))
    for spec in GROUPS:
        handle = store.session.call(f"look up feature group {spec.name} v{spec.version}", store.fs.get_feature_group,
                                    name=spec.name, version=spec.version)
        if handle is None:
            continue
        features = sorted(str(f.name).lower() for f in handle.columns)
        if features != sorted(c.name for c in spec.columns):
            raise CryptocastError(_foreign(f"feature group {spec.name} v{spec.version}",
                                           f"has features ({', '.join(features)})"))


def _foreign(what: str, why: str) -> str:
    return (f"{what} on Hopsworks {why} that are not cryptocast's: it is not cryptocast's to delete; nothing was "
            "deleted (delete or rename it in the project's UI if cryptocast should have the name, then run this again)")


def _delete(store: Any, out: TextIO) -> None:
    drops = [lambda v=v: store.drop_feature_view(v, force=True) for v in VIEWS] + [
        lambda g=g: store.drop_feature_group(g) for g in GROUPS]
    for name, drop in zip(targets(), drops, strict=True):
        print(f"{'deleted' if drop() else 'not there'}: {name}", file=out, flush=True)
