"""Problems with the machine or the command line are one line and exit 1 (Ctrl-C: 130), never a traceback.

Store-side cases of issue 10's finding 7 and 8 (disk full is in test_faults.py, damaged store files in
test_integrity.py and test_migration.py).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading

import pytest
from werkzeug import Response

from cryptocast import atomic, cli
from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import SourceError
from cryptocast.stores.local import LocalFeatureStore

import feature_backfill
import feature_pipeline
from conftest import REPO, error_lines, run_main
from grouprows import ALL, SOL, candles


@pytest.mark.parametrize("kind", ["a file", "inside a file"])
def test_a_home_that_cannot_be_a_directory(api, tmp_path, monkeypatch, capsys, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CRYPTOCAST_HOME", str(blocker if kind == "a file" else blocker / "home"))
    assert run_main(feature_backfill.main) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: feature_backfill: ") and "blocker" in lines[0], lines
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize("script", [feature_backfill.main, feature_pipeline.main])
def test_an_empty_home_setting_is_refused_not_taken_as_the_working_directory(api, tmp_path, monkeypatch, capsys,
                                                                              script):
    monkeypatch.setenv("CRYPTOCAST_HOME", "")
    assert run_main(script) == 1
    assert error_lines(capsys)[0].endswith("CRYPTOCAST_HOME is empty; name a directory for the local store "
                                           "(default .cryptocast)")
    assert list(tmp_path.iterdir()) == []  # the test's working directory: nothing written there


@pytest.mark.parametrize("out", ["dir", ""])
def test_export_out_must_name_a_file(api, tmp_path, capsys, out):
    assert run_main(feature_backfill.main) == 0
    capsys.readouterr()
    target = tmp_path / "exports"
    target.mkdir()
    assert cryptocast_main(["export", "solana", "--out", str(target) if out else ""]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "must name a file" in lines[0], lines
    assert captured.out == "" and list(target.iterdir()) == []


@pytest.mark.parametrize("where", ["a commit", "a new file", "the registry"])
def test_export_never_writes_inside_the_store(tmp_path, monkeypatch, capsys, where):
    """`export` only reads: a --out that lands in CRYPTOCAST_HOME (a typo, tab completion) must not clobber a
    Delta commit, which made the group unreadable with no commit to roll back to."""
    home = tmp_path / "home"
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    LocalFeatureStore(home).get_or_create_feature_group(SOL).insert(candles(ALL))
    commit = home / "feature_store" / "solana_v1" / "_delta_log" / f"{0:020d}.json"
    target = {"a commit": commit, "a new file": home / "sol.csv",
              "the registry": home / "model_registry" / ".." / "x.csv"}[where]
    before = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert cryptocast_main(["export", "solana", "--out", str(target)]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: export: --out ") and "inside the store" in lines[0], lines
    assert {p: p.read_bytes() for p in home.rglob("*") if p.is_file()} == before


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch, capsys):
    """Before: `error: feature_backfill: No space left on device`, saying what but not where."""
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    home = tmp_path / "home"
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    monkeypatch.setattr(atomic.os, "write", full)
    with pytest.raises(OSError) as exc:
        LocalFeatureStore(home).get_or_create_feature_group(SOL).insert(candles(ALL))
    assert exc.value.errno == errno.ENOSPC
    assert exc.value.filename and exc.value.filename.startswith(str(home / "feature_store" / "solana_v1"))
    assert not [p for p in home.rglob("*.tmp")]


def test_export_to_a_file_in_a_missing_directory_is_one_line(api, tmp_path, capsys):
    assert run_main(feature_backfill.main) == 0
    assert cryptocast_main(["export", "solana", "--out", str(tmp_path / "missing" / "sol.csv")]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: export: cannot write ") and "missing" in lines[0]


def test_ctrl_c_inside_a_step_is_exit_130_and_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))

    def interrupted(settings):
        raise KeyboardInterrupt

    args = cli.parser(None).parse_args([])
    assert cli.execute(args, interrupted, "feature_pipeline") == 130
    assert error_lines(capsys) == ["error: feature_pipeline: interrupted (Ctrl-C); each group is as it was or "
                                   "fully written"]


def test_ctrl_c_of_a_real_run_waiting_on_the_network(api, httpserver, tmp_path):
    """SIGINT while the daily update waits for a slow API: exit 130, one line, no traceback, store intact."""
    waiting, release = threading.Event(), threading.Event()

    def stalled(request):
        waiting.set()
        release.wait(20)
        return Response("[]", content_type="application/json")

    assert run_main(feature_backfill.main) == 0
    httpserver.clear()
    httpserver.expect_request("/api/v3/klines").respond_with_handler(stalled)
    env = dict(os.environ)
    env["CRYPTOCAST_AS_OF"] = "2024-03-05"
    run = subprocess.Popen([sys.executable, str(REPO / "feature_pipeline.py")], env=env, cwd=tmp_path,
                           stderr=subprocess.PIPE, text=True)
    try:
        assert waiting.wait(30)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # seen once on a machine at load 6: say what the run was doing
        run.kill()
        raise AssertionError(f"no exit 30 s after Ctrl-C; stderr: {run.communicate()[1][-2000:]}") from None
    finally:
        release.set()
    assert run.returncode == 130, err
    assert [line for line in err.splitlines() if not line[:4].isdigit()] == [
        "error: feature_pipeline: interrupted (Ctrl-C); each group is as it was or fully written"]


def test_ctrl_c_before_a_step_starts_is_one_line_too():
    code = "import cryptocast.cli\nraise KeyboardInterrupt"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode in (130, -signal.SIGINT)
    assert run.stderr.splitlines() == ["error: interrupted (Ctrl-C) before anything was read or written"]


@pytest.mark.parametrize("error", [
    SourceError("csv sol.csv: Error tokenizing data. C error: Expected 7 fields in line 3, saw 8\n"),
    OSError(errno.EIO, "Input/output\nerror", "a\nfile"),
    ValueError("first line\n  second line"),
])
def test_a_message_with_line_breaks_is_still_one_line(tmp_path, monkeypatch, capsys, error):
    """pandas' parser errors end in a newline: the CSV import printed a blank second line on stderr."""
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))

    def fails(settings):
        raise error

    args = cli.parser(None).parse_args([])
    assert cli.execute(args, fails, "feature_backfill") in (1, 2)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line[:4].isdigit()]
    assert len(lines) == 1 and lines[0].startswith("error: feature_backfill: ") and err.endswith("\n"), err
