"""Known holes: days an upstream has confirmed it does not have, so no run asks for them forever.

Binance once never returned 2024-12-24; alternative.me never had 2018-04-14..16 and 2024-10-26. A day
counts as *asked* when a request covering it succeeded without it while the group already has a later
day (so the day is a hole, not a day the upstream has not published yet). Once a day has been asked
for on `CRYPTOCAST_HOLE_ASKS` different days spanning at least `CRYPTOCAST_HOLE_DAYS` days, it is a
*known hole* of that source: the update skips it, which also keeps the Fear & Greed request (which can
only reach back "the newest N days") from reaching back to the oldest hole every day. `status` lists
known holes per group. Switching source (say, setting CRYPTO_API_KEY) starts counting afresh.

Where the record lives: a tiny feature group, `upstream_holes`, written through the same store
interface as every other group, so it survives between runs wherever the store does (committed to
git with the local store, in Hopsworks with that backend) and needs nothing from either backend. It
is append-only, one row per (group, source, day, day asked), so recording an ask never changes a
stored row. A CSV import records the days its export lacks too (source "csv FILE"): never a known
hole of an upstream, but the update does not ask for them while the group is otherwise up to date,
so an offline run on exports that reach the last complete day needs no network. This module is its
only reader and writer; the rest of the code sees `HoleBook`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from cryptocast.features import Column, GroupSpec, empty_frame, validate
from cryptocast.settings import Settings
from cryptocast.stores import FeatureStore

log = logging.getLogger(__name__)

CSV_SOURCE = "csv "  # the source of the days a CSV import lacked: "csv FILE"

HOLES = GroupSpec(
    "upstream_holes",
    1,
    "Days an upstream API answered without, one row per day it was asked; enough asks make a known hole",
    ("feature_group", "source", "day", "asked_on"),
    "asked_on",
    (
        Column("feature_group", "str", "the feature group the day is missing from"),
        Column("source", "str", "the upstream that was asked, e.g. 'binance SOLUSDT'"),
        Column("day", "date", "the day the upstream answered without"),
        Column("asked_on", "date", "the day of the run that asked (its as-of day)"),
    ),
)


class HoleBook:
    """The asks recorded so far, and the ones this run adds (written by `save`)."""

    def __init__(self, store: FeatureStore, settings: Settings) -> None:
        self.store = store
        self.asks_needed = settings.hole_asks
        self.days_needed = settings.hole_days
        self.asked_on = pd.Timestamp(min(settings.as_of, settings.today))
        group = store.get_feature_group(HOLES)
        self.asks = group.read() if group is not None else empty_frame(HOLES)
        self.new: list[pd.DataFrame] = []

    def known(self, group: str, source: str) -> set[pd.Timestamp]:
        """Days of `group` that `source` has been asked for often enough, over long enough."""
        asks = self.asks[(self.asks["feature_group"] == group) & (self.asks["source"] == source)]
        spans = asks.groupby("day")["asked_on"].agg(["count", "min", "max"])
        enough = (spans["count"] >= self.asks_needed) & ((spans["max"] - spans["min"]).dt.days >= self.days_needed)
        return set(spans.index[enough])

    def absent_from_imports(self, group: str) -> set[pd.Timestamp]:
        """Days of `group` that a CSV import (source "csv FILE") did not hold: the export's own holes."""
        asks = self.asks[(self.asks["feature_group"] == group) & self.asks["source"].str.startswith(CSV_SOURCE)]
        return set(asks["day"])

    def record(self, group: str, source: str, days: Iterable[pd.Timestamp]) -> None:
        """`source` answered without these days of `group` in this run."""
        days = sorted(set(days))
        if days:
            self.new.append(pd.DataFrame({"feature_group": group, "source": source, "day": days,
                                          "asked_on": self.asked_on}))

    def save(self) -> None:
        """Append this run's asks (an upsert of rows that never change, so a rerun adds nothing)."""
        if not self.new:
            return
        rows = validate(HOLES, pd.concat(self.new, ignore_index=True), "known holes")
        result = self.store.get_or_create_feature_group(HOLES).insert(rows)
        log.info("%s v%d: %s", HOLES.name, HOLES.version, result)
        self.new = []
