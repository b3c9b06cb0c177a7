"""Unit tests for the embedded Parquet feature store (cryptocast.stores.local)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

from cryptocast import features
from cryptocast.errors import StoreError
from cryptocast.stores import local
from cryptocast.stores.base import InsertResult
from cryptocast.stores.local import LocalFeatureStore

SOL = features.SOLANA
FNG = features.FEAR_GREED
CANDLE_DTYPES = {"day": "datetime64[ns]", "open": "float64", "high": "float64", "low": "float64",
                 "close": "float64", "volume": "float64", "source": "object"}

# Hand-made candles spanning a year boundary; floats chosen to expose any lossy round trip.
CANDLES = {
    "2023-12-30": (101.25, 110.5, 95.125, 0.1 + 0.2 + 100, 12345.678901234567, "binance"),
    "2023-12-31": (102.0, 111.0, 96.0, 104.3333333333333, 1e-7, "kraken"),
    "2024-01-01": (103.5, 120.0, 97.0, 119.99999999999999, 0.0, "binance"),
    "2024-01-02": (104.0, 121.0, 98.0, 100.0, 98765.4321, "binance"),
}


def candles(days: list[str], close_delta: dict[str, float] | None = None) -> pd.DataFrame:
    """Raw rows for `days` (validated, as the pipeline would), optionally with a changed close."""
    close_delta = close_delta or {}
    rows = []
    for day in days:
        o, h, lo, c, v, s = CANDLES[day] if day in CANDLES else (50.0, 60.0, 40.0, 55.0, 1.0, "binance")
        rows.append({"day": day, "open": o, "high": h, "low": lo, "close": c + close_delta.get(day, 0.0),
                     "volume": v, "source": s})
    return features.validate(SOL, pd.DataFrame(rows), "test")


def expected_candles(days: list[str], close_delta: dict[str, float] | None = None) -> pd.DataFrame:
    """The same rows, built independently of the code under test, with the promised dtypes."""
    close_delta = close_delta or {}
    days = sorted(days)
    table = {
        "day": pd.Series([pd.Timestamp(d) for d in days], dtype="datetime64[ns]"),
        "open": pd.Series([CANDLES[d][0] for d in days], dtype="float64"),
        "high": pd.Series([CANDLES[d][1] for d in days], dtype="float64"),
        "low": pd.Series([CANDLES[d][2] for d in days], dtype="float64"),
        "close": pd.Series([CANDLES[d][3] + close_delta.get(d, 0.0) for d in days], dtype="float64"),
        "volume": pd.Series([CANDLES[d][4] for d in days], dtype="float64"),
        "source": pd.Series([CANDLES[d][5] for d in days], dtype="object"),
    }
    return pd.DataFrame(table)


def fng(rows: dict[str, tuple[int, str]]) -> pd.DataFrame:
    raw = pd.DataFrame({"day": list(rows), "value": [v for v, _ in rows.values()],
                        "classification": [c for _, c in rows.values()]})
    return features.validate(FNG, raw, "test")


def files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, with its bytes."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def group_dir(home: Path, spec) -> Path:
    return home / "feature_store" / f"{spec.name}_v{spec.version}"


ALL = sorted(CANDLES)


# --- round trip and filtered reads -----------------------------------------------------------------


def test_insert_then_read_round_trips_exactly(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    assert group.insert(candles(ALL)) == InsertResult(4, 0, 0)
    got = LocalFeatureStore(tmp_path).get_feature_group(SOL).read()
    assert {c: str(t) for c, t in got.dtypes.items()} == CANDLE_DTYPES
    pd.testing.assert_frame_equal(got, expected_candles(ALL), check_exact=True)


def test_fear_greed_round_trip_keeps_ints_and_strings(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(FNG)
    group.insert(fng({"2024-01-02": (40, "Fear"), "2023-12-31": (100, "Extreme Greed"), "2024-01-01": (0,
                                                                                                      "Extreme Fear")}))
    got = LocalFeatureStore(tmp_path).get_feature_group(FNG).read()
    expected = pd.DataFrame({
        "day": pd.Series([pd.Timestamp("2023-12-31"), pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-02")],
                         dtype="datetime64[ns]"),
        "value": pd.Series([100, 0, 40], dtype="int64"),
        "classification": pd.Series(["Extreme Greed", "Extreme Fear", "Fear"], dtype="object"),
    })
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize(
    ("start", "end", "days"),
    [
        (dt.date(2023, 12, 31), dt.date(2024, 1, 1), ["2023-12-31", "2024-01-01"]),
        (dt.date(2024, 1, 1), None, ["2024-01-01", "2024-01-02"]),
        (None, dt.date(2023, 12, 31), ["2023-12-30", "2023-12-31"]),
        (dt.date(2023, 12, 30), dt.date(2023, 12, 30), ["2023-12-30"]),
        (dt.date(2024, 1, 2), dt.date(2024, 1, 2), ["2024-01-02"]),
        (None, None, ALL),
        (dt.date(2023, 1, 1), dt.date(2025, 1, 1), ALL),
    ],
)
def test_read_filters_are_inclusive_across_a_year_boundary(tmp_path, start, end, days):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    pd.testing.assert_frame_equal(group.read(start, end), expected_candles(days), check_exact=True)


@pytest.mark.parametrize(
    ("start", "end"),
    [(dt.date(2024, 1, 3), None), (None, dt.date(2023, 12, 29)), (dt.date(2022, 1, 1), dt.date(2022, 12, 31))],
)
def test_read_outside_the_data_is_an_empty_frame_with_the_schema(tmp_path, start, end):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    got = group.read(start, end)
    assert len(got) == 0
    assert {c: str(t) for c, t in got.dtypes.items()} == CANDLE_DTYPES


def test_read_of_an_empty_group(tmp_path):
    got = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL).read()
    assert list(got.columns) == list(CANDLE_DTYPES) and len(got) == 0


# --- upsert ----------------------------------------------------------------------------------------


def test_upsert_counts_and_keeps_the_key_unique(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    assert group.insert(candles(ALL)) == InsertResult(4, 0, 0)
    assert group.insert(candles(ALL)) == InsertResult(0, 0, 4)
    assert group.insert(candles(ALL, {"2023-12-31": 0.5})) == InsertResult(0, 1, 3)
    pd.testing.assert_frame_equal(group.read(), expected_candles(ALL, {"2023-12-31": 0.5}), check_exact=True)

    # one changed, one unchanged, two new (one in each year)
    batch = candles(["2023-12-31", "2024-01-01", "2023-12-29", "2024-01-03"])
    assert group.insert(batch) == InsertResult(2, 1, 1)
    got = group.read()
    assert got["day"].is_unique
    assert got["day"].dt.strftime("%Y-%m-%d").tolist() == ["2023-12-29", *ALL, "2024-01-03"]
    assert got.loc[got["day"] == pd.Timestamp("2023-12-31"), "close"].tolist() == [CANDLES["2023-12-31"][3]]


def test_upsert_detects_a_change_in_a_string_column(tmp_path):
    group = LocalFeatureStore(tmp_path).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    changed = candles(["2024-01-02"])
    changed["source"] = "kraken"
    assert group.insert(changed) == InsertResult(0, 1, 0)
    assert group.read(dt.date(2024, 1, 2))["source"].tolist() == ["kraken"]


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
