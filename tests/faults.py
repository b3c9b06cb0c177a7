"""Crash injection at every write, fsync, rename, link and unlink a run makes, in-process or for real.

`crash_at(k)` patches the filesystem calls the store and registry use; the k-th one raises `Crash`
and, like a killed process, every later one raises too, so no cleanup handler can tidy up what a
real SIGKILL would have left. `counting()` runs an operation once to learn how many points it has.
Run as a script (`python tests/faults.py K SCRIPT ARGS...`), it kills itself with SIGKILL at point K
instead, for the few real-process checks. `damage_log` makes the losses and edits a Delta log
cannot see by itself (issue 20): its newest commit or the whole log deleted, a commit edited.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

POINTS = (("os", "write"), ("os", "fsync"), ("os", "replace"), ("os", "rename"), ("os", "link"),
          ("os", "unlink"), ("os", "mkdir"), ("os", "rmdir"), ("shutil", "copyfile"))
MODULES = {"os": os, "shutil": shutil}


class Crash(BaseException):
    """The process 'dies' here: a BaseException, so `except Exception` handlers do not swallow it."""


@contextmanager
def patched(on_call: Callable[..., None]) -> Iterator[None]:
    """Call `on_call(name, *args)` before each filesystem call in POINTS, then the real call."""
    saved = {(m, n): getattr(MODULES[m], n) for m, n in POINTS}

    def wrap(module: str, name: str) -> Callable[..., Any]:
        real = saved[(module, name)]

        def call(*args: Any, **kwargs: Any) -> Any:
            on_call(f"{module}.{name}", *args)
            return real(*args, **kwargs)

        return call

    for module, name in POINTS:
        setattr(MODULES[module], name, wrap(module, name))
    try:
        yield
    finally:
        for (module, name), real in saved.items():
            setattr(MODULES[module], name, real)


@contextmanager
def counting() -> Iterator[list[str]]:
    calls: list[str] = []
    with patched(lambda name, *args: calls.append(name)):
        yield calls


@contextmanager
def crash_at(point: int, kill: bool = False) -> Iterator[list[str]]:
    """Die at the `point`-th call (1-based): raise Crash (in-process), or SIGKILL this process (`kill`)."""
    calls: list[str] = []

    def on_call(name: str, *args: Any) -> None:
        calls.append(name)
        if len(calls) >= point:
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise Crash(f"crash at call {point} ({calls[point - 1]})")

    with patched(on_call):
        yield calls


def damage_log(group_dir: Path, damage: str) -> None:
    """Delete the newest commit, the whole `_delta_log`, or edit a `commitInfo` (commit 1, or the newest)."""
    log = group_dir / "_delta_log"
    commits = sorted(log.glob("0*.json"))
    if damage == "newest commit deleted":
        commits[-1].unlink()
    elif damage == "log deleted":
        shutil.rmtree(log)
    elif damage in ("commitInfo edited", "newest commitInfo edited"):
        path = commits[-1] if damage.startswith("newest") else commits[1]
        text = path.read_text()
        edited = re.sub(r'"cryptocast\.rows":"[0-9]+"', '"cryptocast.rows":"999"', text)
        assert edited != text
        path.write_text(edited.replace('"timestamp":1', '"timestamp":2', 1))
    else:
        raise ValueError(damage)


def main() -> None:
    """`python tests/faults.py K script.py ARGS...`: run the script, SIGKILLed at its K-th filesystem call."""
    import runpy

    point, script, *args = sys.argv[1:]
    sys.argv = [script, *args]
    with crash_at(int(point), kill=True):
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()


# --- Issue 20: what an unattended run meets over the years, each one line and exit 1 -----------------------
# Cases for tests/code/test_faults_unattended.py (and the guards in tests/data/test_guards.py).

# Settings with which no model can be trained (finding 5): refused when the settings are read.
SETTINGS_THAT_CANNOT_TRAIN = {
    "CRYPTOCAST_LSTM_UNITS": "0", "CRYPTOCAST_LSTM_HEADS": "0", "CRYPTOCAST_LSTM_DROPOUT": "1.5",
    "CRYPTOCAST_LSTM_LEARNING_RATE": "1e308", "CRYPTOCAST_LSTM_SEED": "100000000000000000000",
    "CRYPTOCAST_LSTM_EPOCHS": "0", "CRYPTOCAST_BACKTEST_DAYS": "0",
}
SETTINGS_THAT_CANNOT_TRAIN_TOO = {"CRYPTOCAST_BACKTEST_DAYS": "100000"}
# Base URLs no request can be made to (finding 5): each was an unexpected exit 2.
BAD_URLS = ("http://[::1", "http://" + "h" * 70_000 + ".example", "ftp://example.com", "example.com",
            "http://example.com:99999", "http://exa mple.com", "0123456789abcdef" * 4)  # the last: a key pasted
# Retry-After values that are neither seconds nor a date (finding 5).
BAD_RETRY_AFTER = ("-5", "soon", "1.5")
# Fear & Greed `metadata` that is not an object (finding 5).
BAD_METADATA = ("maintenance", ["error"])
# Keys a header cannot carry (finding 3 and 5): rejected before any request, never echoed.
BAD_KEYS = ("k3y-0123456789abcdef\n", " k3y-0123456789abcdef", "k3y-0123\n456789abcdef", "k3y-0123456789abcdef€")
