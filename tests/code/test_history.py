"""Every write to a local group is a commit: `history` lists them, `rollback` undoes any of them."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from cryptocast import features
from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.stores.local import LocalFeatureStore

import hopsworks_double
from conftest import error_lines
from grouprows import ALL, SOL, candles, expected_candles, forecast_rows, forecast_rows_v1


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A solana group with three commits: ALL, a new day, a replaced close."""
    home = tmp_path / "home"
    for name in ("HOPSWORKS_API_KEY", "CRYPTOCAST_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    group = LocalFeatureStore(home).get_or_create_feature_group(SOL)
    group.insert(candles(ALL))
    group.insert(candles(["2024-01-03"]))
    group.insert(candles(["2024-01-02"], {"2024-01-02": 5.0}), replace=True)
    return home


def group(home):
    return LocalFeatureStore(home).get_feature_group(SOL)


def test_history_lists_every_commit_newest_first(home, capsys):
    assert cryptocast_main(["history", "solana"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    assert re.fullmatch(rf"\s+2  {stamp}  MERGE\s+5 rows  0 added, 1 updated, 0 unchanged \(.+\)", lines[0])
    assert re.fullmatch(rf"\s+1  {stamp}  WRITE\s+5 rows  1 added, 0 updated, 0 unchanged \(.+\)", lines[1])
    assert re.fullmatch(rf"\s+0  {stamp}  WRITE\s+4 rows  4 added, 0 updated, 0 unchanged \(.+\)", lines[2])


def test_rollback_brings_back_the_rows_of_that_commit_as_a_new_commit(home, capsys):
    assert cryptocast_main(["rollback", "solana", "--to", "0"]) == 0
    out = capsys.readouterr().out
    assert "rows of version 0 are live again as version 3 (4 rows); undo with `rollback solana --to 2`" in out
    pd.testing.assert_frame_equal(group(home).read(), expected_candles(ALL), check_exact=True)
    newest = group(home).history()[0]
    assert (newest.version, newest.operation, newest.summary) == (3, "RESTORE", "rollback to version 0")
    assert newest.program  # who made it is recorded (here: pytest's own argv[0])


def test_a_rollback_can_itself_be_rolled_back(home):
    before = group(home).read()
    group(home).rollback(0)  # version 3: the four first rows
    assert len(group(home).read()) == 4
    group(home).rollback(2)  # version 4: undoes version 3
    pd.testing.assert_frame_equal(group(home).read(), before, check_exact=True)
    assert [c.version for c in group(home).history()][:2] == [4, 3]


def test_every_version_stays_readable(home):
    g = group(home)
    pd.testing.assert_frame_equal(g.read(version=0), expected_candles(ALL), check_exact=True)
    pd.testing.assert_frame_equal(g.read(version=2), expected_candles(ALL, {"2024-01-02": 5.0}).pipe(
        lambda f: pd.concat([f, candles(["2024-01-03"])], ignore_index=True)), check_exact=True)


@pytest.mark.parametrize(("args", "message"), [
    (["rollback", "solana", "--to", "9"], "error: rollback: feature group solana v1 has versions 0..2, not 9"),
    (["rollback", "solana", "--to", "-1"], "error: rollback: feature group solana v1: `--to -1` only starts a group "
                                           "empty when no intact version is left"),
    (["rollback", "nosuch", "--to", "1"], "error: rollback: unknown group 'nosuch'; known: bitcoin, fear_greed, "
                                          "model_health, solana, solana_forecasts, solana_v1"),
    (["history", "bitcoin"], "error: history: feature group bitcoin v1 does not exist in "),
])
def test_bad_requests_are_one_line_and_change_nothing(home, capsys, args, message):
    before = sorted(p.name for p in home.rglob("*"))
    assert cryptocast_main(args) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert sorted(p.name for p in home.rglob("*")) == before


def test_a_group_version_the_code_no_longer_defines_is_reached_by_its_directory_name(home, capsys):
    assert cryptocast_main(["history", "solana_v1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_the_undo_a_rollback_prints_undoes_that_group_and_no_other(home, capsys):
    """Rolling back an older group version: its undo hint must name that version, not today's (which it
    would roll back instead), nor a bare name the commands refuse (upstream_holes)."""
    store = LocalFeatureStore(home)
    old = store.get_or_create_feature_group(features.FORECASTS_V1)
    old.insert(forecast_rows_v1("2024-01-01"))
    old.insert(forecast_rows_v1("2024-01-02"))
    current = store.get_or_create_feature_group(features.FORECASTS)
    current.insert(forecast_rows("2024-01-03"))
    current.insert(forecast_rows("2024-01-04"))
    assert cryptocast_main(["rollback", "solana_forecasts_v1", "--to", "0"]) == 0
    undo = re.search(r"undo with `(.+)`", capsys.readouterr().out).group(1).split()
    assert cryptocast_main(undo) == 0
    assert [c.summary for c in old.history()][:2] == ["rollback to version 1", "rollback to version 0"]
    assert len(old.read()) == 20
    assert [c.operation for c in current.history()] == ["WRITE", "WRITE"]


def test_a_damaged_version_is_not_restored(home):
    g = group(home)
    victim = next(f for f in g.table.snapshot(0).files if f.path.startswith("2024-"))
    path = g.directory / victim.path
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    with pytest.raises(StoreError, match=f"{victim.path} is damaged"):
        g.rollback(0)
    assert g.history()[0].version == 2


@pytest.mark.parametrize("command", [["history", "solana"], ["rollback", "solana", "--to", "1"], ["verify"]])
def test_on_the_hopsworks_backend_they_say_they_are_local_features(tmp_path, monkeypatch, capsys, command):
    hopsworks_double.install(monkeypatch)
    monkeypatch.setenv("CRYPTOCAST_BACKEND", "hopsworks")
    monkeypatch.setenv("HOPSWORKS_API_KEY", hopsworks_double.API_KEY)
    monkeypatch.setenv("HOPSWORKS_PROJECT", hopsworks_double.PROJECT)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "h"))
    assert cryptocast_main(command) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: {command[0]}: {command[0]} is a local-backend feature")
