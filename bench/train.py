"""Backtest scoreboard and timings of training, inference and the site on the real history in ../shared/data.

Writes bench/results/backtest.json (the full evaluation report of the trained version),
bench/results/backtest.md (the scoreboard as a table) and bench/results/train.json (timings and
peak memory). Each step runs as its own process, timed from process start to exit.
Targets (issue 9; read from the results, never asserted in tests): coverage of the 80% and 95% ranges
within 2 points of nominal on average over horizons, within 5 at every horizon, within 7 in every
volatility tercile; interval score at 80% <= 0.98 x the fixed band's at h = 1-3 and <= 1.00 at every
horizon; relative MAE vs naive <= 1.00 on average and <= 1.02 at every horizon; training with the
backtest <= 180 s; inference <= 3 s. The load average is recorded beside every timing: the machine
is shared.
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
    load = Path("/proc/loadavg").read_text().split()[:3]
    stderr = process.stderr.read()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{script} failed:\n{stderr[-3000:]}")
    return {"wall_s": round(seconds, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "loadavg": " ".join(load)}


def scoreboard(report: dict) -> str:
    models = list(report["models"])
    rows = ["| h | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 1)]
    for h in range(report["horizons"]):
        rows.append(f"| {h + 1} | " + " | ".join(f"{report['models'][m]['per_horizon'][h]['rel_mae']:.3f}"
                                                 for m in models) + " |")
    rows.append("| mean | " + " | ".join(f"{report['models'][m]['rel_mae_mean']:.3f}" for m in models) + " |")
    return "\n".join(rows)


def ranges_table(report: dict) -> str:
    methods = report["distribution"]["methods"]
    names = list(methods)
    head = ("| h | " + " | ".join(f"cov80 {n}" for n in names) + " | " + " | ".join(f"cov95 {n}" for n in names)
            + " | " + " | ".join(f"IS80/fixed {n}" for n in names if n != "fixed_band") + " | "
            + " | ".join(f"pinball {n}" for n in names) + " |")
    rows = [head, "|" + "---|" * (1 + 4 * len(names) - 1)]
    for h in range(report["horizons"]):
        r = {n: methods[n]["per_horizon"][h] for n in names}
        rows.append(f"| {h + 1} | " + " | ".join(f"{r[n]['coverage_80']:.3f}" for n in names) + " | "
                    + " | ".join(f"{r[n]['coverage_95']:.3f}" for n in names) + " | "
                    + " | ".join(f"{r[n]['winkler_80_vs_fixed_band']:.3f}" for n in names if n != "fixed_band")
                    + " | " + " | ".join(f"{r[n]['pinball']:.3f}" for n in names) + " |")
    rows.append("| mean | " + " | ".join(f"{methods[n]['coverage_80_mean']:.3f}" for n in names) + " | "
                + " | ".join(f"{methods[n]['coverage_95_mean']:.3f}" for n in names) + " | "
                + " | ".join(f"{methods[n]['winkler_80_vs_fixed_band_mean']:.3f}" for n in names if n != "fixed_band")
                + " | " + " | ".join(f"{methods[n]['pinball_mean']:.3f}" for n in names) + " |")
    terciles = ["", "| coverage by the origin's volatility tercile | calm | middle | wild |", "|---|---|---|---|"]
    for n in names:
        for pct in ("80", "95"):
            terciles.append(f"| {n} {pct}% | " + " | ".join(f"{methods[n][f'coverage_{pct}_{t}_mean']:.3f}"
                                                          for t in ("calm", "middle", "wild")) + " |")
    return "\n".join(rows + terciles)


def verdicts(report: dict, training_s: float, inference_s: float) -> dict:
    """Every target of issue 9, measured: the figure and whether it is met."""
    ours = report["distribution"]["methods"]["calibrated"]
    rel = [r["rel_mae"] for r in report["models"]["lstm"]["per_horizon"]]
    out = {}
    for pct, nominal in (("80", 0.8), ("95", 0.95)):
        by_h = [r[f"coverage_{pct}"] for r in ours["per_horizon"]]
        terc = [ours[f"coverage_{pct}_{t}_mean"] for t in ("calm", "middle", "wild")]
        out[f"coverage_{pct}"] = {"mean": round(ours[f"coverage_{pct}_mean"], 3),
                                  "by_horizon": [round(c, 3) for c in by_h], "by_tercile": [round(c, 3) for c in terc],
                                  "mean_within_2_points": abs(ours[f"coverage_{pct}_mean"] - nominal) <= 0.02,
                                  "every_horizon_within_5_points": all(abs(c - nominal) <= 0.05 for c in by_h),
                                  "every_tercile_within_7_points": all(abs(c - nominal) <= 0.07 for c in terc)}
    ratios = [r["winkler_80_vs_fixed_band"] for r in ours["per_horizon"]]
    out["interval_score_80_vs_fixed_band"] = {"by_horizon": [round(r, 3) for r in ratios],
                                              "h1_3": round(ours["winkler_80_vs_fixed_band_h1_3"], 3),
                                              "mean": round(ours["winkler_80_vs_fixed_band_mean"], 3),
                                              "h1_3_le_0_98": ours["winkler_80_vs_fixed_band_h1_3"] <= 0.98,
                                              "every_horizon_le_1_00": max(ratios) <= 1.0}
    out["relative_mae"] = {"mean": round(report["models"]["lstm"]["rel_mae_mean"], 4),
                           "by_horizon": [round(r, 3) for r in rel],
                           "mean_le_1_00": report["models"]["lstm"]["rel_mae_mean"] <= 1.0,
                           "every_horizon_le_1_02": max(rel) <= 1.02}
    out["training_le_180_s"] = training_s <= 180
    out["inference_le_3_s"] = inference_s <= 3
    return out


def verdict_text(report: dict, v: dict) -> str:
    """The scoreboard's conclusion in words, so nobody has to infer it from the table."""
    rel = v["relative_mae"]
    point = (f"Point: mean relative MAE vs naive {rel['mean']:.3f} (target <= 1.00: {rel['mean_le_1_00']}), worst "
             f"horizon {max(rel['by_horizon']):.3f} (target <= 1.02: {rel['every_horizon_le_1_02']}). "
             + ("The network showed no significant skill over persistence on its validation tails, so its "
                "output was shrunk to naive. " if rel["mean"] >= 1.0 else "")
             + f"Our MAE is {report['mae_reduction_vs_original']:.1%} lower than the original system's model's.")
    parts = [point]
    for pct in ("80", "95"):
        c = v[f"coverage_{pct}"]
        parts.append(f"Coverage {pct}%: mean {c['mean']:.3f} (within 2 points: {c['mean_within_2_points']}), by "
                     f"horizon {min(c['by_horizon']):.3f}..{max(c['by_horizon']):.3f} (within 5: "
                     f"{c['every_horizon_within_5_points']}), calm/middle/wild {c['by_tercile']} (within 7: "
                     f"{c['every_tercile_within_7_points']}).")
    s = v["interval_score_80_vs_fixed_band"]
    parts.append(f"Interval score at 80% vs the fixed band: {s['h1_3']:.3f} at h = 1-3 (target <= 0.98: "
                 f"{s['h1_3_le_0_98']}), {s['mean']:.3f} on average, worst horizon {max(s['by_horizon']):.3f} "
                 f"(target <= 1.00 everywhere: {s['every_horizon_le_1_00']}).")
    return "\n\n".join(parts)


CHOSEN_ON = """## What was chosen on which data (nothing on the scored year)

- Calibration ({estimator} estimator of daily variance, short-run EWMA {ewma_lambda} over {vol_days} days,
  long-run mean over {long_run_days} days, short-run weight {weight} (1 day) to {weight_long} (10 days),
  {window}-score window, mirrored |score|, ACI step {gamma} / h): chosen with naive forecasts on three
  folds of the origins whose outcomes were known before the first scored origin, each run as training
  runs the scored year (a fresh state warmed up on the window before it), by the issue's own targets;
  see `calibration.md` for the table and the rule. Chosen before this scoreboard was computed and not
  changed after it.
- Warm-up: our model also forecasts the {warmup} origins before the scored ones (refitted every 190), so
  the first scored origin's quantiles already rest on {window} known outcomes per horizon. Never scored.
- Shrinkage toward naive: one factor per fit, on that fit's validation tail (the last 20% of its
  training windows), kept only if it beats naive there (one-sided Diebold-Mariano, 5%).
- Ensemble size (4 heads of 32 units) and patience (4; validation loss rises after epoch 1-2): set
  from training curves and the time budget, not from backtest scores.
- AutoETS: statsforecast's own model selection on each refit's known closes.
- The original system's model is refitted every third block (90 origins) instead of every block: it
  was 250 of 447 training seconds and is a yardstick ~2.8x worse than naive either way."""


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
    training_s = training["wall_s"]
    inference_s = max(r["wall_s"] for r in inference)
    v = verdicts(report, training_s, inference_s)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "backtest.json").write_text(json.dumps(report, indent=2) + "\n")
    dist = report["distribution"]
    (RESULTS / "backtest.md").write_text(
        f"# Backtest scoreboard\n\n"
        f"Walk-forward over {report['origins']['first']}..{report['origins']['last']} "
        f"({report['origins']['count']} daily origins, {report['refits']} refits, after a "
        f"{dist['warmup_origins']}-origin calibration warm-up), real history to 2024-12-31.\n\n"
        f"## Point forecasts: relative MAE vs naive (< 1 beats naive)\n\n" + scoreboard(report)
        + "\n\n## Ranges around our point forecast\n\n`calibrated` is ours; `fixed_band` the constant-width "
        "conformal band it replaces and `ewma_band` a textbook volatility band (normal quantiles), both recalibrated "
        "on the same origins from known outcomes only. IS80 = interval (Winkler) score of the 80% range over the "
        "fixed band's; pinball loss in USD, averaged over the 9 published quantiles.\n\n" + ranges_table(report)
        + "\n\n## Against the targets\n\n" + verdict_text(report, v)
        + f"\n\nTraining with the backtest (peers included): {training_s:.0f} s (target <= 180 s: "
        f"{v['training_le_180_s']}) at load average {training['loadavg']}; inference {inference_s:.2f} s "
        f"(target <= 3 s: {v['inference_le_3_s']}).\n\n"
        + CHOSEN_ON.format(**dist["config"], warmup=dist["warmup_origins"]) + "\n")
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "training_with_backtest": training,
        "inference_runs": inference,
        "site_runs": site,
        "production_shrinkage": metadata.get("shrinkage"),
        "targets": v,
    }
    (RESULTS / "train.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
