"""Issue 20: what ten unattended years throw at a run, each one line, exit 0, 1 or 130, no secret shown.

Findings 3 (secrets), 5 (exits outside 0/1/130), 6 (a network error stopping every group), 7 (export
--out onto a device) and 9 (terminal escapes, CSV size and width, a full disk after one group). The
cases themselves are listed in tests/faults.py; the transport faults are tests/faultserver.py's.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import signal
import stat
from pathlib import Path

import pandas as pd
import pytest

from cryptocast import cli, ingest
from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import CryptocastError, SettingsError, SourceError, StoreError
from cryptocast.features import FEAR_GREED, SOLANA
from cryptocast.logs import redact
from cryptocast.settings import load_settings
from cryptocast.sources import csv_exports
from cryptocast.sources.fear_greed import FearGreed

import feature_backfill
import feature_pipeline
import training_pipeline
from conftest import SHARED_DATA, error_lines, group_rows, run_main
from faults import (
    BAD_KEYS,
    BAD_METADATA,
    BAD_RETRY_AFTER,
    BAD_URLS,
    SETTINGS_THAT_CANNOT_TRAIN,
    SETTINGS_THAT_CANNOT_TRAIN_TOO,
)
from faultserver import KEY, bad_gzip, deep_json, fault_server, redirect_to, statuses
from faultserver import http_client as client
from faultserver import request_failure as failure


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- finding 3: secrets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("secret", "text"), [
    (KEY + "\n", f"invalid key {KEY}"),  # the key as set has a trailing newline, the echo has not
    (KEY, f"invalid key {KEY[:9]}\n{KEY[9:]}"),  # an echo split by a newline
    (KEY, f"invalid key {KEY[:9]} {KEY[9:]}"),  # ... then joined into one line
    ("a/b+c=d&" + KEY, "GET http://h/x?k=a%2Fb%2Bc%3Dd%26" + KEY),  # percent-encoded in a URL
    ("x" * 70_000, "/home/" + "x" * 70_000 + "/store"),  # any length, inside a path
    ("short", "no:short:here"),
])
def test_redaction_finds_a_key_however_it_is_written(secret, text):
    shown = redact(text, [secret])
    assert "***" in shown and secret.strip()[-9:] not in shown and secret.strip()[:5] not in shown


def test_a_server_echo_with_a_newline_inside_the_key_is_redacted_whole():
    echoed = f"invalid key {KEY[:9]}\n{KEY[9:]}"
    with fault_server(statuses((401, {}, {"msg": echoed}))) as (base, _):
        message = failure(base)
    assert KEY[:9] not in message and KEY[9:] not in message and "***" in message


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "space", "inner-newline", "euro"])
def test_a_key_a_header_cannot_carry_is_refused_before_any_request(api, stocked, key, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTO_API_KEY", key)
    asked = len(api.requests)
    assert run_main(feature_pipeline.main) == 1
    line = one_line(capsys)
    assert line.startswith("error: feature_pipeline: CRYPTO_API_KEY has ") and "(the key is not shown)" in line
    assert "0123456789" not in line
    assert len(api.requests) == asked


def test_a_key_pasted_into_a_bounded_setting_is_not_echoed_even_when_short(tmp_path):
    """Before: a value of 32 characters or fewer was shown, and a key not set as a key is not known to be one."""
    pasted = "0123456789abcdef0123"
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"CRYPTOCAST_HTTP_TIMEOUT": pasted}, dotenv_path=tmp_path / "no.env")
    assert str(info.value) == "CRYPTOCAST_HTTP_TIMEOUT=(a 20-character value) is not a float"


# --- finding 5: exits outside 0/1/130 --------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value"), [*SETTINGS_THAT_CANNOT_TRAIN.items(),
                                             *SETTINGS_THAT_CANNOT_TRAIN_TOO.items()])
def test_settings_that_cannot_train_are_refused_when_read(tmp_path, name, value):
    with pytest.raises(SettingsError) as info:
        load_settings(environ={name: value}, dotenv_path=tmp_path / "no.env")
    assert str(info.value).startswith(f"{name}=") and "must be between" in str(info.value)


def test_training_on_too_little_history_says_how_much_it_needs(api, stocked, capsys):
    """Before: 'unexpected ValueError: only 281 complete windows', exit 2."""
    assert run_main(training_pipeline.main) == 1
    line = one_line(capsys)
    assert "complete windows; a 365-day backtest needs 425" in line and "days of history" in line
    assert "unexpected" not in line


@pytest.mark.parametrize("url", BAD_URLS, ids=["ipv6", "huge-host", "ftp", "no-scheme", "port", "space", "a-key"])
def test_a_base_url_no_request_can_be_made_to_is_one_line(api, url, monkeypatch, capsys):
    """Before: 'unexpected ValueError: Invalid IPv6 URL' (exit 2), or requests' error echoing the whole value
    (a key pasted there among them) at any length."""
    monkeypatch.setenv("BINANCE_URL", url)
    assert run_main(feature_pipeline.main) == 1
    line = one_line(capsys)
    assert line.startswith("error: feature_pipeline: BINANCE_URL=") and len(line) < 300
    assert "0123456789abcdef" not in line


@pytest.mark.parametrize("value", BAD_RETRY_AFTER)
def test_a_retry_after_that_is_neither_seconds_nor_a_date_fails_the_source(value):
    with fault_server(statuses((429, {"Retry-After": value}, {"msg": "slow down"}), (200, {}, [1]))) as (base, _):
        with pytest.raises(SourceError) as info:
            client(base, CRYPTOCAST_HTTP_RETRIES="2").get_json("src", f"{base}/x", {})
    assert str(info.value) == (f"src /x: HTTP 429 Too Many Requests: Retry-After {value!r} is neither a whole number "
                               "of seconds nor a date")


@pytest.mark.parametrize("metadata", BAD_METADATA, ids=["string", "list"])
def test_fear_greed_metadata_that_is_not_an_object_fails_the_source(metadata):
    body = {"data": [{"value": "50", "value_classification": "Neutral", "timestamp": "1704067200"}],
            "metadata": metadata}
    with fault_server(statuses((200, {}, body))) as (base, _):
        http = client(base)
        with pytest.raises(SourceError, match="malformed response: 'metadata' is a"):
            FearGreed(http, load_settings(environ={"FEAR_GREED_URL": base}, dotenv_path=SHARED_DATA / "no.env",
                                          today=dt.date(2026, 1, 1))).fetch("fear_greed", dt.date(2024, 1, 1),
                                                                            dt.date(2024, 1, 1))


def test_usage_errors_are_one_line_and_exit_1(capsys):
    for main, argv in ((feature_backfill.main, ["--no-such-flag"]), (cryptocast_main, ["export"]),
                       (cryptocast_main, ["rollback", "solana", "--to", "x"])):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 1
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith("(see --help)"), err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_a_run_as_ctrl_c_does(tmp_path, monkeypatch, capsys, signum):
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    before = signal.getsignal(signum)

    def killed(settings):
        os.kill(os.getpid(), signum)

    assert cli.execute(cli.parser(None).parse_args([]), killed, "feature_pipeline") == 130
    assert error_lines(capsys) == [f"error: feature_pipeline: stopped by {signal.Signals(signum).name}; each group "
                                   "is as it was or fully written"]
    assert signal.getsignal(signum) == before


# --- finding 6: a network error fails its source alone, by name ------------------------------------------------


@pytest.mark.parametrize("fault", [lambda: redirect_to("/x"), lambda: redirect_to("file:///etc/passwd"), bad_gzip,
                                   deep_json], ids=["redirect-loop", "file-redirect", "bad-gzip", "deep-json"])
def test_a_network_error_names_its_source(fault):
    with fault_server(fault()) as (base, _):
        message = failure(base)
    assert message.startswith("src /x: ") and "\n" not in message


def test_a_header_the_client_cannot_send_names_its_source():
    with fault_server(statuses((200, {}, [1]))) as (base, _):
        message = failure(base, {"x-token": "a\nb"})
    assert message.startswith("src /x: request failed: InvalidHeader")


def test_a_network_error_in_one_group_does_not_stop_the_others(api, home, stocked, monkeypatch, capsys):
    """Before: `error: feature_pipeline: Exceeded 30 redirects.` and no later group tried."""
    with fault_server(redirect_to("/api/v3/klines")) as (base, _):
        monkeypatch.setenv("BINANCE_URL", base)
        assert run_main(feature_pipeline.main) == 1
    line = one_line(capsys)
    assert "binance SOLUSDT /api/v3/klines: request failed: TooManyRedirects" in line
    assert "binance BTCUSDT /api/v3/klines: request failed: TooManyRedirects" in line
    assert group_rows(home, FEAR_GREED)["day"].max() == pd.Timestamp("2024-02-29")


# --- finding 7: export --out ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_export_out_refuses_anything_but_a_regular_file_or_a_new_path(api, stocked, tmp_path, capsys, kind):
    """Before: `export --out /dev/full` (as root) replaced the device with a regular file; a pipe is the safe
    stand-in for a device here."""
    out = tmp_path / "out.csv"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        (tmp_path / "target.csv").write_text("kept\n")
        out.symlink_to(tmp_path / "target.csv")
    assert cryptocast_main(["export", "solana", "--out", str(out)]) == 1
    assert "export writes a new file or replaces a regular one" in one_line(capsys)
    mode = os.lstat(out).st_mode
    assert stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISLNK(mode)
    assert cryptocast_main(["export", "solana", "--out", str(tmp_path / "new.csv")]) == 0


# --- finding 9: the smaller ones -------------------------------------------------------------------------------


def test_terminal_escapes_in_api_error_text_never_reach_the_terminal(capsys):
    with fault_server(statuses((401, {}, {"msg": "\x1b[2J\x1b[31mbad\x1b[0m key\x1b]0;pwned\x07"}))) as (base, _):
        message = failure(base)
    assert message == "src /x: HTTP 401 Unauthorized: bad key"
    args = cli.parser(None).parse_args([])

    def step(settings):
        raise CryptocastError("upstream said \x1b[31mred\x1b[0m")

    assert cli.execute(args, step, "demo") == 1
    assert "\x1b" not in capsys.readouterr().err


def binance_rows(extra_field_on_line: int | None = None) -> str:
    lines = ["date,open,high,low,close,volume"] + [f"2024-01-{d:02d},2.85,3.5,2.8,3.3,100" for d in range(1, 6)]
    if extra_field_on_line:
        lines[extra_field_on_line - 1] += ",7"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("line", [2, 4])
def test_a_csv_row_with_one_extra_field_says_so(tmp_path, line):
    """Before: with the extra field on the first row, pandas took the date as an index: "date '2.85' is not a date"."""
    path = tmp_path / "SOLUSDT_1d.csv"
    path.write_text(binance_rows(line))
    with pytest.raises(SourceError) as info:
        csv_exports.load_export("solana", path, dt.date(2026, 1, 1))
    assert str(info.value) == f"csv SOLUSDT_1d.csv line {line}: 7 fields, but the first line has 6 (a stray or " \
                              "missing comma?)"


def test_a_csv_larger_than_the_cap_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_exports, "MAX_CSV_BYTES", 100)
    path = tmp_path / "SOLUSDT_1d.csv"
    path.write_text(binance_rows())
    with pytest.raises(SourceError, match="larger than 0 MB: not a daily export"):
        csv_exports.load_export("solana", path, dt.date(2026, 1, 1))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_an_endless_file_is_cut_at_the_cap(monkeypatch):
    """Before: `--solana-csv /dev/zero` grew until the memory limit."""
    monkeypatch.setattr(csv_exports, "MAX_CSV_BYTES", 2**20)
    with pytest.raises(SourceError, match="larger than 1 MB"):
        csv_exports.load_export("solana", Path("/dev/zero"), dt.date(2026, 1, 1))


def test_a_full_disk_after_one_group_says_which_groups_were_written(api, stocked, monkeypatch, capsys):
    real = ingest._write

    def write(store, batch, replace=False):
        if batch.spec.name != SOLANA.name:
            raise OSError(errno.ENOSPC, "No space left on device", "/store/bitcoin_v1/part.parquet")
        real(store, batch, replace)

    monkeypatch.setattr(ingest, "_write", write)
    assert run_main(feature_pipeline.main) == 1
    line = one_line(capsys)
    assert line == ("error: feature_pipeline: No space left on device: /store/bitcoin_v1/part.parquet (while "
                    "writing bitcoin v1; written in this run: solana v1; run again to finish)")


RUST_PANIC = (b"thread '<unnamed>' panicked at /root/.cargo/registry/src/delta_kernel-0.6/src/log_segment.rs:231:9:\n"
              b"assertion failed: checkpoint.version <= end_version\n"
              b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")


def test_a_rust_panic_prints_only_our_line(tmp_path, monkeypatch, capfd):
    """Before: delta-rs' panic hook wrote its report to fd 2 beside the store's one line. Other native output
    (before and after it) still passes."""
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))

    def panicking(settings):
        os.write(2, b"native text before\n" + RUST_PANIC + b"native text after\n")
        raise StoreError("feature group solana v1: PanicException: assertion failed: checkpoint.version <= "
                         "end_version")

    assert cli.execute(cli.parser(None).parse_args([]), panicking, "status", quiet=True) == 1
    err = capfd.readouterr().err
    assert "panicked at" not in err and "RUST_BACKTRACE" not in err
    lines = err.splitlines()  # (pytest's capfd takes sys.stderr's writes apart from fd 2's: order across them varies)
    assert [line for line in lines if not line.startswith("error:")] == ["native text before", "native text after"]
    assert error_lines_of(lines) == ["error: status: feature group solana v1: PanicException: assertion failed: "
                                     "checkpoint.version <= end_version"]


def error_lines_of(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("error:")]


def test_a_home_no_file_system_takes_is_refused_without_echoing_it(tmp_path, monkeypatch, capsys):
    """Before: a 70,000-character CRYPTOCAST_HOME (a pasted key?) came back whole in 'File name too long: ...'."""
    pasted = "0123456789abcdef" * 4375
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / pasted))
    assert cryptocast_main(["status"]) == 1
    line = one_line(capsys)
    assert line.startswith("error: status: CRYPTOCAST_HOME=(a ") and "0123456789abcdef" not in line
