"""The daily path needs nothing beyond the daily lock.

feature_pipeline.py, inference_pipeline.py and plots.py run in one process in which every installed
distribution that requirements/daily.txt does not list cannot be imported (as if it were not
installed), on a store filled and a model registered by the full environment. So a new `import sklearn`
or `import tensorflow` on the daily path fails here, offline, before it fails a daily run that installs
only the daily lock. (bench/envs.py does the same in a real venv made from the daily lock.)
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from packaging.utils import canonicalize_name

from cryptocast.registry import MODEL_NAME, LocalModelRegistry

import feature_backfill
from conftest import REPO, run_main
from lockfiles import parse
from modelfiles import write_serving_model

DAILY_LOCK = REPO / "requirements" / "daily.txt"
BACKFILL_AS_OF = dt.date(2024, 2, 20)

HARNESS = """
import importlib.abc, importlib.metadata, json, re, sys

ALLOWED = set(json.loads(sys.argv[1]))
OWNERS = importlib.metadata.packages_distributions()
blocked = set()

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()

class NotInTheLock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        owners = {canonical(d) for d in OWNERS.get(name.partition(".")[0], ())}
        if owners and not owners & ALLOWED:
            blocked.add(name.partition(".")[0])
            raise ModuleNotFoundError(f"No module named {name!r} (not in the daily lock)", name=name)
        return None

sys.meta_path.insert(0, NotInTheLock())
sys.path.insert(0, sys.argv[2])
exec(sys.argv[3])
heavy = sorted(m for m in ("tensorflow", "keras", "sklearn", "scipy", "hopsworks") if m in sys.modules)
print(json.dumps({"codes": codes, "blocked": sorted(blocked), "heavy": heavy}))
"""

DAILY_STEPS = """
import feature_pipeline, inference_pipeline, plots
codes = [feature_pipeline.main([]), inference_pipeline.main([]), plots.main(["--out", "site"])]
"""


def daily_distributions() -> list[str]:
    """What a daily environment has: the daily lock, and cryptocast itself."""
    return sorted({canonicalize_name(p.name) for p in parse(DAILY_LOCK.read_text())} | {"cryptocast"})


def run_with_only(allowed: list[str], code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HARNESS, json.dumps(allowed), str(REPO), code], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def report(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def store_with_a_model(api, home, tmp_path, monkeypatch):
    """Features up to 2024-02-19 and a production model in the portable format, as training leaves them."""
    monkeypatch.setenv("CRYPTOCAST_AS_OF", BACKFILL_AS_OF.isoformat())
    assert run_main(feature_backfill.main) == 0
    artifacts = tmp_path / "artifacts"
    write_serving_model(artifacts)
    LocalModelRegistry(home).register_and_promote(MODEL_NAME, artifacts, {"rel_mae_mean": 1.0}, "test model", {})
    monkeypatch.setenv("CRYPTOCAST_AS_OF", api.now.isoformat())
    return home


def test_the_daily_steps_run_with_only_the_daily_lock(store_with_a_model, tmp_path):
    allowed = daily_distributions()
    assert "pandas" in allowed and "tensorflow-cpu" not in allowed and "scipy" not in allowed
    result = report(run_with_only(allowed, DAILY_STEPS, tmp_path))
    assert result["codes"] == [0, 0, 0]
    assert result["heavy"] == []
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "forecast.png").is_file()
    forecast = json.loads((tmp_path / "site" / "forecast.json").read_text())
    assert forecast, "the page carries the day's forecast"


def test_the_harness_makes_what_is_not_in_the_lock_unimportable(store_with_a_model, tmp_path):
    allowed = daily_distributions()
    code = "import importlib\ncodes = []\nfor m in ('sklearn', 'scipy', 'numpy'):\n" \
           "    try:\n        importlib.import_module(m); codes.append(0)\n" \
           "    except ModuleNotFoundError:\n        codes.append(1)\n"
    assert report(run_with_only(allowed, code, tmp_path))["codes"] == [1, 1, 0]
    done = run_with_only([d for d in allowed if d != "pyarrow"], DAILY_STEPS, tmp_path)
    assert done.returncode == 1, "a step that needs a package outside the lock fails"
    assert done.stderr.rstrip().endswith("ModuleNotFoundError: No module named 'pyarrow' (not in the daily lock)")
