"""The double must not drift from the real client.

A workload that takes the Hopsworks backend through every path it has (groups, upserts, filtered
reads, the view, registering, promoting, downloads, summaries) runs on the double, which records each
call as (the real callable's dotted path, args, kwargs). Each recorded call must then bind to the
installed hopsworks package's own signature, keywords by their declared names (a `**kwargs` catch-all
does not count), and each recorded property must be a property there. The workload must reach every
callable the double stands in for, so none of them goes unchecked. `hopsworks.login` is only bound,
never called.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import shutil
import sys

import pytest

from cryptocast.features import BITCOIN, FEATURE_VIEW, FORECASTS, validate
from cryptocast.registry import open_model_registry
from cryptocast.settings import load_settings
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


@pytest.mark.parametrize(("target", "args", "kwargs"), [
    ("hsfs.feature_group.FeatureGroup.insert", ("df",), {"wait_for_job": True}),
    ("hsfs.feature_view.FeatureView.get_batch_data", (), {"extra_filters": None}),
    ("hsml.python.signature.create_model", (), {"name": "m", "schema": None}),
    ("hsfs.feature_store.FeatureStore.get_feature_groups_by_name", (), {}),
])
def test_the_check_catches_drift(target, args, kwargs):
    with pytest.raises((AssertionError, TypeError)):  # TypeError: an argument the signature does not take
        check_binds(target, args, kwargs)
