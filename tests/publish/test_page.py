"""What the page tells a reader: one verdict, the path in words, prices with their unit, sources, links, outcomes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
import subprocess
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from cryptocast import inference
from cryptocast.__main__ import main as cryptocast_main
from cryptocast.features import FORECASTS, SOLANA
from cryptocast.publish import document, gather
from cryptocast.publish.document import describe_path
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores.local import LocalFeatureStore
from cryptocast.training import MODEL_NAME

from .conftest import AS_OF, DESCRIPTION, build, fill_groups, render_without_charts, settings_for, write_artifacts
from modelfiles import as_registered

BLOCK = re.compile(r"</?(?:p|div|h[1-6]|td|th|tr|table|section|header|footer|figure|option|select|br|title)\b[^>]*>")


def text_of(index_html: str) -> str:
    """The page's visible text, roughly: blocks apart, inline tags dropped, entities decoded, whitespace folded."""
    without_code = re.sub(r"<(script|style)\b.*?</\1>", " ", index_html, flags=re.S)
    spaced = re.sub(r"<[^>]+>", "", BLOCK.sub(" ", without_code))
    return " ".join(html.unescape(spaced).split())


@pytest.fixture(scope="module")
def shown(shared) -> tuple[dict, str, str]:
    """The shared site's forecast.json, both pages' HTML (main page first), and their visible text."""
    out = shared[0]
    pages = (out / "index.html").read_text() + (out / "details.html").read_text()
    return json.loads((out / "forecast.json").read_text()), pages, text_of(pages)


@pytest.fixture(scope="module")
def main_page(shared) -> tuple[dict, str, str]:
    """The shared site's forecast.json, index.html, and its visible text."""
    out = shared[0]
    index = (out / "index.html").read_text()
    return json.loads((out / "forecast.json").read_text()), index, text_of(index)


def test_the_verdict_is_one_paragraph_on_the_page(shown):
    doc, index, text = shown
    assert text.count(doc["verdict"]) == 1


def test_prices_show_cents_and_their_unit_everywhere_and_never_a_dollar_sign(shown):
    doc, pages, text = shown
    assert doc["unit"] == "USDT"
    assert "$" not in text
    priced = re.findall(r"(\d[\d,]*(?:\.\d+)?) USDT(?! ≈)", text)  # "1 USDT ≈ 1 USD" is a rate, not a price
    assert len(priced) >= 4 and all(re.fullmatch(r"\d[\d,]*\.\d\d", p) for p in priced), priced
    table = re.search(r'<table id="forecast-table">.*?</table>', pages, flags=re.S).group(0)
    cells = re.findall(r"<td>([^<]*)</td>", table)
    ranges = [c for c in cells if "–" in c]
    assert len(ranges) == 20 and all(re.fullmatch(r"[\d,]+\.\d\d–[\d,]+\.\d\d", c) for c in ranges), ranges

    table = re.search(r'<table id="outcomes">.*?</table>', pages, flags=re.S).group(0)
    cells = re.findall(r"<tr><td>(\d+)</td><td>[-\d]+</td><td>([^<]*)</td><td>([^<]*)</td>", table)
    assert {h for h, _, _ in cells} == {"1", "5", "10"} and len([h for h, _, _ in cells if h == "1"]) == 7
    assert all(re.fullmatch(r"[\d,]+\.\d\d", price) for _, point, actual in cells for price in (point, actual))


def test_the_path_is_explained_in_one_sentence(shown):
    doc, _, text = shown
    path = doc["forecast"]["path"]
    assert path in text and ". " not in path


def rows(points: list[float]) -> dict:
    return {"last_close": 100.0, "rows": [{"horizon": h, "target_day": f"2024-03-{h:02d}", "point": p}
                                          for h, p in enumerate(points, 1)]}


@pytest.mark.parametrize(("points", "rel_mae", "says"), [
    ([100.0] * 10, 1.02, "Flat: the forecast is the last close, 100.00 USDT, on all 10 days: the model predicts no "
                         "change, because in its backtest it did not beat that forecast."),
    ([100.0] * 10, 0.9, "on all 10 days: the model predicts no change."),
    ([100.0] * 8 + [101.2, 100.0], 1.02, "Mostly flat: the forecast is the last close, 100.00 USDT, on 9 of 10 days "
                                         "and differs only on day 9, by at most +1.2%; in its backtest"),
    ([100.0, 100.5, 100.0, 100.0, 100.0, 99.0, 100.0, 100.0, 100.0, 100.0], None, "differs only on days 2 and 6, by "
                                                                                   "at most -1.0%."),
    ([100.1 + h / 10 for h in range(10)], 0.9, "Rises: from the last close, 100.00 USDT, to 101.00 USDT on "
                                               "2024-03-10 (+1.0%)."),
    ([99.9 - h / 10 for h in range(10)], 0.9, "Falls: from the last close, 100.00 USDT, to 99.00 USDT on 2024-03-10 "
                                              "(-1.0%)."),
    ([101.0, 99.0] * 5, 1.1, "Moves up and down between -1.0% and +1.0% of the last close, 100.00 USDT, ending at "
                             "99.00 USDT on 2024-03-10 (-1.0%); in its backtest the model did not beat"),
])
def test_describe_path_reads_the_shape_from_the_rows(points, rel_mae, says):
    sentence = describe_path(rows(points), "USDT", rel_mae)
    assert says in sentence
    assert ("did not beat" in sentence) == (rel_mae is not None and rel_mae >= 1)
    assert sentence.endswith(".") and ". " not in sentence  # one sentence


@pytest.mark.parametrize(("points", "says"), [
    ([100.5, 101.0, 101.4, 101.6, 101.7, 101.7, 101.6, 101.4, 101.1, 100.7],
     "Rises, then falls: from the last close, 100.00 USDT, to 101.70 USDT on 2024-03-05 (+1.7%), then to 100.70 USDT "
     "on 2024-03-10 (+0.7%)."),
    ([99.0, 98.5, 98.2, 98.1, 98.3, 98.6, 99.0, 99.5, 100.1, 100.8],
     "Falls, then rises: from the last close, 100.00 USDT, to 98.10 USDT on 2024-03-04 (-1.9%), then to 100.80 USDT "
     "on 2024-03-10 (+0.8%)."),
])
def test_a_path_that_turns_once_says_where(points, says):
    assert describe_path(rows(points), "USDT", 0.95) == says


def test_a_flat_path_from_a_fully_shrunk_network_says_why():
    sentence = describe_path(rows([100.0] * 10), "USDT", 1.0, shrinkage=0.0)
    assert sentence == ("Flat: the forecast is the last close, 100.00 USDT, on all 10 days: its network showed no "
                        "reliable skill over \"no change\" on the days held back to check it, so the model says "
                        "\"no change\".")


def test_every_path_the_model_can_publish_is_described_as_flat_rising_falling_or_turning_once():
    """The published path is `steady_path` of the network's output: never the zig-zag wording."""
    from cryptocast.modeling.forecasters import steady_path

    paths = steady_path(np.random.default_rng(4).normal(0, 0.02, (300, 10)))
    said = {describe_path(rows(list(100 * np.exp(path))), "USDT", 0.98).split(":")[0] for path in paths}
    assert said <= {"Flat", "Mostly flat", "Rises", "Falls", "Rises, then falls", "Falls, then rises"}
    assert {"Rises, then falls", "Falls, then rises"} <= said


def test_a_replayed_day_says_so_and_counts_every_date_from_it(shown):
    doc, _, text = shown
    assert doc["as_of"] == "2024-03-01" and doc["replay"] is True
    assert "Replay of 2024-03-01: every date counts from that day (built 2026-" in text
    assert "registered" not in text and "Updated" not in text  # no wall-clock date competes with the as-of day
    assert "fitted on daily closes through" in text


def test_a_run_on_the_day_itself_shows_when_it_was_updated(site_home):
    doc, index = render_without_charts(generated=dt.datetime(2024, 3, 1, 6, 20, tzinfo=dt.UTC))
    text = text_of(index)
    assert doc["replay"] is False
    assert "As of 2024-03-01, with daily closes through 2024-02-29 (UTC); built 2024-03-01 06:20 UTC." in text
    assert "Replay" not in text and ", registered " in text


def test_the_page_names_its_price_source_and_unit(shown):
    doc, _, text = shown
    assert doc["sources"]["prices"] == ["Binance's SOLUSDT market"]
    assert "daily closes (UTC days) from Binance's SOLUSDT market, in USDT (Tether" in text
    assert "1 USDT ≈ 1 USD" in text
    assert "USDT: Tether, a stablecoin meant to be worth one US dollar" in text  # the main page's glossary


def test_the_unit_is_the_newest_closes_and_every_market_is_named():
    days = pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02"])
    kraken_last = pd.DataFrame({"day": days, "source": ["kraken", "binance", "kraken"]})
    assert gather._markets(kraken_last) == (["Binance's SOLUSDT market", "Kraken's SOL-USD market"], "USD")
    binance_again = pd.DataFrame({"day": days, "source": ["binance", "binance", "kraken"]})
    assert gather._markets(binance_again) == (["Binance's SOLUSDT market", "Kraken's SOL-USD market"], "USDT")


def test_links_to_the_repository_and_its_evaluation_when_known(site_home, monkeypatch):
    doc, index = render_without_charts()
    assert doc["links"]["repository"] is None and 'id="repository"' not in index and 'id="evaluation"' not in index
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/cryptocast")
    doc, index = render_without_charts()
    assert doc["links"]["repository"] == "https://github.com/someone/cryptocast"
    assert '<a href="https://github.com/someone/cryptocast" id="repository">' in index
    assert ('<a href="https://github.com/someone/cryptocast/blob/HEAD/bench/results/backtest.md" id="evaluation">'
            in index)


def test_the_checkouts_remote_is_linked_without_its_credentials(site_home, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    remote = "https://x-access-token:ghs_MARKER77@github.com/someone/cryptocast.git"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    doc, index = render_without_charts()
    assert doc["links"]["repository"] == "https://github.com/someone/cryptocast"
    assert "MARKER77" not in index


def test_the_csv_download_is_the_export_of_the_forecasts(shared, capsys, monkeypatch):
    out, home = shared
    monkeypatch.setenv("CRYPTOCAST_HOME", str(home))
    capsys.readouterr()
    assert cryptocast_main(["export", "solana_forecasts"]) == 0
    exported = capsys.readouterr().out
    assert (out / "solana_forecasts.csv").read_text() == exported
    assert len(pd.read_csv(StringIO(exported))) == 210
    assert '<a href="solana_forecasts.csv" download id="csv">' in (out / "index.html").read_text()


def matured_one_day(home) -> tuple[pd.DataFrame, pd.Series]:
    """The store's published 1-day forecasts whose target close is known, and SOL's closes by day."""
    forecasts = LocalFeatureStore(home).get_feature_group(FORECASTS).read()
    closes = LocalFeatureStore(home).get_feature_group(SOLANA).read().set_index("day")["close"]
    return forecasts[(forecasts["horizon"] == 1) & forecasts["target_day"].isin(closes.index)], closes


def test_recent_outcomes_are_the_newest_matured_forecasts_per_horizon(shown, shared):
    doc, index, _ = shown
    one_day, closes = matured_one_day(shared[1])
    newest = one_day.sort_values("target_day", ascending=False).head(7)
    shown_rows = doc["outcomes"]["1"]
    assert [o["target_day"] for o in shown_rows] == [d.strftime("%Y-%m-%d") for d in newest["target_day"]]
    assert [o["error"] for o in shown_rows] == pytest.approx(list(newest["point"] - newest["target_day"].map(closes)))
    table = re.search(r'<table id="outcomes">.*?</table>', index, flags=re.S).group(0)
    first = re.findall(r"<tr><td>1</td><td>([-\d]+)</td>", table)
    assert first == [o["target_day"] for o in shown_rows]


def test_mae_and_the_original_model_are_explained_in_plain_words(shown):
    _, _, text = shown
    assert "the mean absolute error (MAE) is the average size of those errors" in text
    assert "the original system's model: the model of the project this one replaces" in text
    assert "smaller average error (that model's error is" in text


def test_the_range_scores_are_the_backtests_in_a_table(shown, shared):
    doc, index, text = shown
    evaluation = json.loads((LocalModelRegistry(shared[1]).production(MODEL_NAME).path / "evaluation.json").read_text())
    methods = evaluation["distribution"]["methods"]
    ours, fixed = doc["range_scores"]["calibrated"], methods["fixed_band"]["per_horizon"]
    assert ours["coverage_80_wild"] == methods["calibrated"]["coverage_80_wild_mean"]
    assert ours["pinball"] == methods["calibrated"]["pinball_mean"]
    by_hand = np.mean([r["winkler_95"] / f["winkler_95"]
                       for r, f in zip(methods["calibrated"]["per_horizon"], fixed, strict=True)])
    assert ours["winkler_95_vs_fixed_band"] == pytest.approx(by_hand)
    assert doc["range_scores"]["fixed_band"]["winkler_80_vs_fixed_band"] == pytest.approx(1.0)
    table = re.search(r'<table class="wrap-first" id="range-table">.*?</table>', index, flags=re.S).group(0)
    assert re.findall(r"<th scope=\"col\">([^<]*)</th>", table) == [
        "backtest", "our ranges", "fixed-width band", "EWMA volatility band", "GARCH(1,1)-t band"]
    wild = re.search(r"<td>… on wild days \(the most volatile third\)</td><td>([^<]*)</td>", table).group(1)
    assert wild == f"{ours['coverage_80_wild']:.1%}"
    assert "the interval score charges a range its width plus a penalty for every outcome outside it" in text.lower()


def test_the_track_record_says_how_often_the_ranges_held(shown, shared):
    doc, _, text = shown
    one_day, closes = matured_one_day(shared[1])
    actual = one_day["target_day"].map(closes)
    inside = ((one_day["q10"] <= actual) & (actual <= one_day["q90"])).mean()
    assert doc["hindcast"]["1"]["published"]["coverage_80"] == pytest.approx(inside)
    assert (f"1 day ahead, published: {inside:.1%} inside the 80% range, "
            f"{doc['hindcast']['1']['published']['coverage_95']:.1%} inside the 95% range (20 forecasts)") in text


def test_the_other_forecasters_are_named_with_their_errors(shown):
    doc, _, text = shown
    baselines = doc["model"]["metrics"]["baseline_rel_mae_mean"]
    assert (f"random walk + drift {baselines['drift']:.3f}, AutoETS (a classical forecaster) {baselines['ets']:.3f}, "
            f"the original system's model {baselines['original']:.3f}") in text


def test_the_selectors_result_is_announced(main_page):
    _, index, _ = main_page
    assert re.search(r'<p class="held" id="a-held" aria-live="polite">', index)


def test_no_matured_published_forecast_is_said_and_when_the_first_matures(isolated, tmp_path):
    closes = fill_groups(isolated)
    metrics = write_artifacts(tmp_path / "artifacts", closes)
    LocalModelRegistry(isolated).register_and_promote(MODEL_NAME, tmp_path / "artifacts", metrics, DESCRIPTION, {})
    inference.infer(settings_for(isolated, AS_OF))  # the first forecast ever: its targets are all ahead
    doc, index = render_without_charts()
    assert doc["published"] == {"forecast_days": 1, "matured": 0, "first_target_day": "2024-03-01"}
    assert ("None of the forecasts published so far has reached its target day: the first one matures on "
            "2024-03-01.") in text_of(index)  # the details page
    assert ("Forecasts published on 1 day(s); none has reached its target day yet (the first matures on "
            "2024-03-01).") in text_of(index)  # the main page's one line
    assert all(not found for found in doc["outcomes"].values())


def test_the_hindcast_charts_come_in_the_order_1_5_10(shown):
    doc, index, _ = shown
    files = [c["file"] for c in doc["charts"] if c["file"].startswith("hindcast")]
    assert files == ["hindcast_h1.png", "hindcast_h5.png", "hindcast_h10.png"]
    assert index.index('src="hindcast_h1.png"') < index.index('src="hindcast_h5.png"') < index.index(
        'src="hindcast_h10.png"')


def test_no_range_on_the_page_narrows_from_one_day_to_the_next():
    """A published edge that dips (the 97.5% one from day 6 to day 7, say) is widened to the day before's."""
    point = np.full(10, 100.0)
    spread = np.array([1, 2, 3, 4, 5, 6, 5.9, 7, 8, 9]) / 100  # day 7 narrower than day 6
    rows = pd.DataFrame({"horizon": range(1, 11), "point": point, "q50": point,
                         **{q: point * np.exp(spread * k) for q, k in (("q2_5", -2), ("q5", -1.6), ("q10", -1.3),
                                                                      ("q25", -0.7), ("q75", 0.7), ("q90", 1.3),
                                                                      ("q95", 1.6), ("q97_5", 2))}})
    shown, widened = document.widen_with_horizon(rows)
    for q in ("q75", "q90", "q95", "q97_5"):
        assert shown[q].round(9).is_monotonic_increasing, q  # to a billionth: exp(log(x)) is x only so far
    for q in ("q2_5", "q5", "q10", "q25"):
        assert shown[q].round(9).is_monotonic_decreasing, q
    assert widened == 8  # day 7 of each of the eight outer quantiles
    assert shown["q97_5"][6] == pytest.approx(shown["q97_5"][5]) and shown["q97_5"][7] == rows["q97_5"][7]
    assert document.widen_with_horizon(shown)[1] == 0


def test_a_hindcast_chart_that_would_repeat_naive_is_said_in_one_line(site_home, tmp_path):
    """The model is "no change" at every horizon: its error charts would draw naive's twice, so none is drawn."""
    path = LocalModelRegistry(site_home).production(MODEL_NAME).path / "backtest_forecasts.csv"
    backtest = pd.read_csv(path)
    backtest["point"] = backtest["naive"]
    backtest.to_csv(path, index=False)
    forecasts = LocalFeatureStore(site_home).get_feature_group(FORECASTS)
    rows = forecasts.read()
    closes = LocalFeatureStore(site_home).get_feature_group(SOLANA).read().set_index("day")["close"]
    forecasts.insert(rows.assign(point=rows["forecast_day"].map(closes)), replace=True)
    as_registered(LocalModelRegistry(site_home), MODEL_NAME, 1)
    out = tmp_path / "docs"
    assert build(out) == 0
    doc = json.loads((out / "forecast.json").read_text())
    assert not [c for c in doc["charts"] if c["file"].startswith("hindcast")]
    assert ("At 1, 5 and 10 days ahead the model's forecast was \"no change\" every time, so its errors are "
            "naive persistence's: no charts are drawn for them.") in text_of((out / "details.html").read_text())


HEALTH = {"day": "2024-02-29", "verdict": "ok", "status": "all checks pass", "sentence": "Live: all well <b>.",
          "failing": []}  # the shape of health.page_summary


def test_the_health_slot_is_one_line_under_the_answer_when_set(site_home, monkeypatch):
    real = gather.gather
    monkeypatch.setattr(gather, "gather", lambda settings: dataclasses.replace(real(settings),
                                                                               health=HEALTH))
    doc, pages = render_without_charts()
    assert doc["health"] == HEALTH
    assert ('<li id="health"><strong>Model health on 2024-02-29:</strong> all checks pass. Live: all well &lt;b&gt;.'
            '</li>') in pages
    assert pages.index('id="a-held"') < pages.index('id="health"') < pages.index('id="verdict"')


def test_the_headline_quotes_the_live_track_record_once_it_is_long_enough():
    """The backtest until `MIN_LIVE` published forecasts with ranges have matured at that horizon, then those."""
    def rows(source: str, n: int, inside: int) -> pd.DataFrame:
        actual = np.where(np.arange(n) < inside, 100.0, 200.0)  # outside the 90..110 range after `inside` rows
        return pd.DataFrame({"forecast_day": pd.Timestamp("2024-01-01"), "target_day": pd.date_range("2024-01-02",
                             periods=n), "horizon": 3, "point": 100.0, "q10": 90.0, "q90": 110.0, "q2_5": 80.0,
                             "q97_5": 120.0, "naive": 100.0, "actual": actual, "source": source})

    backtest = rows("backtest", 40, 30)
    few = document.held(pd.concat([backtest, rows("published", document.MIN_LIVE - 1, 10)]))
    assert few == {"3": {"source": "backtest", "n": 40, "coverage_80": 0.75, "coverage_95": 0.75}}
    enough = document.held(pd.concat([backtest, rows("published", document.MIN_LIVE, 24)]))
    assert enough["3"] == {"source": "published", "n": document.MIN_LIVE, "coverage_80": 0.8, "coverage_95": 0.8}
