"""Ten years of daily runs against the local store, fast: does it stay small, and `verify` under 2 s?

Each simulated day writes what the daily workflow writes, through the store's own API: one candle
for SOL and BTC, one Fear & Greed value, and ten forecast rows (synthetic, valid rows: the store is
what is measured, not the pipelines, whose fetching and model are timed by bench/store_growth.py
and bench/train.py). Every 90 days a model version is registered and promoted, as training does,
with small stand-in artifacts. The store's clock (`delta._now_ms`, the time each commit records
and maintenance measures its window by) follows the simulated days, so the weekly maintenance and
the 90-day time-travel window run as they would over ten real years.

At the end of each year: files and bytes of the feature store and of the registry, and the time of
`status --json`, `export solana`, `verify`, and of the daily writes (median, and the slowest: the
days maintenance runs). `--years` shortens the run; `--repo` measures another checkout's code.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parents[1]
START = dt.date(2025, 1, 1)  # the first simulated daily run; the backfill holds 2020..2024
DAY_MS = 86_400_000


def tree(directory: Path) -> tuple[int, int]:
    files = [p for p in directory.rglob("*") if p.is_file()] if directory.is_dir() else []
    return len(files), sum(p.stat().st_size for p in files)


def candles(days: pd.DatetimeIndex, rng: np.random.Generator, start: float) -> pd.DataFrame:
    close = start * np.exp(np.cumsum(rng.normal(0, 0.03, len(days))))
    opens = np.concatenate([[start], close[:-1]])
    spread = np.abs(rng.normal(0, 0.02, len(days)))
    return pd.DataFrame({"day": days, "open": opens, "high": np.maximum(opens, close) * (1 + spread),
                         "low": np.minimum(opens, close) * (1 - spread), "close": close,
                         "volume": rng.uniform(1e5, 1e6, len(days)), "source": "binance"})


def fear_greed(days: pd.DatetimeIndex, rng: np.random.Generator) -> pd.DataFrame:
    from cryptocast.features import fear_greed_band

    values = rng.integers(0, 101, len(days))
    return pd.DataFrame({"day": days, "value": values, "classification": [fear_greed_band(int(v)) for v in values]})


def timed(argv: list[str]) -> float:
    """Seconds one `python -m cryptocast` command takes in-process; it must succeed."""
    from cryptocast.__main__ import main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout whose code to measure")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", type=Path, default=HERE / "bench" / "results" / "store_decade.json")
    args = parser.parse_args()
    sys.path[:0] = [str(args.repo.resolve()), str(HERE / "tests")]
    from cryptocast import features
    from cryptocast.registry import LocalModelRegistry
    from cryptocast.stores import delta
    from cryptocast.stores.local import LocalFeatureStore

    from grouprows import forecast_rows
    from modelfiles import make_artifacts

    logging.disable(logging.INFO)
    rng = np.random.default_rng(20)
    # Simulated time ends now, so delta-rs (which judges a checkpoint's tombstones by the wall clock)
    # sees the commits' ages as a real store would.
    now_ms = int(time.time() * 1000) - (args.years * 365 + 1) * DAY_MS
    delta._now_ms = lambda: now_ms
    years = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ.update(CRYPTOCAST_HOME=str(home), CRYPTOCAST_BACKEND="local", CRYPTOCAST_AS_OF=str(START))
        os.environ.pop("HOPSWORKS_API_KEY", None)
        store = LocalFeatureStore(home)
        history = pd.date_range("2020-01-01", START - dt.timedelta(days=1))
        days = pd.date_range(START, periods=args.years * 365)
        every = history.append(days)  # validated once: a day's write is timed, not building its rows
        prices = {spec.name: features.validate(spec, candles(every, rng, start), "synthetic")
                  for spec, start in ((features.SOLANA, 20.0), (features.BITCOIN, 9000.0))}
        moods = features.validate(features.FEAR_GREED, fear_greed(every, rng), "synthetic")
        groups = {spec.name: store.get_or_create_feature_group(spec)
                  for spec in (features.SOLANA, features.BITCOIN, features.FEAR_GREED, features.FORECASTS)}
        started = time.perf_counter()
        for name in ("solana", "bitcoin"):
            groups[name].insert(prices[name].iloc[:len(history)])
        groups["fear_greed"].insert(moods.iloc[:len(history)])
        backfill_s = round(time.perf_counter() - started, 3)
        registry = LocalModelRegistry(home)
        forecasts = [forecast_rows(str(day.date()), float(prices["solana"]["close"].iloc[len(history) + n]),
                                   1 + n // 90) for n, day in enumerate(days)]
        daily_s: list[float] = []
        for n, day in enumerate(days):
            now_ms += DAY_MS
            os.environ["CRYPTOCAST_AS_OF"] = str(day.date() + dt.timedelta(days=1))
            at = len(history) + n
            started = time.perf_counter()
            for name in ("solana", "bitcoin"):
                groups[name].insert(prices[name].iloc[at:at + 1].reset_index(drop=True))
            groups["fear_greed"].insert(moods.iloc[at:at + 1].reset_index(drop=True))
            groups["solana_forecasts"].insert(forecasts[n])
            daily_s.append(time.perf_counter() - started)
            if n % 90 == 0:  # training: a new version, promoted (stand-in artifacts: the store is measured)
                artifacts = make_artifacts(Path(tmp) / f"model-{n}", seed=n % 251)
                registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0 - n / 1e5}, "bench", {})
            if (n + 1) % 365 == 0:
                store_files, store_bytes = tree(home / "feature_store")
                model_files, model_bytes = tree(home / "model_registry")
                year = daily_s[-365:]
                years.append({"year": (n + 1) // 365, "day": str(day.date()),
                              "store_files": store_files, "store_bytes": store_bytes,
                              "registry_files": model_files, "registry_bytes": model_bytes,
                              "status_s": timed(["status", "--json"]), "export_s": timed(["export", "solana"]),
                              "verify_s": timed(["verify"]),
                              "daily_median_s": round(statistics.median(year), 3),
                              "daily_max_s": round(max(year), 3)})
                print(json.dumps(years[-1]), flush=True)
    first = years[0]
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "loadavg": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "code": args.label, "package": importlib.import_module("cryptocast").__file__,
        "simulated": f"{args.years} years of daily runs from {START}, training every 90 days",
        "backfill_s": backfill_s,
        "years": years,
        "targets": {
            "store_files_within_2x_of_year_1": all(y["store_files"] <= 2 * first["store_files"] for y in years),
            "store_bytes_within_2x_of_year_1": all(y["store_bytes"] <= 2 * first["store_bytes"] for y in years),
            "verify_at_most_2s": all(y["verify_s"] <= 2 for y in years),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["targets"], indent=2))


if __name__ == "__main__":
    main()
