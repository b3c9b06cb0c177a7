"""What only the embedded store promises: a Delta Lake table per group, its files, commits and lock.

The behaviour every store shares (round trips, filters, upserts, the view) is in test_store_contract.py;
history and rollback in test_history.py; conversion of the older layout in test_migration.py;
checksums and bit flips in test_integrity.py; crashes at every write in test_faults.py.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from cryptocast.errors import StoreError
from cryptocast.stores import delta, local
from cryptocast.stores.base import InsertResult
from cryptocast.stores.ledger import Ledger
from cryptocast.stores.local import LocalFeatureStore

from grouprows import ALL, FNG, SOL, candles, expected_candles, fng


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def group_dir(home: Path, spec) -> Path:
    return home / "feature_store" / f"{spec.name}_v{spec.version}"


def data_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.parquet"))


def commits(directory: Path) -> list[str]:
    return sorted(p.name for p in (directory / "_delta_log").glob("*.json"))


# --- the format: other Delta readers see the same table ------------------------------------------------


def test_delta_rs_reads_the_same_rows_schema_and_descriptions(tmp_path):
    LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    table = DeltaTable(str(group_dir(tmp_path, SOL)))
    theirs = pa.table(table.to_pyarrow_table()).to_pandas().sort_values("day").reset_index(drop=True)
    theirs["day"] = pd.to_datetime(theirs["day"]).astype("datetime64[ns]")
    pd.testing.assert_frame_equal(theirs, expected_candles(ALL), check_exact=True)
    assert table.metadata().name == "solana_1" and table.metadata().description == SOL.description
    fields = json.loads(table.schema().to_json())["fields"]
    assert [f["name"] for f in fields] == SOL.column_names
    assert fields[0]["metadata"] == {"comment": SOL.columns[0].description, "cryptocast.primary_key": "0",
                                     "cryptocast.event_time": "true"}
    assert table.count() == 4  # the per-file statistics other engines use are written too


def test_data_files_are_named_by_year_and_sha256_and_reproducible(tmp_path):
    for name in ("a", "b"):
        LocalFeatureStore(tmp_path / name).get_or_create_feature_group(SOL).insert(candles(ALL))
    a, b = (data_files(group_dir(tmp_path / n, SOL)) for n in ("a", "b"))
    assert a == b and len(a) == 2
    assert re.fullmatch(r"2023-[0-9a-f]{64}\.parquet", a[0]) and re.fullmatch(r"2024-[0-9a-f]{64}\.parquet", a[1])
    for name in a:
        first, second = (group_dir(tmp_path / n, SOL) / name for n in ("a", "b"))
        assert first.read_bytes() == second.read_bytes()


# --- commits -----------------------------------------------------------------------------------------


def test_each_write_is_one_commit_and_an_unchanged_write_is_none(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    directory = group_dir(tmp_path, SOL)
    assert not directory.exists()  # created by its first insert
    group.insert(candles(ALL))
    before = files(tmp_path)
    assert group.insert(candles(ALL)) == InsertResult(0, 0, 4)
    assert group.insert(candles(ALL).iloc[:0]) == InsertResult(0, 0, 0)
    assert files(tmp_path) == before
    assert commits(directory) == [f"{0:020d}.json"]


def test_a_daily_insert_adds_one_small_file_and_rewrites_nothing(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    before = files(tmp_path)
    assert group.insert(candles(["2024-01-03"])) == InsertResult(1, 0, 0)
    after = files(tmp_path)
    before.pop("feature_store/groups.json")  # the store's record of each group's commits (ledger.py)
    assert {n: after[n] for n in before} == before  # nothing rewritten, nothing deleted
    added = sorted(set(after) - set(before) - {"feature_store/groups.json"}, key=lambda name: name.endswith(".parquet"))
    assert len(added) == 2 and added[0].endswith(f"_delta_log/{1:020d}.json")
    assert re.search(r"/2024-[0-9a-f]{64}\.parquet$", added[1]) and len(after[added[1]]) < 3000


def test_a_replaced_row_rewrites_only_the_file_that_holds_it(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    live_before = {f.path for f in group.table.snapshot().files}
    group.insert(candles(["2024-01-02"], {"2024-01-02": 1.0}), replace=True)
    live_after = {f.path for f in group.table.snapshot().files}
    assert len(live_before - live_after) == 1 and next(iter(live_before - live_after)).startswith("2024-")
    assert len(live_after - live_before) == 1 and next(iter(live_after - live_before)).startswith("2024-")
    assert set(data_files(group_dir(tmp_path, SOL))) == live_before | live_after  # the old file stays, for history
    assert group.history()[0].operation == "MERGE"
    pd.testing.assert_frame_equal(group.read(), expected_candles(ALL, {"2024-01-02": 1.0}), check_exact=True)


def test_small_files_are_compacted_without_changing_rows_or_any_version(tmp_path, monkeypatch):
    monkeypatch.setattr(local, "COMPACT_SLACK", 3)
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    days = [str(d.date()) for d in pd.date_range("2023-12-28", "2024-01-04")]
    seen = {}
    for day in days:
        group.insert(candles([day]))
        seen[group.table.snapshot().version] = group.read()
    operations = [c.operation for c in reversed(group.history())]
    assert "OPTIMIZE" in operations
    snap = group.table.snapshot()
    assert len(snap.files) <= 2 + 3 and len({f.year for f in snap.files}) == 2
    pd.testing.assert_frame_equal(group.read(), seen[max(seen)], check_exact=True)
    for version, rows in seen.items():  # every earlier version still reads as it was
        pd.testing.assert_frame_equal(group.read(version=version), rows, check_exact=True)
    optimize = next(c for c in group.history() if c.operation == "OPTIMIZE")
    pd.testing.assert_frame_equal(group.read(version=optimize.version),
                                  group.read(version=optimize.version - 1), check_exact=True)


def test_a_commit_never_overwrites_a_version_that_exists(tmp_path, monkeypatch):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    taken = group_dir(tmp_path, SOL) / "_delta_log" / f"{1:020d}.json"
    write = delta.GroupTable.write_data_file

    def racing_writer(self, frame):  # another process commits version 2 while this one writes its data
        taken.write_bytes(b"another writer's commit\n")
        return write(self, frame)

    monkeypatch.setattr(delta.GroupTable, "write_data_file", racing_writer)
    with pytest.raises(StoreError, match="another writer committed version 1 first; nothing written"):
        group.insert(candles(["2024-01-03"]))
    assert taken.read_bytes() == b"another writer's commit\n"


def test_a_crash_before_the_commit_keeps_the_old_rows_and_leaves_no_temp_files(tmp_path, monkeypatch):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))

    def crash(*args):
        raise OSError("simulated crash while committing")

    with monkeypatch.context() as patch:
        patch.setattr(delta, "atomic_create_bytes", crash)
        with pytest.raises(OSError, match="simulated crash"):
            group.insert(candles(["2024-01-03", "2023-12-31"], {"2023-12-31": 1.0}), replace=True)
    fresh = LocalFeatureStore(tmp_path).get_feature_group(SOL)
    pd.testing.assert_frame_equal(fresh.read(), expected_candles(ALL), check_exact=True)
    assert fresh.insert(candles(["2024-01-04"])) == InsertResult(1, 0, 0)
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".lock"]


# --- schema guard and a damaged log --------------------------------------------------------------------


def test_a_schema_change_in_the_table_is_refused(tmp_path):
    LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    first = group_dir(tmp_path, SOL) / "_delta_log" / f"{0:020d}.json"
    first.write_text(first.read_text().replace('\\"name\\":\\"close\\",\\"type\\":\\"double\\"',
                                               '\\"name\\":\\"close\\",\\"type\\":\\"long\\"'))
    group = LocalFeatureStore(tmp_path).get_feature_group(SOL)
    with pytest.raises(StoreError, match="is not the one .* recorded"):  # an edited commit, to the record
        group.read()
    record = Ledger(tmp_path / "feature_store")  # as if a table of another schema had been written so
    entry = record.group("solana_v1")
    record.put("solana_v1", {**entry, "commits": {"0": hashlib.sha256(first.read_bytes()).hexdigest()}})
    with pytest.raises(StoreError, match="bump the group version"):
        group.read()
    with pytest.raises(StoreError, match="bump the group version"):
        group.insert(candles(["2024-01-03"]))


@pytest.mark.parametrize("content", [b"this is not json {", b"\x00\xff\xfe\x80garbage\x9c\xc3", b"[1, 2, 3]\n"],
                         ids=["text", "binary", "json-array"])
def test_an_unreadable_commit_is_a_store_error_naming_the_table(tmp_path, content):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    group.insert(candles(["2024-01-03"]))
    (group_dir(tmp_path, SOL) / "_delta_log" / f"{1:020d}.json").write_bytes(content)
    with pytest.raises(StoreError) as info:
        LocalFeatureStore(tmp_path).get_feature_group(SOL).read()
    assert str(group_dir(tmp_path, SOL)) in str(info.value)


def test_get_feature_group_on_a_fresh_store_creates_nothing(tmp_path):
    store = LocalFeatureStore(tmp_path)
    assert store.get_feature_group(SOL) is None
    assert store.get_feature_group(FNG) is None
    assert list(tmp_path.iterdir()) == []


def test_a_group_exists_from_its_first_insert(tmp_path):
    store = LocalFeatureStore(tmp_path)
    store.get_or_create_feature_group(FNG).insert(fng({"2024-01-02": (40, "Fear")}).iloc[:0])
    assert store.get_feature_group(FNG) is None and not (tmp_path / "feature_store").exists()
    store.get_or_create_feature_group(FNG).insert(fng({"2024-01-02": (40, "Fear")}))
    assert store.get_feature_group(SOL) is None
    assert store.get_feature_group(FNG) is not None


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
        with pytest.raises(StoreError, match="locked by another run"):  # a write waits for the run, too
            LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive() and failures == []

    entered = []
    with LocalFeatureStore(tmp_path).lock():
        entered.append(True)
        LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).insert(candles(ALL))  # the run's own writes
    assert entered == [True]
