"""One contract for every feature store: the local one for real, Hopsworks through the offline double.

Whatever a backend does inside, the pipeline must see the same frames (columns, dtypes, order), the
same upsert counts and the same view, so no other code needs to know which backend it runs on.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from cryptocast.dataset import build_features, read_feature_frame
from cryptocast.errors import DataValidationError, StoreError
from cryptocast.features import BITCOIN, FEATURE_VIEW, FORECAST_QUANTILES, FORECASTS, FORECASTS_V1, join_view, validate
from cryptocast.forecasts import read_forecasts
from cryptocast.settings import load_settings
from cryptocast.stores import open_feature_store
from cryptocast.stores.base import InsertResult

import hopsworks_double
from fakeapi import synthetic_history
from grouprows import (
    ALL,
    CANDLE_DTYPES,
    CANDLES,
    FNG,
    SOL,
    candles,
    expected_candles,
    fng,
    forecast_rows,
    forecast_rows_v1,
)

BACKENDS = ["local", "hopsworks"]


def settings_for(backend: str, tmp_path):
    return load_settings({"CRYPTOCAST_BACKEND": backend, "CRYPTOCAST_HOME": str(tmp_path / backend),
                          "HOPSWORKS_API_KEY": hopsworks_double.API_KEY, "HOPSWORKS_PROJECT": hopsworks_double.PROJECT},
                         environ={}, dotenv_path=tmp_path / "absent.env")


@pytest.fixture
def open_store(request, tmp_path, monkeypatch):
    """Open the backend named by the test's parameter afresh, as each script of a run does."""
    backend = request.param
    if backend == "hopsworks":
        hopsworks_double.install(monkeypatch)
    return lambda: open_feature_store(settings_for(backend, tmp_path))


@pytest.fixture
def store(open_store):
    return open_store()


pytestmark = pytest.mark.parametrize("open_store", BACKENDS, indirect=True)


def dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {c: str(t) for c, t in df.dtypes.items()}


def fill(store, history: dict) -> None:
    for spec in (SOL, BITCOIN, FNG):
        rows = history[spec.name].assign(source="binance") if spec is not FNG else history[spec.name]
        store.get_or_create_feature_group(spec).insert(validate(spec, rows, "test"))


# --- groups: round trips and filtered reads ----------------------------------------------------------


def test_insert_then_read_round_trips_exactly(store, open_store):
    assert store.get_or_create_feature_group(SOL).insert(candles(ALL)) == InsertResult(4, 0, 0)
    got = open_store().get_feature_group(SOL).read()
    assert dtypes(got) == CANDLE_DTYPES
    pd.testing.assert_frame_equal(got, expected_candles(ALL), check_exact=True)


def test_fear_greed_round_trip_keeps_ints_and_strings(store, open_store):
    store.get_or_create_feature_group(FNG).insert(fng({"2024-01-02": (40, "Fear"), "2023-12-31": (100, "Extreme Greed"),
                                                       "2024-01-01": (0, "Extreme Fear")}))
    expected = pd.DataFrame({
        "day": pd.Series(pd.to_datetime(["2023-12-31", "2024-01-01", "2024-01-02"]), dtype="datetime64[ns]"),
        "value": pd.Series([100, 0, 40], dtype="int64"),
        "classification": pd.Series(["Extreme Greed", "Extreme Fear", "Fear"], dtype="object"),
    })
    pd.testing.assert_frame_equal(open_store().get_feature_group(FNG).read(), expected, check_exact=True)


def test_forecasts_round_trip_on_a_two_column_key(store):
    group = store.get_or_create_feature_group(FORECASTS)
    assert group.insert(forecast_rows("2024-01-02")) == InsertResult(10, 0, 0)
    assert group.insert(forecast_rows("2024-01-03")) == InsertResult(10, 0, 0)
    assert group.insert(forecast_rows("2024-01-03", point=101.0), replace=True) == InsertResult(0, 10, 0)  # a rerun
    got = group.read()
    expected = pd.concat([forecast_rows("2024-01-02"), forecast_rows("2024-01-03", point=101.0)], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    pd.testing.assert_frame_equal(group.read(dt.date(2024, 1, 3), dt.date(2024, 1, 3)),
                                  forecast_rows("2024-01-03", point=101.0), check_exact=True)


def test_read_forecasts_gives_both_versions_in_the_v2_shape(store):
    store.get_or_create_feature_group(FORECASTS_V1).insert(pd.concat([forecast_rows_v1("2024-01-01", 50.0),
                                                                       forecast_rows_v1("2024-01-02", 60.0)]))
    store.get_or_create_feature_group(FORECASTS).insert(pd.concat([forecast_rows("2024-01-02", 70.0),
                                                                    forecast_rows("2024-01-03", 80.0)]))
    got = read_forecasts(store)
    assert list(got.columns) == FORECASTS.column_names
    assert got.groupby("forecast_day")["point"].first().tolist() == [50.0, 70.0, 80.0]  # v2 wins 2024-01-02
    assert len(got) == 30 and not got.duplicated(["forecast_day", "target_day"]).any()
    old = got[got["forecast_day"] == pd.Timestamp("2024-01-01")].reset_index(drop=True)
    v1 = forecast_rows_v1("2024-01-01", 50.0)
    for before, after in (("lower_95", "q2_5"), ("lower_80", "q10"), ("upper_80", "q90"), ("upper_95", "q97_5")):
        assert old[after].tolist() == v1[before].tolist()
    assert old[["q5", "q25", "q50", "q75", "q95"]].isna().all().all()
    assert old["model_version"].eq(1).all()
    new = got[got["forecast_day"] == pd.Timestamp("2024-01-03")]
    assert new[list(FORECAST_QUANTILES)].notna().all().all()
    window = read_forecasts(store, dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    assert window["forecast_day"].unique().tolist() == [pd.Timestamp("2024-01-02")] and len(window) == 10


def test_read_forecasts_of_an_empty_store_is_empty_with_the_v2_columns(store):
    got = read_forecasts(store)
    assert got.empty and list(got.columns) == FORECASTS.column_names


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
def test_read_filters_are_inclusive_across_a_year_boundary(store, start, end, days):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    pd.testing.assert_frame_equal(group.read(start, end), expected_candles(days), check_exact=True)


@pytest.mark.parametrize(
    ("start", "end"),
    [(dt.date(2024, 1, 3), None), (None, dt.date(2023, 12, 29)), (dt.date(2022, 1, 1), dt.date(2022, 12, 31))],
)
def test_read_outside_the_data_is_an_empty_frame_with_the_schema(store, start, end):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    got = group.read(start, end)
    assert len(got) == 0 and dtypes(got) == CANDLE_DTYPES


def test_a_new_group_reads_as_empty_with_the_schema(store):
    got = store.get_or_create_feature_group(SOL).read()
    assert len(got) == 0 and dtypes(got) == CANDLE_DTYPES


def test_a_group_never_written_does_not_exist(store):
    assert store.get_feature_group(SOL) is None
    assert store.get_feature_group(FNG) is None


# --- upserts -------------------------------------------------------------------------------------------


def test_upsert_counts_and_keeps_the_key_unique(store):
    group = store.get_or_create_feature_group(SOL)
    assert group.insert(candles(ALL)) == InsertResult(4, 0, 0)
    assert group.insert(candles(ALL)) == InsertResult(0, 0, 4)
    assert group.insert(candles(ALL, {"2023-12-31": 0.5}), replace=True) == InsertResult(0, 1, 3)
    pd.testing.assert_frame_equal(group.read(), expected_candles(ALL, {"2023-12-31": 0.5}), check_exact=True)

    # one changed, one unchanged, two new (one in each year)
    assert group.insert(candles(["2023-12-31", "2024-01-01", "2023-12-29", "2024-01-03"]),
                        replace=True) == InsertResult(2, 1, 1)
    got = group.read()
    assert got["day"].is_unique
    assert got["day"].dt.strftime("%Y-%m-%d").tolist() == ["2023-12-29", *ALL, "2024-01-03"]
    assert got.loc[got["day"] == pd.Timestamp("2023-12-31"), "close"].tolist() == [CANDLES["2023-12-31"][3]]


def test_upsert_detects_a_change_in_a_string_column(store):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    changed = candles(["2024-01-02"])
    changed["source"] = "kraken"
    assert group.insert(changed, replace=True) == InsertResult(0, 1, 0)
    assert group.read(dt.date(2024, 1, 2))["source"].tolist() == ["kraken"]


def test_changing_stored_rows_without_replace_is_refused_and_writes_nothing(store, open_store):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    with pytest.raises(DataValidationError, match=r"solana v1: 1 stored row\(s\) would change \(2024-01-01: close "
                                                  r"[0-9.]+ -> [0-9.]+\); nothing written; pass --replace"):
        group.insert(candles(["2024-01-01", "2024-01-03"], {"2024-01-01": -0.5}))
    pd.testing.assert_frame_equal(open_store().get_feature_group(SOL).read(), expected_candles(ALL), check_exact=True)


def test_a_replace_logs_every_changed_row(store, caplog):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    with caplog.at_level("WARNING"):
        group.insert(candles(ALL, {"2023-12-31": 0.5, "2024-01-02": 0.25}), replace=True)
    replaced = [r.getMessage() for r in caplog.records if "replacing" in r.getMessage()]
    assert len(replaced) == 2
    assert replaced[0].startswith("feature group solana v1: replacing 2023-12-31: close ")
    assert replaced[1] == "feature group solana v1: replacing 2024-01-02: close 100 -> 100.25"


def test_an_empty_insert_counts_nothing_and_changes_nothing(store):
    group = store.get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    assert group.insert(candles(ALL).iloc[:0]) == InsertResult(0, 0, 0)
    pd.testing.assert_frame_equal(group.read(), expected_candles(ALL), check_exact=True)


# --- the feature view ----------------------------------------------------------------------------------


def test_the_view_is_the_left_join_of_the_groups_on_the_day(store):
    history = synthetic_history("2023-12-20", 30, fng_holes=("2023-12-25", "2024-01-02"))
    history["bitcoin"] = history["bitcoin"][history["bitcoin"]["day"] != pd.Timestamp("2024-01-05")]
    fill(store, history)

    view = store.read_feature_view(FEATURE_VIEW, dt.date(2023, 12, 24), dt.date(2024, 1, 6))

    assert list(view.columns) == ["day", "open", "high", "low", "close", "volume", "btc_open", "btc_high", "btc_low",
                                  "btc_close", "btc_volume", "fng_value"]
    assert view["day"].dt.strftime("%Y-%m-%d").tolist() == [str(d.date()) for d in
                                                             pd.date_range("2023-12-24", "2024-01-06")]
    assert dtypes(view)["fng_value"] == "float64" and dtypes(view)["day"] == "datetime64[ns]"
    by_day = view.set_index("day")
    assert by_day["fng_value"].isna().tolist().count(True) == 2
    assert pd.isna(by_day.loc["2023-12-25", "fng_value"]) and pd.isna(by_day.loc["2024-01-02", "fng_value"])
    assert pd.isna(by_day.loc["2024-01-05", "btc_close"]) and not pd.isna(by_day.loc["2024-01-05", "close"])
    sol = history["solana"].set_index("day")
    assert (by_day["close"] == sol.loc["2023-12-24":"2024-01-06", "close"]).all()


@pytest.mark.parametrize(("start", "end"), [(None, dt.date(2024, 2, 29)), (dt.date(2024, 2, 1), dt.date(2024, 2, 10)),
                                            (dt.date(2024, 1, 15), None)])
def test_the_view_equals_the_groups_joined_in_pandas(store, start, end):
    fill(store, synthetic_history("2024-01-01", 60, fng_holes=("2024-01-20", "2024-01-21")))
    stored = {spec.name: store.get_feature_group(spec).read(start, end) for spec in (SOL, BITCOIN, FNG)}
    pd.testing.assert_frame_equal(store.read_feature_view(FEATURE_VIEW, start, end), join_view(FEATURE_VIEW, stored),
                                  check_exact=True)


def test_the_model_reads_the_same_features_from_the_store_as_from_the_raw_rows(store):
    history = synthetic_history("2024-01-01", 60, fng_holes=("2024-01-20", "2024-01-21"))
    fill(store, history)
    expected = build_features(history["solana"], history["bitcoin"], history["fear_greed"])
    got = read_feature_frame(store, None, dt.date(2024, 2, 29))
    pd.testing.assert_frame_equal(got.frame, expected.frame, check_exact=True)
    assert got.fear_greed_filled == expected.fear_greed_filled == 2


def test_a_view_outside_the_data_is_empty_with_its_columns(store):
    fill(store, synthetic_history("2024-01-01", 10))
    view = store.read_feature_view(FEATURE_VIEW, dt.date(2025, 1, 1), None)
    expected = join_view(FEATURE_VIEW, {spec.name: store.get_feature_group(spec).read(dt.date(2025, 1, 1))
                                        for spec in (SOL, BITCOIN, FNG)})
    assert len(view) == 0 and list(view.columns)[:2] == ["day", "open"]
    pd.testing.assert_frame_equal(view, expected)


def test_the_view_names_the_first_missing_group(store):
    store.get_or_create_feature_group(SOL).insert(candles(ALL))
    with pytest.raises(StoreError, match=r"^feature group bitcoin v1 does not exist: run feature_backfill.py$"):
        store.read_feature_view(FEATURE_VIEW, None, dt.date(2024, 1, 2))
