"""The fault suite's HTTP half (issue 10, finding 5 and the source side of 7): the real HTTP client and
sources against a server that drips, never ends, inflates, ignores paging or asks us to wait.

Deadlines and caps are set small through the settings (1 s, 1 MB), so the whole file takes a few seconds;
the fault server gives up on its own after 20 s, so a client without limits fails these tests, never hangs.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tracemalloc

import pytest
import urllib3.util.retry

from cryptocast.errors import SourceError
from cryptocast.settings import load_settings
from cryptocast.sources.http import HttpClient
from cryptocast.sources.prices import Binance, CryptoCompare

from fakeapi import BINANCE_PATH, CC_PATH
from faultserver import (
    DRIP_EVERY_S,
    KEY,
    drip_body,
    drip_headers,
    endless_body,
    fault_server,
    gzip_bomb,
    serve_gzip,
    statuses,
)
from faultserver import (
    http_client as client,
)
from faultserver import (
    request_failure as failure,
)


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits urllib3's retry policy asks for, recorded instead of slept."""
    asked: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", asked.append)
    return asked


# --- time ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [drip_body, drip_headers], ids=["body", "headers"])
def test_a_drip_ends_at_the_deadline(fault):
    """Before: a byte every 50 ms reset the socket timeout each time and kept the run alive (200 s and more)."""
    with fault_server(fault) as (base, stats):
        message = failure(base)
        assert stats.done.wait(5)
    assert message == "src /x: request failed after 1 attempt: no complete response within 1 s"
    assert stats.sent[0] < 2 / DRIP_EVERY_S  # the client hung up within about a second, not after 20 s


def test_each_attempt_has_its_own_deadline(waits):
    with fault_server(drip_body) as (base, stats):
        message = failure(base, CRYPTOCAST_HTTP_RETRIES="1")
    assert message == "src /x: request failed after 2 attempts: no complete response within 1 s"
    assert stats.requests == 2


# --- size -------------------------------------------------------------------------------------------------


def test_an_endless_body_is_cut_at_the_cap():
    """Before: the client kept reading (420 MB in the attack)."""
    with fault_server(endless_body) as (base, stats):
        message = failure(base)
        assert stats.done.wait(5)
    assert message == "src /x: response larger than 1 MB (CRYPTOCAST_HTTP_MAX_MB)"
    assert stats.sent[0] < 64 * 2**20


def test_a_gzip_bomb_is_cut_after_inflating_the_cap():
    """Before: a 1 MB bomb inflated to 2.3 GB in memory. Now at most the cap is inflated, a chunk at a time."""
    bomb = gzip_bomb()
    assert len(bomb) < 2**20  # it passes the cap on the wire; only the inflated size gives it away
    with fault_server(serve_gzip(bomb)) as (base, _):
        tracemalloc.start()
        try:
            message = failure(base)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert message == "src /x: response larger than 1 MB (CRYPTOCAST_HTTP_MAX_MB)"
    assert peak < 32 * 2**20


def test_a_declared_length_above_the_cap_is_refused_unread():
    big = ["x" * 1000] * 1500  # 1.5 MB of JSON
    with fault_server(statuses((200, {}, big))) as (base, _):
        assert failure(base) == "src /x: response larger than 1 MB (CRYPTOCAST_HTTP_MAX_MB)"


def test_a_body_within_the_cap_is_read_whole():
    body = [{"value": i} for i in range(20_000)]  # ~330 KB, well under 1 MB
    with fault_server(serve_gzip(gzip.compress(json.dumps(body).encode()))) as (base, _):
        assert client(base).get_json("src", f"{base}/x", {}) == body


# --- Retry-After --------------------------------------------------------------------------------------------


def test_retry_after_is_honoured(waits):
    """Before: Retry-After was ignored (Binance bans a client that keeps asking)."""
    replies = statuses((429, {"Retry-After": "7"}, {"msg": "slow down"}), (200, {}, [1]))
    with fault_server(replies) as (base, stats):
        assert client(base, CRYPTOCAST_HTTP_RETRIES="2").get_json("src", f"{base}/x", {}) == [1]
    assert (stats.requests, waits) == (2, [7.0])


def test_retry_after_beyond_the_bound_fails_at_once(waits):
    replies = statuses((429, {"Retry-After": "3600"}, {"msg": "banned for an hour"}), (200, {}, [1]))
    with fault_server(replies) as (base, stats):
        message = failure(base, CRYPTOCAST_HTTP_RETRIES="2", CRYPTOCAST_HTTP_RETRY_AFTER_MAX="60")
    assert message == ("src /x: HTTP 429 Too Many Requests: asked to retry after 3600 s, more than "
                       "CRYPTOCAST_HTTP_RETRY_AFTER_MAX=60: banned for an hour")
    assert (stats.requests, waits) == (1, [])


def test_503_without_retry_after_backs_off_and_gives_up(waits):
    with fault_server(statuses((503, {}, {"msg": "maintenance"}))) as (base, stats):
        message = failure(base, CRYPTOCAST_HTTP_RETRIES="2", CRYPTOCAST_HTTP_BACKOFF="1")
    assert message == "src /x: HTTP 503 Service Unavailable: maintenance"
    assert stats.requests == 3 and waits == [2.0]  # urllib3's backoff: none before the 2nd try, 2 s before the 3rd


# --- secrets in API errors ------------------------------------------------------------------------------------


def test_an_echoed_key_is_redacted_before_the_error_is_shortened():
    """Before: the text was cut to 200 characters first, so a key at the cut leaked its first characters."""
    echoed = "x" * 180 + f" invalid key {KEY}"  # the key straddles the 200-character cut
    with fault_server(statuses((401, {}, {"msg": echoed}))) as (base, _):
        message = failure(base)
    assert message.startswith("src /x: HTTP 401 Unauthorized: xxx")
    assert KEY[:4] not in message


# --- paging --------------------------------------------------------------------------------------------------


def ignoring(api, path: str, parameter: str, value: str, nothing: bytes) -> None:
    """Serve `path` as if `parameter` were always `value` (an API ignoring it); after 50 requests, nothing."""
    normal = {BINANCE_PATH: api._binance, CC_PATH: api._cryptocompare}[path]

    def fault(query):
        if sum(p == path for p, _ in api.requests) > 50:
            return 200, nothing
        return normal({**query, parameter: value}, {"authorization": f"Apikey {api.api_key}"})

    api.faults[path] = fault


def fetch_error(source_class, start: dt.date, end: dt.date) -> str:
    settings = load_settings(today=dt.date(2026, 1, 1))
    source = source_class(HttpClient(settings), settings)
    source.max_limit = 7
    with pytest.raises(SourceError) as info:
        source.fetch("solana", start, end)
    return str(info.value)


def test_binance_ignoring_start_time_is_an_error(api):
    """Before: paging never ended (1,210 requests in 60 s) when the API kept sending the same page."""
    ignoring(api, BINANCE_PATH, "startTime", "0", b"[]")
    assert fetch_error(Binance, dt.date(2024, 1, 1), dt.date(2024, 2, 29)) == (
        "binance SOLUSDT: page for 2024-01-08..2024-02-29 holds 2024-01-01..2024-01-07: "
        "the API ignored startTime/endTime")
    assert sum(path == BINANCE_PATH for path, _ in api.requests) == 2


def test_cryptocompare_ignoring_to_ts_is_an_error(api, monkeypatch):
    monkeypatch.setenv("CRYPTO_API_KEY", api.api_key)
    ignoring(api, CC_PATH, "to_ts", str(10**10), json.dumps({"Data": [], "Err": {}}).encode())
    assert fetch_error(CryptoCompare, dt.date(2024, 1, 1), dt.date(2024, 2, 20)) == (
        "cryptocompare SOL-USD: page for days up to 2024-02-20 holds 2024-02-23..2024-02-29: the API ignored to_ts")
    assert sum(path == CC_PATH for path, _ in api.requests) == 1


def test_pages_are_capped(api, monkeypatch):
    monkeypatch.setattr(Binance, "max_pages", 5)
    assert fetch_error(Binance, dt.date(2024, 1, 1), dt.date(2024, 2, 29)) == (
        "binance SOLUSDT: more than 5 pages for 2024-01-01..2024-02-29")
    assert sum(path == BINANCE_PATH for path, _ in api.requests) == 5
