"""The one HTTP session every source uses: bounded retries, timeouts, and errors as one line.

Retries cover 429, 5xx, connection errors and timeouts with exponential backoff, bounded in
count (`CRYPTOCAST_HTTP_RETRIES`) and time (timeout per attempt, backoff capped at 30 s).
Keys travel in headers, never in the URL, so an error that names the URL cannot leak them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cryptocast.errors import SourceError
from cryptocast.settings import Settings

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 500, 502, 503, 504)


class HttpClient:
    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.http_timeout
        self.attempts = settings.http_retries + 1
        retry = Retry(
            total=settings.http_retries,
            backoff_factor=settings.http_backoff,
            backoff_max=30,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=("GET",),
            raise_on_status=False,
            respect_retry_after_header=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry))
        self.session.mount("https://", HTTPAdapter(max_retries=retry))

    def get_json(
        self, source: str, url: str, params: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET and parse JSON; any failure becomes a SourceError naming the source and the endpoint."""
        where = f"{source} {urlsplit(url).path}"
        try:
            response = self.session.get(url, params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceError(f"{where}: request failed after {self.attempts} attempts "
                              f"({type(exc).__name__})") from None
        if response.status_code != 200:
            raise SourceError(f"{where}: HTTP {response.status_code} {response.reason}"
                              f"{_error_detail(response)}")
        try:
            return response.json()
        except (json.JSONDecodeError, ValueError):
            raise SourceError(f"{where}: malformed JSON in response ({len(response.content)} bytes)") from None


def _error_detail(response: requests.Response) -> str:
    """The API's own error text, if it sent one in JSON, trimmed to stay one short line."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("msg", "Message", "message", "Err"):
            if body.get(key):
                return f": {str(body[key])[:200]}"
    return ""
