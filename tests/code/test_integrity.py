"""Reads check what writes recorded: a flipped bit is an error naming the file, never different prices.

Bits are flipped at many positions of every kind of stored file (data, commits, a checkpoint, model
files); each flip must be detected by `verify`, or provably harmless: every version of the group
reads back exactly as before.
"""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores import delta
from cryptocast.stores.local import LocalFeatureStore

from conftest import error_lines
from grouprows import ALL, SOL, candles
from modelfiles import make_artifacts

FLIPS_PER_FILE = 40


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A solana group with a checkpoint (every 2 commits here), a replaced row, and one registered model."""
    monkeypatch.setattr(delta, "CHECKPOINT_EVERY", 2)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOPSWORKS_API_KEY", raising=False)
    monkeypatch.delenv("CRYPTOCAST_BACKEND", raising=False)
    home = tmp_path / "home"
    group = LocalFeatureStore(home).get_or_create_feature_group(SOL)
    group.insert(candles(ALL[:3]))
    group.insert(candles(ALL[3:]))
    group.insert(candles(["2024-01-01"], {"2024-01-01": -0.5}), replace=True)
    LocalModelRegistry(home).register_and_promote("sol_lstm", make_artifacts(tmp_path / "model"),
                                                  {"rel_mae_mean": 1.0}, "m", {})
    return home


def every_version(home: Path) -> list[pd.DataFrame]:
    group = LocalFeatureStore(home).get_feature_group(SOL)
    return [group.read(version=v) for v in range(group.table.snapshot().version + 1)]


def verify_fails(home: Path) -> bool:
    from cryptocast.settings import load_settings
    from cryptocast.verify import verify

    try:
        verify(load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_BACKEND": "local"}))
    except StoreError:
        return True
    return False


def flip_each(path: Path, positions: list[int], check) -> tuple[int, int]:
    """Flip one bit at each position in turn (restoring the file after each); count detected and harmless."""
    original = path.read_bytes()
    detected = harmless = 0
    for position in positions:
        data = bytearray(original)
        data[position] ^= 1 << (position % 8)
        path.write_bytes(bytes(data))
        try:
            outcome = check()
        finally:
            path.write_bytes(original)
        detected += outcome == "detected"
        harmless += outcome == "harmless"
    return detected, harmless


def stored_files(home: Path) -> dict[str, Path]:
    group = LocalFeatureStore(home).get_feature_group(SOL)
    log = group.directory / "_delta_log"
    live = sorted(group.table.snapshot().files, key=lambda f: f.size)
    return {"data": group.directory / live[-1].path,
            "first commit": log / f"{0:020d}.json", "newest commit": max(log.glob("0*.json")),
            "checkpoint": next(log.glob("*.checkpoint.parquet"))}


@pytest.mark.parametrize("kind", ["data", "first commit", "newest commit", "checkpoint"])
def test_every_flipped_bit_in_the_store_is_detected_or_harmless(home, kind):
    path = stored_files(home)[kind]
    before = every_version(home)
    positions = sorted(random.Random(kind).sample(range(path.stat().st_size), FLIPS_PER_FILE))

    def check() -> str:
        if verify_fails(home):
            return "detected"
        after = every_version(home)
        assert len(after) == len(before)
        for old, new in zip(before, after, strict=True):
            pd.testing.assert_frame_equal(new, old, check_exact=True)  # else: different prices, undetected
        return "harmless"

    detected, harmless = flip_each(path, positions, check)
    assert detected + harmless == FLIPS_PER_FILE
    assert detected >= (FLIPS_PER_FILE if kind == "data" else 1)


def test_a_flipped_bit_in_live_data_stops_the_read_naming_the_file(home):
    path = stored_files(home)["data"]
    positions = sorted(random.Random(1).sample(range(path.stat().st_size), FLIPS_PER_FILE))
    detected, _ = flip_each(path, positions, lambda: _read_outcome(home))
    assert detected == FLIPS_PER_FILE


def _read_outcome(home: Path) -> str:
    try:
        LocalFeatureStore(home).get_feature_group(SOL).read()
    except StoreError as exc:
        assert "is damaged" in str(exc) or "not readable Parquet" in str(exc), exc
        return "detected"
    return "harmless"


@pytest.mark.parametrize("name", ["artifacts/model.keras", "artifacts/extra/notes.txt", "version.json",
                                  "checksums.json"])
def test_every_flipped_bit_in_a_model_file_is_detected(home, name):
    path = home / "model_registry" / "sol_lstm" / "v1" / name
    positions = sorted(random.Random(name).sample(range(path.stat().st_size), min(20, path.stat().st_size)))

    def check() -> str:
        try:
            LocalModelRegistry(home).production("sol_lstm")
        except StoreError:
            return "detected" if verify_fails(home) else "read only"
        return "harmless"

    detected, harmless = flip_each(path, positions, check)
    assert detected == len(positions), (detected, harmless)


def test_the_production_pointer_cannot_silently_name_another_version(home, tmp_path):
    registry = LocalModelRegistry(home)
    registry.register("sol_lstm", make_artifacts(tmp_path / "model2", seed=2), {"rel_mae_mean": 2.0}, "m2", {})
    pointer = home / "model_registry" / "sol_lstm" / "production.json"
    pointer.write_text(pointer.read_text().replace('"version": 1', '"version": 2'))  # one bit: '1' -> '2'... or '3'
    with pytest.raises(StoreError, match="production.json is damaged"):
        registry.production("sol_lstm")


# --- python -m cryptocast verify ---------------------------------------------------------------------


def test_verify_passes_on_a_sound_store_and_says_what_it_checked(home, capsys):
    assert cryptocast_main(["verify"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "solana_v1: 3 commit(s), 3 live file(s), 4 rows ok",
        "model sol_lstm: 1 version(s) ok, production 1",
    ]


@pytest.mark.parametrize("target", ["data", "model"])
def test_verify_exits_1_naming_the_first_damaged_file(home, capsys, target):
    if target == "data":  # a file only an older version uses: reads of today's rows never open it
        group = LocalFeatureStore(home).get_feature_group(SOL)
        live = {f.path for f in group.table.snapshot().files}
        path = next(p for p in group.directory.glob("*.parquet") if p.name not in live)
    else:
        path = home / "model_registry" / "sol_lstm" / "v1" / "artifacts" / "weights.npz"
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 0x40]))
    assert cryptocast_main(["verify"]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: verify: ") and str(path) in lines[0], lines


@pytest.mark.parametrize("damage", ["missing", "garbage"])
def test_a_missing_or_garbage_data_file_is_one_line_exit_1_for_every_reader(home, capsys, damage):
    group = LocalFeatureStore(home).get_feature_group(SOL)
    path = group.directory / sorted(f.path for f in group.table.snapshot().files)[-1]
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"PAR1 not really parquet PAR1")
    for command in (["status"], ["export", "solana"], ["verify"]):
        assert cryptocast_main(command) == 1
        lines = error_lines(capsys)
        assert len(lines) == 1 and path.name in lines[0], lines


@pytest.mark.parametrize("damage", ["garbage checkpoint", "garbage newest commit", "a commit missing"])
def test_a_damaged_log_is_one_line_exit_1_for_every_reader_and_the_rollback_repairs_it(home, capsys, damage):
    """Before: `history` opened the table outside the guard that turns delta-rs errors into one line: exit 2.
    Since the store records its commits (issue 20), the rollback the line names repairs the group."""
    files = stored_files(home)
    if damage == "garbage checkpoint":
        files["checkpoint"].write_bytes(b"garbage")
    elif damage == "garbage newest commit":
        files["newest commit"].write_text("{not json\n")
    else:  # a commit after the checkpoint whose predecessor is gone
        newest = files["newest commit"]
        newest.with_name(f"{int(newest.stem) + 2:020d}.json").write_bytes(newest.read_bytes())
    for command in (["status"], ["export", "solana"], ["verify"], ["history", "solana"]):
        assert cryptocast_main(command) == 1, command
        lines = error_lines(capsys)
        assert len(lines) == 1 and "solana" in lines[0] and "rollback solana --to " in lines[0], (command, lines)
    assert cryptocast_main(["rollback", "solana", "--to", "0"]) == 0
    assert cryptocast_main(["verify"]) == 0


def test_a_lost_first_commit_is_damage_not_an_absent_group(home, capsys):
    """Before: a group whose commit 0 was gone counted as not existing: `status` said nothing was stored, and the
    next write started a second history at version 0 beside the old one."""
    first = stored_files(home)["first commit"]
    first.unlink()
    log = sorted(p.name for p in first.parent.iterdir())
    group = LocalFeatureStore(home).get_feature_group(SOL)
    assert group is not None
    with pytest.raises(StoreError, match="00000000000000000000.json is missing"):
        group.read()
    assert verify_fails(home)
    with pytest.raises(StoreError, match="00000000000000000000.json is missing"):
        group.insert(candles(["2024-01-09"]))
    assert sorted(p.name for p in first.parent.iterdir()) == log
    assert cryptocast_main(["verify"]) == 1
    assert "rollback solana --to -1" in error_lines(capsys)[0]
