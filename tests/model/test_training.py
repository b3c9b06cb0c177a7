"""Training end to end on a small synthetic store: backtest, register, promote, then infer.

Slow (imports TensorFlow), but small: 420 days, 2 epochs, a 30-day backtest refitted twice.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from cryptocast.dataset import HORIZON, LOOKBACK
from cryptocast.features import FORECAST_QUANTILES
from cryptocast.registry import LocalModelRegistry
from cryptocast.training import MODEL_NAME

import feature_backfill
import inference_pipeline
import training_pipeline
from conftest import SMALL_TRAINING_AS_OF, run_main

pytestmark = pytest.mark.slow
AS_OF = SMALL_TRAINING_AS_OF


@pytest.fixture
def trained(small_training, home):
    assert run_main(feature_backfill.main) == 0
    assert run_main(training_pipeline.main) == 0
    return LocalModelRegistry(home)


def test_training_registers_a_production_version_with_its_evidence(trained):
    version = trained.production(MODEL_NAME)
    assert version.version == 1
    files = {p.name for p in version.path.iterdir()}
    assert {"model.keras", "network.json", "weights.npz", "scaler.json", "calibration.json", "evaluation.json",
            "history.json", "backtest_forecasts.csv", "input_example.csv"} <= files
    report = json.loads((version.path / "evaluation.json").read_text())
    assert set(report["models"]) == {"naive", "drift", "ets", "lstm", "original"}
    assert set(report["distribution"]["methods"]) == {"calibrated", "fixed_band", "ewma_band", "garch_t_band"}
    # too short a history for folds before the backtest: the default ranges, and the metrics say so
    assert version.metrics["range_method"] == "blend" and "too little history" in version.metrics["range_method_reason"]
    assert len(version.metrics["coverage_80_mean_interval"]) == 2
    assert report["distribution"]["warmup_origins"] > 60
    assert version.metrics["coverage_80_mean"] == report["distribution"]["methods"]["calibrated"]["coverage_80_mean"]
    assert report["origins"]["count"] == 30 and report["refits"] == 2
    assert report["origins"]["last"] == str(AS_OF - dt.timedelta(days=11))  # last origin with 10 known targets
    assert all(row["rel_mae"] == 1.0 for row in report["models"]["naive"]["per_horizon"])
    assert version.metrics["rel_mae_mean"] == report["models"]["lstm"]["rel_mae_mean"]
    assert version.metadata["features"] == json.loads((version.path / "scaler.json").read_text())["features"]
    assert not list(version.path.glob("*.pkl")) and not list(version.path.glob("*.pickle"))
    example = pd.read_csv(version.path / "input_example.csv")
    assert list(example.columns) == ["day", *version.metadata["features"]] and len(example) == LOOKBACK
    assert example["day"].iloc[-1] == version.metadata["training_window"]["last_origin"]
    backtest_rows = pd.read_csv(version.path / "backtest_forecasts.csv")
    assert len(backtest_rows) == report["origins"]["count"] * HORIZON
    quantiles = backtest_rows[list(FORECAST_QUANTILES)].to_numpy()
    assert np.isfinite(quantiles).all() and (np.diff(quantiles, axis=1) >= 0).all()
    profile = json.loads((version.path / "input_profile.json").read_text())  # what daily health's drift check reads
    assert profile["training_window"] == {k: version.metadata["training_window"][k]
                                          for k in ("first_origin", "last_origin")}
    assert set(profile["features"]) == set(version.metadata["features"])
    assert all(len(f["shares"]) == len(f["edges"]) + 1 for f in profile["features"].values())


def test_same_seed_same_model_and_the_promotion_rule(trained):
    assert run_main(training_pipeline.main) == 0
    v1, v2 = trained.versions(MODEL_NAME)
    with np.load(v1.path / "weights.npz") as a, np.load(v2.path / "weights.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    assert v1.metrics == v2.metrics
    assert trained.production(MODEL_NAME).version == 2  # equal backtest error is "no worse": promoted


def test_inference_uses_the_trained_model(trained, home):
    assert run_main(inference_pipeline.main) == 0
    from cryptocast.features import FORECASTS
    from cryptocast.stores.local import LocalFeatureStore

    rows = LocalFeatureStore(home).get_feature_group(FORECASTS).read()
    assert len(rows) == 10 and rows["model_version"].eq(1).all()


def test_numpy_inference_equals_keras_on_the_trained_model(trained):
    """The daily path's NumPy forward pass gives Keras' own output for the registered model."""
    import keras

    from cryptocast.modeling.portable import PortableNetwork

    version = trained.production(MODEL_NAME)
    x = np.random.default_rng(0).normal(size=(16, 15, 7))
    expected = keras.models.load_model(version.path / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(PortableNetwork.load(version.path).predict(x), expected, atol=1e-5)


def test_the_merged_network_is_exactly_the_average_of_independent_heads():
    from cryptocast.modeling import train

    config = train.TrainConfig(units=4, heads=3, epochs=2, patience=1)
    model = train.lstm_network(config, LOOKBACK, 7, HORIZON)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(120, LOOKBACK, 7)), rng.normal(size=(120, HORIZON))
    fitted = train.fit(model, x, np.tile(y, (1, 3)), config, "mae", gap=HORIZON)
    lstm, _, dense = fitted.model.layers
    recurrent_mask, dense_mask = train._head_masks(config, HORIZON)
    assert not np.any(lstm.cell.get_weights()[1] * (1 - recurrent_mask))  # heads never see each other
    assert not np.any(dense.get_weights()[0] * (1 - dense_mask))
    heads = train.predict(fitted.model, x).reshape(len(x), 3, HORIZON)
    assert np.ptp(heads, axis=1).max() > 1e-3  # members differ: an ensemble, not three copies
    merged = train.merge_heads(fitted.model, config, HORIZON)
    np.testing.assert_allclose(train.predict(merged, x), heads.mean(axis=1), atol=1e-5)
