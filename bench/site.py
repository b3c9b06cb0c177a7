"""Time plots.py on a store with a trained model (whole process: wall time, peak memory); write bench/results/site.json.

The store is one `make pipeline` filled with the real history (the offline recipe in the README:
as of 2025-01-01), .cryptocast by default. Every chart is drawn twice, narrow and wide, so this
is the step whose time grew with the page. The load average is recorded beside the figures:
the machine these run on is shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

from train import AS_OF, RESULTS, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path(".cryptocast"), help="a store with a trained model")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (args.home / "model_registry").is_dir():
        raise SystemExit(f"{args.home} holds no model registry: run make pipeline first (see the README)")
    env = {**os.environ, "CRYPTOCAST_HOME": str(args.home), "CRYPTOCAST_AS_OF": AS_OF, "CRYPTOCAST_BACKEND": "local"}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run("plots.py", "--out", str(Path(tmp) / "site"), env=env) for _ in range(args.runs)]
        files = sorted(p for p in (Path(tmp) / "site").iterdir() if p.is_file())
        size_kb = sum(p.stat().st_size for p in files) // 1024
    results = {
        "measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average_1_5_15_min": {"before": [round(v, 2) for v in load_before],
                                    "after": [round(v, 2) for v in os.getloadavg()]},
        "site_runs": runs,
        "median_wall_s": statistics.median(r["wall_s"] for r in runs),
        "median_cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "site": {"files": len(files), "kb": size_kb},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "site.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
