"""What only the embedded Parquet store promises: files, bytes, atomicity, manifests, the lock.

The behaviour every store shares (round trips, filters, upserts, the view) is in test_store_contract.py.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

from cryptocast.errors import StoreError
from cryptocast.stores import local
from cryptocast.stores.base import InsertResult
from cryptocast.stores.local import LocalFeatureStore

from grouprows import ALL, CANDLE_DTYPES, FNG, SOL, candles, expected_candles


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def group_dir(home: Path, spec) -> Path:
    return home / "feature_store" / f"{spec.name}_v{spec.version}"


def test_empty_insert_changes_nothing(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    before = files(tmp_path)
    assert group.insert(candles(ALL).iloc[:0]) == InsertResult(0, 0, 0)
    assert files(tmp_path) == before


# --- determinism -----------------------------------------------------------------------------------


def test_same_rows_in_different_orders_give_identical_bytes(tmp_path):
    a = LocalFeatureStore(tmp_path / "a").get_or_create_feature_group(SOL)
    a.insert(candles(ALL))

    b = LocalFeatureStore(tmp_path / "b").get_or_create_feature_group(SOL)
    b.insert(candles(["2024-01-02"]))
    b.insert(candles(["2023-12-31", "2024-01-01"]))
    b.insert(candles(["2023-12-30"]))

    c = LocalFeatureStore(tmp_path / "c").get_or_create_feature_group(SOL)
    c.insert(candles(ALL, {"2024-01-01": -7.0, "2023-12-30": 3.0}))  # a detour through other values
    c.insert(candles(["2024-01-01", "2023-12-30"]))

    fa, fb, fc = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(fa) == 3  # manifest + two years
    assert list(fa) == list(fb) == list(fc)
    for name in fa:
        assert fa[name] == fb[name], name
        assert fa[name] == fc[name], name


def test_reinserting_identical_rows_leaves_every_file_unchanged(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    before = files(tmp_path)
    assert group.insert(candles(ALL)) == InsertResult(0, 0, 4)
    assert group.insert(candles(["2024-01-01"])) == InsertResult(0, 0, 1)
    assert files(tmp_path) == before


# --- layout ------------------------------------------------------------------------------------------


def test_one_parquet_file_per_year_plus_manifest(tmp_path):
    LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    directory = group_dir(tmp_path, SOL)
    names = sorted(p.name for p in directory.iterdir())
    assert len(names) == 3
    assert re.fullmatch(r"2023-[0-9a-f]{16}\.parquet", names[0])
    assert re.fullmatch(r"2024-[0-9a-f]{16}\.parquet", names[1])
    assert names[2] == "manifest.json"
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["partitions"] == {"2023": names[0], "2024": names[1]}
    assert manifest["primary_key"] == ["day"] and manifest["version"] == 1
    assert [c["name"] for c in manifest["columns"]] == list(CANDLE_DTYPES)


def test_daily_insert_rewrites_only_the_current_year(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    directory = group_dir(tmp_path, SOL)
    before = files(directory)
    assert group.insert(candles(["2024-01-03"])) == InsertResult(1, 0, 0)
    after = files(directory)

    old_2023 = [n for n in before if n.startswith("2023-")]
    old_2024 = [n for n in before if n.startswith("2024-")]
    new_2024 = [n for n in after if n.startswith("2024-")]
    assert len(old_2023) == len(old_2024) == len(new_2024) == 1
    assert old_2023[0] in after and after[old_2023[0]] == before[old_2023[0]]  # 2023 untouched
    assert new_2024 != old_2024  # the 2024 file was replaced by a new one...
    assert set(after) == {old_2023[0], new_2024[0], "manifest.json"}  # ...and the old one swept
    assert after["manifest.json"] != before["manifest.json"]


# --- atomicity -----------------------------------------------------------------------------------------


def test_a_crash_before_the_manifest_is_replaced_keeps_the_old_rows(tmp_path, monkeypatch):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    directory = group_dir(tmp_path, SOL)

    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst).name == "manifest.json":
            raise OSError("simulated crash while replacing the manifest")
        return real_replace(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", failing_replace)
        with pytest.raises(OSError, match="simulated crash"):
            group.insert(candles(["2024-01-03", "2023-12-31"], {"2023-12-31": 1.0}))

    fresh = LocalFeatureStore(tmp_path).get_feature_group(SOL)
    pd.testing.assert_frame_equal(fresh.read(), expected_candles(ALL), check_exact=True)
    referenced = set(json.loads((directory / "manifest.json").read_text())["partitions"].values())
    assert {p.name for p in directory.iterdir()} - referenced - {"manifest.json"}, \
        "precondition: the crash should have left unreferenced files behind"

    assert fresh.insert(candles(["2024-01-04"])) == InsertResult(1, 0, 0)
    referenced = set(json.loads((directory / "manifest.json").read_text())["partitions"].values())
    on_disk = {p.name for p in directory.iterdir()}
    assert on_disk == referenced | {"manifest.json"}
    assert all(name.endswith(".parquet") for name in referenced)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and (".tmp" in p.name or p.name.startswith(".")
                                                                     and p.name != ".lock")]
    days = LocalFeatureStore(tmp_path).get_feature_group(SOL).read()["day"].dt.strftime("%Y-%m-%d").tolist()
    assert days == [*ALL, "2024-01-04"]


# --- schema guard and damaged manifests --------------------------------------------------------------


def test_a_schema_change_in_the_manifest_is_refused(tmp_path):
    LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    path = group_dir(tmp_path, SOL) / "manifest.json"
    manifest = json.loads(path.read_text())
    close = next(c for c in manifest["columns"] if c["name"] == "close")
    close["dtype"] = "int"
    path.write_text(json.dumps(manifest))
    group = LocalFeatureStore(tmp_path).get_feature_group(SOL)
    with pytest.raises(StoreError, match="bump the group version"):
        group.read()
    with pytest.raises(StoreError, match="bump the group version"):
        group.insert(candles(["2024-01-03"]))


@pytest.mark.parametrize(
    "content",
    [
        b"this is not json {",
        b"\x00\xff\xfe\x80garbage\x9c\xc3",  # not even UTF-8
        b"[1, 2, 3]",  # JSON, but not a manifest
    ],
    ids=["text", "binary", "json-array"],
)
def test_an_unreadable_manifest_is_a_store_error_naming_the_file(tmp_path, content):
    LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    path = group_dir(tmp_path, SOL) / "manifest.json"
    path.write_bytes(content)
    with pytest.raises(StoreError) as info:
        LocalFeatureStore(tmp_path).get_feature_group(SOL).read()
    assert str(path) in str(info.value)


def test_get_feature_group_on_a_fresh_store_creates_nothing(tmp_path):
    store = LocalFeatureStore(tmp_path)
    assert store.get_feature_group(SOL) is None
    assert store.get_feature_group(FNG) is None
    assert list(tmp_path.iterdir()) == []


def test_get_or_create_then_get(tmp_path):
    store = LocalFeatureStore(tmp_path)
    store.get_or_create_feature_group(FNG)
    assert store.get_feature_group(SOL) is None
    assert store.get_feature_group(FNG) is not None
    assert sorted(p.name for p in group_dir(tmp_path, FNG).iterdir()) == ["manifest.json"]


# --- lock ----------------------------------------------------------------------------------------------


def test_a_second_run_cannot_take_the_lock_until_the_first_releases_it(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "LOCK_TIMEOUT_S", 0.2)
    held, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def first_run():
        try:
            with LocalFeatureStore(tmp_path).lock():
                held.set()
                release.wait(10)
        except BaseException as exc:  # surface it in the main thread
            failures.append(exc)
            held.set()

    thread = threading.Thread(target=first_run, daemon=True)
    thread.start()
    try:
        assert held.wait(10)
        assert failures == []
        with pytest.raises(StoreError, match="locked by another run"):
            with LocalFeatureStore(tmp_path).lock():
                pytest.fail("entered a lock that another run holds")
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive() and failures == []

    entered = []
    with LocalFeatureStore(tmp_path).lock():
        entered.append(True)
    assert entered == [True]
