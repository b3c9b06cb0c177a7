"""The double must not drift from the real client.

A workload that takes the Hopsworks backend through every path it has (groups, upserts, filtered
reads, the view, registering, promoting, downloads, summaries, the doctor's clean-up, the reset) runs on the
double, which records each call as (the real callable's dotted path, args, kwargs). Each recorded
call must then bind to the installed hopsworks package's own signature, keywords by their declared
names (a `**kwargs` catch-all does not count), and each recorded property must be a property there;
none may be deprecated. The workload must reach every callable the double stands in for, so none of
them goes unchecked. Where the double runs the client's own code (login, group metadata, schema
checks, merge key, input example), a change there fails the workload itself.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import io
import shutil
import sys

import pytest

from cryptocast.doctor import doctor
from cryptocast.features import BITCOIN, FEATURE_VIEW, FORECASTS, validate
from cryptocast.hopsworks_reset import reset
from cryptocast.registry import open_model_registry
from cryptocast.settings import DEFAULTS, load_settings
from cryptocast.stores import open_feature_store

import hopsworks_double
from fakeapi import synthetic_history
from grouprows import ALL, FNG, SOL, candles


def run_workload(tmp_path, monkeypatch) -> hopsworks_double.Double:
    double = hopsworks_double.install(monkeypatch)
    settings = load_settings({"CRYPTOCAST_BACKEND": "hopsworks", "CRYPTOCAST_HOME": str(tmp_path / "home"),
                              "HOPSWORKS_API_KEY": hopsworks_double.API_KEY}, environ={},
                             dotenv_path=tmp_path / "absent.env")
    store = open_feature_store(settings)
    history = synthetic_history("2024-01-01", 40)
    for spec in (SOL, BITCOIN, FNG):
        rows = history[spec.name].assign(source="binance") if spec is not FNG else history[spec.name]
        store.get_or_create_feature_group(spec).insert(validate(spec, rows, "test"))
    group = store.get_feature_group(SOL)
    double.groups[(SOL.name, SOL.version)].job.elsewhere()  # so the insert waits for it and runs the job again
    group.insert(candles(ALL), replace=True)
    group.read(dt.date(2024, 1, 5), None)
    group.read(None, dt.date(2024, 1, 5))
    store.read_feature_view(FEATURE_VIEW, dt.date(2024, 1, 10), dt.date(2024, 1, 30))
    store.get_or_create_feature_group(FORECASTS).read()

    registry = open_model_registry(settings)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "model.json").write_text("{}")
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 0.9, "by_horizon": [1.0]}, "first", {})
    registry.register_and_promote("sol_lstm", artifacts, {"rel_mae_mean": 0.95}, "second", {})
    registry.set_production("sol_lstm", 2)
    shutil.rmtree(tmp_path / "home" / "hopsworks_cache")  # as on a fresh machine: versions are downloaded
    registry.production("sol_lstm")
    registry.versions("sol_lstm")
    registry.summary()
    doctor(settings, out=io.StringIO())  # scratch objects made, then deleted
    reset(settings, True, io.StringIO())  # the real view, used by the models, and the groups
    return double


def resolve(target: str) -> tuple[object, object]:
    """(owner, attribute) for a dotted path: a module and its function, or a class and its member."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:-1]:
                owner = getattr(owner, name)
            return owner, inspect.getattr_static(owner, parts[-1])
        except AttributeError:
            break
    raise AssertionError(f"{target} does not exist in the installed package")


def check_binds(target: str, args: tuple, kwargs: dict) -> None:
    owner, member = resolve(target)
    assert callable(member), f"{target} is not callable in the installed package"
    signature = inspect.signature(member)
    receiver = (None,) if inspect.isclass(owner) else ()
    bound = signature.bind(*receiver, *args, **kwargs)
    catch_all = [p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    swallowed = sorted(bound.arguments.get(catch_all[0], {})) if catch_all else []
    assert not swallowed, f"{target}: keyword(s) {swallowed} are not declared parameters"


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    double = run_workload(tmp_path, monkeypatch)
    monkeypatch.delitem(sys.modules, "hopsworks")  # bind against the real package from here on
    return double


def test_the_workload_reaches_everything_the_double_stands_in_for(recorded):
    assert recorded.targets() == hopsworks_double.TARGETS


def test_every_call_binds_to_the_installed_client(recorded):
    calls = [(target, args, kwargs) for target, args, kwargs, kind in recorded.calls if kind == "call"]
    assert len(calls) > 50
    for target, args, kwargs in calls:
        check_binds(target, args, kwargs)


def test_every_property_read_is_a_property_of_the_installed_client(recorded):
    for target in sorted({target for target, _, _, kind in recorded.calls if kind == "property"}):
        _, member = resolve(target)
        assert isinstance(member, property), f"{target} is not a property in the installed package"


def is_deprecated(target: str, member: object) -> bool:
    """The client's three ways of saying so: its @deprecated wrapper, a docstring opening with **Deprecated**,
    or a warning that `<member> is deprecated` (as FeatureGroup.features has)."""
    function = member.fget if isinstance(member, property) else member
    documented = (function.__doc__ or "").strip()
    wrapped = getattr(getattr(function, "__code__", None), "co_name", "") == "deprecated_f"
    return wrapped or documented.startswith("**Deprecated**") or f".{target.split('.')[-1]} is deprecated" in documented


def test_the_deprecation_check_sees_each_way_the_client_marks_it():
    for target in ("hsfs.feature_group.FeatureGroup.features", "hopsworks_common.core.dataset_api.DatasetApi.get",
                   "hopsworks_common.core.dataset_api.DatasetApi.path_exists", "hsfs.feature.Feature.contains"):
        assert is_deprecated(target, resolve(target)[1]), target
    insert = "hsfs.feature_group.FeatureGroup.insert"  # its docstring mentions a deprecated write option
    assert not is_deprecated(insert, resolve(insert)[1])


def test_nothing_cryptocast_uses_is_deprecated_in_the_installed_client(recorded):
    """A deprecated call still works, then disappears in a later client: move off it while it is announced."""
    assert [t for t in sorted(recorded.targets()) if is_deprecated(t, resolve(t)[1])] == []


def test_what_the_backend_and_guide_say_of_the_clients_defaults_holds(monkeypatch):
    """DELTA is the client's default format, written directly (no stream) by the python engine, which a hosted
    project cannot take; ours, HUDI, is a stream group (Kafka and a materialization job). Statistics are on
    unless turned off, and DELTA upserts match on primary key + event time."""
    from hopsworks_common import client, connection

    monkeypatch.setattr(connection, "_hsfs_engine_type", "python")
    monkeypatch.setattr(client, "_client", hopsworks_double.FakeRestClient())  # external, as a runner is
    default = hopsworks_double.group_metadata("g", 1, primary_key=["k"], event_time="day")
    assert default.time_travel_format == "DELTA" != DEFAULTS["CRYPTOCAST_HOPSWORKS_FORMAT"]
    ours = hopsworks_double.group_metadata("g", 1, time_travel_format=DEFAULTS["CRYPTOCAST_HOPSWORKS_FORMAT"])
    assert ours.stream is True and ours.online_enabled is False
    assert default.stream is False and default.statistics_config.enabled is True
    assert hopsworks_double.merge_key(default) == ["k", "day"]
    assert hopsworks_double.group_metadata("g", 1, statistics_config=False).statistics_config.enabled is False
    for fmt in ("HUDI", "ICEBERG"):  # ICEBERG from outside the cluster goes through the job as well
        assert hopsworks_double.group_metadata("g", 1, time_travel_format=fmt).stream is True


@pytest.mark.parametrize(("target", "args", "kwargs"), [
    ("hsfs.feature_group.FeatureGroup.insert", ("df",), {"wait_for_job": True}),
    ("hsfs.feature_view.FeatureView.get_batch_data", (), {"extra_filters": None}),
    ("hsml.python.signature.create_model", (), {"name": "m", "schema": None}),
    ("hsfs.feature_store.FeatureStore.get_feature_groups_by_name", (), {}),
])
def test_the_check_catches_drift(target, args, kwargs):
    with pytest.raises((AssertionError, TypeError)):  # TypeError: an argument the signature does not take
        check_binds(target, args, kwargs)
