"""Crash at every write, fsync, rename, link and unlink of each step that changes the store or registry.

Each step runs once to count its filesystem calls, then once per call with a crash injected there
(`faults.crash_at`: the process "dies", no cleanup runs). After every crash, each feature group must
read exactly as before the step or exactly as after it, the registry likewise, `verify` must pass,
and running the step again must finish the job. A few steps are also killed for real (SIGKILL) in
a subprocess, including inside delta-rs, where no Python hook reaches.
"""

from __future__ import annotations

import datetime as dt
import errno
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from cryptocast import inference, ingest
from cryptocast.features import INGESTED_GROUPS
from cryptocast.registry import LocalModelRegistry
from cryptocast.settings import load_settings
from cryptocast.stores import delta, local
from cryptocast.stores.local import LocalFeatureStore
from cryptocast.verify import verify

import faults
from conftest import NOW, REPO, error_lines, run_main
from modelfiles import make_artifacts, write_serving_model

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_store" / "home"
EARLIER = dt.date(2024, 2, 20)


def settings(home: Path, as_of: dt.date = NOW):
    return load_settings({"CRYPTOCAST_HOME": str(home), "CRYPTOCAST_AS_OF": str(as_of), "CRYPTOCAST_BACKEND": "local"})


def state(home: Path) -> dict:
    """What readers can see: each group's rows (as a hash), each model's versions (without their
    creation time) and production."""
    groups = {name: int(pd.util.hash_pandas_object(g.read()).sum())
              for name, g in LocalFeatureStore(home).stored_groups().items()}
    models = {name: {"production": m["production"],
                     "versions": [(v["version"], v["description"], v["metrics"]) for v in m["versions"]]}
              for name, m in LocalModelRegistry(home).summary().items()}
    return {"groups": groups, "models": models}


def whole(seen: dict, before: dict, after: dict) -> bool:
    """Each group old or new (or not there yet); each model's versions old or new, production old or new.

    A run that writes several groups may die between two of them; registration may die between
    publishing a version and promoting it (the version is then registered, production unchanged).
    """
    for name in {*seen["groups"], *before["groups"], *after["groups"]}:
        if seen["groups"].get(name) not in (before["groups"].get(name), after["groups"].get(name)):
            return False
    for name in {*seen["models"], *before["models"], *after["models"]}:
        model, old, new = (s["models"].get(name, {}) for s in (seen, before, after))
        if model.get("versions") not in (old.get("versions"), new.get("versions")) or \
                model.get("production") not in (old.get("production"), new.get("production")):
            return False
    return True


def crash_everywhere(template: Path, work: Path, step: Callable[[Path], object], rerun: bool = True) -> int:
    """Run `step` on copies of `template`, crashing at each of its filesystem calls; return how many.

    After each crash: every group and model whole, `verify` passes, and (`rerun`, for idempotent
    steps; every fifth point, to keep the suite fast) running the step again reaches the same state.
    """
    before_home, after_home = work / "before", work / "after"
    shutil.copytree(template, before_home)
    shutil.copytree(template, after_home)
    with faults.counting() as calls:
        step(after_home)
    before, after = state(before_home), state(after_home)
    assert before != after, "the step should change something"
    for point in range(1, len(calls) + 1):
        home = shutil.copytree(template, work / f"crash-{point}")
        with pytest.raises(faults.Crash), faults.crash_at(point):
            step(home)
        assert whole(state(home), before, after), f"crash at call {point} ({calls[point - 1]}) left a mix"
        verify(settings(home))
        if rerun and (point % 5 == 0 or point == len(calls)):
            step(home)
            assert state(home) == after, f"rerun after a crash at call {point} did not reach the same state"
        shutil.rmtree(home)
    return len(calls)


@pytest.fixture
def stocked(api, tmp_path, monkeypatch) -> Path:
    """A home backfilled through the day before EARLIER, with a production model."""
    home = tmp_path / "stocked"
    ingest.backfill(settings(home, EARLIER))
    LocalModelRegistry(home).register_and_promote("sol_lstm", write_serving_model(tmp_path / "model"),
                                                  {"rel_mae_mean": 1.0}, "small", {})
    return home


def test_backfill_into_an_empty_store(api, tmp_path):
    (tmp_path / "empty").mkdir()
    points = crash_everywhere(tmp_path / "empty", tmp_path / "w", lambda home: ingest.backfill(settings(home)))
    assert points >= 3 * 5


def test_daily_update(api, stocked, tmp_path):
    assert crash_everywhere(stocked, tmp_path / "w", lambda home: ingest.update(settings(home))) >= 3 * 5


def test_backfill_replacing_stored_rows(api, stocked, tmp_path):
    api.history["solana"]["close"] = api.history["solana"]["close"] * 1.01
    api.history["solana"]["high"] = api.history["solana"]["high"] * 1.01
    step = lambda home: ingest.backfill(settings(home, EARLIER), replace=True)  # noqa: E731
    assert crash_everywhere(stocked, tmp_path / "w", step) >= 5


def test_inference_write(api, stocked, tmp_path):
    ingest.update(settings(stocked, EARLIER + dt.timedelta(days=1)))
    step = lambda home: inference.infer(settings(home, EARLIER + dt.timedelta(days=1)))  # noqa: E731
    assert crash_everywhere(stocked, tmp_path / "w", step) >= 5


def test_training_registration(stocked, tmp_path):
    artifacts = make_artifacts(tmp_path / "new-model", seed=3)
    step = lambda home: LocalModelRegistry(home).register_and_promote(  # noqa: E731
        "sol_lstm", artifacts, {"rel_mae_mean": 0.5}, "better", {})
    assert crash_everywhere(stocked, tmp_path / "w", step, rerun=False) >= 10


def test_rollback(api, stocked, tmp_path):
    ingest.update(settings(stocked))
    step = lambda home: LocalFeatureStore(home).get_feature_group(INGESTED_GROUPS[0]).rollback(0)  # noqa: E731
    assert crash_everywhere(stocked, tmp_path / "w", step, rerun=False) >= 3


def test_compaction(stocked, tmp_path, monkeypatch):
    monkeypatch.setattr(local, "COMPACT_SLACK", 1)
    rows = LocalFeatureStore(stocked).get_feature_group(INGESTED_GROUPS[0]).read()
    new_days = [rows.assign(day=rows["day"].max() + pd.Timedelta(days=n)).tail(1) for n in (1, 2)]
    LocalFeatureStore(stocked).get_feature_group(INGESTED_GROUPS[0]).insert(new_days[0])
    step = lambda home: LocalFeatureStore(home).get_feature_group(INGESTED_GROUPS[0]).insert(new_days[1])  # noqa
    assert crash_everywhere(stocked, tmp_path / "w", step) >= 10


def test_maintenance(stocked, tmp_path, monkeypatch):
    """A write that runs the weekly maintenance (issue 20): checkpoint, the log trimmed to the window (here
    none), unused data files and a killed run's temporary file deleted; a crash anywhere leaves it whole."""
    spec = INGESTED_GROUPS[0]
    rows = LocalFeatureStore(stocked).get_feature_group(spec).read()
    days = [rows.assign(day=rows["day"].max() + pd.Timedelta(days=n)).tail(1) for n in (1, 2, 3)]
    for day in days[:2]:
        LocalFeatureStore(stocked).get_feature_group(spec).insert(day)
    (stocked / "feature_store" / f"{spec.name}_v{spec.version}" / ".x.parquet.1.00000000.tmp").write_bytes(b"x")
    later = delta._now_ms() + 8 * local.DAY_MS
    monkeypatch.setattr(delta, "_now_ms", lambda: later)
    monkeypatch.setattr(local, "WINDOW_DAYS", 0)
    step = lambda home: LocalFeatureStore(home).get_feature_group(spec).insert(days[2])  # noqa: E731
    assert crash_everywhere(stocked, tmp_path / "w", step) >= 10
    home = shutil.copytree(stocked, tmp_path / "maintained")
    step(home)
    log_dir = home / "feature_store" / f"{spec.name}_v{spec.version}" / "_delta_log"
    assert [p.name[:20] for p in sorted(log_dir.glob("0*.json"))] == [f"{3:020d}"]  # only the newest is left


def test_conversion_of_a_store_written_before_delta(tmp_path):
    template = tmp_path / "legacy"
    for name in ("solana_v1", "example_v3"):  # two of the fixture's groups: a known and an unknown version
        shutil.copytree(FIXTURE / "feature_store" / name, template / "feature_store" / name)
    before = state(shutil.copytree(template, tmp_path / "reference"))  # reading converts: the rows it must keep
    counted = shutil.copytree(template, tmp_path / "count")
    with faults.counting() as calls:
        LocalFeatureStore(counted).stored_groups()
    for point in range(1, len(calls) + 1):
        home = shutil.copytree(template, tmp_path / f"crash-{point}")
        with pytest.raises(faults.Crash), faults.crash_at(point):
            LocalFeatureStore(home).stored_groups()
        assert state(home) == before, f"crash at call {point} ({calls[point - 1]}) lost or changed rows"
        assert not list(home.rglob("manifest.json"))
        verify(settings(home))
        shutil.rmtree(home)
    assert len(calls) >= 2 * 8


# --- disk full ------------------------------------------------------------------------------------------


def test_disk_full_at_any_write_is_one_line_exit_1_and_no_group_half_written(api, stocked, tmp_path, capsys,
                                                                             monkeypatch):
    import feature_pipeline

    monkeypatch.setenv("CRYPTOCAST_HOME", str(stocked))
    shutil.copytree(stocked, tmp_path / "counted")
    monkeypatch.setenv("CRYPTOCAST_HOME", str(tmp_path / "counted"))
    with faults.counting() as calls:
        assert run_main(feature_pipeline.main) == 0
    written = state(tmp_path / "counted")
    can_fill = [n + 1 for n, name in enumerate(calls) if name not in ("os.unlink", "os.rmdir", "os.mkdir")]
    for point in can_fill[::2] + can_fill[1::2][-1:]:  # every other call that can fill a disk, and the last
        home = tmp_path / f"full-{point}"
        shutil.copytree(tmp_path / "stocked", home)
        monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
        code = _full_disk_at(point, lambda: run_main(feature_pipeline.main))
        lines = error_lines(capsys)
        if code == 0:  # only a directory fsync failed, which is best effort: the run completed
            assert calls[point - 1] == "os.fsync" and state(home) == written
        else:
            assert code == 1 and len(lines) == 1 and "No space left on device" in lines[0], (calls[point - 1], lines)
            assert whole(state(home), state(tmp_path / "stocked"), written)
        verify(settings(home))
        shutil.rmtree(home)


def _full_disk_at(point: int, run: Callable[[], int]) -> int:
    """Like `faults.crash_at`, but the failing call raises ENOSPC once and the process lives on.

    Points are counted as in `faults.counting`; a removal or an existing directory cannot run out of space.
    """
    count = 0

    def on_call(name: str, *args) -> None:
        nonlocal count
        count += 1
        if count == point and name not in ("os.unlink", "os.rmdir") and \
                not (name == "os.mkdir" and Path(args[0]).exists()):
            raise OSError(errno.ENOSPC, "No space left on device")

    with faults.patched(on_call):
        return run()


# --- real SIGKILL ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", [0.1, 0.5, 1.0])
def test_sigkill_during_a_real_backfill(api, tmp_path, where, monkeypatch):
    """The real script, killed by the kernel at a chosen filesystem call: early, midway, the very last."""
    with faults.counting() as calls:
        ingest.backfill(settings(tmp_path / "counted"))
    point = max(1, round(len(calls) * where))
    home = tmp_path / "home"
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    done = subprocess.run([sys.executable, str(REPO / "tests" / "faults.py"), str(point),
                           str(REPO / "feature_backfill.py")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == -signal.SIGKILL, done.stderr
    complete = LocalFeatureStore(tmp_path / "counted").stored_groups()  # the same run, not killed
    assert {"solana_v1", "bitcoin_v1", "fear_greed_v1"} <= set(complete)
    for name, group in LocalFeatureStore(home).stored_groups().items():
        assert len(group.read()) in (0, len(complete[name].read())), name
    verify(settings(home))


def test_sigkill_at_random_instants_of_rollbacks_and_checkpoints(api, stocked, tmp_path, monkeypatch):
    """Kill real runs at moments no Python hook reaches (delta-rs writing a checkpoint), several times."""
    monkeypatch.setattr(delta, "CHECKPOINT_EVERY", 1)
    monkeypatch.setenv("CRYPTOCAST_HOME", str(stocked))
    before = state(stocked)
    for delay in (0.0, 0.3, 0.6, 0.9, 1.2):
        run = subprocess.Popen([sys.executable, "-c", _ROLLBACK_LOOP], cwd=tmp_path)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert whole(state(stocked), before, before), f"killed after {delay}s"
        verify(settings(stocked))


# Roll every group back to its newest version, over and over, with a checkpoint after each commit:
# every commit leaves the rows as they were, so any instant of death must leave them so too.
_ROLLBACK_LOOP = """
from cryptocast.stores import delta
from cryptocast.stores.local import LocalFeatureStore
import os
delta.CHECKPOINT_EVERY = 1
store = LocalFeatureStore(__import__("pathlib").Path(os.environ["CRYPTOCAST_HOME"]))
for _ in range(50):
    for group in store.stored_groups().values():
        group.rollback(group.table.snapshot().version)
"""


def test_every_crash_point_of_this_suite_is_a_call_that_changes_files():
    assert {name for _, name in faults.POINTS} == {"write", "fsync", "replace", "rename", "link", "unlink", "mkdir",
                                                   "rmdir", "copyfile"}


def test_the_in_process_crash_really_stops_all_later_calls(tmp_path):
    with pytest.raises(faults.Crash), faults.crash_at(1):
        try:
            (tmp_path / "a").mkdir()
        finally:
            with pytest.raises(faults.Crash):
                (tmp_path / "b").mkdir()  # a cleanup handler cannot act after the "death"
    assert list(tmp_path.iterdir()) == []

