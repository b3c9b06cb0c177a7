"""Logging set-up: one line per step, and no secret ever reaches a handler."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, quote_plus

REDACTED = "***"
# Terminal escape sequences (colours, cursor moves, titles) and the other control characters: an API's
# error text must not repaint the operator's terminal or hide a line.
CONTROL = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # an OSC sequence (a window title, a link)
                     r"|\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]?"  # CSI (colours, cursor moves) and other escapes
                     r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _forms(secret: str) -> set[str]:
    """The ways a key can be written out: as given, trimmed, escaped as Python or JSON would, and
    percent-encoded as in a URL; each without its whitespace (the pattern allows any between characters)."""
    bare = secret.strip()
    forms = {bare, quote(bare, safe=""), quote_plus(bare), bare.encode("unicode_escape").decode("ascii"),
             json.dumps(bare)[1:-1]}
    return {"".join(form.split()) for form in forms} - {""}


@functools.lru_cache(maxsize=8)
def _pattern(secrets: tuple[str, ...]) -> re.Pattern | None:
    """One regex for every form of every secret, whitespace (a newline an echo split it with) allowed between
    characters; longest first, so a form inside another is never left half-shown."""
    forms = sorted({form for s in secrets if s and s.strip() for form in _forms(s)}, key=len, reverse=True)
    return re.compile("|".join(r"\s*".join(map(re.escape, form)) for form in forms)) if forms else None


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret in `text`, in any form and split anywhere by whitespace; used on log records
    and on the final error line."""
    pattern = _pattern(tuple(secrets))
    return text if pattern is None else pattern.sub(REDACTED, text)


def holds_secret(text: str, secrets: Iterable[str]) -> bool:
    """Whether `text` contains a secret in any form `redact` would scrub."""
    pattern = _pattern(tuple(secrets))
    return pattern is not None and pattern.search(text) is not None


def printable(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tabs and newlines kept)."""
    return CONTROL.sub("", text)


class RedactingFilter(logging.Filter):
    """Scrubs secrets from the fully formatted message, including exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = printable(redact(record.getMessage(), self.secrets))
        record.args = None
        if self.secrets and record.exc_info:
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


# A Rust panic (delta-rs) prints "thread '...' panicked at src/...rs:L:C:", its message, and a "note: run
# with `RUST_BACKTRACE=1` ..." line (or a backtrace ending in another "note:") straight to fd 2, beside the
# one line the store makes of the PanicException.
RUST_PANIC_START = re.compile(rb"thread '[^']*' panicked at ")
RUST_PANIC_MAX_LINES = 400


def _forward_without_panics(source: int, target: int) -> None:
    """Copy lines from `source` to `target`, leaving out each Rust panic report."""
    skipping = 0
    with os.fdopen(source, "rb", buffering=0) as pipe:
        for line in iter(pipe.readline, b""):
            if RUST_PANIC_START.match(line):
                skipping = RUST_PANIC_MAX_LINES
            if skipping:
                skipping = 0 if line.startswith(b"note: ") else skipping - 1
                continue
            try:
                os.write(target, line)
            except OSError:
                pass


def _own_stderr() -> int | None:
    """A copy of fd 2 to forward to, or None: off the main thread fd 2 is not ours to redirect, and a
    daemon may have closed it."""
    if threading.current_thread() is not threading.main_thread():
        return None
    sys.stderr.flush()
    try:
        return os.dup(2)
    except OSError:
        return None


@contextmanager
def native_panics_hidden() -> Iterator[None]:
    """For the block, fd 2 passes through a filter that drops Rust panic reports, line by line as written
    (no log line waits). Python's own lines go the same way, so their order is kept."""
    saved = _own_stderr()
    if saved is None:
        yield
        return
    source, sink = os.pipe()
    os.dup2(sink, 2)
    os.close(sink)
    forwarder = threading.Thread(target=_forward_without_panics, args=(source, saved), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end (unless a child process still holds it)
        forwarder.join(timeout=5)
        if not forwarder.is_alive():  # else a child still writes through it: leave its target open
            os.close(saved)
