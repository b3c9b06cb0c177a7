"""The daily health record end to end: inference_pipeline.py writes `model_health`, `health [--json]` reads it,
and the group has export, history and rollback like the others, on the local backend and the Hopsworks double.
Health never stops the forecast."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from cryptocast import health
from cryptocast.__main__ import main as cryptocast_main
from cryptocast.dataset import read_feature_frame
from cryptocast.features import FORECAST_QUANTILES, FORECASTS
from cryptocast.registry import open_model_registry
from cryptocast.settings import load_settings
from cryptocast.stores import open_feature_store
from cryptocast.training import MODEL_NAME

import feature_backfill
import inference_pipeline
from conftest import run_main
from grouprows import forecast_rows
from modelfiles import write_serving_model

AS_OF = dt.date(2024, 2, 20)
TRAINING = {"first_origin": "2024-01-15", "last_origin": "2024-02-05", "windows": 22}


def backtest_artifact(closes: pd.Series) -> pd.DataFrame:
    """A backtest of naive forecasts with +-10%/20% ranges at every origin of January (a model's per-origin file)."""
    rows = pd.concat([forecast_rows(str(day.date()), point=float(closes[day]), model_version=1)
                      for day in pd.date_range("2024-01-01", "2024-01-31")])
    return rows.assign(naive=closes.reindex(rows["forecast_day"]).to_numpy(),
                       actual=closes.reindex(rows["target_day"]).to_numpy()).dropna()


@pytest.fixture
def served(api, tmp_path, monkeypatch):
    """The store backfilled through 2024-02-29, a production model with a backtest and a training window, and
    published forecasts for 2024-01-10..2024-02-18 (so the live checks have 30+ matured days on 2024-02-19)."""
    assert run_main(feature_backfill.main) == 0
    closes = api.history["solana"].set_index("day")["close"]
    artifacts = write_serving_model(tmp_path / "artifacts", 0, "2024-02-05")
    backtest_artifact(closes).to_csv(artifacts / health.BACKTEST_ARTIFACT, index=False, date_format="%Y-%m-%d")
    settings = load_settings()
    open_model_registry(settings).register_and_promote(MODEL_NAME, artifacts, {"rel_mae_mean": 1.0}, "test",
                                                       {"training_window": TRAINING})
    published = pd.concat([forecast_rows(str(day.date()), point=float(closes[day]), model_version=1)
                           for day in pd.date_range("2024-01-10", "2024-02-18")])
    open_feature_store(settings).get_or_create_feature_group(FORECASTS).insert(published)
    monkeypatch.setenv("CRYPTOCAST_AS_OF", AS_OF.isoformat())
    return closes


def health_json(capsys) -> dict:
    capsys.readouterr()
    assert cryptocast_main(["health", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inference_records_health_and_the_command_prints_it(served, capsys):
    assert cryptocast_main(["health"]) == 0
    assert capsys.readouterr().out == "no health record yet: inference_pipeline.py writes one each day\n"
    assert run_main(inference_pipeline.main) == 0
    assert "health 2024-02-19: " in capsys.readouterr().err
    doc = health_json(capsys)
    assert doc["day"] == "2024-02-19" and doc["model_version"] == 1
    checks = {c["check"]: c for c in doc["checks"]}
    assert len(checks) == 12 + 14
    coverage = checks["coverage_80 h1-3"]
    assert coverage["verdict"] in (health.OK, health.FAIL) and 0 <= coverage["statistic"] <= 1
    assert coverage["threshold_low"] < 0.8 < coverage["threshold_high"]
    assert coverage["window"].startswith("2023-11-22..2024-02-19 (targets), ")
    assert checks["drift fear_greed"]["threshold_high"] == 2.0 and checks["frozen fear_greed"]["verdict"] == health.OK
    assert set(doc) >= {"day", "model_version", "verdict", "failing", "live_failing", "input_failing", "checks"}
    assert set(coverage) == {"check", "kind", "statistic", "threshold_low", "threshold_high", "window", "verdict",
                             "failing_since", "detail"}
    assert cryptocast_main(["health"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("health 2024-02-19 (model v1): ") and len(lines) == 1 + 26


def test_too_few_matured_forecasts_say_so_and_a_thin_record_is_still_one_line_per_check(served, monkeypatch,
                                                                                          capsys):
    monkeypatch.setenv("CRYPTOCAST_HEALTH_MIN_DAYS", "60")
    assert run_main(inference_pipeline.main) == 0
    live = [c for c in health_json(capsys)["checks"] if c["kind"] == health.LIVE]
    assert {c["verdict"] for c in live} == {health.UNKNOWN}
    assert all("of the 60 needed: cannot tell yet" in c["detail"] for c in live)


def test_export_history_and_rollback_of_model_health(served, monkeypatch, capsys):
    assert run_main(inference_pipeline.main) == 0
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-21")
    assert run_main(inference_pipeline.main) == 0
    capsys.readouterr()
    assert cryptocast_main(["export", "model_health"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ",".join(health.HEALTH.column_names)
    assert {line.split(",")[0] for line in lines[1:]} == {"2024-02-19", "2024-02-20"} and len(lines) == 1 + 2 * 26
    assert cryptocast_main(["history", "model_health"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert cryptocast_main(["verify"]) == 0  # empty statistics and all: every file matches its checksums
    assert "model_health_v1: 2 commit(s)" in capsys.readouterr().out
    assert cryptocast_main(["rollback", "model_health", "--to", "0"]) == 0
    assert health_json(capsys)["day"] == "2024-02-19"
    assert cryptocast_main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"]["model_health"]["rows"] == 26


def test_rerunning_a_day_replaces_its_record_and_keeps_failing_since(served, monkeypatch, capsys):
    """A forecast far off for days makes the live checks fail; the next day says since when."""
    store = open_feature_store(load_settings())
    wrong = pd.concat([forecast_rows(str(day.date()), point=float(served[day]) * 3, model_version=1)
                       for day in pd.date_range("2024-01-10", "2024-02-18")])
    store.get_feature_group(FORECASTS).insert(wrong, replace=True)
    assert run_main(inference_pipeline.main) == 0
    first = health_json(capsys)
    assert "coverage_80 h1-3" in first["live_failing"] and first["verdict"] == health.FAIL
    assert run_main(inference_pipeline.main) == 0
    assert health_json(capsys) == first
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-21")
    assert run_main(inference_pipeline.main) == 0
    later = {c["check"]: c for c in health_json(capsys)["checks"]}
    assert later["coverage_80 h1-3"]["failing_since"] == "2024-02-19"


def test_health_never_stops_the_forecast(served, tmp_path, capsys):
    artifacts = write_serving_model(tmp_path / "unreadable", 0, "2024-02-05")
    (artifacts / health.BACKTEST_ARTIFACT).write_text("not,a\nbacktest")
    open_model_registry(load_settings()).register_and_promote(MODEL_NAME, artifacts, {"rel_mae_mean": 1.0}, "test",
                                                              {"training_window": TRAINING})
    assert run_main(inference_pipeline.main) == 0
    assert "health: not recorded: CorruptModelError: " in capsys.readouterr().err
    rows = open_feature_store(load_settings()).get_feature_group(FORECASTS).read()
    assert (rows["forecast_day"] == pd.Timestamp("2024-02-19")).sum() == 10
    assert health_json(capsys)["day"] is None


def test_the_same_record_on_the_hopsworks_double(on_hopsworks, served, capsys):
    assert run_main(inference_pipeline.main) == 0
    doc = health_json(capsys)
    assert doc["day"] == "2024-02-19" and len(doc["checks"]) == 26
    assert ("model_health", 1) in {(g.name, g.version) for g in on_hopsworks.groups.values()}
    assert cryptocast_main(["export", "model_health"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("day,health_check,kind,statistic,")
    assert run_main(inference_pipeline.main) == 0
    assert health_json(capsys) == doc
    assert set(FORECAST_QUANTILES) <= set(open_feature_store(load_settings()).get_feature_group(FORECASTS).read())


def test_a_stored_input_profile_gives_the_record_the_training_window_gives(served, tmp_path, capsys):
    """Versions trained now carry input_profile.json; older ones are profiled from the store: same verdicts."""
    assert run_main(inference_pipeline.main) == 0
    from_store = health_json(capsys)
    settings = load_settings()
    frame = read_feature_frame(open_feature_store(settings), None, settings.last_complete_day).frame
    window = (pd.Timestamp(TRAINING["first_origin"]), pd.Timestamp(TRAINING["last_origin"]))
    artifacts = write_serving_model(tmp_path / "profiled", 0, "2024-02-05")
    backtest_artifact(served).to_csv(artifacts / health.BACKTEST_ARTIFACT, index=False, date_format="%Y-%m-%d")
    (artifacts / health.INPUT_PROFILE).write_text(json.dumps(health.input_profile(frame, window)))
    open_model_registry(settings).register_and_promote(MODEL_NAME, artifacts, {"rel_mae_mean": 1.0}, "test",
                                                       {"training_window": TRAINING})
    assert run_main(inference_pipeline.main) == 0
    profiled = health_json(capsys)
    assert profiled["model_version"] == 2
    drift = [(c["check"], c["statistic"], c["verdict"]) for c in from_store["checks"] if c["check"].startswith("drift")]
    assert drift == [(c["check"], c["statistic"], c["verdict"]) for c in profiled["checks"]
                     if c["check"].startswith("drift")]
    damaged = write_serving_model(tmp_path / "damaged", 0, "2024-02-05")
    (damaged / health.INPUT_PROFILE).write_text('{"features": {"fear_greed": {"edges": [0.5], "shares": [1]}}}')
    open_model_registry(settings).register_and_promote(MODEL_NAME, damaged, {"rel_mae_mean": 1.0}, "test",
                                                       {"training_window": TRAINING})
    assert run_main(inference_pipeline.main) == 0
    assert f"health: not recorded: CorruptModelError: {open_model_registry(settings).production(MODEL_NAME).path}" \
        in capsys.readouterr().err
