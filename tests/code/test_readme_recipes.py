"""The README's two offline recipes, run as written on a clean copy of the repository with the network
unreachable (every proxy variable points at a closed port, so any request to the internet fails).

The copy is the repository's tracked files with their times kept, beside a `../shared` that is the real
one, and a `.venv` that is the one running the tests, so `make` sees it up to date and installs nothing.
Training is the only setting changed, through the environment (a tiny schedule, seconds not minutes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]
DEAD_PROXY = "http://127.0.0.1:9"
SMALL_TRAINING = {"CRYPTOCAST_LSTM_EPOCHS": "2", "CRYPTOCAST_LSTM_UNITS": "8", "CRYPTOCAST_LSTM_HEADS": "2",
                  "CRYPTOCAST_LSTM_PATIENCE": "1", "CRYPTOCAST_BACKTEST_DAYS": "30", "CRYPTOCAST_REFIT_EVERY": "15"}


def recipe(name: str) -> str:
    """The shell block under `<!-- recipe: NAME ... -->` in the README."""
    found = re.search(rf"<!-- recipe: {re.escape(name)}\b.*?-->\n```sh\n(.*?)```", (REPO / "README.md").read_text(),
                      flags=re.S)
    assert found, f"no recipe {name!r} in README.md"
    return found.group(1)


def clean_copy(root: Path) -> Path:
    """The tracked files (as a clone would have them, but with this checkout's edits) beside the real data."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    clone = root / "cryptocast"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    (clone / ".venv").symlink_to(Path(sys.prefix))
    (root / "shared").symlink_to(SHARED_DATA.parent)
    # make must find the borrowed .venv up to date: were it to reinstall, the editable install would move here
    assert subprocess.run(["make", "-q", ".venv/bin/.runtime"], cwd=clone).returncode == 0
    return clone


def offline_env(clone: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    proxies = {k: DEAD_PROXY for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY")}
    return keep | proxies | SMALL_TRAINING | {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def run(script: str, clone: Path) -> subprocess.CompletedProcess:
    """The script in its own process group, ended afterwards: a stand-in the recipe started never outlives it."""
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=clone, env=offline_env(clone),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=1500)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_the_result(clone: Path) -> None:
    """A page built as of 2025-01-01, and later commands that need no as-of day given again."""
    index = (clone / "docs" / "index.html").read_text()
    assert 'id="answer-sentence"' in index and "2025-01-10" in index  # the 10-day target of the first forecast
    status = run(".venv/bin/python -m cryptocast status --json", clone)
    assert status.returncode == 0, status.stderr[-2000:]
    groups = json.loads(status.stdout)["groups"]
    assert {name: groups[name]["behind_days"] for name in ("solana", "bitcoin", "fear_greed")} == {
        "solana": 0, "bitcoin": 0, "fear_greed": 0}  # the .env line persists the replayed day
    export = run(".venv/bin/python -m cryptocast export solana_forecasts", clone)
    assert re.search(r"^2024-12-31,2025-01-10,10,\d+\.\d\d,", export.stdout, flags=re.M), export.stdout[:500]


def test_the_csv_recipe_runs_offline_end_to_end(tmp_path):
    clone = clean_copy(tmp_path)
    done = run(recipe("csv"), clone)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    assert "up to date through 2024-12-31 (4 known hole(s) not asked for)" in done.stderr
    check_the_result(clone)


def test_the_stand_in_recipe_runs_offline_end_to_end(tmp_path):
    clone = clean_copy(tmp_path)
    done = run(recipe("stand-in").replace("8765", str(free_port())), clone)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    check_the_result(clone)
