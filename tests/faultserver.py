"""A local HTTP server that misbehaves on purpose: the transport faults the fault suite drives the real
HTTP client against (a drip in the headers or the body, an endless body, a gzip bomb, 429 with Retry-After).

Each fault writes raw bytes, so it can break HTTP where a framework would not let it (a header that never
ends). Every fault is bounded in time and size, so a client that fails to stop it makes a test fail, never
hang: the server gives up after `GIVE_UP_S` seconds or `GIVE_UP_BYTES` bytes. Issue 20 adds raw replies
(redirect loops, a redirect to file://, a false gzip, JSON nested too deep) and `http_client`, the real
client aimed at such a server with small limits.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cryptocast.errors import SourceError
from cryptocast.settings import load_settings
from cryptocast.sources.http import HttpClient

GIVE_UP_S = 20.0
GIVE_UP_BYTES = 256 * 2**20
DRIP_EVERY_S = 0.05


@dataclass
class Stats:
    """What the server saw: requests served, and bytes each response got out before the client left."""

    requests: int = 0
    sent: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)  # set when a response has ended

    def record(self, sent: int) -> None:
        self.sent.append(sent)
        self.done.set()


Fault = Callable[["Handler", Stats], None]


class Handler(BaseHTTPRequestHandler):
    fault: Fault
    stats: Stats
    stop: threading.Event

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        with self.stats.lock:
            self.stats.requests += 1
        try:
            type(self).fault(self, self.stats)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up: exactly what a good client does

    def raw(self, data: bytes) -> None:
        self.wfile.write(data)
        self.wfile.flush()

    def drip(self, byte: bytes = b"a") -> int:
        """One byte every DRIP_EVERY_S until the client leaves or the server gives up; returns bytes sent."""
        sent = 0
        while not self.stop.wait(DRIP_EVERY_S) and sent * DRIP_EVERY_S < GIVE_UP_S:
            try:
                self.raw(byte)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        return sent

    def log_message(self, *args) -> None:
        pass


def drip_headers(handler: Handler, stats: Stats) -> None:
    handler.raw(b"HTTP/1.1 200 OK\r\nX-Drip: ")
    stats.record(handler.drip())


def drip_body(handler: Handler, stats: Stats) -> None:
    handler.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[")
    stats.record(handler.drip(b" "))


def endless_body(handler: Handler, stats: Stats) -> None:
    """A body with no length that never ends (until the client leaves or GIVE_UP_BYTES)."""
    handler.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n[")
    chunk, sent = b" " * 65536, 0
    while sent < GIVE_UP_BYTES and not handler.stop.is_set():
        try:
            handler.raw(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    stats.record(sent)


BOMB_SIZE = 64 * 2**20


def gzip_bomb() -> bytes:
    """64 MiB of JSON whitespace in about 64 KB: valid JSON once inflated, if anyone lets it inflate."""
    return gzip.compress(b"[" + b" " * (BOMB_SIZE - 2) + b"]", compresslevel=9)


def serve_gzip(body: bytes) -> Fault:
    def fault(handler: Handler, stats: Stats) -> None:
        handler.raw(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        stats.record(len(body))
    return fault


def statuses(*replies: tuple[int, dict[str, str], object]) -> Fault:
    """Answer request n with replies[n] (the last one repeats): (status, headers, JSON body)."""
    def fault(handler: Handler, stats: Stats) -> None:
        status, headers, body = replies[min(stats.requests, len(replies)) - 1]
        data = json.dumps(body).encode()
        handler.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.raw(data)
        stats.record(len(data))
    return fault


@contextmanager
def fault_server(fault: Fault) -> Iterator[tuple[str, Stats]]:
    """Serve `fault` on a free local port; yields the base URL and the server's stats."""
    stats, stop = Stats(), threading.Event()
    handler = type("FaultHandler", (Handler,), {"fault": staticmethod(fault), "stats": stats, "stop": stop})
    handler.protocol_version = "HTTP/1.1"
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", stats
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def raw_reply(head: bytes, body: bytes) -> Fault:
    """Answer every request with `head` (status line and headers, without the blank line) and `body`."""
    def fault(handler: Handler, stats: Stats) -> None:
        handler.raw(head + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        stats.record(len(body))
    return fault


def redirect_to(location: str) -> Fault:
    """302 to `location` on every request: to itself, a loop; to file://, a scheme no client may follow."""
    return raw_reply(f"HTTP/1.1 302 Found\r\nLocation: {location}".encode(), b"")


def bad_gzip() -> Fault:
    """Says gzip, is not: the client's decoder fails."""
    return raw_reply(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip", b"[1, 2, 3]")


def deep_json(depth: int = 100_000) -> Fault:
    """Valid JSON nested deeper than Python's recursion limit."""
    return raw_reply(b"HTTP/1.1 200 OK\r\nContent-Type: application/json", b"[" * depth + b"]" * depth)


KEY = "cc-secret-0123456789abcdef"


def http_client(base: str, **env: str) -> HttpClient:
    """The real client aimed at `base`, with small limits (1 s, 1 MB, no retries unless asked) and a key set."""
    environ = {"CRYPTOCAST_HTTP_TIMEOUT": "1", "CRYPTOCAST_HTTP_RETRIES": "0", "CRYPTOCAST_HTTP_BACKOFF": "0",
               "CRYPTOCAST_HTTP_MAX_MB": "1", "CRYPTO_API_KEY": KEY, "BINANCE_URL": base, "FEAR_GREED_URL": base,
               **env}
    return HttpClient(load_settings(environ=environ, dotenv_path=Path(__file__).parent / "no.env",
                                    today=dt.date(2026, 1, 1)))


def request_failure(base: str, headers: dict[str, str] | None = None, **env: str) -> str:
    """The one-line SourceError a GET of `base`/x ends in."""
    with pytest.raises(SourceError) as info:
        http_client(base, **env).get_json("src", f"{base}/x", {}, headers)
    return str(info.value)
