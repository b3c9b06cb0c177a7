"""Logging set-up: one line per step, and no secret ever reaches a handler."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

REDACTED = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`; used on log records and on the final error line."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Scrubs secrets from the fully formatted message, including exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = redact(record.getMessage(), self.secrets)
            record.args = None
            if record.exc_info:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
                record.exc_info = None
        return True


def setup_logging(secrets: Iterable[str] = (), verbose: bool = False) -> None:
    """Route `cryptocast` logs to stderr in UTC, replacing handlers from any earlier call."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger("cryptocast")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
