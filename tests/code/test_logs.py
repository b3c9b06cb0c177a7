"""Secrets never reach a log handler or the final error line; `cli.execute` maps failures to exit codes."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

import pytest

from cryptocast import cli
from cryptocast.errors import CryptocastError, StoreError
from cryptocast.logs import REDACTED, RedactingFilter, redact

from conftest import REPO

SECRET = "k3y-5ecret-0a1b2c"
ENV_NAMES = ("CRYPTO_API_KEY", "HOPSWORKS_API_KEY", "HOPSWORKS_PROJECT", "HOPSWORKS_HOST", "CRYPTOCAST_BACKEND",
             "CRYPTOCAST_HOME", "CRYPTOCAST_AS_OF", "CRYPTOCAST_HISTORY_START", "CRYPTOCOMPARE_URL", "BINANCE_URL",
             "FEAR_GREED_URL", "CRYPTOCAST_HTTP_TIMEOUT", "CRYPTOCAST_HTTP_RETRIES", "CRYPTOCAST_HTTP_BACKOFF")


@pytest.fixture
def captured():
    """A private logger whose only handler carries the filter and writes to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactingFilter([SECRET, ""]))
    logger = logging.getLogger("cryptocast-test-redaction")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.handlers[:] = []


def test_redact_replaces_every_occurrence():
    assert redact(f"a {SECRET} b {SECRET}{SECRET} c", [SECRET]) == "a *** b ****** c"
    assert REDACTED == "***"


def test_redact_several_secrets_and_ignores_empty_ones():
    assert redact("x=AAA y=BBB z=AAA", ["AAA", "", "BBB"]) == "x=*** y=*** z=***"
    assert redact("nothing here", [""]) == "nothing here"
    assert redact("nothing here", []) == "nothing here"


def test_filter_scrubs_percent_args(captured):
    logger, buffer = captured
    logger.info("calling %s with key=%s (%d tries)", "https://api.example", SECRET, 3)
    assert buffer.getvalue() == "INFO calling https://api.example with key=*** (3 tries)\n"


def test_filter_scrubs_the_message_itself(captured):
    logger, buffer = captured
    logger.warning(f"header Authorization: Apikey {SECRET}")
    assert buffer.getvalue() == "WARNING header Authorization: Apikey ***\n"


def test_filter_scrubs_exception_text(captured):
    logger, buffer = captured
    try:
        raise ValueError(f"401 for url https://x/?api_key={SECRET}")
    except ValueError:
        logger.exception("request failed for %s", SECRET)
    out = buffer.getvalue()
    assert SECRET not in out
    assert out.startswith("ERROR request failed for ***\nTraceback (most recent call last):\n")
    assert "ValueError: 401 for url https://x/?api_key=***" in out


def test_filter_without_secrets_leaves_records_alone(captured):
    logger, _ = captured
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(RedactingFilter([]))
    logger.handlers[:] = [handler]
    logger.info("value %s", "plain")
    assert buffer.getvalue() == "value plain\n"


# --- cli.execute -------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    """No real .env, no inherited settings, the secret in the environment; logger restored after."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRYPTO_API_KEY", SECRET)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger("cryptocast")
    saved = (root.handlers[:], root.level, root.propagate)
    yield cli.parser(None).parse_args([])
    root.handlers[:], root.level, root.propagate = saved


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_execute_user_error_is_one_redacted_line(cli_env, capsys):
    seen = []

    def step(settings):
        seen.append(settings.crypto_api_key)
        raise StoreError(f"API rejected key {SECRET}")

    assert cli.execute(cli_env, step, "demo") == 1
    assert seen == [SECRET]  # the step really ran with the secret loaded
    captured = capsys.readouterr()
    assert SECRET not in captured.err and SECRET not in captured.out
    assert error_lines(captured.err) == ["error: demo: API rejected key ***"]


def test_execute_plain_cryptocast_error_returns_1(cli_env, capsys):
    def step(settings):
        raise CryptocastError("nothing to do")

    assert cli.execute(cli_env, step, "demo") == 1
    assert error_lines(capsys.readouterr().err) == ["error: demo: nothing to do"]


def test_execute_unexpected_exception_returns_1_with_one_line(cli_env, capsys):
    """Exit codes are 0, 1 and 130 only (issue 20, finding 5): a bug is 1 too, its line says 'unexpected'."""
    def step(settings):
        raise KeyError(f"missing {SECRET}")

    assert cli.execute(cli_env, step, "demo") == 1
    err = capsys.readouterr().err
    assert SECRET not in err
    lines = error_lines(err)
    assert len(lines) == 1
    assert lines[0].startswith("error: demo: unexpected KeyError: ")
    assert "***" in lines[0]
    assert "Traceback" not in err


def test_execute_verbose_traceback_is_redacted(cli_env, capsys):
    cli_env.verbose = True

    def step(settings):
        raise RuntimeError(f"boom {SECRET}")

    assert cli.execute(cli_env, step, "demo") == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom ***" in err
    assert SECRET not in err
    assert len(error_lines(err)) == 1


def test_execute_success_returns_0(cli_env, capsys):
    ran = []
    assert cli.execute(cli_env, lambda settings: ran.append(settings.backend), "demo") == 0
    assert ran == ["local"]
    captured = capsys.readouterr()
    assert error_lines(captured.err) == []
    assert SECRET not in captured.err


def test_execute_bad_setting_is_a_user_error(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-02-30")
    assert cli.execute(cli_env, lambda settings: None, "demo") == 1
    assert error_lines(capsys.readouterr().err) == [
        "error: demo: CRYPTOCAST_AS_OF='2024-02-30' is not a date in YYYY-MM-DD form"]


# --- the hopsworks client's logging --------------------------------------------------------------------

CLIENT_PROBE = """
import logging
from cryptocast.logs import setup_logging
setup_logging(["{secret}"])
import hopsworks  # noqa: F401  (configures the root logger at INFO unless it is configured already)
logging.getLogger("hopsworks_common.client.base").warning("request sent with key %s", "{secret}")
logging.getLogger("somelibrary").error("library error mentioning {secret}")
logging.getLogger("hsfs.engine.python").info("info chatter from the client")
logging.getLogger("urllib3.connectionpool").info("info chatter from a library")
import warnings
from hopsworks_common.util import ProvenanceWarning
warnings.warn("Model will not be linked to feature view of {secret}:\\n  see the docs", ProvenanceWarning)
print(sorted(type(h).__name__ for h in logging.getLogger().handlers))
"""


def test_the_hopsworks_clients_logging_passes_through_our_redaction(tmp_path):
    """`import hopsworks` calls logging.basicConfig(level=INFO): without a handler of ours on the root logger first,
    every client and library record would print unredacted, INFO chatter included. The client's warnings
    (`warnings.warn`, two ProvenanceWarnings per registration) went straight to stderr, unredacted, on two lines."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "CRYPTOCAST_"))}
    result = subprocess.run([sys.executable, "-c", CLIENT_PROBE.format(secret=SECRET)], cwd=tmp_path,
                            env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "WARNING hopsworks_common.client.base: request sent with key ***" in result.stderr
    assert "ERROR somelibrary: library error mentioning ***" in result.stderr
    assert "chatter" not in result.stderr
    assert ("WARNING py.warnings: ProvenanceWarning: Model will not be linked to feature view of ***: see the docs "
            "(<string>:") in result.stderr, "a client warning is one redacted line, like our own"
    assert result.stdout.strip() == "['RedactingHandler']", "basicConfig added no handler of its own"
