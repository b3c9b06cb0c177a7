"""One contract for every model registry: the local one for real, Hopsworks through the offline double.

Training registers and promotes, inference asks for production and reads files from `.path`, status
prints `summary()`: each must behave the same on both backends, including the promotion rule.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
from pathlib import Path

import pytest

from cryptocast.errors import StoreError
from cryptocast.registry import ModelVersion, open_model_registry
from cryptocast.settings import load_settings

import hopsworks_double
from modelfiles import files, make_artifacts

METADATA = {"features": ["close", "volume", "fng"], "horizon": 10,
            "training_window": {"start": "2020-01-01", "end": "2024-02-29"}}
_runs = itertools.count()


@pytest.fixture(params=["local", "hopsworks"])
def registry(request, tmp_path, monkeypatch):
    if request.param == "hopsworks":
        hopsworks_double.install(monkeypatch)
    settings = load_settings({"CRYPTOCAST_BACKEND": request.param, "CRYPTOCAST_HOME": str(tmp_path / "home"),
                              "HOPSWORKS_API_KEY": hopsworks_double.API_KEY,
                              "HOPSWORKS_PROJECT": hopsworks_double.PROJECT},
                             environ={}, dotenv_path=tmp_path / "absent.env")
    return open_model_registry(settings)


def artifacts(tmp_path: Path, seed: int = 0) -> Path:
    return make_artifacts(tmp_path / "runs" / f"run-{next(_runs)}", seed)


def register(registry, tmp_path: Path, rel_mae: float, name: str = "sol") -> ModelVersion:
    return registry.register(name, artifacts(tmp_path), {"rel_mae_mean": rel_mae}, f"rel_mae {rel_mae}", METADATA)


def promote(registry, tmp_path: Path, rel_mae: float, **more: float) -> tuple[ModelVersion, bool]:
    return registry.register_and_promote("sol", artifacts(tmp_path), {"rel_mae_mean": rel_mae, **more}, "run",
                                         METADATA)


def test_round_trip_keeps_files_byte_identical_and_every_metric(registry, tmp_path):
    source = artifacts(tmp_path, seed=7)
    metrics = {"rel_mae_mean": 0.0812, "per_horizon": [0.05, 0.07], "dm": {"p": 0.03, "stat": -2.1},
               "origins": {"count": 30, "first": "2024-01-01"}}

    mv = registry.register("sol", source, metrics, "first LSTM", METADATA)

    assert files(mv.path) == files(source) and len(files(mv.path)) == 5
    loaded = registry.get("sol", 1)
    assert loaded == mv
    assert (loaded.name, loaded.version, loaded.description) == ("sol", 1, "first LSTM")
    assert loaded.metrics == metrics and loaded.metadata == METADATA
    created = dt.datetime.fromisoformat(loaded.created)
    assert created.utcoffset() == dt.timedelta(0)
    assert abs(dt.datetime.now(dt.UTC) - created) < dt.timedelta(minutes=1)


def test_versions_are_numbered_from_one_and_sorted(registry, tmp_path):
    assert registry.versions("sol") == []
    for rel_mae in (0.3, 0.2, 0.1):
        register(registry, tmp_path, rel_mae)
    register(registry, tmp_path, 0.5, name="btc")

    assert [v.version for v in registry.versions("sol")] == [1, 2, 3]
    assert [v.metrics["rel_mae_mean"] for v in registry.versions("sol")] == [0.3, 0.2, 0.1]
    assert [v.version for v in registry.versions("btc")] == [1]
    assert registry.production("sol") is None  # registering alone never promotes


def test_first_version_is_always_promoted(registry, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="cryptocast.registry"):
        mv, promoted = promote(registry, tmp_path, 0.9)

    assert promoted and mv.version == 1
    assert registry.production("sol") == mv
    assert any("promoted" in r.message and "no production version" in r.message for r in caplog.records)


def test_better_version_is_promoted(registry, tmp_path):
    promote(registry, tmp_path, 0.20)
    mv, promoted = promote(registry, tmp_path, 0.15)

    assert promoted
    assert registry.production("sol").version == mv.version == 2


def test_equal_version_is_promoted(registry, tmp_path):
    promote(registry, tmp_path, 0.20)
    mv, promoted = promote(registry, tmp_path, 0.20)

    assert promoted
    assert registry.production("sol").version == 2


def test_worse_version_is_registered_but_not_promoted(registry, tmp_path, caplog):
    promote(registry, tmp_path, 0.18)

    with caplog.at_level(logging.INFO, logger="cryptocast.registry"):
        mv, promoted = promote(registry, tmp_path, 0.25)

    assert not promoted and mv.version == 2
    assert registry.production("sol").version == 1
    assert [v.version for v in registry.versions("sol")] == [1, 2]
    line = next(r.message for r in caplog.records if "not promoted" in r.message)
    assert "0.25" in line and "0.18" in line and "v1" in line


@pytest.mark.parametrize("coverage", [0.7499, 0.8501, 0.20])
def test_ranges_more_than_5_points_off_are_refused_however_accurate(registry, tmp_path, caplog, coverage):
    promote(registry, tmp_path, 0.30, coverage_80_mean=0.80)
    with caplog.at_level(logging.INFO, logger="cryptocast.registry"):
        mv, promoted = promote(registry, tmp_path, 0.10, coverage_80_mean=coverage)
    assert not promoted and mv.version == 2 and registry.production("sol").version == 1
    line = next(r.message for r in caplog.records if "not promoted" in r.message)
    assert f"coverage_80_mean {coverage:.3f} is more than 0.05 from the nominal 0.80" in line


def test_a_first_version_with_miscalibrated_ranges_is_not_promoted_either(registry, tmp_path):
    mv, promoted = promote(registry, tmp_path, 0.10, coverage_80_mean=0.9)
    assert not promoted and registry.production("sol") is None


def test_a_backtest_too_short_to_measure_coverage_is_not_refused_for_it(registry, tmp_path):
    short = {"count": 179, "first": "2024-01-01", "last": "2024-06-27"}
    _, promoted = promote(registry, tmp_path, 0.10, coverage_80_mean=0.9, backtest_origins=short)
    assert promoted
    _, promoted = promote(registry, tmp_path, 0.10, coverage_80_mean=0.9, backtest_origins={**short, "count": 180})
    assert not promoted


@pytest.mark.parametrize("coverage", [0.7501, 0.80, 0.8499])
def test_ranges_within_5_points_promote_by_accuracy(registry, tmp_path, coverage):
    promote(registry, tmp_path, 0.30, coverage_80_mean=0.80)
    _, promoted = promote(registry, tmp_path, 0.10, coverage_80_mean=coverage)
    assert promoted and registry.production("sol").version == 2


def test_promotion_compares_against_production_not_the_newest(registry, tmp_path):
    promote(registry, tmp_path, 0.20)
    promote(registry, tmp_path, 0.30)  # not promoted
    mv, promoted = promote(registry, tmp_path, 0.25)  # better than v2, worse than production v1

    assert not promoted and mv.version == 3
    assert registry.production("sol").version == 1


def test_missing_promotion_metric_registers_nothing(registry, tmp_path):
    with pytest.raises(StoreError, match="rel_mae_mean"):
        registry.register_and_promote("sol", artifacts(tmp_path), {"mae": 1.0}, "run", METADATA)
    assert registry.versions("sol") == []


def test_set_production_back_and_forth_and_an_unknown_version(registry, tmp_path):
    for rel_mae in (0.3, 0.2):
        register(registry, tmp_path, rel_mae)
    registry.set_production("sol", 1)
    assert registry.production("sol").version == 1
    registry.set_production("sol", 2)
    registry.set_production("sol", 1)
    assert registry.production("sol").version == 1

    with pytest.raises(StoreError, match="no version 5"):
        registry.set_production("sol", 5)
    with pytest.raises(StoreError, match="no version 5"):
        registry.get("sol", 5)
    assert registry.production("sol").version == 1


def test_summary_shape(registry, tmp_path):
    promote(registry, tmp_path, 0.20)
    promote(registry, tmp_path, 0.25)
    register(registry, tmp_path, 0.5, name="btc")
    sol = registry.versions("sol")

    expected_sol = {
        "production": 1,
        "versions": [
            {"version": 1, "created": sol[0].created, "description": "run", "metrics": {"rel_mae_mean": 0.20}},
            {"version": 2, "created": sol[1].created, "description": "run", "metrics": {"rel_mae_mean": 0.25}},
        ],
    }
    btc = registry.get("btc", 1)
    expected_btc = {"production": None, "versions": [
        {"version": 1, "created": btc.created, "description": "rel_mae 0.5", "metrics": {"rel_mae_mean": 0.5}}]}

    assert registry.summary("sol") == {"sol": expected_sol}
    assert registry.summary() == {"btc": expected_btc, "sol": expected_sol}
    assert registry.summary("eth") == {"eth": {"production": None, "versions": []}}
    json.dumps(registry.summary(), allow_nan=False)


def test_summary_of_an_empty_registry(registry):
    assert registry.summary() == {}


def test_missing_artifacts_directory(registry, tmp_path):
    with pytest.raises(StoreError, match="not a directory"):
        registry.register("sol", tmp_path / "nowhere", {"rel_mae_mean": 0.1}, "run", METADATA)
    assert registry.versions("sol") == []


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_metric_is_rejected_and_nothing_registered(registry, tmp_path, bad):
    source = artifacts(tmp_path)
    with pytest.raises(StoreError, match="NaN"):
        registry.register("sol", source, {"rel_mae_mean": 0.1, "coverage": bad}, "run", METADATA)
    with pytest.raises(StoreError, match="rel_mae_mean"):
        registry.register_and_promote("sol", source, {"rel_mae_mean": bad}, "run", METADATA)
    assert registry.versions("sol") == []


def test_unserialisable_metadata_is_rejected(registry, tmp_path):
    with pytest.raises(StoreError, match="JSON-serialisable"):
        registry.register("sol", artifacts(tmp_path), {"rel_mae_mean": 0.1}, "run", {"window": dt.date(2024, 1, 1)})
    assert registry.versions("sol") == []


@pytest.mark.parametrize("name", ["", "../escape", ".hidden", "a/b"])
def test_unsafe_model_names_are_rejected(registry, tmp_path, name):
    with pytest.raises(StoreError, match="model name"):
        registry.register(name, artifacts(tmp_path), {"rel_mae_mean": 0.1}, "run", METADATA)
