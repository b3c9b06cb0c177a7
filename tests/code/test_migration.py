"""A store written before Delta Lake is converted once, automatically, with nothing lost.

The fixture in tests/fixtures/legacy_store was written by the pre-Delta code itself (see its make.py),
with the CSV that code's `export` printed for each group, so "nothing lost" means: the same bytes out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cryptocast.__main__ import main as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.features import BITCOIN, FEAR_GREED, FORECASTS_V1, SOLANA
from cryptocast.forecasts import read_forecasts
from cryptocast.stores.local import LocalFeatureStore

from conftest import error_lines

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_store"
GROUPS = ["bitcoin_v1", "example_v3", "fear_greed_v1", "solana_forecasts_v1", "solana_v1"]


@pytest.fixture
def old_home(tmp_path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE / "home", home)
    return home


def exported(group) -> str:
    """The rows as the code before Delta exported them, every digit kept (export now rounds forecast prices)."""
    rows = group.read()
    for column in group.spec.columns:
        if column.dtype == "date":
            rows[column.name] = rows[column.name].dt.strftime("%Y-%m-%d")
    keys = list(group.spec.primary_key)
    return rows[keys + [c for c in rows.columns if c not in keys]].to_csv(index=False)


def test_every_group_version_on_disk_is_converted_with_the_same_rows(old_home):
    groups = LocalFeatureStore(old_home).stored_groups()
    assert sorted(groups) == GROUPS  # including example_v3, which this code does not define
    for name, group in groups.items():
        assert exported(group) == (FIXTURE / "exports" / f"{name}.csv").read_text(), name
        assert [c.operation for c in group.history()] == ["CONVERT"]
        left = sorted(p.name for p in group.directory.iterdir())
        assert "manifest.json" not in left and all(len(n) != len("2024-0123456789abcdef.parquet") for n in left)


def test_the_groups_this_code_defines_read_as_before(old_home):
    store = LocalFeatureStore(old_home)
    for spec in (SOLANA, BITCOIN, FEAR_GREED, FORECASTS_V1):  # the old store's forecasts are version 1's
        assert exported(store.get_feature_group(spec)) == \
            (FIXTURE / "exports" / f"{spec.name}_v{spec.version}.csv").read_text()
    old = store.get_feature_group(FORECASTS_V1).read()
    assert read_forecasts(store)["q10"].tolist() == old["lower_80"].tolist()  # what every reader of forecasts sees


def test_conversion_happens_once(old_home):
    LocalFeatureStore(old_home).stored_groups()
    before = {p: p.read_bytes() for p in old_home.rglob("*") if p.is_file()}
    assert all(len(g.history()) == 1 for g in LocalFeatureStore(old_home).stored_groups().values())
    assert {p: p.read_bytes() for p in old_home.rglob("*") if p.is_file()} == before


def test_status_on_an_old_store_converts_it_and_reports_the_rows(old_home, capsys, monkeypatch):
    monkeypatch.setenv("CRYPTOCAST_HOME", str(old_home))
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-01-20")
    assert cryptocast_main(["status", "--json"]) == 0
    assert '"rows": 30' in capsys.readouterr().out
    assert not list(old_home.rglob("manifest.json"))


def test_a_damaged_old_file_is_refused_by_name_and_nothing_is_converted(old_home):
    victim = next((old_home / "feature_store" / "solana_v1").glob("2024-*.parquet"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    directory = victim.parent
    before = {p: p.read_bytes() for p in directory.rglob("*")}
    with pytest.raises(StoreError, match=f"cannot migrate .*solana_v1: {victim.name}: .*hash in its name"):
        LocalFeatureStore(old_home).get_feature_group(SOLANA)
    assert {p: p.read_bytes() for p in directory.rglob("*")} == before  # not converted, not touched


@pytest.mark.parametrize("manifest", ['{"name": "solana"}', "not json", '{"partitions": 3}'])
def test_a_manifest_without_partitions_is_one_line_exit_1(old_home, capsys, monkeypatch, manifest):
    (old_home / "feature_store" / "solana_v1" / "manifest.json").write_text(manifest)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(old_home))
    assert cryptocast_main(["status"]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: status: cannot migrate ")
    assert "solana_v1/manifest.json" in lines[0]


def test_a_crash_between_the_first_commit_and_the_cleanup_is_finished_on_the_next_open(old_home, monkeypatch):
    from cryptocast.stores import local

    def crash(path):
        raise KeyboardInterrupt("killed while removing the old files")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", lambda self, missing_ok=False: crash(self))
        with pytest.raises(KeyboardInterrupt):
            local.LocalFeatureStore(old_home).stored_groups()
    assert list(old_home.rglob("manifest.json"))  # the old files are still there...
    groups = LocalFeatureStore(old_home).stored_groups()  # ...and the next open finishes the job
    assert not list(old_home.rglob("manifest.json"))
    for name, group in groups.items():
        assert exported(group) == (FIXTURE / "exports" / f"{name}.csv").read_text(), name
        assert len(group.history()) == 1
