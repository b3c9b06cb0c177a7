"""The Hopsworks backend's own promises: one readable line per failure, no key anywhere, bounded calls,
a clean stdout, and no `hopsworks` import on the local path.

Scripts run in-process against the fake market (`api`) and the offline Hopsworks double.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from cryptocast import __main__ as cryptocast_main
from cryptocast.errors import StoreError
from cryptocast.features import FEATURE_VIEW, SOLANA
from cryptocast.registry import INPUT_EXAMPLE, open_model_registry
from cryptocast.settings import load_settings
from cryptocast.stores import open_feature_store

import feature_backfill
import feature_pipeline
import hopsworks_double
from conftest import REPO, error_lines, run_main
from hopsworks_double import API_KEY, FG, RestAPIError


def output(capsys) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def only_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# --- login ---------------------------------------------------------------------------------------------


def test_a_wrong_key_fails_at_login_with_one_line_and_never_shows_the_key(on_hopsworks, monkeypatch, capsys):
    wrong = "not-the-key-5b1e0c"
    monkeypatch.setenv("HOPSWORKS_API_KEY", wrong)
    assert run_main(feature_backfill.main, "-v") == 1
    out, err = output(capsys)
    line = only_error(err)
    assert line.startswith("error: feature_backfill: hopsworks: login failed: RestAPIError: Metadata operation error")
    assert "HTTP code: 401" in line and line.endswith("(check HOPSWORKS_API_KEY, HOPSWORKS_PROJECT and HOPSWORKS_HOST)")
    assert wrong not in out + err and on_hopsworks.groups == {}


def test_a_key_echoed_in_an_error_is_redacted(on_hopsworks, capsys):
    on_hopsworks.fail("hopsworks.login", RestAPIError(f"invalid api key {API_KEY} for project"))
    assert run_main(feature_backfill.main, "-v") == 1
    out, err = output(capsys)
    assert only_error(err) == "error: feature_backfill: hopsworks: login failed: RestAPIError: invalid api key *** " \
                              "for project (check HOPSWORKS_API_KEY, HOPSWORKS_PROJECT and HOPSWORKS_HOST)"
    assert API_KEY not in out + err


def test_several_projects_and_none_named_fails_instead_of_prompting(api, monkeypatch, capsys):
    double = hopsworks_double.install(monkeypatch, projects=("first", "second"))
    monkeypatch.setenv("HOPSWORKS_API_KEY", API_KEY)
    started = time.monotonic()
    assert run_main(feature_backfill.main) == 1
    assert time.monotonic() - started < 10
    line = only_error(output(capsys)[1])
    assert line.startswith("error: feature_backfill: hopsworks: login failed: EOFError") and double.logins == 0


def test_the_hopsworks_backend_without_a_key_is_a_settings_error(api, hopsworks, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_BACKEND", "hopsworks")
    assert run_main(feature_backfill.main) == 1
    assert error_lines(capsys) == ["error: feature_backfill: the hopsworks backend needs HOPSWORKS_API_KEY "
                                   "(in the environment or .env)"]
    assert hopsworks.calls == []


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_an_unusable_timeout_is_a_settings_error(on_hopsworks, monkeypatch, capsys, value):
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_TIMEOUT", value)
    assert run_main(feature_backfill.main) == 1
    assert only_error(output(capsys)[1]).startswith(f"error: feature_backfill: CRYPTOCAST_HOPSWORKS_TIMEOUT='{value}'")
    assert on_hopsworks.calls == []


# --- groups ----------------------------------------------------------------------------------------------


def test_a_failed_insert_names_the_group_and_the_cause(on_hopsworks, capsys):
    on_hopsworks.fail(f"{FG}.insert", hopsworks_double.FeatureStoreException(
        "Materialization job failed:\nstate FAILED, see the job logs"))
    assert run_main(feature_backfill.main) == 1
    assert only_error(output(capsys)[1]) == ("error: feature_backfill: hopsworks: insert into solana v1 failed: "
                                             "FeatureStoreException: Materialization job failed: state FAILED, "
                                             "see the job logs")
    assert not any(group.saved for group in on_hopsworks.groups.values())


def test_a_call_that_hangs_is_abandoned_after_the_timeout(on_hopsworks, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_TIMEOUT", "0.5")
    on_hopsworks.block(f"{FG}.insert")
    started = time.monotonic()
    assert run_main(feature_backfill.main) == 1
    assert time.monotonic() - started < 10
    assert only_error(output(capsys)[1]) == ("error: feature_backfill: hopsworks: insert into solana v1 timed out "
                                             "after 0.5s (CRYPTOCAST_HOPSWORKS_TIMEOUT)")


def test_missing_groups_are_one_line_each_step(on_hopsworks, capsys):
    assert run_main(feature_pipeline.main) == 1
    assert error_lines(capsys) == ["error: feature_pipeline: feature groups solana v1, bitcoin v1, fear_greed v1 "
                                   "are empty: run feature_backfill.py first"]
    assert run_main(cryptocast_main.main, "export", "solana") == 1
    assert error_lines(capsys) == ["error: export: feature group solana v1 does not exist in the hopsworks store"]
    store = open_feature_store(load_settings())
    with pytest.raises(StoreError, match="^feature group solana v1 does not exist: run feature_backfill.py$"):
        store.read_feature_view(FEATURE_VIEW, None, None)


def test_a_group_with_another_schema_is_refused(on_hopsworks):
    assert run_main(feature_backfill.main) == 0
    on_hopsworks.groups[("solana", 1)]._features[3].type = "bigint"
    store = open_feature_store(load_settings())
    for step in (store.get_feature_group, store.get_or_create_feature_group):
        with pytest.raises(StoreError, match="solana v1 in Hopsworks has a different schema than this code; bump"):
            step(SOLANA)


def test_backfill_then_status_keeps_stdout_for_the_report(on_hopsworks, capsys):
    assert run_main(feature_backfill.main) == 0
    assert run_main(feature_backfill.main) == 0  # a rerun sends nothing: every row is unchanged
    # the three groups, and the upstream holes the backfill asked about (Fear & Greed's two): once each
    assert {name: g.inserts for (name, _), g in on_hopsworks.groups.items()} == {
        "solana": 1, "bitcoin": 1, "fear_greed": 1, "upstream_holes": 1}
    out, err = output(capsys)
    assert "Logged in to project" in err and "Logged in to project" not in out
    assert "solana v1: 0 added, 0 updated, 60 unchanged" in err
    assert run_main(cryptocast_main.main, "status", "--json") == 0
    out, err = output(capsys)
    report = json.loads(out)
    assert report["backend"] == "hopsworks" and report["models"] == {}
    assert report["groups"]["solana"]["rows"] == 60 and report["groups"]["solana"]["behind_days"] == 0
    assert report["groups"]["fear_greed"]["missing_days"] == ["2024-01-20", "2024-01-21"]
    assert report["groups"]["fear_greed"]["known_holes"] == []  # asked once so far, not yet known
    assert report["groups"]["solana_forecasts"]["rows"] == 0
    assert on_hopsworks.logins == 1  # one login per process, however many steps and stores


# --- registry ----------------------------------------------------------------------------------------------


def test_the_summary_shows_the_numeric_metrics_and_get_shows_them_all(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    artifacts = tmp_path / "model"
    artifacts.mkdir()
    (artifacts / "weights.npz").write_bytes(b"PK")
    metrics = {"rel_mae_mean": 0.9, "coverage_80_mean": 0.8, "rel_mae_by_horizon": [0.8, 1.0],
               "origins": {"count": 30}}
    registry.register_and_promote("sol_lstm", artifacts, metrics, "first", {"features": ["a"]})
    assert registry.summary()["sol_lstm"]["versions"][0]["metrics"] == {"rel_mae_mean": 0.9, "coverage_80_mean": 0.8}
    assert registry.production("sol_lstm").metrics == metrics
    assert on_hopsworks.models["sol_lstm"][1].training_metrics == {"rel_mae_mean": 0.9, "coverage_80_mean": 0.8}


def test_the_input_example_artifact_becomes_the_models_input_example(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    artifacts = tmp_path / "model"
    artifacts.mkdir()
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0}, "no example", {})
    example = pd.DataFrame({"day": ["2024-02-28", "2024-02-29"], "sol_log_return": [0.01, -0.02]})
    example.to_csv(artifacts / INPUT_EXAMPLE, index=False)
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0}, "with example", {})

    assert on_hopsworks.models["sol_lstm"][1].input_example is None
    pd.testing.assert_frame_equal(on_hopsworks.models["sol_lstm"][2].input_example, example)


def test_a_version_is_downloaded_once_and_a_foreign_model_is_refused(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    artifacts = tmp_path / "model"
    artifacts.mkdir()
    (artifacts / "weights.npz").write_bytes(b"PK")
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 0.9}, "first", {})
    cache = tmp_path / "home" / "hopsworks_cache" / "model_registry" / "sol_lstm"
    for _ in range(2):
        assert (registry.production("sol_lstm").path / "weights.npz").read_bytes() == b"PK"
    downloads = [t for t, _, _, _ in on_hopsworks.calls if t == "hsml.model.Model.download"]
    assert downloads == [] and [p.name[:3] for p in cache.iterdir()] == ["v1-"]  # published at registration

    on_hopsworks.models["sol_lstm"][2] = foreign = hopsworks_double.FakeModel(on_hopsworks, "sol_lstm", None, {},
                                                                              "made elsewhere", None)
    foreign.save(str(artifacts))
    with pytest.raises(StoreError, match="sol_lstm v2 in Hopsworks has no version.json and artifacts/"):
        registry.get("sol_lstm", 2)
    assert [p.name[:3] for p in cache.iterdir()] == ["v1-"]


def test_a_version_made_again_under_the_same_number_is_fetched_anew(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    for content in (b"old", b"new"):
        artifacts = tmp_path / content.decode()
        artifacts.mkdir()
        (artifacts / "weights.npz").write_bytes(content)
        on_hopsworks.models.pop("sol_lstm", None)  # deleted in the Hopsworks UI, then trained again
        registry.register("sol_lstm", artifacts, {"rel_mae_mean": 0.9}, "run", {})
    fresh = open_model_registry(load_settings())
    assert (fresh.get("sol_lstm", 1).path / "weights.npz").read_bytes() == b"new"


# --- the local path ------------------------------------------------------------------------------------------


def test_the_local_backend_never_imports_hopsworks(tmp_path):
    probe = (
        "import sys\n"
        "from cryptocast import __main__ as m, inference, ingest, status, training  # noqa: F401\n"
        f"code = m.main(['status', '--home', {str(tmp_path / 'home')!r}])\n"
        "print(code, sorted(n for n in ('hopsworks', 'hsfs', 'hsml', 'hopsworks_common') if n in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "CRYPTOCAST_"))}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
