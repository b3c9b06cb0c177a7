"""The page's health sentence: under the forecast, in plain words, and each failing check with since when."""

from __future__ import annotations

import json

import pandas as pd

from cryptocast import health
from cryptocast.publish.page import render_page

from .conftest import render_without_charts
from .test_page import text_of


def test_the_shared_site_says_how_healthy_the_model_is_under_the_forecast(shared):
    doc = json.loads((shared[0] / "forecast.json").read_text())
    index = (shared[0] / "index.html").read_text()
    text = text_of(index)
    assert doc["health"]["day"] == "2024-02-29" and doc["health"]["sentence"] in text
    assert f"Model health on 2024-02-29: {doc['health']['status']}." in text
    assert index.index('id="answer-sentence"') < index.index('id="health"') < index.index('id="verdict"')


def failing_record() -> pd.DataFrame:
    row = {"day": pd.Timestamp("2024-02-29"), "kind": health.LIVE, "statistic": 0.61, "threshold_low": 0.7,
           "threshold_high": 0.9, "time_window": "2023-12-02..2024-02-29 (targets), 88 forecast days",
           "model_version": 1}
    return pd.DataFrame([
        {**row, "health_check": "coverage_80 h1-3", "verdict": health.FAIL, "failing_since": "2024-02-20",
         "detail": "live 80% ranges held at 1-3 days ahead: 61% over the last 90 days, outside 70%..90%"},
        {**row, "health_check": "frozen fear_greed", "kind": health.INPUT, "statistic": 6.0, "threshold_low": None,
         "threshold_high": 4.0, "verdict": health.FAIL, "failing_since": "2024-02-24",
         "detail": "fear_greed: the same value (0.5) 6 day(s) running since 2024-02-24, at or above the 5 allowed"}])


def test_a_failing_check_is_named_with_since_when(site_home):
    doc, _ = render_without_charts()
    doc["health"] = health.page_summary(failing_record())
    text = text_of(render_page(doc, [], "{}"))
    assert "Model health on 2024-02-29: 2 check(s) fail. Live 80% ranges 1-3 days ahead held 61% of the last " \
           "88 forecast days, outside the expected 70%..90%." in text
    assert "Failing since 2024-02-20: live 80% ranges held at 1-3 days ahead: 61%" in text
    assert "Failing since 2024-02-24: fear_greed: the same value (0.5) 6 day(s) running" in text
    assert "inputs look like those it was trained on" not in text


def test_no_record_no_sentence(site_home):
    doc, _ = render_without_charts()
    doc["health"] = None
    assert 'id="health"' not in render_page(doc, [], "{}")
