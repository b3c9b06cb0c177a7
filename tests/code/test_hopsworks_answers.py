"""The double answers each case the service decides as the table in tests/hopsworks_answers.py says.

Each case is provoked on a fresh double through the client calls cryptocast makes; what the double
answered (the error it raised, or handed to the client's own not-found decorator) must carry the
table's status and error code, and its message. A case added to the table without a probe fails too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from hopsworks_common.client.exceptions import FeatureStoreException, RestAPIError

from hopsworks_answers import ANSWERS
from hopsworks_double import API_KEY, PROJECT, Double, FakeModel


def login(double: Double, **overrides: Any) -> Any:
    return double.login(**{"host": "my.cluster.example", "project": PROJECT, "api_key_value": API_KEY,
                           "engine": "python", **overrides})


def raised(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as caught:
        call()
    return caught.value


def swallowed(double: Double, result: Any) -> BaseException:
    """The client's own decorator turned the answer into None: the answer is the one the double last gave."""
    assert result is None
    return double.answers[-1][1]


def converted(double: Double, error: BaseException) -> BaseException:
    """The client turned the answer into its own exception: the answer is the one the double last gave."""
    assert not isinstance(error, RestAPIError), error
    return double.answers[-1][1]


def group(double: Double, fmt: str) -> Any:
    from hsfs.feature import Feature

    fs = login(double).get_feature_store()
    return fs.get_or_create_feature_group("g", 1, primary_key=["k"], event_time="day", time_travel_format=fmt,
                                          features=[Feature("k", "bigint"), Feature("day", "timestamp")])


ROWS = pd.DataFrame({"k": [1], "day": pd.to_datetime(["2024-01-01"]).astype("datetime64[us]")})


def not_materialised(double: Double) -> BaseException:
    g = group(double, "HUDI")
    g.insert(ROWS, wait=False)  # sent through Kafka; the materialization job has not run yet
    return raised(lambda: g.select_all().read())


def denied(double: Double) -> BaseException:
    datasets = login(double).get_dataset_api()
    double.deny_datasets()
    return raised(lambda: datasets.list("Resources"))


def view_in_use(double: Double) -> BaseException:
    fs = login(double).get_feature_store()
    view = fs.get_or_create_feature_view("v", group(double, "HUDI").select_all(), 1)
    double.models["m"] = {1: FakeModel(double, "m", 1, {}, "", view)}  # registered with the view, for provenance
    return raised(view.delete)


def delete_missing(double: Double) -> Any:
    assert login(double).get_dataset_api().remove("Resources/nothing") is None
    return 204


PROBES: dict[str, Callable[[Double], Any]] = {
    "missing path": lambda d: raised(lambda: login(d).get_dataset_api().list("Resources/cryptocast")),
    "missing dataset": lambda d: raised(lambda: login(d).get_dataset_api().list("Nothing/here")),
    "directory exists": lambda d: raised(lambda: [login(d).get_dataset_api().mkdir("Resources/a") for _ in "12"]),
    "parent missing": lambda d: raised(lambda: login(d).get_dataset_api().mkdir("Resources/a/b")),
    "delete a missing path": delete_missing,
    "missing model version": lambda d: swallowed(d, login(d).get_model_registry().get_model("sol_lstm", 1)),
    "missing feature group": lambda d: swallowed(d, login(d).get_feature_store().get_feature_group("solana", 1)),
    "missing feature view": lambda d: swallowed(d, login(d).get_feature_store().get_feature_view("solana_features", 1)),
    "view in use": view_in_use,
    "no scope": denied,
    "wrong key": lambda d: raised(lambda: login(d, api_key_value="not-the-key")),
    "missing project": lambda d: converted(d, raised(lambda: login(d, project="someone_elses"))),
    "not materialised": not_materialised,
    "no load balancers": lambda d: raised(lambda: group(d, "DELTA").insert(ROWS, wait=True)),
}


def test_every_case_in_the_table_is_probed():
    assert sorted(PROBES) == sorted(ANSWERS)


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_the_double_answers_as_the_table_says(hopsworks, case):
    row = ANSWERS[case]
    got = PROBES[case](hopsworks)
    if isinstance(got, RestAPIError):
        body = got.response.json()
        assert (got.response.status_code, got.response.reason, body["errorCode"], body["errorMsg"]) == (
            row.status, row.reason, row.code, row.message), row.source
    elif row.status is None:
        assert isinstance(got, FeatureStoreException) and str(got).startswith(row.message), (got, row.source)
    else:
        assert (got, row.code) == (row.status, None), row.source


def test_a_cluster_with_load_balancers_takes_direct_delta_writes(monkeypatch):
    import hopsworks_double

    double = hopsworks_double.install(monkeypatch, load_balancers=True)
    g = group(double, "DELTA")
    g.insert(ROWS, wait=True)
    assert len(g.select_all().read()) == 1 and g.jobs == 0


def test_a_missing_parent_reaches_the_client_as_an_unknown_error(hopsworks):
    """DatasetController is a @Stateless bean: the IllegalArgumentException createSubDirectory throws for a missing
    parent is a system exception, which the container hands to DatasetResource (a local client) as an EJBException
    (the EJB spec's rule for system exceptions). ThrowableMapper has no branch for that, so its
    IllegalArgumentException branch (422) never sees it: RESTApiThrowableMapper.handleUnknownException answers
    UNKNOWN_ERROR, the message only as devMsg."""
    got = PROBES["parent missing"](hopsworks)
    assert (got.response.status_code, got.response.json()) == (500, {"errorCode": 120000,
                                                                     "errorMsg": "A generic error occurred."})
