"""The daily forecast: right rows, idempotent per day, blind to the future, loud on bad state."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cryptocast import inference
from cryptocast.dataset import HORIZON, LOOKBACK
from cryptocast.features import FORECAST_QUANTILES, FORECASTS
from cryptocast.modeling.calibration import CalibrationConfig
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores.local import LocalFeatureStore
from cryptocast.training import MODEL_NAME

import feature_backfill
import inference_pipeline
from conftest import REPO, error_lines, run_main, snapshot
from grouprows import forecast_rows, remove_rows
from modelfiles import SERVING_SCALES, write_calibration, write_serving_model

AS_OF = dt.date(2024, 2, 20)
CALIBRATED_THROUGH = "2024-02-05"  # the last backtest origin of the registered version


def register_model(home, tmp_path, seed: int = 0) -> int:
    """A small random network in the portable format, registered as production."""
    artifacts = tmp_path / f"artifacts-{seed}"
    write_serving_model(artifacts, seed, CALIBRATED_THROUGH)
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


def by_hand_scale(solana: pd.DataFrame, day: pd.Timestamp, config: dict) -> np.ndarray:
    """The calibration's scale at 1..10 days from the raw daily bars up to `day`: Parkinson variances
    ln(high/low)^2 / (4 ln 2), their EWMA over 120 days (short run) and plain mean over the long-run days."""
    bars = solana.set_index("day").loc[: day]
    variance = np.log(bars["high"] / bars["low"]) ** 2 / (4 * np.log(2))
    recent = variance.loc[day - pd.Timedelta(days=config["vol_days"] - 1) :]
    weights = config["ewma_lambda"] ** (day - recent.index).days.to_numpy()
    short = np.sqrt(np.sum(weights * recent.to_numpy()) / np.sum(weights))
    long = np.sqrt(variance.loc[day - pd.Timedelta(days=config["long_run_days"] - 1) :].mean())
    w = np.linspace(config["weight"], config["weight_long"], HORIZON)
    return short**w * long ** (1 - w) * np.sqrt(np.arange(1, HORIZON + 1))


def test_ten_rows_with_ordered_quantiles_from_the_calibration(ready, api, capsys):
    assert run_main(inference_pipeline.main) == 0
    rows = forecasts(ready)
    origin = pd.Timestamp(AS_OF - dt.timedelta(days=1))
    assert rows["forecast_day"].eq(origin).all()
    assert rows["horizon"].tolist() == list(range(1, 11))
    assert (rows["target_day"] - rows["forecast_day"]).dt.days.tolist() == list(range(1, 11))
    quantiles = rows[list(FORECAST_QUANTILES)].to_numpy()
    assert (np.diff(quantiles, axis=1) > 0).all() and (quantiles > 0).all()
    assert rows["model_version"].eq(1).all()
    scores = json.loads((LocalModelRegistry(ready).production(MODEL_NAME).path / "calibration.json").read_text())
    assert scores["config"]["estimator"] == "range"
    spread = by_hand_scale(api.history["solana"], origin, scores["config"])
    for name, level in FORECAST_QUANTILES.items():  # read from |score|, mirrored
        offsets = [spread[h] * np.sign(level - 0.5) * np.quantile(np.abs(scores["scores"][h]), abs(2 * level - 1))
                   for h in range(HORIZON)]
        # the fan: an edge never steps back toward the point as the horizon grows
        offsets = np.maximum.accumulate(offsets) if level > 0.5 else np.minimum.accumulate(offsets)
        np.testing.assert_allclose(rows[name], rows["point"] * np.exp(offsets), rtol=1e-9)
    assert "published forecast(s) matured since the backtest (< 10): using the backtest's calibration" in \
        capsys.readouterr().err


@pytest.mark.parametrize("config", [
    CalibrationConfig(scale_kind="term", gamma=0.0, term_load=0.8, term_decay=0.3),
    CalibrationConfig(scale_kind="garch", gamma=0.0, garch_omega=2e-4, garch_alpha=0.12, garch_beta=0.84,
                      garch_nu=5.0),
    CalibrationConfig(scale_kind="fixed", gamma=0.0),
], ids=["term", "garch", "fixed"])
def test_every_published_scale_runs_from_its_stored_parameters_without_arch(ready, config):
    version = LocalModelRegistry(ready).production(MODEL_NAME)
    write_calibration(version.path, CALIBRATED_THROUGH, config=config)
    rows = inference.forecast_rows(version, LocalFeatureStore(ready), AS_OF - dt.timedelta(days=1))
    quantiles = rows[list(FORECAST_QUANTILES)].to_numpy()
    assert (np.diff(quantiles, axis=1) > 0).all()
    offsets = np.log(quantiles / rows["point"].to_numpy()[:, None])
    assert (np.diff(offsets[:, -1]) >= -1e-12).all() and (np.diff(offsets[:, 0]) <= 1e-12).all()  # a widening fan


def test_matured_published_forecasts_recalibrate_the_ranges(ready, api, capsys):
    """Published forecasts that missed badly widen the next ranges; the point does not move."""
    assert run_main(inference_pipeline.main) == 0
    before = forecasts(ready)
    closes = api.history["solana"].set_index("day")["close"]
    missed = []
    for day in pd.date_range("2024-02-06", "2024-02-10"):  # made after the backtest's last origin
        rows = forecast_rows(day.strftime("%Y-%m-%d"), point=float(closes[day]) * 2, model_version=1)
        missed.append(rows)
    store = LocalFeatureStore(ready)
    store.get_feature_group(FORECASTS).insert(pd.concat(missed))
    assert run_main(inference_pipeline.main) == 0
    after = forecasts(ready)
    after = after[after["forecast_day"] == before["forecast_day"].iloc[0]].reset_index(drop=True)
    np.testing.assert_array_equal(after["point"], before["point"])
    assert (after["q2_5"] < before["q2_5"]).all()  # every outcome fell far below those forecasts' ranges
    # 5 days x 10 horizons, less 2024-02-10's 10-day forecast: its target, 2024-02-20, is not known on 2024-02-19
    assert "recalibrated with 49 published forecast(s) matured since the backtest (2024-02-06..2024-02-10)" in \
        capsys.readouterr().err


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
    h = np.arange(1, 11)
    basis = np.column_stack([h, h**2])
    steady = basis @ np.linalg.inv(basis.T @ basis) @ basis.T  # projection onto paths a*h + b*h^2
    expected = sol.loc[days[-1], "close"] * np.exp(steady @ (network.predict(x[None])[0] * 0.05))
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


def _not_finite(doc: dict) -> None:
    doc["tau"][3][2] = float("nan")


def _wrong_shape(doc: dict) -> None:
    doc["tau"] = doc["tau"][:9]


def _too_few_scores(doc: dict) -> None:
    doc["scores"][9] = doc["scores"][9][:5]


@pytest.mark.parametrize("damage", ["weights", "scaler", "calibration", "missing", "calibration missing",
                                    "calibration not finite", "calibration shape", "calibration too few"])
def test_a_corrupt_model_is_one_clear_line(ready, api, capsys, damage):
    artifacts = LocalModelRegistry(ready).production(MODEL_NAME).path
    target = "calibration.json" if damage.startswith("calibration") else {
        "weights": "weights.npz", "scaler": "scaler.json", "missing": "network.json"}[damage]
    edit = {"calibration not finite": _not_finite, "calibration shape": _wrong_shape,
            "calibration too few": _too_few_scores}.get(damage)
    if damage.endswith("missing"):
        (artifacts / target).unlink()
    elif edit:
        doc = json.loads((artifacts / target).read_text())
        edit(doc)
        (artifacts / target).write_text(json.dumps(doc).replace("NaN", "NaN"))
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


def test_no_model_on_an_empty_store_names_the_backfill(api, capsys):
    assert run_main(inference_pipeline.main) == 1
    assert error_lines(capsys) == ["error: inference_pipeline: no production version of model sol_lstm: "
                                   "run feature_backfill.py first"]


def test_inference_never_imports_tensorflow(ready, api):
    code = ("import sys, inference_pipeline; rc = inference_pipeline.main([]); "
            "assert rc == 0, rc; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "assert 'scipy.stats' not in sys.modules and 'statsforecast' not in sys.modules; print('ok')")
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
    prices = ["point", *FORECAST_QUANTILES]
    assert lines[0] == ",".join(FORECASTS.column_names)
    stored = forecasts(ready).sort_values("target_day")
    first = lines[1].split(",")
    assert first[:3] == ["2024-02-19", "2024-02-20", "1"]
    assert [float(v) for v in first[3:13]] == [round(stored[c].iloc[0], 2) for c in prices]
    assert all(len(v.partition(".")[2]) <= 2 for line in lines[1:] for v in line.split(",")[3:13])
