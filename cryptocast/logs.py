"""Logging set-up: one line per step, and no secret ever reaches a handler."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

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


class RedactingHandler(logging.StreamHandler):
    """One line per record on the current `sys.stderr` (tests swap it), in UTC, with every secret scrubbed."""

    def __init__(self, secrets: Iterable[str], level: int = logging.NOTSET) -> None:
        super().__init__()
        formatter = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        self.setFormatter(formatter)
        self.addFilter(RedactingFilter(secrets))
        self.setLevel(level)

    @property
    def stream(self):  # the stream of the moment, never one a test has since closed
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: object = None, line: str | None = None) -> None:
    """`warnings.showwarning` replaced: a warning becomes one WARNING record of `py.warnings` (the logger
    `logging.captureWarnings` uses), so it is redacted and one line like every other."""
    text = " ".join(str(message).split())
    logging.getLogger("py.warnings").warning("%s: %s (%s:%d)", category.__name__, text, Path(filename).name, lineno)


def setup_logging(secrets: Iterable[str] = (), verbose: bool = False) -> None:
    """Route `cryptocast` logs to stderr in UTC, and everything else's warnings through the same redaction.

    The handler on the root logger also keeps `import hopsworks` from configuring it: the client calls
    `logging.basicConfig(level=INFO)`, which does nothing once the root logger has a handler, so client
    and library records reach the screen only as warnings or worse, scrubbed like ours. `warnings.warn`
    (the client's ProvenanceWarning, say) goes through the same handler, one line each. Handlers from an
    earlier call are replaced.
    """
    secrets = tuple(secrets)
    ours = logging.getLogger("cryptocast")
    ours.handlers[:] = [RedactingHandler(secrets)]
    ours.setLevel(logging.DEBUG if verbose else logging.INFO)
    ours.propagate = False
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, RedactingHandler)]:
        root.removeHandler(handler)
    root.addHandler(RedactingHandler(secrets, logging.WARNING))
    warnings.showwarning = _log_warning
