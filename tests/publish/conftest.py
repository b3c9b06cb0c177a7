"""A small but complete store for the dashboard: three groups, a registered model, 21 days of forecasts.

Built once per session without the network or TensorFlow (rows inserted through the store
interface, the model written in the portable format, inference run in NumPy), then copied for
each test so tests can damage their copy.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast import backtest, inference, training
from cryptocast.backtest import Backtest
from cryptocast.dataset import HORIZON
from cryptocast.features import BITCOIN, FEAR_GREED, SOLANA, validate
from cryptocast.modeling.calibration import LEVELS, CalibrationConfig, State
from cryptocast.publish import gather
from cryptocast.publish.document import forecast_document, json_text, scored_forecasts
from cryptocast.publish.page import render_details, render_page
from cryptocast.registry import LocalModelRegistry
from cryptocast.settings import load_settings
from cryptocast.stores.local import LocalFeatureStore

import plots
from conftest import ENV_NAMES, FNG_HOLES, START, run_main
from fakeapi import synthetic_history
from modelfiles import write_serving_model

AS_OF = dt.date(2024, 3, 1)  # the last complete day is 2024-02-29
FIRST_FORECAST_AS_OF = dt.date(2024, 2, 10)
BACKTEST_ORIGINS = pd.date_range("2024-01-03", "2024-02-08", freq="D")
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
    forecasts = {"naive": naive, "drift": naive * np.exp(0.001 * horizons), "ets": naive * np.exp(0.002 * horizons),
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
                 (("calibrated", 1.0), ("fixed_band", 1.3), ("ewma_band", 0.8), ("garch_t_band", 1.1))}
    sigma = np.linspace(0.02, 0.06, len(bt.origins))
    return backtest.Distributions(quantiles, sigma, State(CalibrationConfig(), HORIZON), 0)


def write_artifacts(directory: Path, closes: pd.Series) -> dict:
    """Everything training writes except model.keras, from the real report code; returns the metrics."""
    write_serving_model(directory, calibrated_through=str(BACKTEST_ORIGINS[-1].date()))
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
    window = {"first_origin": "2024-01-16", "last_origin": BACKTEST_ORIGINS[-1].strftime("%Y-%m-%d"), "windows": 24}
    LocalModelRegistry(home).register_and_promote(training.MODEL_NAME, root / "artifacts", metrics, DESCRIPTION,
                                                  {"training_window": window})
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


class Page(HTMLParser):
    """Every src/href, every img's alt, and the embedded forecast data, as a browser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.alts: list[str | None] = []
        self.ids: dict[str, str] = {}
        self.inline: str | None = None
        self._open: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.refs += [value for name, value in attrs  # data: URIs are inline, not files to fetch
                      if name in ("src", "srcset", "href") and value is not None and not value.startswith("data:")]
        if tag == "img":
            self.alts.append(found.get("alt"))
        self._open = found.get("id")
        if tag == "script" and found.get("id") == "forecast-data":
            self.inline = ""

    def handle_data(self, data: str) -> None:
        if self._open == "forecast-data" and self.inline is not None:
            self.inline += data
        elif self._open:
            self.ids[self._open] = self.ids.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def build(out: Path, *args: str) -> int:
    return run_main(plots.main, "--out", str(out), *args)


def page(out: Path) -> Page:
    return Page((out / "index.html").read_text())


@pytest.fixture
def out(shared, site_home, tmp_path) -> Path:
    """A copy of the shared site, built from a store identical to `site_home`, that this test may damage."""
    return Path(shutil.copytree(shared[0], tmp_path / "docs"))


@pytest.fixture(scope="session")
def shared(built_home, tmp_path_factory) -> tuple[Path, Path]:
    """One site built for the tests that only read it (a build costs ~1.5 s): (docs, home)."""
    root = tmp_path_factory.mktemp("shared-site")
    home = root / "home"
    shutil.copytree(built_home, home)
    with pytest.MonkeyPatch.context() as patch:
        for name in ENV_NAMES:
            patch.delenv(name, raising=False)
        patch.setenv("CRYPTOCAST_HOME", str(home))
        patch.setenv("CRYPTOCAST_AS_OF", AS_OF.isoformat())
        patch.chdir(root)
        assert build(root / "docs") == 0
    return root / "docs", home


def details(out: Path) -> Page:
    return Page((out / "details.html").read_text())


def refs(out: Path) -> list[str]:
    """Every src/href of both pages, the main page's first."""
    return page(out).refs + details(out).refs


def render_without_charts(generated: dt.datetime = dt.datetime(2026, 1, 2, 6, 0, tzinfo=dt.UTC)) -> tuple[dict, str]:
    """forecast.json and index.html + details.html for the current environment's store, without drawing the charts."""
    settings = load_settings()
    inputs = gather.gather(settings)
    doc = forecast_document(inputs, scored_forecasts(inputs), settings, 5, generated)
    return doc, render_page(doc, [], json_text(doc)) + render_details(doc, [])
