"""The one HTTP client every source uses: bounded in time, size and retries, errors as one line.

A run is unattended for years, so every way an upstream can misbehave has a limit:
- Each attempt has a wall-clock deadline (`CRYPTOCAST_HTTP_TIMEOUT`) from connect to the last byte.
  A socket timeout alone restarts with every byte, so a 1 byte/s drip could hold a run (and the store
  lock) forever. requests and urllib3 have no such deadline: `deadline()` below provides it.
- A response may be at most `CRYPTOCAST_HTTP_MAX_MB`, counted both on the wire and once decompressed
  (an endless body; a gzip bomb). The body is streamed, so no more than the cap is ever held.
- Retries on 429, 5xx, connection errors and timeouts follow urllib3's `Retry` policy (exponential
  backoff capped at 30 s, `Retry-After` honoured: Binance bans clients that ignore it). A server asking
  to wait longer than `CRYPTOCAST_HTTP_RETRY_AFTER_MAX` fails the request at once instead.
- Keys travel in headers, never in the URL; an API's error text is redacted before it is shortened.
- Every other failure of a request (a redirect loop or a redirect to file://, a bad content encoding, a
  `Retry-After` that is neither seconds nor a date, JSON nested too deep) fails that source with one
  line naming it, never the whole run; upstream text loses its terminal escapes before it is shown.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from cryptocast.errors import SourceError
from cryptocast.logs import printable, redact
from cryptocast.settings import Settings

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)
CHUNK_BYTES = 64 * 1024
ERROR_TEXT_CHARS = 200


class DeadlineExceeded(Exception):
    """An attempt ran past its wall-clock deadline. Not an OSError, so no library mistakes it for its own."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DeadlineExceeded in this thread once `seconds` have passed, whatever a socket is doing.

    SIGALRM interrupts a blocked read the way Ctrl-C does, and requests/urllib3 clean up after it as
    they do after Ctrl-C. Only the main thread receives signals; elsewhere (and on Windows) the
    per-read timeout and the per-chunk check in `_read_capped` still bound the attempt.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)  # None: set from C


RETRYABLE_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    DeadlineExceeded)


class HttpClient:
    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.http_timeout
        self.max_bytes = settings.http_max_bytes
        self.retry_after_max = settings.http_retry_after_max
        self.secrets = settings.secrets
        # urllib3's policy decides what to retry and how long to wait; our loop drives it, because each
        # attempt needs its own deadline and urllib3 only retries inside one call.
        self.retry = Retry(
            total=settings.http_retries,
            backoff_factor=settings.http_backoff,
            backoff_max=30,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=("GET",),
            respect_retry_after_header=True,
        )
        self.session = requests.Session()

    def get_json(
        self, source: str, url: str, params: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET and parse JSON; any failure becomes a SourceError naming the source and the endpoint."""
        where = f"{source} {urlsplit(url).path}"
        response, body = self._get(where, url, params, headers)
        if response.status_code != 200:
            raise SourceError(f"{where}: HTTP {response.status_code} {response.reason}{self._detail(body)}")
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SourceError(f"{where}: malformed JSON in response ({len(body)} bytes)") from None
        except RecursionError:
            raise SourceError(f"{where}: malformed JSON in response (nested too deep, {len(body)} bytes)") from None

    def _get(self, where: str, url: str, params: Mapping[str, Any],
             headers: Mapping[str, str] | None) -> tuple[requests.Response, bytes]:
        retry, attempts = self.retry, 0
        while True:
            attempts += 1
            try:
                response, body = self._attempt(where, url, params, headers)
            except RETRYABLE_ERRORS as exc:
                retry = self._next(retry, where, url, attempts, error=exc)
                log.info("%s: %s, retrying (attempt %d)", where, type(exc).__name__, attempts + 1)
                retry.sleep()
                continue
            except (requests.RequestException, Urllib3Error, ValueError, UnicodeError) as exc:
                # not worth retrying (a redirect loop, a bad encoding or header, a redirect to file://),
                # and not the store's problem: this source fails, the other groups carry on
                raise SourceError(f"{where}: request failed: {type(exc).__name__}: "
                                  f"{self._clean(str(exc))}") from None
            if not retry.is_retry("GET", response.status_code, "Retry-After" in response.headers):
                return response, body
            wait = self._retry_after(retry, response, where)
            if wait is not None and wait > self.retry_after_max:
                raise SourceError(f"{where}: HTTP {response.status_code} {response.reason}: asked to retry after "
                                  f"{wait:g} s, more than CRYPTOCAST_HTTP_RETRY_AFTER_MAX={self.retry_after_max:g}"
                                  f"{self._detail(body)}")
            try:
                retry = retry.increment("GET", url, response=response.raw)
            except MaxRetryError:
                return response, body
            log.info("%s: HTTP %d, retrying (attempt %d)", where, response.status_code, attempts + 1)
            retry.sleep(response.raw)

    def _retry_after(self, retry: Retry, response: requests.Response, where: str) -> float | None:
        """The wait a `Retry-After` asks for; a value that is neither seconds nor a date fails the request."""
        try:
            return retry.get_retry_after(response.raw)
        except InvalidHeader:
            shown = self._clean(response.headers.get("Retry-After", ""))[:40]
            raise SourceError(f"{where}: HTTP {response.status_code} {response.reason}: Retry-After {shown!r} is "
                              "neither a whole number of seconds nor a date") from None

    def _clean(self, text: str) -> str:
        """Upstream or library text fit for one line: no secret, no terminal escapes, not too long."""
        return printable(redact(text, self.secrets))[:ERROR_TEXT_CHARS]

    def _next(self, retry: Retry, where: str, url: str, attempts: int, error: Exception) -> Retry:
        """The policy after a failed attempt; when it is spent, the one-line error."""
        try:
            return retry.increment("GET", url, error=error)
        except MaxRetryError:
            reason = (f"no complete response within {self.timeout:g} s" if isinstance(error, DeadlineExceeded)
                      else type(error).__name__)
            raise SourceError(f"{where}: request failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
                              f"{reason}") from None

    def _attempt(self, where: str, url: str, params: Mapping[str, Any],
                 headers: Mapping[str, str] | None) -> tuple[requests.Response, bytes]:
        started = time.monotonic()
        with deadline(self.timeout):
            response = self.session.get(url, params=params, headers=headers, timeout=self.timeout, stream=True)
            with closing(response):
                return response, self._read_capped(response, where, started)

    def _read_capped(self, response: requests.Response, where: str, started: float) -> bytes:
        """The body, decompressed a chunk at a time, refused as soon as either count passes the cap."""
        too_large = SourceError(f"{where}: response larger than {self.max_bytes // 2**20} MB (CRYPTOCAST_HTTP_MAX_MB)")
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_large
        chunks, size = [], 0
        for chunk in response.iter_content(CHUNK_BYTES):
            size += len(chunk)
            if size > self.max_bytes or response.raw.tell() > self.max_bytes:
                raise too_large
            if time.monotonic() - started > self.timeout:
                raise DeadlineExceeded
            chunks.append(chunk)
        return b"".join(chunks)

    def _detail(self, body: bytes) -> str:
        """The API's own error text, if it sent one in JSON: redacted, then trimmed to stay one short line."""
        try:
            parsed = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return ""
        if isinstance(parsed, dict):
            for key in ("msg", "Message", "message", "Err"):
                if parsed.get(key):
                    return f": {self._clean(str(parsed[key]))}"
        return ""
