"""Each source parses the APIs' real captured responses, retries what is retryable, and never leaks the key."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pandas as pd
import pytest

from cryptocast.errors import SourceError
from cryptocast.settings import load_settings
from cryptocast.sources.fear_greed import FearGreed
from cryptocast.sources.http import HttpClient
from cryptocast.sources.prices import Binance, CryptoCompare

import feature_pipeline
from conftest import SHARED_DATA, error_lines, run_main
from fakeapi import CC_PATH, FNG_PATH

SAMPLES = SHARED_DATA / "api_samples"
KEY = "cc-secret-0123456789abcdef"


def settings_for(httpserver, **env):
    base = httpserver.url_for("").rstrip("/")
    environ = {"CRYPTOCOMPARE_URL": base, "BINANCE_URL": base, "FEAR_GREED_URL": base,
               "CRYPTOCAST_HTTP_BACKOFF": "0", "CRYPTOCAST_HTTP_RETRIES": "2", **env}
    return load_settings(environ=environ, dotenv_path=SHARED_DATA / "no.env", today=dt.date(2026, 11, 21))


def sample(name: str) -> dict:
    path = SAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return json.loads(path.read_text())


def test_cryptocompare_docs_example_is_parsed(httpserver):
    body = sample("cryptocompare_data_api_spot_v1_historical_days_kraken_BTC-USD_docs_example.json")
    httpserver.expect_request(CC_PATH, headers={"authorization": f"Apikey {KEY}"}).respond_with_json(body)
    settings = settings_for(httpserver, CRYPTO_API_KEY=KEY)
    rows = CryptoCompare(HttpClient(settings), settings).fetch("bitcoin", dt.date(2025, 6, 5), dt.date(2025, 6, 5))
    assert rows.to_dict("records") == [{"day": pd.Timestamp("2025-06-05"), "open": 104745.4, "high": 105948.1,
                                        "low": 103816.5, "close": 103816.6, "volume": 570.57588134,
                                        "source": "kraken"}]
    query = httpserver.log[0][0].args
    assert (query["market"], query["instrument"], query["limit"]) == ("kraken", "BTC-USD", "1")
    assert query["to_ts"] == str(1749081600)
    assert KEY not in httpserver.log[0][0].url  # the key travels in a header, never the URL


@pytest.mark.parametrize("name", ["alternativeme_fng_limit2_20220912.json",
                                  "alternativeme_fng_limit1_20260424_metadata_omitted.json"])
def test_fear_greed_real_responses_are_parsed(httpserver, name):
    body = sample(name)
    httpserver.expect_request(FNG_PATH).respond_with_json(body)
    settings = settings_for(httpserver)
    rows = FearGreed(HttpClient(settings), settings).fetch("fear_greed", dt.date(2022, 9, 11), dt.date(2026, 4, 24))
    expected = [(pd.to_datetime(int(i["timestamp"]), unit="s"), i["value"], i["value_classification"])
                for i in body["data"]]
    assert list(rows.itertuples(index=False, name=None)) == expected


def test_fear_greed_synthetic_error_shape_is_an_error(httpserver):
    httpserver.expect_request(FNG_PATH).respond_with_json(sample("alternativeme_fng_error_SYNTHETIC_from_test.json"))
    settings = settings_for(httpserver)
    with pytest.raises(SourceError, match="API error: Invalid limit"):
        FearGreed(HttpClient(settings), settings).fetch("fear_greed", dt.date(2022, 1, 1), dt.date(2022, 1, 2))


def test_binance_pages_forward_through_long_histories(api):
    settings = load_settings(today=dt.date(2026, 11, 21))
    source = Binance(HttpClient(settings), settings)
    source.max_limit = 7
    rows = source.fetch("solana", dt.date(2024, 1, 1), dt.date(2024, 2, 29))
    assert rows["day"].tolist() == list(pd.date_range("2024-01-01", "2024-02-29"))
    assert len([p for p, _ in api.requests if p == "/api/v3/klines"]) == 9  # ceil(60 / 7)


def test_cryptocompare_pages_back_with_to_ts(api, monkeypatch):
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    settings = load_settings(today=dt.date(2026, 11, 21))
    source = CryptoCompare(HttpClient(settings), settings)
    source.max_limit = 25
    rows = source.fetch("solana", dt.date(2023, 6, 1), dt.date(2024, 2, 29))
    assert sorted(rows["day"]) == list(pd.date_range("2024-01-01", "2024-02-29"))
    to_ts = [int(q["to_ts"]) for p, q in api.requests if p == CC_PATH]
    assert to_ts == sorted(to_ts, reverse=True) and len(to_ts) == 3  # 25 + 25 + a short page of 10


def test_partial_candle_of_the_day_in_progress_is_never_stored(api, monkeypatch, capsys):
    """As of the real 'today' the APIs include today's partial candle; it must be cut."""
    import feature_backfill

    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-05")  # the market's day in progress is 2024-03-01
    assert run_main(feature_backfill.main) == 0
    from cryptocast.features import SOLANA
    from cryptocast.settings import load_settings as ls
    from cryptocast.stores.local import LocalFeatureStore

    stored = LocalFeatureStore(ls().home).get_feature_group(SOLANA).read()
    assert stored["day"].max() == pd.Timestamp("2024-02-29")


def test_retries_then_succeeds(api, monkeypatch, capsys):
    import feature_backfill

    assert run_main(feature_backfill.main) == 0
    failures = iter([(503, b"{}"), (429, b"{}")])
    normal = api._fear_greed
    api.faults[FNG_PATH] = lambda q: next(failures, None) or normal(q, {})
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-01")
    api.requests.clear()
    assert run_main(feature_pipeline.main) == 0
    assert sum(p == FNG_PATH for p, _ in api.requests) == 3


def test_the_key_never_appears_in_logs_or_errors(api, monkeypatch, capsys, caplog):
    import feature_backfill

    monkeypatch.setenv("CRYPTO_API_KEY", KEY)
    api.api_key = KEY
    assert run_main(feature_backfill.main, "--verbose") == 0
    api.api_key = "a-different-key"  # now the server refuses ours with 401
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-02")
    api.now = dt.date(2024, 3, 2)
    with caplog.at_level(logging.DEBUG):
        assert run_main(feature_pipeline.main, "--verbose") == 1
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert "HTTP 401" in everything
    assert KEY not in everything


def test_key_in_an_exception_is_redacted(api, monkeypatch, capsys):
    """Defence in depth: even if a library put the key in a message, the one error line hides it."""
    monkeypatch.setenv("CRYPTO_API_KEY", KEY)
    api.faults[CC_PATH] = lambda q: (200, json.dumps({"Data": [], "Err": {"message": f"bad key {KEY}"}}).encode())
    import feature_backfill

    assert run_main(feature_backfill.main) == 1
    lines = error_lines(capsys)
    assert lines == ["error: feature_backfill: cryptocompare SOL-USD: API error: bad key ***; "
                     "cryptocompare BTC-USD: API error: bad key ***"]
