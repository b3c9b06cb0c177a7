"""Time the feature pipelines on the real history in ../shared/data; write bench/results/ingest.json.

Measures (median of several runs, each on a fresh store):
- full backfill from the shared CSV exports (Binance + Fear & Greed, and Kraken);
- one daily update against a local server answering as the APIs do (target: <= 3 s wall on
  2 cores, excluding interpreter start), and the same as a whole process for reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import feature_backfill  # noqa: E402
import feature_pipeline  # noqa: E402
from fakeapi import FakeMarket, serve, shared_history  # noqa: E402

DATA = REPO.parent / "shared" / "data"
DAY = dt.date(2025, 1, 1)  # the shared history ends 2024-12-31
TARGET_UPDATE_S = 3.0


@contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def timed(fn, *args) -> float:
    started = time.perf_counter()
    if fn(*args) != 0:
        raise SystemExit(f"benchmark step {fn.__module__} failed")
    return time.perf_counter() - started


def backfill_args(kind: str) -> list[str]:
    if kind == "binance":
        return ["--solana-csv", str(DATA / "binance/SOLUSDT_1d.csv"), "--bitcoin-csv",
                str(DATA / "binance/BTCUSDT_1d.csv"), "--fear-greed-csv", str(DATA / "fear_greed/fear_greed.csv")]
    return ["--solana-csv", str(DATA / "cryptocompare/solana_kraken_daily.csv"), "--bitcoin-csv",
            str(DATA / "cryptocompare/bitcoin_kraken_daily.csv"), "--fear-greed-csv",
            str(DATA / "fear_greed/fear_greed.csv")]


def bench_backfill(kind: str, runs: int, work: Path) -> list[float]:
    times = []
    for i in range(runs):
        with environment(CRYPTOCAST_HOME=str(work / f"backfill-{kind}-{i}"), CRYPTOCAST_AS_OF=str(DAY)):
            times.append(timed(feature_backfill.main, backfill_args(kind)))
    return times


def bench_update(runs: int, work: Path) -> dict[str, list[float]]:
    """Store filled through 12-30 from the APIs; the update fetches 12-31 from the local server."""
    market = FakeMarket(shared_history(DATA), DAY - dt.timedelta(days=1))
    server = serve(market, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    seed = work / "update-seed"
    urls = dict(BINANCE_URL=base, FEAR_GREED_URL=base, CRYPTOCOMPARE_URL=base, CRYPTO_API_KEY="",
                CRYPTOCAST_HISTORY_START="2018-01-01")
    with environment(CRYPTOCAST_HOME=str(seed), CRYPTOCAST_AS_OF=str(market.now), **urls):
        timed(feature_backfill.main, [])
    market.now = DAY
    in_process, whole_process = [], []
    for i in range(runs):
        home = work / f"update-{i}"
        shutil.copytree(seed, home)
        with environment(CRYPTOCAST_HOME=str(home), CRYPTOCAST_AS_OF=str(DAY), **urls):
            in_process.append(timed(feature_pipeline.main, []))
            shutil.rmtree(home)
            shutil.copytree(seed, home)
            started = time.perf_counter()
            subprocess.run([sys.executable, str(REPO / "feature_pipeline.py")], check=True, capture_output=True,
                           env=os.environ.copy())
            whole_process.append(time.perf_counter() - started)
    server.shutdown()
    return {"in_process": in_process, "whole_process": whole_process}


def summary(times: list[float]) -> dict:
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "runs": [round(t, 3) for t in times]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ingest.json")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmarks need the shared real history")
    import logging

    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        update = bench_update(args.runs, work)
        results = {
            "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "loadavg": os.getloadavg(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "backfill_csv_binance_and_fear_greed": summary(bench_backfill("binance", args.runs, work)),
            "backfill_csv_kraken_and_fear_greed": summary(bench_backfill("kraken", args.runs, work)),
            "daily_update_local_server_excluding_interpreter_start": summary(update["in_process"]),
            "daily_update_local_server_whole_process": summary(update["whole_process"]),
            "target_daily_update_s": TARGET_UPDATE_S,
        }
    results["daily_update_meets_target"] = (
        results["daily_update_local_server_excluding_interpreter_start"]["max_s"] <= TARGET_UPDATE_S)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
