"""Shared fixtures: a fake market behind a real local HTTP server, an isolated home, and helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from werkzeug import Request, Response

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hopsworks_double  # noqa: E402
from fakeapi import FakeMarket, synthetic_history  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
START = "2024-01-01"
NOW = dt.date(2024, 3, 1)
FNG_HOLES = ("2024-01-20", "2024-01-21")
ENV_NAMES = ("CRYPTO_API_KEY", "HOPSWORKS_API_KEY", "HOPSWORKS_PROJECT", "HOPSWORKS_HOST", "CRYPTOCAST_BACKEND",
             "CRYPTOCAST_HOME", "CRYPTOCAST_AS_OF", "CRYPTOCOMPARE_URL", "BINANCE_URL", "FEAR_GREED_URL",
             "CRYPTOCAST_HOPSWORKS_TIMEOUT", "CRYPTOCAST_HOPSWORKS_FORMAT", "CRYPTOCAST_REPOSITORY_URL",
             "GITHUB_REPOSITORY", "GITHUB_SERVER_URL")


@pytest.fixture
def market() -> FakeMarket:
    """Sixty days of synthetic history served with 2024-03-01 as the day in progress."""
    return FakeMarket(synthetic_history(START, 60, fng_holes=FNG_HOLES), NOW)


@pytest.fixture
def api(httpserver, market, tmp_path, monkeypatch) -> FakeMarket:
    """Point every base URL at a real local server answering as the fake market; isolate the run."""
    def handler(request: Request) -> Response:
        status, body = market.handle(request.path, dict(request.args), {k.lower(): v for k, v in
                                                                          request.headers.items()})
        return Response(body, status=status, content_type="application/json")

    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    base = httpserver.url_for("").rstrip("/")
    monkeypatch.setenv("CRYPTOCOMPARE_URL", base)
    monkeypatch.setenv("BINANCE_URL", base)
    monkeypatch.setenv("FEAR_GREED_URL", base)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRYPTOCAST_AS_OF", NOW.isoformat())
    monkeypatch.setenv("CRYPTOCAST_HISTORY_START", "2023-06-01")
    monkeypatch.setenv("CRYPTOCAST_HTTP_BACKOFF", "0")
    monkeypatch.setenv("CRYPTOCAST_HTTP_RETRIES", "2")
    monkeypatch.setenv("CRYPTOCAST_HTTP_TIMEOUT", "5")
    monkeypatch.chdir(tmp_path)
    return market


@pytest.fixture
def hopsworks(monkeypatch) -> Iterator[hopsworks_double.Double]:
    """A fresh offline Hopsworks project in `sys.modules["hopsworks"]`, kept across logins within the test."""
    double = hopsworks_double.install(monkeypatch)
    yield double
    double.released.set()  # let calls a test left blocking finish


@pytest.fixture
def on_hopsworks(api, hopsworks, monkeypatch) -> hopsworks_double.Double:
    """The `api` run, switched to the Hopsworks backend on the double (the key set as a real run would)."""
    monkeypatch.setenv("HOPSWORKS_API_KEY", hopsworks_double.API_KEY)
    monkeypatch.setenv("HOPSWORKS_PROJECT", hopsworks_double.PROJECT)
    return hopsworks


SMALL_TRAINING_AS_OF = dt.date(2025, 2, 20)


@pytest.fixture
def small_training(api, monkeypatch) -> dt.date:
    """420 days of market behind the `api` run and a tiny training schedule (seconds, not minutes)."""
    api.history = synthetic_history("2024-01-01", 420, seed=5)
    api.now = SMALL_TRAINING_AS_OF
    for name, value in {"CRYPTOCAST_AS_OF": str(SMALL_TRAINING_AS_OF), "CRYPTOCAST_LSTM_EPOCHS": "2",
                        "CRYPTOCAST_LSTM_UNITS": "8", "CRYPTOCAST_LSTM_HEADS": "2", "CRYPTOCAST_LSTM_PATIENCE": "1",
                        "CRYPTOCAST_BACKTEST_DAYS": "30",
                        "CRYPTOCAST_REFIT_EVERY": "15"}.items():
        monkeypatch.setenv(name, value)
    return SMALL_TRAINING_AS_OF


@pytest.fixture
def home(api, tmp_path) -> Path:
    return tmp_path / "home"


EARLIER = "2024-02-20"


@pytest.fixture
def stocked(api, home, monkeypatch) -> dict[str, pd.DataFrame]:
    """A store backfilled through 2024-02-19 (so an update has 02-20..02-29 to fetch); each group's rows."""
    from cryptocast.features import INGESTED_GROUPS

    import feature_backfill

    monkeypatch.setenv("CRYPTOCAST_AS_OF", EARLIER)
    assert run_main(feature_backfill.main) == 0
    monkeypatch.setenv("CRYPTOCAST_AS_OF", NOW.isoformat())
    return {spec.name: group_rows(home, spec) for spec in INGESTED_GROUPS}


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under `directory` by relative path and content hash: 'byte-for-byte as before'."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*")) if p.is_file()
    }


def group_rows(home: Path, spec) -> pd.DataFrame | None:
    """A group's stored rows read through the store (None if the group does not exist)."""
    from cryptocast.stores.local import LocalFeatureStore

    group = LocalFeatureStore(home).get_feature_group(spec)
    return None if group is None else group.read()


def run_main(main, *argv: str) -> int:
    """Run an entry point's main() in-process, as `python script.py argv...` would."""
    return main(list(argv))


def error_lines(capsys) -> list[str]:
    """The lines a failed run printed for the user (log lines excluded)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA

