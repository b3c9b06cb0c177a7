"""The store stays small: checkpoints, a time-travel window, vacuum and temp clean-up (issue 20, 8).

Before: nothing was ever deleted (a year of daily runs: 3,210 files), `verify` replayed every commit
since the first, and `.tmp` files of killed runs stayed forever. Now a write runs each group's
maintenance once it is due, measured in the commits' own times (the clock is simulated here).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.stores import delta, local
from cryptocast.stores.ledger import LEDGER, Ledger
from cryptocast.stores.local import LocalFeatureStore

import faults
from conftest import error_lines
from grouprows import SOL, candles

DAY_MS = 86_400_000
WINDOW, EVERY = 6, 2


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def clock(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(delta, "_now_ms", clock)
    monkeypatch.setattr(local, "WINDOW_DAYS", WINDOW)
    monkeypatch.setattr(local, "MAINTAIN_EVERY_DAYS", EVERY)
    monkeypatch.setattr(local, "COMPACT_SLACK", 3)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    for name in ("HOPSWORKS_API_KEY", "CRYPTOCAST_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    return clock


def daily_runs(home: Path, clock: Clock, days: int) -> dict[int, tuple[int, pd.DataFrame]]:
    """One insert a simulated day; each version's commit time and rows, as they were when committed."""
    group = LocalFeatureStore(home).get_or_create_feature_group(SOL)
    seen = {}
    for n in range(days):
        clock.ms += DAY_MS
        group.insert(candles([str(dt.date(2024, 1, 1) + dt.timedelta(days=n))]))
        for version in range(len(seen), group.table.snapshot().version + 1):
            seen[version] = (clock.ms, group.read(version=version))
    return seen


def test_every_version_in_the_window_stays_restorable_and_older_ones_are_gone(tmp_path, clock, capsys):
    home = tmp_path / "home"
    seen = daily_runs(home, clock, 25)
    group = LocalFeatureStore(home).get_feature_group(SOL)
    entry = Ledger(home / "feature_store").group("solana_v1")
    first, latest = entry["first"], entry["latest"]
    assert first > 0
    cutoff = entry["maintained"] - WINDOW * DAY_MS
    assert all(v >= first for v, (t, _) in seen.items() if t >= cutoff)  # the window's promise
    for version in range(first, latest + 1):
        pd.testing.assert_frame_equal(group.read(version=version), seen[version][1], check_exact=True)
    with pytest.raises(StoreError, match="older than the time-travel window"):
        group.read(version=first - 1)
    assert cryptocast_main(["rollback", "solana", "--to", str(first - 1)]) == 1
    assert "older than the time-travel window and cannot be restored" in error_lines(capsys)[0]
    log_dir = group.directory / "_delta_log"
    assert min(int(p.name[:20]) for p in log_dir.iterdir() if p.name[0] == "0") == first
    assert [c.version for c in group.history()][-1] == first
    group.rollback(first)
    pd.testing.assert_frame_equal(group.read(), seen[first][1], check_exact=True)
    assert cryptocast_main(["verify"]) == 0


def test_the_log_and_the_data_files_stop_growing(tmp_path, clock):
    home = tmp_path / "home"
    daily_runs(home, clock, 20)
    counted = len(list((home / "feature_store").rglob("*")))
    group = LocalFeatureStore(home).get_feature_group(SOL)
    for n in range(20, 60):
        clock.ms += DAY_MS
        group.insert(candles([str(dt.date(2024, 1, 1) + dt.timedelta(days=n))]))
    assert len(list((home / "feature_store").rglob("*"))) <= 1.5 * counted
    used = set()  # every data file left is one a restorable version uses
    entry = Ledger(home / "feature_store").group("solana_v1")
    for version in range(entry["first"], entry["latest"] + 1):
        used |= {f.path for f in group.table.snapshot(version).files}
    assert {p.name for p in group.directory.glob("*.parquet")} == used


def test_a_checkpoint_is_recorded_and_verify_starts_from_it(tmp_path, clock):
    home = tmp_path / "home"
    daily_runs(home, clock, 12)
    entry = Ledger(home / "feature_store").group("solana_v1")
    assert str(entry["first"]) in entry["checkpoints"]
    log_dir = home / "feature_store" / "solana_v1" / "_delta_log"
    assert not (log_dir / f"{entry['first'] - 1:020d}.json").exists()
    assert cryptocast_main(["verify"]) == 0


def test_temporary_files_of_killed_runs_are_removed(tmp_path, clock):
    home = tmp_path / "home"
    daily_runs(home, clock, 1)
    group_dir = home / "feature_store" / "solana_v1"
    left = [group_dir / ".2024-abc.parquet.123.0a1b2c3d.tmp", group_dir / "_delta_log" / ".x.json.9.00000000.tmp",
            home / "feature_store" / f".{LEDGER}.77.deadbeef.tmp",
            group_dir / "_delta_log" / "00000000000000000001.checkpoint.parquet#1"]
    for path in left:
        path.write_bytes(b"half")
    kept = group_dir / "notes.txt"
    kept.write_text("not ours to delete")
    daily_runs(home, clock, EVERY + 1)
    assert not [p for p in left if p.exists()]
    assert kept.exists()


@pytest.mark.parametrize("damage", ["newest commit deleted", "commitInfo edited"])
def test_after_compaction_and_vacuum_the_record_still_sees_a_lost_or_edited_commit(tmp_path, clock, capsys, damage):
    home = tmp_path / "home"
    daily_runs(home, clock, 15)
    entry = Ledger(home / "feature_store").group("solana_v1")
    assert entry["first"] > 0 and any(c.operation == "OPTIMIZE" for c in
                                      LocalFeatureStore(home).get_feature_group(SOL).history())
    faults.damage_log(home / "feature_store" / "solana_v1", damage)  # commit 1 of those left: first + 1
    target = entry["latest"] - 1 if damage.startswith("newest") else entry["first"]
    assert cryptocast_main(["verify"]) == 1
    assert f"rollback solana --to {target}`" in error_lines(capsys)[0]
    assert cryptocast_main(["rollback", "solana", "--to", str(target)]) == 0
    assert cryptocast_main(["verify"]) == 0
