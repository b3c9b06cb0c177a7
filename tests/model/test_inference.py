"""The daily forecast: right rows, idempotent per day, blind to the future, loud on bad state."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cryptocast.dataset import LOOKBACK
from cryptocast.features import FORECASTS
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores.local import LocalFeatureStore
from cryptocast.training import MODEL_NAME

import feature_backfill
import inference_pipeline
from conftest import REPO, error_lines, run_main, snapshot
from grouprows import remove_rows
from modelfiles import SERVING_SCALES, write_serving_model

AS_OF = dt.date(2024, 2, 20)


def register_model(home, tmp_path, seed: int = 0) -> int:
    """A small random network in the portable format, registered as production."""
    artifacts = tmp_path / f"artifacts-{seed}"
    write_serving_model(artifacts, seed)
    version, _ = LocalModelRegistry(home).register_and_promote(MODEL_NAME, artifacts, {"rel_mae_mean": 1.0},
                                                               "test model", {})
    return version.version


@pytest.fixture
def ready(api, home, tmp_path, monkeypatch):
    """Store filled through 2024-02-29 and a production model; inference runs as of 2024-02-20."""
    assert run_main(feature_backfill.main) == 0
    register_model(home, tmp_path)
    monkeypatch.setenv("CRYPTOCAST_AS_OF", AS_OF.isoformat())
    return home


def forecasts(home) -> pd.DataFrame:
    return LocalFeatureStore(home).get_feature_group(FORECASTS).read()


def test_ten_rows_with_nested_intervals(ready, api):
    assert run_main(inference_pipeline.main) == 0
    rows = forecasts(ready)
    origin = pd.Timestamp(AS_OF - dt.timedelta(days=1))
    assert rows["forecast_day"].eq(origin).all()
    assert rows["horizon"].tolist() == list(range(1, 11))
    assert (rows["target_day"] - rows["forecast_day"]).dt.days.tolist() == list(range(1, 11))
    assert (rows["lower_95"] < rows["lower_80"]).all() and (rows["lower_80"] < rows["point"]).all()
    assert (rows["point"] < rows["upper_80"]).all() and (rows["upper_80"] < rows["upper_95"]).all()
    assert rows["upper_95"].iloc[-1] / rows["point"].iloc[-1] == pytest.approx(np.exp(0.4))
    assert rows["model_version"].eq(1).all()


def test_the_forecast_matches_the_network_by_hand(ready, api):
    """Recompute the forecast from the raw history, outside the feature view."""
    from cryptocast.modeling.portable import PortableNetwork
    from cryptocast.registry import LocalModelRegistry

    assert run_main(inference_pipeline.main) == 0
    sol, btc, fng = (api.history[g].set_index("day") for g in ("solana", "bitcoin", "fear_greed"))
    days = pd.date_range(end=pd.Timestamp(AS_OF) - pd.Timedelta(days=1), periods=LOOKBACK)
    prev = days - pd.Timedelta(days=1)
    x = np.column_stack([
        np.log(sol.loc[days, "close"].to_numpy() / sol.loc[prev, "close"].to_numpy()),
        np.log(btc.loc[days, "close"].to_numpy() / btc.loc[prev, "close"].to_numpy()),
        np.log1p(sol.loc[days, "volume"]), np.log1p(btc.loc[days, "volume"]),
        np.log(sol.loc[days, "high"] / sol.loc[days, "low"]), np.log(btc.loc[days, "high"] / btc.loc[days, "low"]),
        fng["value"].reindex(days).ffill().to_numpy() / 100,
    ]) / np.array(SERVING_SCALES)
    network = PortableNetwork.load(LocalModelRegistry(ready).production(MODEL_NAME).path)
    expected = sol.loc[days[-1], "close"] * np.exp(network.predict(x[None])[0] * 0.05)
    np.testing.assert_allclose(forecasts(ready)["point"].to_numpy(), expected, rtol=1e-12)


def test_rerunning_a_day_replaces_only_that_day(ready, api, tmp_path, monkeypatch):
    assert run_main(inference_pipeline.main) == 0
    first = forecasts(ready)
    before = snapshot(ready)
    assert run_main(inference_pipeline.main) == 0
    assert snapshot(ready) == before  # same model, same day: byte-identical
    register_model(ready, tmp_path, seed=1)  # a new production version, same day: replaces that day's rows
    assert run_main(inference_pipeline.main) == 0
    replaced = forecasts(ready)
    assert len(replaced) == 10 and replaced["model_version"].eq(2).all()
    monkeypatch.setenv("CRYPTOCAST_AS_OF", (AS_OF + dt.timedelta(days=1)).isoformat())
    assert run_main(inference_pipeline.main) == 0
    both = forecasts(ready)
    assert len(both) == 20
    kept = both[both["forecast_day"] == first["forecast_day"].iloc[0]].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, replaced)


def test_the_future_does_not_change_a_forecast(ready, api, tmp_path):
    """Rows after the forecast day are in the store; shuffling them must not move the forecast."""
    assert run_main(inference_pipeline.main) == 0
    expected = forecasts(ready)
    from cryptocast.features import SOLANA

    group = LocalFeatureStore(ready).get_feature_group(SOLANA)
    rows = group.read()
    future = rows["day"] >= pd.Timestamp(AS_OF)
    shuffled = rows[future].copy()
    shuffled[["open", "high", "low", "close"]] = shuffled[["open", "high", "low", "close"]].sample(
        frac=1, random_state=3).to_numpy() * 7
    group.insert(shuffled, replace=True)
    assert not group.read().equals(rows)
    assert run_main(inference_pipeline.main) == 0
    pd.testing.assert_frame_equal(forecasts(ready), expected)


def test_stale_data_is_refused(ready, api, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-05")
    before = snapshot(ready)
    assert run_main(inference_pipeline.main) == 1
    assert error_lines(capsys) == ["error: inference_pipeline: data is stale: solana ends 2024-02-29, the last "
                                   "complete day is 2024-03-04: run feature_pipeline.py"]
    assert snapshot(ready) == before


def test_a_hole_in_the_input_window_is_refused(ready, api, capsys):
    from cryptocast.features import BITCOIN

    group = LocalFeatureStore(ready).get_feature_group(BITCOIN)
    remove_rows(group, ["2024-02-10"])
    assert run_main(inference_pipeline.main) == 1
    assert "bitcoin has holes in the input window: 2024-02-10" in error_lines(capsys)[0]


@pytest.mark.parametrize("damage", ["weights", "scaler", "intervals", "missing"])
def test_a_corrupt_model_is_one_clear_line(ready, api, capsys, damage):
    artifacts = LocalModelRegistry(ready).production(MODEL_NAME).path
    target = {"weights": "weights.npz", "scaler": "scaler.json", "intervals": "intervals.json",
              "missing": "network.json"}[damage]
    if damage == "missing":
        (artifacts / target).unlink()
    else:
        (artifacts / target).write_bytes((artifacts / target).read_bytes()[:40])
    before = snapshot(ready)
    assert run_main(inference_pipeline.main) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and target in lines[0]
    assert snapshot(ready) == before


def test_no_model_yet(api, capsys):
    assert run_main(feature_backfill.main) == 0
    assert run_main(inference_pipeline.main) == 1
    assert error_lines(capsys) == ["error: inference_pipeline: no production version of model sol_lstm: "
                                   "run training_pipeline.py first"]


def test_inference_never_imports_tensorflow(ready, api):
    code = ("import sys, inference_pipeline; rc = inference_pipeline.main([]); "
            "assert rc == 0, rc; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_status_lists_forecasts_and_models(ready, api, capsys):
    from cryptocast.__main__ import main as cryptocast_main

    assert run_main(inference_pipeline.main) == 0
    capsys.readouterr()
    assert cryptocast_main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["groups"]["solana_forecasts"]["rows"] == 10
    model = report["models"][MODEL_NAME]
    assert model["production"] == 1
    assert [v["version"] for v in model["versions"]] == [1]
    assert model["versions"][0]["metrics"] == {"rel_mae_mean": 1.0}


def test_export_writes_forecast_prices_in_cents(ready, api, capsys):
    from cryptocast.__main__ import main as cryptocast_main

    assert run_main(inference_pipeline.main) == 0
    capsys.readouterr()
    assert cryptocast_main(["export", "solana_forecasts"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "forecast_day,target_day,horizon,point,lower_80,upper_80,lower_95,upper_95,model_version"
    stored = forecasts(ready).sort_values("target_day")
    first = lines[1].split(",")
    assert first[:3] == ["2024-02-19", "2024-02-20", "1"]
    assert [float(v) for v in first[3:8]] == [round(stored[c].iloc[0], 2) for c in
                                              ("point", "lower_80", "upper_80", "lower_95", "upper_95")]
    assert all(len(v.partition(".")[2]) <= 2 for line in lines[1:] for v in line.split(",")[3:8])
