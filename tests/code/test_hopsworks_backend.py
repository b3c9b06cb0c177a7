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
import warnings

import pandas as pd
import pytest
from hopsworks_common.client.exceptions import FeatureStoreException, JobExecutionException
from hopsworks_common.constants import HOSTS

from cryptocast import __main__ as cryptocast_main
from cryptocast import hopsworks_session
from cryptocast.errors import StoreError
from cryptocast.features import FEATURE_VIEW, SOLANA
from cryptocast.holes import HOLES
from cryptocast.registry import INPUT_EXAMPLE, open_model_registry
from cryptocast.settings import load_settings
from cryptocast.stores import open_feature_store

import feature_backfill
import feature_pipeline
import hopsworks_double
from conftest import REPO, error_lines, run_main
from hopsworks_double import API_KEY, FG, rest_error


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
    assert only_error(err) == ("error: feature_backfill: hopsworks: login failed: RestAPIError: HTTP 401 Unauthorized, "
                               "error 320012: Invalid or incorrect API key. (check HOPSWORKS_API_KEY, HOPSWORKS_PROJECT"
                               " and HOPSWORKS_HOST)")
    assert wrong not in out + err and on_hopsworks.groups == {}


def test_a_key_echoed_in_an_error_is_redacted(on_hopsworks, capsys):
    on_hopsworks.fail("hopsworks.login", rest_error(401, "Unauthorized", 160040, f"invalid api key {API_KEY}"))
    assert run_main(feature_backfill.main, "-v") == 1
    out, err = output(capsys)
    assert only_error(err) == ("error: feature_backfill: hopsworks: login failed: RestAPIError: HTTP 401 Unauthorized, "
                               "error 160040: invalid api key *** (check HOPSWORKS_API_KEY, HOPSWORKS_PROJECT and "
                               "HOPSWORKS_HOST)")
    assert API_KEY not in out + err


def test_a_key_echoed_where_a_long_error_is_cut_leaks_no_part_of_it(on_hopsworks, capsys):
    """The detail was cut at 300 characters before redaction: a key straddling the cut kept its first half."""
    message = "x" * (hopsworks_session.MAX_DETAIL - 70) + f" invalid api key {API_KEY} and more"
    on_hopsworks.fail("hopsworks.login", rest_error(401, "Unauthorized", 160040, message))
    assert run_main(feature_backfill.main) == 1
    out, err = output(capsys)
    assert API_KEY[: len(API_KEY) // 2] not in out + err
    assert "***" in only_error(err)


def test_empty_host_project_and_port_in_the_environment_never_reach_the_connection(on_hopsworks, monkeypatch,
                                                                                  capsys):
    """The workflows set HOPSWORKS_HOST and HOPSWORKS_PROJECT to "" when the repository defines neither; the
    real `hopsworks.login` (which the double runs) reads os.environ whenever an argument is None."""
    for name in ("HOPSWORKS_HOST", "HOPSWORKS_PROJECT", "HOPSWORKS_PORT"):
        monkeypatch.setenv(name, "")
    assert run_main(feature_backfill.main) == 0, output(capsys)[1]
    (connection,) = on_hopsworks.connections
    assert connection["host"] == HOSTS.SAAS_HOST and connection["port"] == 443
    assert connection["project"] is None and connection["engine"] == "python"
    logins = [kwargs for target, _, kwargs, _ in on_hopsworks.calls if target == "hopsworks.login"]
    assert [kwargs["engine"] for kwargs in logins] == ["python"]
    assert (os.environ["HOPSWORKS_HOST"], os.environ["HOPSWORKS_PROJECT"]) == ("", ""), "the environment is restored"


def test_a_named_host_and_project_are_passed_as_given(on_hopsworks, monkeypatch, capsys):
    monkeypatch.setenv("HOPSWORKS_HOST", "my.cluster.example")
    assert run_main(feature_backfill.main) == 0, output(capsys)[1]
    (connection,) = on_hopsworks.connections
    assert connection["host"] == "my.cluster.example"
    (login,) = [kwargs for target, _, kwargs, _ in on_hopsworks.calls if target == "hopsworks.login"]
    assert (login["host"], login["project"]) == ("my.cluster.example", hopsworks_double.PROJECT)


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


@pytest.mark.parametrize("fmt", ["DELTA", "HUDI"])
def test_inserts_send_what_the_client_expects_and_raise_no_client_warnings(on_hopsworks, monkeypatch, capsys, fmt):
    """DELTA keeps microseconds: a `day` sent in nanoseconds warns on every insert; `features` is deprecated.
    Warnings reach stderr as `py.warnings` log lines (logs.setup_logging)."""
    on_hopsworks.load_balancers = True
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_FORMAT", fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert run_main(feature_backfill.main) == 0
        assert run_main(cryptocast_main.main, "status", "--json") == 0
        warnings.warn("the probe: warnings are seen here", UserWarning, stacklevel=1)
    from_client = [line for line in output(capsys)[1].splitlines() if "py.warnings" in line]
    assert len(from_client) == 1 and "the probe" in from_client[0], from_client
    assert {str(g.rows["day"].dtype) for g in on_hopsworks.groups.values()} == {"datetime64[us]"}


def test_a_fresh_hosted_project_gets_groups_written_through_kafka_and_waited_for(on_hopsworks):
    """Serverless exposes no load balancers: the client's default DELTA (delta-rs from this machine) is refused
    there, so cryptocast's default is HUDI, whose rows the cluster's materialization job writes; every insert
    waits for that job, so each step reads what the one before it wrote. No statistics job per insert."""
    assert run_main(feature_backfill.main) == 0
    assert run_main(feature_backfill.main, "--as-of", "2024-03-02") == 0
    made = {g.name: (g.metadata.time_travel_format, g.direct_write, g.statistics_jobs, len(g.rows), g.topic)
            for g in on_hopsworks.groups.values()}
    assert made == {"solana": ("HUDI", False, 0, 60, []), "bitcoin": ("HUDI", False, 0, 60, []),
                    "fear_greed": ("HUDI", False, 0, 58, []),
                    "upstream_holes": ("HUDI", False, 0, 4, [])}  # the two Fear & Greed holes, asked for twice
    inserts = [kwargs for target, _, kwargs, _ in on_hopsworks.calls if target == f"{FG}.insert"]
    assert inserts and all(kwargs["wait"] is True for kwargs in inserts), "a materialization job is waited for"
    assert "no load balancers" not in [case for case, _ in on_hopsworks.answers]


def test_delta_is_written_directly_where_the_cluster_exposes_its_load_balancers(on_hopsworks, monkeypatch):
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_FORMAT", "delta")
    on_hopsworks.load_balancers = True
    assert run_main(feature_backfill.main) == 0
    made = {g.name: (g.metadata.time_travel_format, g.direct_write, g.jobs, len(g.rows))
            for g in on_hopsworks.groups.values()}
    assert made == {"solana": ("DELTA", True, 0, 60), "bitcoin": ("DELTA", True, 0, 60),
                    "fear_greed": ("DELTA", True, 0, 58), "upstream_holes": ("DELTA", True, 0, 2)}


def test_delta_on_a_hosted_project_fails_with_the_clients_reason_and_the_fix(on_hopsworks, monkeypatch, capsys):
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_FORMAT", "DELTA")
    assert run_main(feature_backfill.main) == 1
    assert only_error(output(capsys)[1]) == (
        "error: feature_backfill: hopsworks: insert into solana v1 failed: FeatureStoreException: Failed to write to "
        "delta table in external cluster. Make sure datanode load balancer has been setup on the cluster. "
        f"({hopsworks_session.DELTA_HINT})")


def test_a_group_whose_first_job_failed_is_one_line_with_what_to_do(on_hopsworks, capsys):
    """hsfs saves the group, sends the rows to Kafka, then the job fails: the group exists, its table does not."""
    on_hopsworks.job_fault = JobExecutionException("The Hopsworks Job failed, use the Hopsworks UI to access the "
                                                   "job logs")
    assert run_main(feature_backfill.main) == 1
    on_hopsworks.job_fault = None
    output(capsys)
    assert run_main(cryptocast_main.main, "status") == 1
    line = only_error(output(capsys)[1])
    assert line.startswith("error: status: hopsworks: read from solana v1 failed: FeatureStoreException: No commits "
                           "found: featuregroup solana_1 (the group exists but its offline table was never written: "
                           "its first materialization job failed or still runs"), line


LEFT_BEHIND = ("feature group solana v1 in Hopsworks is not what cryptocast creates: format DELTA, not HUDI; "
               "written directly (no stream), not through Kafka; fix: `python -m cryptocast hopsworks-reset "
               "--yes-delete-cryptocast-groups` removes cryptocast's groups and view (their rows too: run "
               "feature_backfill.py after), or set CRYPTOCAST_HOPSWORKS_FORMAT=DELTA to keep it if this cluster "
               "takes that format")


def test_a_delta_group_left_by_a_refused_first_run_is_named_with_its_fix_and_the_reset_clears_it(
        on_hopsworks, monkeypatch, capsys):
    """hsfs saves a group before writing it: the refused DELTA write leaves an empty DELTA group, which
    `get_or_create` hands back unchanged whatever the format setting says now."""
    monkeypatch.setenv("CRYPTOCAST_HOPSWORKS_FORMAT", "DELTA")
    assert run_main(feature_backfill.main) == 1
    output(capsys)
    assert [(n, g.metadata.time_travel_format, g.saved) for (n, _), g in on_hopsworks.groups.items()] == [
        ("solana", "DELTA", True)]
    monkeypatch.delenv("CRYPTOCAST_HOPSWORKS_FORMAT")
    assert run_main(feature_backfill.main) == 1
    assert only_error(output(capsys)[1]) == f"error: feature_backfill: {LEFT_BEHIND}"
    assert run_main(cryptocast_main.main, "status") == 1
    assert only_error(output(capsys)[1]) == f"error: status: {LEFT_BEHIND}"

    assert run_main(cryptocast_main.main, "hopsworks-reset") == 1
    assert only_error(output(capsys)[1]) == (
        "error: hopsworks-reset: this deletes feature view solana_features v1, feature group solana v1, feature "
        "group bitcoin v1, feature group fear_greed v1, feature group upstream_holes v1, feature group "
        "solana_forecasts v2, feature group model_health v1 on Hopsworks, with their rows; nothing was deleted: run it "
        "again with --yes-delete-cryptocast-groups to do it")
    assert ("solana", 1) in on_hopsworks.groups
    on_hopsworks.groups[("someone_elses", 1)] = other = on_hopsworks.groups[("solana", 1)].__class__(
        on_hopsworks, hopsworks_double.group_metadata("someone_elses", 1))
    other._id = 999
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 0
    assert output(capsys)[0].splitlines() == [
        "not there: feature view solana_features v1", "deleted: feature group solana v1",
        "not there: feature group bitcoin v1", "not there: feature group fear_greed v1",
        "not there: feature group upstream_holes v1", "not there: feature group solana_forecasts v2",
        "not there: feature group model_health v1"]
    assert list(on_hopsworks.groups) == [("someone_elses", 1)]
    assert run_main(feature_backfill.main) == 0
    assert run_main(cryptocast_main.main, "status") == 0
    assert on_hopsworks.groups[("solana", 1)].metadata.time_travel_format == "HUDI"


def test_the_reset_deletes_the_view_before_its_groups(on_hopsworks, capsys):
    assert run_main(feature_backfill.main) == 0
    open_feature_store(load_settings()).read_feature_view(FEATURE_VIEW, None, None)
    output(capsys)
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 0
    assert output(capsys)[0].splitlines()[:2] == ["deleted: feature view solana_features v1",
                                                  "deleted: feature group solana v1"]
    assert on_hopsworks.groups == {} and on_hopsworks.views == {}


def test_the_reset_is_for_hopsworks_only(api, capsys):
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 1
    assert error_lines(capsys) == ["error: hopsworks-reset: nothing to reset on the local backend: this deletes "
                                   "cryptocast's groups on Hopsworks (set HOPSWORKS_API_KEY); the local store has "
                                   "`rollback` instead"]


def test_a_failed_materialization_job_stops_the_step(on_hopsworks, capsys):
    on_hopsworks.job_fault = JobExecutionException("The Hopsworks Job failed, use the Hopsworks UI to access the "
                                                   "job logs")
    assert run_main(feature_backfill.main) == 1
    assert only_error(output(capsys)[1]) == ("error: feature_backfill: hopsworks: insert into solana v1 failed: "
                                             "JobExecutionException: The Hopsworks Job failed, use the Hopsworks UI "
                                             "to access the job logs")


def test_a_failed_insert_names_the_group_and_the_cause(on_hopsworks, capsys):
    failure = FeatureStoreException("Materialization job failed:\nstate FAILED, see the job logs")
    on_hopsworks.fail(f"{FG}.insert", failure)
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
        with pytest.raises(StoreError, match=r"^feature group solana v1 in Hopsworks is not what cryptocast creates: "
                                             r"schema: low bigint \(not double\); fix: .* bump the group's version "):
            step(SOLANA)


def test_a_group_read_back_may_list_its_key_in_another_order(on_hopsworks):
    """hsfs lists a loaded group's primary key in column order, not in the order it was created with."""
    assert run_main(feature_backfill.main) == 0
    group = on_hopsworks.groups[("upstream_holes", 1)]
    assert len(group._primary_key) > 1
    group._primary_key = list(reversed(group._primary_key))
    assert open_feature_store(load_settings()).get_feature_group(HOLES) is not None


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


def model_dir(tmp_path, content: bytes = b"PK"):
    artifacts = tmp_path / f"model-{content.hex()}"
    artifacts.mkdir()
    (artifacts / "weights.npz").write_bytes(content)
    return artifacts


def test_a_fresh_project_reads_as_no_model_yet(on_hopsworks, tmp_path, capsys):
    """Hopsworks answers a missing path with HTTP 400 and error 110018 (PATH_NOT_FOUND), not 404: read as an
    error, a project with no model yet failed status, production, the first registration and the clean-up."""
    registry = open_model_registry(load_settings())
    assert registry.summary() == {} and registry.production("sol_lstm") is None
    assert run_main(cryptocast_main.main, "status", "--json") == 0
    assert json.loads(output(capsys)[0])["models"] == {}
    version, promoted = registry.register_and_promote("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "x", {})
    assert (version.version, promoted) == (1, True)
    assert registry.drop_model("never_registered") == []
    assert [case for case, _ in on_hopsworks.answers].count("missing path") >= 4


@pytest.mark.parametrize("status", [400, 403, 404, 422, 500])
@pytest.mark.parametrize("code", [360000, 110018, None])
def test_not_found_follows_the_clients_own_rule(status, code):
    """The client's `_catch_not_found` decides "absent" for the calls it wraps (here hsml's model lookup, code
    360000); the dataset calls it leaves to us must be decided by the same rule with the dataset codes."""
    from hopsworks_common import decorators
    from hopsworks_common.client.exceptions import RestAPIError

    error = rest_error(status, "Some Reason", code, "m")

    def lookup():
        raise error
    try:
        client_says = decorators._catch_not_found("hsml.model.Model", fallback_return="absent")(lookup)() == "absent"
    except RestAPIError:
        client_says = False
    assert hopsworks_session.is_not_found(error, (360000,)) is client_says
    assert hopsworks_session.is_not_found(error, hopsworks_session.DATASET_NOT_FOUND) is (
        status in (400, 404) and code == 110018)
    assert not hopsworks_session.is_not_found(ValueError("no response"), hopsworks_session.DATASET_NOT_FOUND)


def test_an_unreadable_registry_is_an_error_never_an_empty_one(on_hopsworks, tmp_path, capsys):
    """The client's DatasetApi.exists answers False on a 403: reading production through it made a key without
    the dataset scopes look like "no model yet": promote without comparing, retrain every day."""
    registry = open_model_registry(load_settings())
    registry.register_and_promote("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "first", {})
    on_hopsworks.deny_datasets()
    registry = open_model_registry(load_settings())
    with pytest.raises(StoreError, match=r"^hopsworks: read production of model sol_lstm failed: RestAPIError: "
                                         r"HTTP 403 Forbidden, error 320004: No valid scope found for this "
                                         r"invocation \(the API key lacks a scope this call needs"):
        registry.production("sol_lstm")
    with pytest.raises(StoreError, match="read production of model sol_lstm failed"):
        registry.register_and_promote("sol_lstm", model_dir(tmp_path, b"v2"), {"rel_mae_mean": 0.5}, "second", {})
    assert sorted(on_hopsworks.models["sol_lstm"]) == [1], "nothing registered while production is unreadable"

    assert run_main(cryptocast_main.main, "status", "--json") == 1  # so store.sh train-if-no-model stops too
    out, err = output(capsys)
    assert out == "" and "HTTP 403 Forbidden" in only_error(err)


def test_a_revoked_key_on_the_registry_is_a_login_problem_not_an_empty_registry(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    on_hopsworks.deny_datasets(status=401)
    with pytest.raises(StoreError, match=r"read production of model sol_lstm failed: RestAPIError: HTTP 401 "
                                         r"Unauthorized, error 320012: Invalid or incorrect API key. \(check "
                                         r"HOPSWORKS_API_KEY"):
        registry.production("sol_lstm")


def test_a_missing_promotion_log_is_no_production_yet(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    registry.register("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "first", {})
    assert registry.production("sol_lstm") is None
    assert registry.summary() == {"sol_lstm": {"production": None, "versions": [
        {"version": 1, "created": registry.get("sol_lstm", 1).created, "description": "first",
         "metrics": {"rel_mae_mean": 0.9}}]}}


def test_the_summary_lists_only_models_cryptocast_registered(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    assert registry.summary() == {}
    other = hopsworks_double.FakeModel(on_hopsworks, "someone_elses_model", None, {}, "not ours", None)
    other.save(str(model_dir(tmp_path)))
    registry.register_and_promote("sol_lstm", model_dir(tmp_path, b"v1"), {"rel_mae_mean": 0.9}, "first", {})
    assert sorted(registry.summary()) == ["sol_lstm"]


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


def test_the_input_example_is_one_whole_window_as_the_client_keeps_it(on_hopsworks, tmp_path):
    """hsml keeps only the first row of a DataFrame; one input of our model is the whole window, as an array."""
    registry = open_model_registry(load_settings())
    artifacts = model_dir(tmp_path)
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0}, "no example", {})
    window = pd.DataFrame({"day": ["2024-02-27", "2024-02-28", "2024-02-29"], "sol_log_return": [0.01, -0.02, 0.5],
                           "fng": [0.25, 0.5, 0.75]})
    window.to_csv(artifacts / INPUT_EXAMPLE, index=False)
    version = registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0}, "with example", {})[0]

    stored = on_hopsworks.files.data
    assert "Models/sol_lstm/1/input_example.json" not in stored
    assert json.loads(stored["Models/sol_lstm/2/input_example.json"]) == [[0.01, 0.25], [-0.02, 0.5], [0.5, 0.75]]
    assert stored["Models/sol_lstm/2/Files/artifacts/input_example.csv"] == (artifacts / INPUT_EXAMPLE).read_bytes()
    assert (version.path / INPUT_EXAMPLE).read_bytes() == (artifacts / INPUT_EXAMPLE).read_bytes()


def test_a_header_only_input_example_does_not_abort_registration(on_hopsworks, tmp_path):
    registry = open_model_registry(load_settings())
    artifacts = model_dir(tmp_path)
    (artifacts / INPUT_EXAMPLE).write_text("day,sol_log_return\n")
    version, promoted = registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 1.0}, "empty", {})
    assert (version.version, promoted) == (1, True)
    assert "Models/sol_lstm/1/input_example.json" not in on_hopsworks.files.data


def test_a_registration_confirmed_after_the_clients_poll_is_used(on_hopsworks, tmp_path):
    """hsml polls for the new version, then prints `model.get_url()` on what the poll found: None when it found
    nothing yet, an AttributeError after the version was made."""
    on_hopsworks.registration = "late"
    registry = open_model_registry(load_settings())
    version, promoted = registry.register_and_promote("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "x", {})
    assert (version.version, promoted) == (1, True)
    assert (version.path / "weights.npz").read_bytes() == b"PK"


def test_a_registration_hopsworks_never_confirms_is_one_line_and_promotes_nothing(on_hopsworks, tmp_path):
    on_hopsworks.registration = "lost"
    registry = open_model_registry(load_settings())
    with pytest.raises(StoreError, match=r"^model sol_lstm: Hopsworks did not confirm version 1 within the "
                                         r"client's wait \(480 s\); it may still appear: check the project's "
                                         r"model registry before training again$"):
        registry.register_and_promote("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "x", {})
    assert registry.production("sol_lstm") is None


def test_versions_are_numbered_from_the_folders_as_hsml_numbers_them(on_hopsworks, tmp_path):
    """hsml numbers a new version from the folders under Models/<name> (the highest plus one), not from the
    registry: the folder a lost registration leaves behind makes the next version 2."""
    on_hopsworks.registration = "lost"
    registry = open_model_registry(load_settings())
    with pytest.raises(StoreError, match="did not confirm version 1"):
        registry.register_and_promote("sol_lstm", model_dir(tmp_path), {"rel_mae_mean": 0.9}, "x", {})
    on_hopsworks.registration = "confirmed"
    version, promoted = registry.register_and_promote("sol_lstm", model_dir(tmp_path, b"v2"), {"rel_mae_mean": 0.9},
                                                      "y", {})
    assert (version.version, promoted) == (2, True) and sorted(on_hopsworks.models["sol_lstm"]) == [2]


def test_save_registers_only_when_hsml_polls_for_it(on_hopsworks, tmp_path):
    """hsml sleeps 5 s before each look for the new version; without a look (await_registration < 5) it ends on
    `None.get_url()` although the backend registered the version."""
    model = hopsworks_double.FakeModel(on_hopsworks, "m", None, {}, "", None)
    with pytest.raises(AttributeError, match="get_url"):
        model.save(str(model_dir(tmp_path)), await_registration=4)
    assert sorted(on_hopsworks.models["m"]) == [1] and on_hopsworks.waited == 0
    saved = hopsworks_double.FakeModel(on_hopsworks, "m", None, {}, "", None).save(str(model_dir(tmp_path, b"2")))
    assert saved.version == 2 and on_hopsworks.waited == 5


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
        for model in list(on_hopsworks.models.get("sol_lstm", {}).values()):
            model.delete()  # deleted in the Hopsworks UI (the version's folder goes too), then trained again
        registry.register("sol_lstm", artifacts, {"rel_mae_mean": 0.9}, "run", {})
    fresh = open_model_registry(load_settings())
    assert (fresh.get("sol_lstm", 1).path / "weights.npz").read_bytes() == b"new"


# --- the local path ------------------------------------------------------------------------------------------


def test_the_local_backend_never_imports_hopsworks(tmp_path):
    probe = (
        "import sys\n"
        "from cryptocast import __main__ as m, inference, ingest, status, training  # noqa: F401\n"
        f"code = m.main(['status', '--home', {str(tmp_path / 'home')!r}])\n"
        f"code += m.main(['doctor', '--home', {str(tmp_path / 'home')!r}])\n"
        "print(code, sorted(n for n in ('hopsworks', 'hsfs', 'hsml', 'hopsworks_common') if n in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "CRYPTOCAST_"))}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"


def test_an_insert_while_a_materialization_job_runs_still_waits_for_its_rows(on_hopsworks, capsys):
    """hsfs' `Job.run` starts no execution, and waits for none, when one is already running (one a timed-out run
    left behind, say): `insert(wait=True)` then returns with the rows still in Kafka, and the next step would read
    (and forecast from) the table without them. The store waits for that execution, then runs the job again."""
    assert run_main(feature_backfill.main, "--as-of", "2024-02-20") == 0
    solana = on_hopsworks.groups[("solana", 1)]
    before = len(solana.rows)
    solana.job.elsewhere()
    assert run_main(feature_backfill.main, "--as-of", "2024-03-02") == 0
    assert (len(solana.rows), solana.topic, solana.job.running) == (before + 10, [], None)
    assert "Materialization job is already running" in output(capsys)[1]


def test_the_reset_deletes_no_group_of_cryptocasts_names_that_cryptocast_did_not_make(on_hopsworks, capsys):
    """`bitcoin` v1 is a name anyone's project may hold: a group under one of cryptocast's names whose features
    are not cryptocast's is someone else's; the reset then deletes nothing and says which and why."""
    from hsfs.feature import Feature

    assert run_main(feature_backfill.main) == 0
    del on_hopsworks.groups[("bitcoin", 1)]
    theirs = hopsworks_double.group_metadata("bitcoin", 1, primary_key=["ts"], event_time="ts", features=[
        Feature(name="ts", type="timestamp"), Feature(name="price", type="double")])
    on_hopsworks.groups[("bitcoin", 1)] = other = hopsworks_double.FakeFeatureGroup(on_hopsworks, theirs)
    other._id = 999
    before = sorted(on_hopsworks.groups)
    output(capsys)
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 1
    assert only_error(output(capsys)[1]) == (
        "error: hopsworks-reset: feature group bitcoin v1 on Hopsworks has features (price, ts) that are not "
        "cryptocast's: it is not cryptocast's to delete; nothing was deleted (delete or rename it in the project's "
        "UI if cryptocast should have the name, then run this again)")
    assert sorted(on_hopsworks.groups) == before


def test_the_reset_deletes_the_view_the_models_were_registered_with(on_hopsworks, tmp_path, capsys):
    """Every model is registered with the feature view (provenance), and the client refuses to delete a view that
    models use unless forced: without `force` the reset would fail on every project that ever trained."""
    assert run_main(feature_backfill.main) == 0
    store = open_feature_store(load_settings())
    store.read_feature_view(FEATURE_VIEW, None, None)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.json").write_text("{}")
    open_model_registry(load_settings()).register("sol_lstm", artifacts, {"rel_mae_mean": 0.9}, "first", {})
    output(capsys)
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 0
    assert output(capsys)[0].splitlines()[0] == "deleted: feature view solana_features v1"
    assert on_hopsworks.views == {} and on_hopsworks.groups == {} and list(on_hopsworks.models) == ["sol_lstm"]


def test_the_reset_and_the_doctor_cover_every_group_the_scripts_write():
    """A group added to the known groups (status.ALL_GROUPS) is one the reset must be able to clear and the doctor
    inspect: a list of its own would leave it out."""
    from cryptocast.hopsworks_reset import GROUPS
    from cryptocast.status import ALL_GROUPS

    assert set(GROUPS) == {*ALL_GROUPS.values(), HOLES} and len(GROUPS) == len(set(GROUPS))


def test_the_reset_clears_a_view_whose_group_was_deleted_by_hand(on_hopsworks, capsys):
    """Once one of its groups is gone the client cannot even build the view (`get_feature_view` raises ValueError):
    the reset, which the doctor names as the fix for just that, must still delete it, as the client's own message
    says: `FeatureView.clean`."""
    assert run_main(feature_backfill.main) == 0
    open_feature_store(load_settings()).read_feature_view(FEATURE_VIEW, None, None)
    del on_hopsworks.groups[("bitcoin", 1)]  # deleted in the UI
    output(capsys)
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 0
    assert output(capsys)[0].splitlines()[:3] == [
        "deleted: feature view solana_features v1", "deleted: feature group solana v1",
        "not there: feature group bitcoin v1"]
    assert on_hopsworks.groups == {} and on_hopsworks.views == {}


def test_the_reset_deletes_no_view_of_cryptocasts_name_that_reads_other_groups(on_hopsworks, capsys):
    """The view is deleted even when models use it (forced), so it must be cryptocast's: one that reads groups
    cryptocast does not make is left, with everything else."""
    from hsfs.feature import Feature

    assert run_main(cryptocast_main.main, "status") == 0  # a login, which the client's group metadata needs
    output(capsys)
    theirs = hopsworks_double.group_metadata("prices", 1, primary_key=["ts"], event_time="ts", features=[
        Feature(name="ts", type="timestamp"), Feature(name="price", type="double")])
    on_hopsworks.groups[("prices", 1)] = group = hopsworks_double.FakeFeatureGroup(on_hopsworks, theirs)
    group._id = 999
    fs = hopsworks_double.FakeFeatureStore(on_hopsworks)
    fs.get_or_create_feature_view("solana_features", group.select_all(), 1)
    assert run_main(cryptocast_main.main, "hopsworks-reset", "--yes-delete-cryptocast-groups") == 1
    assert only_error(output(capsys)[1]) == (
        "error: hopsworks-reset: feature view solana_features v1 on Hopsworks reads groups (prices) that are not "
        "cryptocast's: it is not cryptocast's to delete; nothing was deleted (delete or rename it in the project's "
        "UI if cryptocast should have the name, then run this again)")
    assert ("solana_features", 1) in on_hopsworks.views and ("prices", 1) in on_hopsworks.groups
