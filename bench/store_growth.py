"""How fast the store and its git history grow, run as the daily workflow runs it; write bench/results/.

Simulates DAYS scheduled runs on the real history in ../shared/data: each day the feature pipeline
fetches yesterday from a local server answering as the APIs do, the inference pipeline adds that
day's forecast with a small production model, and the whole CRYPTOCAST_HOME is committed to a git
repository, as `.github/scripts/store.sh push` commits it to the `cryptocast-store` branch.

Reports the packed size of that git history (after `git gc`) at the start and the end, the working
tree's size (what a job checks out), the number of files, and how long a day's update and a full
read of each group take at the start and at the end, so years of growth can be extrapolated.

`--repo DIR` runs another checkout's code (for example the commit before a store change), so
before/after figures come from the same script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
DATA = HERE.parent / "shared" / "data"
START = dt.date(2024, 1, 1)


def git(home: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(home), *args], check=True, capture_output=True, text=True).stdout


def packed_bytes(home: Path) -> int:
    git(home, "gc", "--quiet", "--prune=now")
    counts = dict(line.split(": ") for line in git(home, "count-objects", "-v").splitlines())
    return (int(counts["size-pack"]) + int(counts["size"])) * 1024


def tree_bytes(home: Path) -> tuple[int, int]:
    files = [p for p in home.rglob("*") if p.is_file() and ".git" not in p.relative_to(home).parts]
    return sum(p.stat().st_size for p in files), len(files)


def commit(home: Path, label: str) -> None:
    git(home, "add", "--all", ".")
    if subprocess.run(["git", "-C", str(home), "diff", "--cached", "--quiet"]).returncode:
        git(home, "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", label)


def read_all_seconds(home: Path) -> float:
    from cryptocast.features import FORECASTS, INGESTED_GROUPS
    from cryptocast.stores.local import LocalFeatureStore

    started = time.perf_counter()
    store = LocalFeatureStore(home)
    for spec in (*INGESTED_GROUPS, FORECASTS):
        group = store.get_feature_group(spec)
        if group is not None:
            group.read()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repo", type=Path, default=HERE, help="the checkout whose code to measure")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", type=Path, default=HERE / "bench" / "results" / "store_growth.json")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmark needs the shared real history")
    repo = args.repo.resolve()
    sys.path[:0] = [str(repo), str(HERE / "tests")]
    feature_backfill = importlib.import_module("feature_backfill")
    feature_pipeline = importlib.import_module("feature_pipeline")
    inference_pipeline = importlib.import_module("inference_pipeline")
    from fakeapi import FakeMarket, serve, shared_history
    from modelfiles import write_small_forecaster

    logging.disable(logging.INFO)
    market = FakeMarket(shared_history(DATA), START)
    server = serve(market, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ.update(BINANCE_URL=base, FEAR_GREED_URL=base, CRYPTOCOMPARE_URL=base, CRYPTO_API_KEY="",
                          CRYPTOCAST_HOME=str(home), CRYPTOCAST_AS_OF=str(START), CRYPTOCAST_BACKEND="local")
        os.environ.pop("HOPSWORKS_API_KEY", None)
        if feature_backfill.main([]) != 0:
            raise SystemExit("backfill failed")
        from cryptocast.registry import LocalModelRegistry

        LocalModelRegistry(home).register_and_promote("sol_lstm", write_small_forecaster(Path(tmp) / "model"),
                                                      {"rel_mae_mean": 1.0}, "small model", {})
        git(home, "init", "--quiet")
        commit(home, "start")
        start = {"git_packed_bytes": packed_bytes(home), "tree_bytes_files": tree_bytes(home),
                 "read_all_groups_s": round(read_all_seconds(home), 3)}
        update_s, infer_s = [], []
        for day in range(1, args.days + 1):
            market.now = START + dt.timedelta(days=day)
            os.environ["CRYPTOCAST_AS_OF"] = str(market.now)
            for step, times in ((feature_pipeline, update_s), (inference_pipeline, infer_s)):
                started = time.perf_counter()
                if step.main([]) != 0:
                    raise SystemExit(f"{step.__name__} failed on {market.now}")
                times.append(time.perf_counter() - started)
            commit(home, f"day {market.now}")
        end = {"git_packed_bytes": packed_bytes(home), "tree_bytes_files": tree_bytes(home),
               "read_all_groups_s": round(read_all_seconds(home), 3)}
    server.shutdown()
    growth = end["git_packed_bytes"] - start["git_packed_bytes"]
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "loadavg": os.getloadavg(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "code": args.label, "package": importlib.import_module("cryptocast").__file__, "days": args.days,
        "start": start, "end": end,
        "git_growth_bytes": growth, "git_growth_mb_per_year": round(growth / args.days * 365 / 1e6, 2),
        "daily_update_s": {"first_30_median": round(statistics.median(update_s[:30]), 3),
                           "last_30_median": round(statistics.median(update_s[-30:]), 3)},
        "daily_inference_s": {"first_30_median": round(statistics.median(infer_s[:30]), 3),
                              "last_30_median": round(statistics.median(infer_s[-30:]), 3)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
