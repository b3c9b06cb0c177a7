"""Backtest scoreboard and timings of training, inference and the site on the real history in ../shared/data.

Writes bench/results/backtest.json (the full evaluation report of the trained version),
bench/results/backtest.md (the scoreboard as a table) and bench/results/train.json (timings and
peak memory). Each step runs as its own process, timed from process start to exit.
Targets (read from the results, never asserted in tests): relative MAE vs naive <= 1.00 at every
horizon, >= 15% lower MAE than the original system's model, interval coverage within 3 points of
nominal, training with backtest <= 600 s, inference <= 10 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"
AS_OF = "2025-01-01"  # the shared history ends 2024-12-31


def run(script: str, *args: str, env: dict) -> dict:
    """Run one pipeline step as a process; its wall time, CPU time (steadier on a busy machine), peak memory."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(REPO / script), *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    stderr = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{script} failed:\n{stderr[-3000:]}")
    return {"wall_s": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def scoreboard(report: dict) -> str:
    models = list(report["models"])
    head = "| h | " + " | ".join(models) + " | coverage 80% | coverage 95% |"
    rows = [head, "|" + "---|" * (len(models) + 3)]
    for h in range(report["horizons"]):
        rel = " | ".join(f"{report['models'][m]['per_horizon'][h]['rel_mae']:.3f}" for m in models)
        cov = [report["intervals"][lv]["per_horizon"][h]["coverage"] for lv in ("0.8", "0.95")]
        rows.append(f"| {h + 1} | {rel} | {cov[0]:.3f} | {cov[1]:.3f} |")
    rows.append("| mean | " + " | ".join(f"{report['models'][m]['rel_mae_mean']:.3f}" for m in models) + " | | |")
    return "\n".join(rows)


def verdicts(report: dict) -> dict:
    lstm = report["models"]["lstm"]["per_horizon"]
    coverage = {lv: [r["coverage"] for r in report["intervals"][lv]["per_horizon"]] for lv in ("0.8", "0.95")}
    return {
        "rel_mae_le_1_at_every_horizon": all(r["rel_mae"] <= 1.0 for r in lstm),
        "horizons_beating_naive": [r["horizon"] for r in lstm if r["rel_mae"] < 1.0],
        "mae_reduction_vs_original": round(report["mae_reduction_vs_original"], 4),
        "mae_reduction_vs_original_ge_15pct": report["mae_reduction_vs_original"] >= 0.15,
        "coverage_within_3_points": {lv: all(abs(c - float(lv)) <= 0.03 for c in cs) for lv, cs in coverage.items()},
        "coverage_mean": {lv: round(sum(cs) / len(cs), 3) for lv, cs in coverage.items()},
    }


def verdict_text(report: dict) -> str:
    """The scoreboard's conclusion in words, so nobody has to infer it from the table."""
    v = verdicts(report)
    parity = ("Our LSTM reaches parity with naive persistence at every horizon." if v["rel_mae_le_1_at_every_horizon"]
              else "**Our LSTM does not reach parity with naive persistence**: it beats it only at horizon(s) "
                   f"{v['horizons_beating_naive'] or 'none'}, mean relative MAE "
                   f"{report['models']['lstm']['rel_mae_mean']:.3f}. No tuning was done on this test period.")
    original = f"It has {v['mae_reduction_vs_original']:.1%} lower MAE than the original system's model."
    cov = v["coverage_mean"]
    coverage = (f"Mean interval coverage {cov['0.8']:.1%} (80% nominal) and {cov['0.95']:.1%} (95% nominal); "
                f"within 3 points at every horizon: 80% {v['coverage_within_3_points']['0.8']}, "
                f"95% {v['coverage_within_3_points']['0.95']}.")
    return "\n\n".join([parity, original, coverage])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmarks need the shared real history")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CRYPTOCAST_HOME": str(Path(tmp) / "home"), "CRYPTOCAST_AS_OF": AS_OF,
               "CRYPTOCAST_BACKEND": "local"}
        env.pop("HOPSWORKS_API_KEY", None)
        run("feature_backfill.py", "--solana-csv", str(DATA / "binance/SOLUSDT_1d.csv"), "--bitcoin-csv",
            str(DATA / "binance/BTCUSDT_1d.csv"), "--fear-greed-csv", str(DATA / "fear_greed/fear_greed.csv"), env=env)
        training = run("training_pipeline.py", env=env)
        inference = [run("inference_pipeline.py", env=env) for _ in range(3)]
        site = [run("plots.py", "--out", str(Path(tmp) / "site"), env=env) for _ in range(3)]
        version = sorted((Path(tmp) / "home/model_registry/sol_lstm").glob("v*"))[-1]
        report = json.loads((version / "artifacts/evaluation.json").read_text())
        metadata = json.loads((version / "version.json").read_text())["metadata"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backtest.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "backtest.md").write_text(
        f"# Backtest scoreboard (relative MAE vs naive; < 1 beats naive)\n\n"
        f"Walk-forward over {report['origins']['first']}..{report['origins']['last']} "
        f"({report['origins']['count']} daily origins, {report['refits']} refits), real history to 2024-12-31.\n\n"
        + scoreboard(report) + "\n\n" + verdict_text(report) + "\n")
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "training_with_backtest": training,
        "inference_runs": inference,
        "site_runs": site,
        "production_shrinkage_by_horizon": metadata.get("shrinkage"),
        "targets": {"training_le_600_s": training["wall_s"] <= 600,
                    "inference_le_10_s": max(r["wall_s"] for r in inference) <= 10, **verdicts(report)},
    }
    (RESULTS / "train.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
