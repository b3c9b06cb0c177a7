"""A lost or edited commit is seen: the store records each group's commits outside their logs (issue 20, 4).

Before: deleting the newest `_delta_log/<N>.json` silently rolled a group back (status, export, verify
exit 0), deleting a whole `_delta_log` read as an empty group and the next backfill started a new
history at commit 0, and an edited `commitInfo` passed verify while `history` showed its rows and
times. Now each is one line naming the group and the rollback that continues from the newest
intact version, from every reader; that rollback repairs the group.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores import delta
from cryptocast.stores.ledger import LEDGER
from cryptocast.stores.local import LocalFeatureStore

import faults
from conftest import error_lines
from grouprows import ALL, SOL, candles
from modelfiles import make_artifacts

READERS = (["status"], ["export", "solana"], ["verify"], ["history", "solana"])


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A solana group with versions 0..3 and a checkpoint at 2, and one registered model."""
    monkeypatch.setattr(delta, "CHECKPOINT_EVERY", 2)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HOPSWORKS_API_KEY", raising=False)
    monkeypatch.delenv("CRYPTOCAST_BACKEND", raising=False)
    home = tmp_path / "home"
    group = LocalFeatureStore(home).get_or_create_feature_group(SOL)
    group.insert(candles(ALL[:2]))
    group.insert(candles(ALL[2:3]))
    group.insert(candles(ALL[3:]))
    group.insert(candles(["2024-01-05"]))
    LocalModelRegistry(home).register_and_promote("sol_lstm", make_artifacts(tmp_path / "model"),
                                                  {"rel_mae_mean": 1.0}, "m", {})
    return home


def solana(home: Path):
    return LocalFeatureStore(home).get_feature_group(SOL)


def group_dir(home: Path) -> Path:
    return home / "feature_store" / "solana_v1"


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("damage", "target"), [("newest commit deleted", 2), ("log deleted", -1),
                                                ("commitInfo edited", 0), ("newest commitInfo edited", 2)])
def test_every_reader_refuses_a_lost_or_edited_commit_naming_the_group_and_the_rollback(home, capsys, damage,
                                                                                         target):
    faults.damage_log(group_dir(home), damage)
    for command in READERS:
        assert cryptocast_main(command) == 1, (damage, command)
        lines = error_lines(capsys)
        assert len(lines) == 1 and "solana" in lines[0], (command, lines)
        assert f"rollback solana --to {target}`" in lines[0], (command, lines)


@pytest.mark.parametrize("damage", ["newest commit deleted", "log deleted", "commitInfo edited"])
def test_the_pipelines_refuse_to_write_on_a_damaged_group_and_leave_it_as_it_was(home, damage):
    faults.damage_log(group_dir(home), damage)
    before = tree(home / "feature_store")
    with pytest.raises(StoreError, match="solana"):
        LocalFeatureStore(home).get_or_create_feature_group(SOL).insert(candles(["2024-01-06"]))
    with pytest.raises(StoreError, match="solana"):
        LocalFeatureStore(home).get_feature_group(SOL).read()
    assert tree(home / "feature_store") == before  # in particular: no second history started at commit 0


@pytest.mark.parametrize(("damage", "target"), [("newest commit deleted", 2), ("commitInfo edited", 0),
                                                ("newest commitInfo edited", 2)])
def test_the_rollback_the_line_names_repairs_the_group(home, capsys, damage, target):
    rows = solana(home).read(version=target)
    faults.damage_log(group_dir(home), damage)
    assert cryptocast_main(["rollback", "solana", "--to", str(target)]) == 0
    capsys.readouterr()
    pd.testing.assert_frame_equal(solana(home).read(), rows, check_exact=True)
    assert cryptocast_main(["verify"]) == 0
    assert [c.operation for c in solana(home).history()][0] == "RESTORE"
    solana(home).insert(candles(["2024-01-06"]))  # the group takes daily writes again
    assert cryptocast_main(["verify"]) == 0


def test_a_lost_log_is_started_empty_by_the_rollback_it_names_and_backfilled_afresh(home, capsys):
    faults.damage_log(group_dir(home), "log deleted")
    assert cryptocast_main(["rollback", "solana", "--to", "-1"]) == 0
    assert "started empty" in capsys.readouterr().out
    assert solana(home) is None
    LocalFeatureStore(home).get_or_create_feature_group(SOL).insert(candles(ALL))
    assert [c.version for c in solana(home).history()] == [0]
    assert cryptocast_main(["verify"]) == 0


def test_minus_one_does_not_empty_a_group_that_has_intact_versions(home, capsys):
    faults.damage_log(group_dir(home), "newest commit deleted")
    assert cryptocast_main(["rollback", "solana", "--to", "-1"]) == 1
    assert "only starts a group empty when no intact version is left" in error_lines(capsys)[0]


def test_a_group_the_record_no_longer_lists_is_refused(home, capsys):
    (home / "feature_store" / LEDGER).unlink()
    for command in READERS:
        assert cryptocast_main(command) == 1, command
        lines = error_lines(capsys)
        assert len(lines) == 1 and "solana" in lines[0] and LEDGER in lines[0], lines


def test_a_group_written_before_the_record_is_read_and_then_recorded_by_its_next_write(home, capsys):
    log_dir = group_dir(home) / "_delta_log"
    (home / "feature_store" / LEDGER).unlink()
    for path in log_dir.glob("*.json"):  # as cryptocast wrote commits before the record
        path.write_text(path.read_text().replace(f',"cryptocast.ledger":"{LEDGER}"', ""))
    for path in log_dir.glob("*.checkpoint.parquet"):
        path.unlink()
    (log_dir / "_last_checkpoint").unlink()
    assert cryptocast_main(["verify"]) == 0
    solana(home).insert(candles(["2024-01-06"]))
    capsys.readouterr()
    faults.damage_log(group_dir(home), "newest commit deleted")
    assert cryptocast_main(["verify"]) == 1
    assert "rollback solana --to 3`" in error_lines(capsys)[0]


def test_a_commit_the_record_announced_but_never_confirmed_is_accepted_only_with_its_bytes(home):
    """A run killed between creating a commit and recording it: the `pending` entry vouches for it."""
    ledger = home / "feature_store" / LEDGER
    data = json.loads(ledger.read_text())
    entry = data["groups"]["solana_v1"]
    newest = entry["latest"]
    entry["pending"] = {"version": newest, "sha256": entry["commits"].pop(str(newest))}
    entry["latest"] = newest - 1
    ledger.write_text(json.dumps(data))
    assert solana(home).table.snapshot().version == newest
    faults.damage_log(group_dir(home), "newest commitInfo edited")
    with pytest.raises(StoreError, match="is not in"):
        solana(home).read()


# --- the model registry --------------------------------------------------------------------------------


def test_a_model_version_without_its_checksums_is_refused(home, capsys):
    """Before: deleting checksums.json and writing production.json as {"version": 1} turned off every model check."""
    version = home / "model_registry" / "sol_lstm" / "v1"
    (version / "checksums.json").unlink()
    (home / "model_registry" / "sol_lstm" / "production.json").write_text('{"version": 1}\n')
    (version / "artifacts" / "weights.npz").write_bytes(b"anything at all")
    with pytest.raises(StoreError, match="checksums.json is missing"):
        LocalModelRegistry(home).production("sol_lstm")
    assert cryptocast_main(["verify"]) == 1
    assert "checksums.json is missing" in error_lines(capsys)[0]


def test_the_daily_pipeline_refuses_a_group_that_lost_its_newest_commit(api, tmp_path, capsys, monkeypatch):
    """Before: the lost commit's days were silently fetched again on top of the version before (exit 0)."""
    import datetime as dt

    from cryptocast import ingest
    from cryptocast.settings import load_settings

    import feature_pipeline

    home = tmp_path / "home"
    ingest.backfill(load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": "2024-02-20",
                                   "CRYPTOCAST_BACKEND": "local"}))
    ingest.update(load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": "2024-02-25",
                                 "CRYPTOCAST_BACKEND": "local"}))
    faults.damage_log(group_dir(home), "newest commit deleted")
    before = tree(group_dir(home))
    monkeypatch.setenv("CRYPTOCAST_AS_OF", str(dt.date(2024, 2, 26)))
    assert feature_pipeline.main([]) == 1
    lines = error_lines(capsys)
    assert any("solana" in line and "rollback solana --to 0`" in line for line in lines), lines
    assert tree(group_dir(home)) == before


def test_a_record_whose_window_starts_where_no_checkpoint_is_refused(home, capsys):
    """An edited `first` would silently shorten the time-travel window; one without a checkpoint is refused."""
    ledger = home / "feature_store" / LEDGER
    data = json.loads(ledger.read_text())
    data["groups"]["solana_v1"]["first"] = 1
    ledger.write_text(json.dumps(data))
    assert cryptocast_main(["verify"]) == 1
    assert f"{LEDGER} is damaged" in error_lines(capsys)[0]
