"""A small but complete store for the dashboard: three groups, a registered model, 21 days of forecasts.

Built once per session without the network or TensorFlow (rows inserted through the store
interface, the model written in the portable format, inference run in NumPy), then copied for
each test so tests can damage their copy.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast import backtest, inference, training
from cryptocast.backtest import Backtest
from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK
from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA, validate
from cryptocast.modeling.calibration import LEVELS, CalibrationConfig, State
from cryptocast.modeling.forecasters import Scaler
from cryptocast.registry import LocalModelRegistry
from cryptocast.settings import load_settings
from cryptocast.stores.local import LocalFeatureStore

from conftest import ENV_NAMES, FNG_HOLES, START
from fakeapi import synthetic_history
from modelfiles import make_spec, random_arrays, write_calibration, write_dir

AS_OF = dt.date(2024, 3, 1)  # the last complete day is 2024-02-29
FIRST_FORECAST_AS_OF = dt.date(2024, 2, 10)
BACKTEST_ORIGINS = pd.date_range("2024-01-03", "2024-02-08", freq="D")
LAYERS = [{"type": "lstm", "units": 4, "activation": "tanh", "recurrent_activation": "sigmoid",
           "return_sequences": False}, {"type": "dense", "units": HORIZON, "activation": "linear"}]
DESCRIPTION = "test model <b>&amp; friends</b>"


def settings_for(home: Path, as_of: dt.date):
    """Settings that ignore the process environment and any `.env`."""
    return load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": as_of.isoformat(),
                          "CRYPTOCAST_BACKEND": "local"}, environ={}, dotenv_path=home / "no.env")


def fill_groups(home: Path) -> pd.Series:
    """The fake API's synthetic history, inserted as the pipelines would; returns SOL closes by day."""
    history = synthetic_history(START, 60, fng_holes=FNG_HOLES)
    store = LocalFeatureStore(home)
    for spec in (SOLANA, BITCOIN):
        rows = history[spec.name].assign(source="binance")
        store.get_or_create_feature_group(spec).insert(validate(spec, rows, "synthetic"))
    store.get_or_create_feature_group(FEAR_GREED).insert(validate(FEAR_GREED, history["fear_greed"], "synthetic"))
    return history["solana"].set_index("day")["close"]


def synthetic_backtest(closes: pd.Series) -> Backtest:
    """A backtest of the shape training produces, with made-up forecasts around the real outcomes."""
    rng = np.random.default_rng(3)
    horizons = np.arange(1, HORIZON + 1)
    last_close = closes.loc[BACKTEST_ORIGINS].to_numpy()
    actual = np.stack([closes.loc[BACKTEST_ORIGINS + pd.Timedelta(days=int(h))].to_numpy() for h in horizons], axis=1)
    naive = np.repeat(last_close[:, None], HORIZON, axis=1)
    forecasts = {"naive": naive, "drift": naive * np.exp(0.001 * horizons),
                 "lstm": naive * np.exp(rng.normal(0, 0.03, naive.shape)),
                 "original": naive * np.exp(rng.normal(0, 0.15, naive.shape))}
    return Backtest(BACKTEST_ORIGINS, actual, last_close, forecasts, 2, {name: 0.0 for name in forecasts})


def synthetic_distributions(bt: Backtest) -> backtest.Distributions:
    """Quantiles of the shape training produces for every interval method, as log offsets around our point.

    Ours are the errors' own quantiles, so they cover as promised and the version is promoted; the
    peers are wider and narrower copies.
    """
    point = bt.forecasts["lstm"]
    offsets = np.quantile(np.log(bt.actual / point), LEVELS, axis=0).T  # (H, L)
    quantiles = {name: point[..., None] * np.exp(k * offsets) for name, k in
                 (("calibrated", 1.0), ("fixed_band", 1.3), ("ewma_band", 0.8))}
    sigma = np.linspace(0.02, 0.06, len(bt.origins))
    return backtest.Distributions(quantiles, sigma, State(CalibrationConfig(), HORIZON), 0)


def write_artifacts(directory: Path, closes: pd.Series) -> dict:
    """Everything training writes except model.keras, from the real report code; returns the metrics."""
    spec = make_spec(LAYERS, [LOOKBACK, len(FEATURES)])
    write_dir(directory, spec, random_arrays(spec, np.random.default_rng(0)))
    scaler = Scaler("standard", list(FEATURES), [0.0] * 7, [0.05, 0.05, 10, 10, 0.05, 0.05, 0.2], [0.0] * 10,
                    [0.05] * 10)
    (directory / "scaler.json").write_text(scaler.to_json())
    write_calibration(directory, str(BACKTEST_ORIGINS[-1].date()))
    bt = synthetic_backtest(closes)
    dist = synthetic_distributions(bt)
    doc = backtest.report(bt, closes.loc[: BACKTEST_ORIGINS[0] - pd.Timedelta(days=1)].to_numpy(), dist)
    (directory / "evaluation.json").write_text(json.dumps(doc, indent=2, allow_nan=False))
    (directory / "history.json").write_text(json.dumps({"loss": [1.0, 0.8, 0.7, 0.66, 0.65],
                                                        "val_loss": [1.1, 0.9, 0.85, 0.87, 0.9]}))
    training.backtest_forecasts(bt, dist.quantiles["calibrated"]).to_csv(directory / "backtest_forecasts.csv",
                                                                         index=False, date_format="%Y-%m-%d")
    return training._metrics(doc)


def forecast_every_day(home: Path) -> None:
    day = FIRST_FORECAST_AS_OF
    while day <= AS_OF:
        inference.infer(settings_for(home, day))
        day += dt.timedelta(days=1)


@pytest.fixture(scope="session")
def built_home(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("published")
    home = root / "home"
    closes = fill_groups(home)
    metrics = write_artifacts(root / "artifacts", closes)
    LocalModelRegistry(home).register_and_promote(training.MODEL_NAME, root / "artifacts", metrics, DESCRIPTION, {})
    forecast_every_day(home)
    return home


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """A clean environment as of 2024-03-01 with an empty home; returns the home path."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    monkeypatch.setenv("CRYPTOCAST_AS_OF", AS_OF.isoformat())
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def site_home(built_home, isolated) -> Path:
    """This test's own copy of the built store and registry."""
    shutil.copytree(built_home, isolated)
    return isolated
