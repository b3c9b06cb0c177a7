"""Time what model health adds to the daily run, on the real history in ../shared/data; write bench/results/health.json.

The store is the real history backfilled from the CSV exports (as of 2025-01-01, the README's offline recipe),
with a year of published forecasts (a fixed band around no change, every day of 2024) and a model version
holding a 365-origin backtest_forecasts.csv and a training window 2020-09-01..2023-12-21, as a trained one
does. No network is built: health reads only the version's files and metadata. Timed in-process, each of
`--runs` times: `health.record_health` (read the inputs, forecasts and previous record, bootstrap the
ranges, check the inputs, write the day's rows) as inference_pipeline.py calls it after the forecast, for a
version with input_profile.json (as training writes now) and one without (trained before: the whole training
window is read to make the profile), and reading the record back (`health --json`, and the page's
sentence). Target (issue 21): <= 1 s added to the daily run. The load average is recorded beside the
figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from train import AS_OF, DATA, REPO, RESULTS


def _store(home: Path) -> None:
    env = {**os.environ, "CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": AS_OF, "CRYPTOCAST_BACKEND": "local"}
    subprocess.run([sys.executable, str(REPO / "feature_backfill.py"),
                    "--solana-csv", str(DATA / "binance" / "SOLUSDT_1d.csv"),
                    "--bitcoin-csv", str(DATA / "binance" / "BTCUSDT_1d.csv"),
                    "--fear-greed-csv", str(DATA / "fear_greed" / "fear_greed.csv")],
                   env=env, check=True, capture_output=True)


def _band(closes: pd.Series, days: pd.DatetimeIndex) -> pd.DataFrame:
    from cryptocast.features import FORECAST_QUANTILES

    z = np.array([-1.96, -1.645, -1.2816, -0.6745, 0.0, 0.6745, 1.2816, 1.645, 1.96])
    origin = np.repeat(days.to_numpy(), 10)
    horizon = np.tile(np.arange(1, 11), len(days))
    point = closes.reindex(origin).to_numpy()
    quantiles = point[:, None] * np.exp(0.04 * np.sqrt(horizon)[:, None] * z)
    rows = pd.DataFrame({"forecast_day": origin, "target_day": origin + pd.to_timedelta(horizon, unit="D"),
                         "horizon": horizon, "point": point, "model_version": 1})
    return rows.join(pd.DataFrame(quantiles, columns=list(FORECAST_QUANTILES)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from cryptocast import health
    from cryptocast.dataset import read_feature_frame
    from cryptocast.features import FORECASTS
    from cryptocast.registry import ModelVersion
    from cryptocast.settings import load_settings
    from cryptocast.stores.local import LocalFeatureStore

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        _store(home)
        store = LocalFeatureStore(home)
        closes = pd.read_csv(DATA / "binance" / "SOLUSDT_1d.csv", parse_dates=["date"]).set_index("date")["close"]
        store.get_or_create_feature_group(FORECASTS).insert(_band(closes, pd.date_range("2024-01-01", "2024-12-30")))
        artifacts = Path(tmp) / "artifacts"
        artifacts.mkdir()
        backtest = _band(closes, pd.date_range("2022-12-12", "2023-12-11"))
        backtest.assign(naive=closes.reindex(backtest["forecast_day"]).to_numpy(),
                        actual=closes.reindex(backtest["target_day"]).to_numpy()).to_csv(
            artifacts / health.BACKTEST_ARTIFACT, index=False, date_format="%Y-%m-%d")
        window = {"first_origin": "2020-09-01", "last_origin": "2023-12-21"}
        version = ModelVersion("sol_lstm", 1, "", "bench", {}, {"training_window": window}, artifacts)
        settings = load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": AS_OF,
                                  "CRYPTOCAST_BACKEND": "local"})
        record, read, older = [], [], []
        for _ in range(args.runs):  # a version trained before input_profile.json: the training window is read
            started = time.perf_counter()
            health.record_health(settings, store, version)
            older.append(round(time.perf_counter() - started, 3))
        frame = read_feature_frame(store, None, settings.last_complete_day).frame
        profile = health.input_profile(frame, (pd.Timestamp(window["first_origin"]),
                                               pd.Timestamp(window["last_origin"])))
        (artifacts / health.INPUT_PROFILE).write_text(json.dumps(profile))
        for _ in range(args.runs):
            started = time.perf_counter()
            rows = health.record_health(settings, store, version)
            record.append(round(time.perf_counter() - started, 3))
            started = time.perf_counter()
            latest = health.latest(store)
            health.as_json(latest), health.page_summary(latest)
            read.append(round(time.perf_counter() - started, 3))
        verdicts = rows["verdict"].value_counts().to_dict()
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                    "after": [round(v, 2) for v in os.getloadavg()]},
        "day": str(settings.last_complete_day),
        "checks": len(rows),
        "verdicts": verdicts,
        "record_health_s": record,
        "median_record_health_s": statistics.median(record),
        "record_health_without_input_profile_s": older,
        "median_record_health_without_input_profile_s": statistics.median(older),
        "read_record_s": read,
        "median_read_record_s": statistics.median(read),
        "target_s": 1.0,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "health.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
