"""Measure each environment the workflows install, and the daily workflow's runner minutes.

For every lock file: a fresh virtualenv, `pip install --require-hashes -r LOCK` (pip from PyPI only, as a
user has it) timed with pip's cache warm and, for the daily and full locks, cold (no cache: every wheel
downloaded from PyPI), the installed size, the package count, the size of the venv as actions/cache would store it
(tar + zstd), and whether `import tensorflow` works in it.

Then the daily path for real: a store backfilled and a model trained by the full environment (the
project's .venv, training_pipeline.py with a small configuration), committed to a local bare git
repository standing in for the `cryptocast-store` branch; a fresh clone, as the next day's job gets, runs
the daily job's steps with a venv made from the daily lock alone (store.sh pull, feature_pipeline.py
against a local stand-in for the APIs on loopback, store.sh push, the model check, inference, push,
plots.py, status), each timed as a whole process. The daily workflow's runner minutes are estimated
from those steps plus GitHub's own per-job overheads (stated as assumptions, not measured here);
GitHub bills each job rounded up to a whole minute. With --python, the daily path also runs on other
interpreters (3.12, 3.13).

Writes bench/results/envs.json and bench/results/envs.md. Needs the network (PyPI) and ../shared/data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from fakeapi import FakeMarket, serve, shared_history  # noqa: E402

DATA = REPO.parent / "shared" / "data"
PORT = 8795
TRAINED_AS_OF = dt.date(2024, 12, 20)  # the model and the store are this old ...
DAILY_AS_OF = dt.date(2025, 1, 1)  # ... when the daily run comes (the shared history ends 2024-12-31)
LOCKS = {"daily": "requirements/daily.txt", "hopsworks": "requirements/hopsworks.txt",
         "train": "requirements/train.txt", "full": "requirements.txt"}
COLD = ("daily", "full")
TARGET_DAILY_MB = 600
TARGET_DAILY_MINUTES = 4
SMALL_TRAINING = {"CRYPTOCAST_EPOCHS": "2", "CRYPTOCAST_LSTM_UNITS": "8", "CRYPTOCAST_PATIENCE": "1",
                  "CRYPTOCAST_BACKTEST_DAYS": "30", "CRYPTOCAST_REFIT_EVERY": "30"}
# GitHub's own work around a job's steps, not measurable here (seconds; typical figures for a hosted
# Ubuntu runner, stated as assumptions).
OVERHEAD_S = {"set up job and runner start": 5, "checkout (depth 1)": 2, "setup-python from the toolcache": 2,
              "actions/cache restore request": 2, "upload-pages-artifact": 5, "post-job cleanup": 2}
CACHE_DOWNLOAD_MB_S = 100  # assumed throughput of a cache restore on a hosted runner
SMALL_JOBS_S = {"deploy (deploy-pages)": 20, "keepalive (checkout + two API calls)": 10,
                "report (checkout + two or three API calls; scheduled runs)": 12}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(command: list[str], env: dict | None = None, cwd: Path | None = None, check: bool = True) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if check and done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return elapsed


def du_mb(path: Path) -> float:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def pypi_env(cache: bool) -> dict:
    """pip as a user has it: no configuration (this machine's extra local indexes off), PyPI only; with
    pip's cache (warm: every wheel already downloaded once) or without it (cold)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            **({} if cache else {"PIP_NO_CACHE_DIR": "1"})}


def make_venv(python: str, where: Path, lock: str, cold: bool) -> dict:
    run([python, "-m", "venv", str(where)])
    bare = du_mb(where)
    env = pypi_env(cache=not cold)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", "--require-hashes", "-r"]
    seconds = run(pip + [str(REPO / "requirements" / "pip.txt")], env=env) + run(pip + [str(REPO / lock)], env=env)
    listed = subprocess.run([str(where / "bin" / "python"), "-m", "pip", "list", "--format", "json"],
                            capture_output=True, text=True, check=True)
    tf = subprocess.run([str(where / "bin" / "python"), "-c", "import tensorflow"], capture_output=True, text=True)
    return {"install_s": round(seconds, 1), "installed_mb": round(du_mb(where) - bare, 1),
            "venv_mb": round(du_mb(where), 1), "packages": len(json.loads(listed.stdout)),
            "import_tensorflow": "works" if tf.returncode == 0 else tf.stderr.strip().splitlines()[-1]}


def archive_mb(where: Path) -> float:
    """The venv as actions/cache stores it: a zstd-compressed tar."""
    tar = subprocess.Popen(["tar", "-C", str(where.parent), "-cf", "-", where.name], stdout=subprocess.PIPE)
    packed = subprocess.run(["zstd", "-q", "-T0", "-c"], stdin=tar.stdout, capture_output=True, check=True)
    tar.wait()
    return round(len(packed.stdout) / 1e6, 1)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def trained_store(work: Path, base: str) -> Path:
    """Backfill from the local API stand-in and train, with the full environment (the project's venv)."""
    home = work / "trained"
    env = {**os.environ, **SMALL_TRAINING, "CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": str(TRAINED_AS_OF),
           "CRYPTOCAST_BACKEND": "local", "BINANCE_URL": base, "FEAR_GREED_URL": base, "CRYPTO_API_KEY": ""}
    full = str(REPO / ".venv" / "bin" / "python")
    run([full, str(REPO / "feature_backfill.py")], env=env)
    seconds = run([full, str(REPO / "training_pipeline.py")], env=env)
    print(f"envs: store backfilled and a model trained by the full environment ({seconds:.0f} s)", flush=True)
    return home


def remote_with_store(work: Path, home: Path) -> Path:
    """A bare repository holding this commit of the project and the store on the store branch."""
    remote = work / "remote.git"
    run(["git", "clone", "--quiet", "--bare", "--depth", "1", f"file://{REPO}", str(remote)])
    seed = work / "seed"
    run(["git", "clone", "--quiet", f"file://{remote}", str(seed)])
    env = {**os.environ, "CRYPTOCAST_BACKEND": "local", "CRYPTOCAST_HOME": ".cryptocast",
           "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    run(["bash", ".github/scripts/store.sh", "pull"], env=env, cwd=seed)
    shutil.copytree(home, seed / ".cryptocast", dirs_exist_ok=True)
    run(["bash", ".github/scripts/store.sh", "push", "seed"], env=env, cwd=seed)
    return remote


def daily_job(python: str, work: Path, remote: Path, base: str, name: str) -> dict:
    """The daily job's steps, in order, in a fresh clone, with a venv made from the daily lock alone."""
    venv = work / f"daily-venv-{name}"
    env_info = make_venv(python, venv, LOCKS["daily"], cold=False)
    clone = work / f"job-{name}"
    run(["git", "clone", "--quiet", "--depth", "1", f"file://{remote}", str(clone)])
    py = str(venv / "bin" / "python")
    env = {**os.environ, "CRYPTOCAST_BACKEND": "local", "CRYPTOCAST_HOME": ".cryptocast", "PYTHON": py,
           "CRYPTOCAST_AS_OF": str(DAILY_AS_OF), "BINANCE_URL": base, "FEAR_GREED_URL": base, "CRYPTO_API_KEY": "",
           "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    store = ["bash", ".github/scripts/store.sh"]
    steps = {
        "store.sh pull": store + ["pull"],
        "feature_pipeline.py": [py, "feature_pipeline.py"],
        "store.sh push features": store + ["push", "features"],
        "store.sh model-missing": store + ["model-missing"],
        "inference_pipeline.py": [py, "inference_pipeline.py"],
        "store.sh push inference": store + ["push", "inference"],
        "plots.py --out _site": [py, "plots.py", "--out", "_site"],
        "python -m cryptocast status": [py, "-m", "cryptocast", "status"],
    }
    timings = {label: round(run(command, env=env, cwd=clone), 2) for label, command in steps.items()}
    missing = subprocess.run(store + ["model-missing"], env=env, cwd=clone, capture_output=True, text=True).stdout
    site = sorted(p.name for p in (clone / "_site").iterdir())
    return {"python": subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                                     capture_output=True, text=True).stdout.strip(),
            "environment": env_info, "steps_s": timings, "model_missing_output": missing.strip(),
            "site_files": site, "store_commits": int(git(remote, "rev-list", "--count", "cryptocast-store"))}


def runner_minutes(job: dict, cache_mb: float) -> dict:
    steps_s = sum(job["steps_s"].values())
    restore_s = cache_mb / CACHE_DOWNLOAD_MB_S
    pipeline_s = steps_s + restore_s + sum(OVERHEAD_S.values())
    jobs = {"pipeline (features, forecast, site)": pipeline_s, **SMALL_JOBS_S}
    return {"assumed_overheads_s": OVERHEAD_S, "assumed_cache_restore_mb_s": CACHE_DOWNLOAD_MB_S,
            "measured_steps_s": round(steps_s, 1), "cache_restore_s": round(restore_s, 1),
            "jobs_s": {k: round(v, 1) for k, v in jobs.items()},
            "sum_s": round(sum(jobs.values()), 1),
            "billed_minutes_scheduled_day": sum(math.ceil(v / 60) for v in jobs.values()),
            "target_minutes": TARGET_DAILY_MINUTES}


def markdown(results: dict) -> str:
    lines = [f"# Environments and the daily workflow's runner minutes ({results['measured_on']})", "",
             f"`python bench/envs.py` on {results['machine']['cpus']} cores, Python "
             f"{results['machine']['python']}; load average {results['loadavg_start']} at the start, "
             f"{results['loadavg_end']} at the end (other work shared the machine). Install times, pip from PyPI "
             "only: warm (pip's cache holds every wheel) and cold (no cache: every wheel downloaded, at this "
             "machine's bandwidth).", "",
             "| environment | lock | packages | installed | venv as cached (zstd) | install, warm | install, cold "
             "| `import tensorflow` |", "|---|---|---|---|---|---|---|---|"]
    for name, env in results["environments"].items():
        cold = f"{env['install_cold_s']} s" if "install_cold_s" in env else "—"
        lines.append(f"| {name} | `{env['lock']}` | {env['packages']} | {env['installed_mb']:.0f} MB | "
                     f"{env['cached_archive_mb']:.0f} MB | {env['install_s']} s | {cold} | "
                     f"{env['import_tensorflow']} |")
    daily = results["environments"]["daily"]
    lines += ["", f"Daily environment: {daily['installed_mb']:.0f} MB installed (target ≤ {TARGET_DAILY_MB} MB), "
              f"TensorFlow not importable: {'yes' if daily['import_tensorflow'] != 'works' else 'NO'}.", ""]
    for job in results["daily_job"]:
        lines += [f"## The daily job's steps, daily lock only, Python {job['python']}", "",
                  "A fresh clone of a bare repository holding the store trained by the full environment "
                  f"(as of {TRAINED_AS_OF}); the job runs as of {DAILY_AS_OF} against the local API stand-in.", "",
                  "| step | seconds (whole process) |", "|---|---|"]
        lines += [f"| `{label}` | {seconds} |" for label, seconds in job["steps_s"].items()]
        lines += ["", f"Site: {', '.join(job['site_files'])}. `import tensorflow` in this venv: "
                  f"{job['environment']['import_tensorflow']}.", ""]
    minutes = results["runner_minutes"]
    lines += ["## Runner minutes of a scheduled daily run, warm cache (estimate)", "",
              "Measured steps above plus GitHub's per-job work, which cannot be measured here (assumed: "
              + ", ".join(f"{k} {v} s" for k, v in minutes["assumed_overheads_s"].items())
              + f"; the cached venv restored at {minutes['assumed_cache_restore_mb_s']} MB/s). GitHub bills each "
              "job rounded up to a whole minute.", "", "| job | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in minutes["jobs_s"].items()]
    lines += ["", f"Sum {minutes['sum_s']} s; billed **{minutes['billed_minutes_scheduled_day']} runner-minutes** "
              f"(target ≤ {minutes['target_minutes']}); a manual run has no report job. On a cache miss (a new "
              f"lock) the pipeline job installs the daily lock instead of restoring it: "
              f"{results['environments']['daily'].get('install_cold_s', '?')} s here from PyPI.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="also run the daily path on this interpreter")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "envs.json")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} not found: the benchmarks need the shared real history")
    python = str(REPO / ".venv" / "bin" / "python")
    base_python = subprocess.run([python, "-c", "import sys; print(sys._base_executable)"], capture_output=True,
                                 text=True, check=True).stdout.strip()
    results = {"measured_on": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%MZ"), "loadavg_start": loadavg(),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "environments": {}, "daily_job": []}
    market = FakeMarket(shared_history(DATA), TRAINED_AS_OF)
    server = serve(market, PORT)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{PORT}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for name, lock in LOCKS.items():
                env = make_venv(base_python, work / f"venv-{name}", lock, cold=False)
                env["cached_archive_mb"] = archive_mb(work / f"venv-{name}")
                if name in COLD:
                    env["install_cold_s"] = make_venv(base_python, work / f"cold-{name}", lock, cold=True)["install_s"]
                results["environments"][name] = {"lock": lock, **env}
                print(f"envs: {name}: {env}", flush=True)
            home = trained_store(work, base)
            remote = remote_with_store(work, home)
            market.now = DAILY_AS_OF
            for index, interpreter in enumerate([base_python, *args.python]):
                job = daily_job(interpreter, work, remote, base, str(index))
                results["daily_job"].append(job)
                print(f"envs: daily job on Python {job['python']}: {job['steps_s']}", flush=True)
    finally:
        server.shutdown()
    results["runner_minutes"] = runner_minutes(results["daily_job"][0],
                                               results["environments"]["daily"]["cached_archive_mb"])
    results["loadavg_end"] = loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
