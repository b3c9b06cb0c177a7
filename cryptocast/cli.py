"""What every entry point shares: common flags, settings, logging, and errors as one line.

Scripts stay thin: they declare their own flags and hand a function of `Settings` to `execute`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import NoReturn

from cryptocast.errors import CryptocastError
from cryptocast.logs import native_panics_hidden, printable, redact, setup_logging
from cryptocast.settings import BACKENDS, Settings, load_settings

log = logging.getLogger("cryptocast")


def _one_line_interrupt(kind: type[BaseException], value: BaseException, traceback: object) -> None:
    """Ctrl-C before `execute` runs (while a script imports pandas) is one line too, not a traceback."""
    if issubclass(kind, KeyboardInterrupt):
        print("error: interrupted (Ctrl-C) before anything was read or written", file=sys.stderr)
    else:
        sys.__excepthook__(kind, value, traceback)


sys.excepthook = _one_line_interrupt  # every script imports this module first


class Parser(argparse.ArgumentParser):
    """argparse with our exit-code contract: a usage error is one line and exit 1 (argparse's own is 2)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {' '.join(message.split())} (see --help)", file=sys.stderr)
        sys.exit(1)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so every write stops as cleanly as on Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.name = signal.Signals(signum).name


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def stop_signals_as_interrupts() -> Iterator[None]:
    """A `kill` or a closed terminal ends the run as Ctrl-C does: one line and exit 130, not a silent 143/129."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def common_flags() -> argparse.ArgumentParser:
    """The flags every command accepts (they override env and `.env`), as an argparse parent."""
    p = Parser(add_help=False)
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="run as if today were this UTC day (CRYPTOCAST_AS_OF)")
    p.add_argument("--home", metavar="DIR", help="local store and registry directory (CRYPTOCAST_HOME)")
    p.add_argument("--backend", choices=BACKENDS, help="storage backend (CRYPTOCAST_BACKEND)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks on errors")
    return p


def parser(description: str | None) -> argparse.ArgumentParser:
    """An entry point's argument parser, with the common flags."""
    return Parser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter, parents=[common_flags()]
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build settings with the common flags as the highest-precedence layer."""
    return load_settings(
        {"CRYPTOCAST_AS_OF": args.as_of, "CRYPTOCAST_HOME": args.home, "CRYPTOCAST_BACKEND": args.backend}
    )


def _say(message: str, secrets: tuple[str, ...]) -> None:
    """The one error line: a message from a library (pandas' parser errors end in a newline) is joined up here."""
    print(redact(printable("error: " + " ".join(redact(message, secrets).split())), secrets), file=sys.stderr)


def execute(args: argparse.Namespace, step: Callable[[Settings], None], name: str, quiet: bool = False) -> int:
    """Run one step; return the exit code. Expected failures print exactly one line.

    `quiet` keeps start/finish lines out of inspection commands whose stdout is the product. A Rust panic's
    own report (delta-rs) is kept off the screen unless --verbose: the store's one line names it.
    """
    with stop_signals_as_interrupts(), nullcontext() if args.verbose else native_panics_hidden():
        return _execute(args, step, name, quiet)


def _execute(args: argparse.Namespace, step: Callable[[Settings], None], name: str, quiet: bool) -> int:
    secrets: tuple[str, ...] = ()
    started = time.monotonic()
    try:
        settings = settings_from_args(args)
        secrets = settings.secrets
        setup_logging(secrets, verbose=args.verbose)
        for note in settings.notes:
            log.warning("settings: %s", note)
        if not quiet:
            log.info("%s: backend=%s as_of=%s home=%s", name, settings.backend, settings.as_of, settings.home)
        step(settings)
    except BrokenPipeError:  # stdout closed early (`... | head`): not a failure of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except CryptocastError as exc:
        _say(f"{name}: {exc}", secrets)
        return 1
    except KeyboardInterrupt as exc:  # every write is atomic, so stopping here leaves each group old or new
        how = f"stopped by {exc.name}" if isinstance(exc, Stopped) else "interrupted (Ctrl-C)"
        print(f"error: {name}: {how}; each group is as it was or fully written", file=sys.stderr)
        return 130
    except OSError as exc:  # the machine, not the code: disk full, permissions, a path that is not a file
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"{name}: {exc.strerror or exc}{where}", secrets)
        return 1
    except Exception as exc:  # a bug: still one line by default, the traceback with --verbose
        if args.verbose:
            log.exception("unexpected failure")
        _say(f"{name}: unexpected {type(exc).__name__}: {exc}", secrets)
        return 1
    if not quiet:
        log.info("%s: done in %.1fs", name, time.monotonic() - started)
    return 0
