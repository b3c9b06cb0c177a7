"""plots.py end to end on a small store: files, links, numbers, empty store, secrets, failures."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from cryptocast.features import FORECAST_QUANTILES, FORECASTS, SOLANA
from cryptocast.publish import document, output
from cryptocast.registry import LocalModelRegistry
from cryptocast.stores.ledger import Ledger
from cryptocast.stores.local import LocalFeatureStore
from cryptocast.training import MODEL_NAME

from .conftest import build, details, page, refs, render_without_charts
from conftest import REPO, error_lines, snapshot
from modelfiles import as_registered

CHART_NAMES = ("forecast", "hindcast_h1", "hindcast_h5", "hindcast_h10", "ranges", "scoreboard", "training",
               "range_scores", "trend", "correlation", "fear_greed")
MODEL_CHARTS = {"scoreboard", "range_scores", "training"}


def chart_files(names=CHART_NAMES) -> set[str]:
    """Each chart is drawn wide (NAME.png) and narrow (NAME-narrow.png)."""
    return {f"{n}.png" for n in names} | {f"{n}-narrow.png" for n in names}


CHARTS = chart_files()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def store_forecasts(home: Path) -> pd.DataFrame:
    return LocalFeatureStore(home).get_feature_group(FORECASTS).read()


def sol_closes(home: Path) -> pd.Series:
    return LocalFeatureStore(home).get_feature_group(SOLANA).read().set_index("day")["close"]


def test_every_chart_is_a_valid_png(shared):
    out = shared[0]
    assert {p.name for p in out.glob("*.png")} == CHARTS
    for name in CHARTS:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            width = 680 if name.endswith("-narrow.png") else 1440  # 340 and 720 CSS px, at twice the resolution
            assert image.format == "PNG" and image.size[0] == width and image.size[1] >= 300, (name, image.size)
    assert (out / ".nojekyll").read_bytes() == b""


def test_the_page_refers_only_to_files_it_wrote(shared):
    out = shared[0]
    main, second = page(out), details(out)
    assert main.refs and second.refs, "no src/href found at all"
    for ref in refs(out):
        assert "://" not in ref and not ref.startswith("//"), f"external reference {ref}"
        assert (out / ref).is_file(), f"{ref} is referenced but not written"
    assert {r for r in refs(out) if r.endswith(".png")} == CHARTS
    assert {r for r in main.refs if r.endswith(".png")} == chart_files(["forecast"])  # the answer's chart only
    assert "forecast.json" in main.refs and "details.html" in main.refs and "index.html" in second.refs
    alts = main.alts + second.alts
    assert all(alt and len(alt) > 30 for alt in alts), alts
    assert all(alt[0].isupper() and alt.endswith(".") for alt in alts), alts  # sentences


def test_forecast_json_is_the_latest_forecast_in_the_group(shared):
    out, site_home = shared
    doc = json.loads((out / "forecast.json").read_text())
    rows = store_forecasts(site_home)
    latest = rows[rows["forecast_day"] == rows["forecast_day"].max()].sort_values("horizon")
    assert doc["forecast"]["forecast_day"] == "2024-02-29" == latest["forecast_day"].iloc[0].strftime("%Y-%m-%d")
    assert doc["forecast"]["model_version"] == int(latest["model_version"].iloc[0]) == 1
    assert doc["forecast"]["last_close"] == sol_closes(site_home)[pd.Timestamp("2024-02-29")]
    assert doc["forecast"]["days_old"] == 0
    shown, widened = document.widen_with_horizon(latest)
    expected = [{"horizon": int(r.horizon), "target_day": r.target_day.strftime("%Y-%m-%d"), "point": r.point,
                 "lower_80": r.q10, "upper_80": r.q90, "lower_95": r.q2_5, "upper_95": r.q97_5,
                 **{q: getattr(r, q) for q in FORECAST_QUANTILES}} for r in shown.itertuples()]
    assert doc["forecast"]["rows"] == expected  # exact floats: JSON round-trips them
    assert doc["forecast"]["widened"] == widened
    assert doc["model"]["version"] == 1 and doc["model"]["name"] == MODEL_NAME
    assert doc["last_complete_day"] == "2024-02-29" and doc["backend"] == "local"
    assert doc["groups"]["solana_forecasts"]["rows"] == len(rows) == 210
    assert doc["groups"]["solana"]["last_day"] == "2024-02-29" and doc["groups"]["solana"]["behind_days"] == 0
    assert [f for c in doc["charts"] for f in (c["narrow_file"], c["file"])] == [
        r for r in refs(out) if r.endswith(".png")]
    assert [c["page"] for c in doc["charts"]] == ["index"] + ["details"] * (len(doc["charts"]) - 1)


def test_the_embedded_json_is_forecast_json(shared):
    out = shared[0]
    text = (out / "forecast.json").read_text()
    inline = page(out).inline
    assert inline == text
    assert json.loads(inline) == json.loads(text)


def test_the_headline_shows_horizon_10_and_the_selector_offers_1_to_10(shared):
    out = shared[0]
    doc = json.loads((out / "forecast.json").read_text())
    row = doc["forecast"]["rows"][-1]
    text = (out / "index.html").read_text()
    parsed = page(out)
    last = doc["forecast"]["last_close"]
    assert parsed.ids["a-low"] == f"{row['lower_80']:,.2f}" and parsed.ids["a-high"] == f"{row['upper_80']:,.2f}"
    assert parsed.ids["a-pct"] == f"{row['lower_80'] / last - 1:+.1%} to {row['upper_80'] / last - 1:+.1%}"
    assert parsed.ids["a-target"] == row["target_day"]
    assert parsed.ids["a-95"] == f"{row['lower_95']:,.2f} to {row['upper_95']:,.2f} USDT"
    held = doc["held"]["10"]
    assert held["source"] == "backtest" and parsed.ids["a-held"] == (
        f"How often such ranges held: {held['coverage_80']:.1%} of {held['n']} times 10 days ahead, in the backtest "
        "(no published forecast counts yet).")
    options = re.findall(r'<option value="(\d+)"( selected)?>', text)
    assert [int(v) for v, _ in options] == list(range(1, 11))
    assert [int(v) for v, selected in options if selected] == [10]
    assert 'getElementById("forecast-data")' in text and "fetch(" not in text


def test_the_hindcast_scores_published_and_backtest_forecasts(shared):
    out, site_home = shared
    hindcast = json.loads((out / "forecast.json").read_text())["hindcast"]
    assert list(hindcast) == ["1", "5", "10"]
    assert hindcast["1"]["published"]["n"] == 20 and hindcast["10"]["published"]["n"] == 11
    assert hindcast["1"]["backtest"]["n"] == hindcast["10"]["backtest"]["n"] == 37
    rows, closes = store_forecasts(site_home), sol_closes(site_home)
    h1 = rows[(rows["horizon"] == 1) & rows["target_day"].isin(closes.index)]
    errors = (h1["point"] - h1["target_day"].map(closes)).abs()
    naive = (h1["forecast_day"].map(closes) - h1["target_day"].map(closes)).abs()
    assert hindcast["1"]["published"]["mae"] == pytest.approx(errors.mean())
    assert hindcast["1"]["published"]["naive_mae"] == pytest.approx(naive.mean())
    assert hindcast["1"]["published"]["last_target_day"] == "2024-02-29"


def test_the_verdict_follows_the_backtest(shared):
    out, site_home = shared
    doc = json.loads((out / "forecast.json").read_text())
    rel = LocalModelRegistry(site_home).production(MODEL_NAME).metrics["rel_mae_mean"]
    assert doc["model"]["metrics"]["rel_mae_mean"] == rel
    assert ("does not beat \"no change\"" in doc["verdict"]) == (rel >= 1)
    assert doc["verdict"] in html.unescape((out / "index.html").read_text())
    assert "Not financial advice" in (out / "index.html").read_text()


@pytest.mark.parametrize(("rel", "says"), [(1.02, "its average error is 2.0% larger than that of the forecast"),
                                           (1.0, "its average error is as large as that of the forecast"),
                                           (0.9, "The middle line beats \"no change\""),
                                           (None, "nothing is known")])
def test_verdict_wording(rel, says):
    assert says in document.verdict({"rel_mae_mean": rel})


@pytest.mark.parametrize(("coverage", "says"), [
    ((0.84, 0.975), "Its ranges held more often than they promise in the backtest: wider than they need to be."),
    ((0.81, 0.94), "Its ranges held about as often as they promise in the backtest."),
    ((0.70, 0.90), "Its ranges held less often than they promise in the backtest: expect misses more often."),
    ((0.85, 0.90), "its 80% ranges held more often than promised, its 95% ranges less."),
    ((None, 0.95), "How often its ranges held is not recorded, so read them with care."),
])
def test_without_band_scores_the_verdict_says_in_words_how_often_the_ranges_held(coverage, says):
    text = document.verdict({"rel_mae_mean": 1.0, "coverage_80_mean": coverage[0], "coverage_95_mean": coverage[1]})
    assert text.endswith(says)
    assert "%" not in text.replace("80%", "").replace("95%", "")  # the headline holds the figure, once


def scores(ours: float, **peers: float) -> dict:
    """Range scores where every score of a method is the given number (lower is better)."""
    return {name: {"winkler_80": v, "winkler_95": v * 1.5, "pinball": v / 10}
            for name, v in {"calibrated": ours, **peers}.items()}


def test_the_range_verdict_is_generated_from_the_scores_in_both_directions():
    losing = document.range_verdict(scores(1.012, fixed_band=1.0, ewma_band=1.1))
    assert losing.startswith("The ranges do no better than a band of fixed width: on the backtest's own scores they "
                             "do not beat a fixed-width band (the interval score of the 80% range 1.2% higher")
    assert "they beat an EWMA volatility band (the interval score of the 80% range 8.0% lower)" in losing
    assert "useful part" not in losing
    winning = document.range_verdict(scores(0.97, fixed_band=1.0, ewma_band=1.1))
    assert winning.startswith("The ranges are the useful part: on the backtest's own scores they beat a fixed-width "
                              "band (the interval score of the 80% range 3.0% lower)")


def test_the_range_verdict_names_every_band_peer_and_mixed_results():
    peers = scores(1.0, fixed_band=1.0, har_band=1.2)  # a peer the page has never heard of
    peers["fixed_band"]["pinball"] = 0.2  # ours are lower on pinball only
    text = document.range_verdict(peers)
    assert ("against a fixed-width band they are mixed (better by the pinball loss, worse by the interval score of "
            "the 80% range and the interval score of the 95% range)") in text
    assert "they beat a har band" in text
    assert document.range_verdict({"calibrated": scores(1.0)["calibrated"]}).startswith("The backtest scored no other")


def set_range_scores(home: Path, ours: float, spread: float = 0.005) -> None:
    """Make the production model's own ranges score `ours` times the fixed band's on every score and horizon,
    with bootstrap intervals `ours` ± `spread`, and leave the fixed band its only peer."""
    path = LocalModelRegistry(home).production(MODEL_NAME).path / "evaluation.json"
    evaluation = json.loads(path.read_text())
    methods = evaluation["distribution"]["methods"]
    for key in ("winkler_80", "winkler_95", "pinball"):
        methods["calibrated"][f"{key}_mean"] = methods["fixed_band"][f"{key}_mean"] * ours
        for mine, theirs in zip(methods["calibrated"]["per_horizon"], methods["fixed_band"]["per_horizon"],
                                strict=True):
            mine[key] = theirs[key] * ours
    interval = [ours, ours - spread, ours + spread]
    methods["calibrated"]["intervals"]["pinball_vs_fixed_band"] = interval
    methods["calibrated"]["intervals"]["winkler_80_vs_fixed_band"]["mean"] = interval
    for peer in ("ewma_band", "garch_t_band"):
        methods.pop(peer)
    path.write_text(json.dumps(evaluation))
    as_registered(LocalModelRegistry(home), MODEL_NAME, 1)


@pytest.mark.parametrize(("ours", "spread", "says", "never"), [
    (1.01, 0.005, "The ranges do no better than a band of fixed width", "useful part"),
    (0.98, 0.005, "The ranges are the useful part", "do no better"),
    (0.98, 0.03, "they cannot be told apart from a fixed-width band on one year of forecasts", "useful part"),
])
def test_the_page_says_whether_its_ranges_beat_the_fixed_band_by_its_own_scores(site_home, ours, spread, says,
                                                                                  never):
    set_range_scores(site_home, ours, spread)
    doc, pages = render_without_charts()
    main = pages[:pages.index("</html>")]
    assert says in doc["verdict"] and never not in doc["verdict"]
    assert says in main and never not in main
    assert doc["range_scores"]["calibrated"]["winkler_80_vs_fixed_band"] == pytest.approx(ours)


def test_text_from_the_registry_is_escaped(shared):
    out = shared[0]
    text = (out / "details.html").read_text()
    assert "test model &lt;b&gt;&amp;amp; friends&lt;/b&gt;" in text
    assert "<b>" not in text
    assert "\\u003cb\\u003e\\u0026amp; friends" in page(out).inline


def test_an_empty_store_renders_a_page_that_says_so(isolated, tmp_path):
    docs = tmp_path / "docs"
    assert build(docs) == 0
    doc = json.loads((docs / "forecast.json").read_text())
    assert doc["forecast"] is None and doc["model"] is None
    assert doc["groups"]["solana"]["rows"] == 0
    text = (docs / "index.html").read_text()
    assert "No forecast yet: the store holds no prices: run feature_backfill.py first." in text
    assert doc["verdict"] == ("No model is in production yet, and the store holds no prices: run feature_backfill.py "
                              "first.")
    parsed = page(docs)
    assert all((docs / ref).is_file() for ref in refs(docs))
    assert {r for r in refs(docs) if r.endswith(".png")} == chart_files(set(CHART_NAMES) - MODEL_CHARTS)
    assert parsed.inline == (docs / "forecast.json").read_text()
    assert not isolated.exists()  # reading an empty store creates nothing


def test_a_model_without_forecasts_yet(site_home):
    group = site_home / "feature_store" / f"solana_forecasts_v{FORECASTS.version}"
    shutil.rmtree(group)
    Ledger(group.parent).put(group.name, None)  # never written, as opposed to lost (which is refused)
    doc, index = render_without_charts()
    assert doc["forecast"] is None and doc["model"]["version"] == 1
    assert "No forecast yet" in index
    assert set(doc["hindcast"]["1"]) == {"backtest"}


def test_an_old_forecast_is_flagged(site_home, monkeypatch):
    monkeypatch.setenv("CRYPTOCAST_AS_OF", "2024-03-03")
    doc, index = render_without_charts()
    assert doc["forecast"]["days_old"] == 2
    assert "this forecast is 2 days old" in index


def test_older_model_versions_without_the_optional_artifacts(site_home, tmp_path):
    artifacts = LocalModelRegistry(site_home).production(MODEL_NAME).path
    for name in ("evaluation.json", "history.json", "backtest_forecasts.csv"):
        (artifacts / name).unlink()
    as_registered(LocalModelRegistry(site_home), MODEL_NAME, 1)
    docs = tmp_path / "docs"
    assert build(docs) == 0
    assert {p.name for p in docs.glob("*.png")} == chart_files(set(CHART_NAMES) - MODEL_CHARTS)
    hindcast = json.loads((docs / "forecast.json").read_text())["hindcast"]
    assert set(hindcast["1"]) == {"published"}
    assert all((docs / ref).is_file() for ref in refs(docs))


def test_a_version_evaluated_before_the_range_scores_builds_a_page_that_says_less(site_home, tmp_path):
    """evaluation.json of versions registered before issue 9: no `distribution`, no AutoETS."""
    artifacts = LocalModelRegistry(site_home).production(MODEL_NAME).path
    evaluation = json.loads((artifacts / "evaluation.json").read_text())
    del evaluation["distribution"], evaluation["models"]["ets"]
    (artifacts / "evaluation.json").write_text(json.dumps(evaluation))
    as_registered(LocalModelRegistry(site_home), MODEL_NAME, 1)
    docs = tmp_path / "docs"
    assert build(docs) == 0
    doc = json.loads((docs / "forecast.json").read_text())
    assert doc["range_scores"] is None
    assert {p.name for p in docs.glob("*.png")} == chart_files(set(CHART_NAMES) - {"range_scores"})
    assert "scored only how often its ranges held" in (docs / "details.html").read_text()
    assert "AutoETS" not in next(c["alt"] for c in doc["charts"] if c["file"] == "scoreboard.png")


def test_no_secret_reaches_any_output(site_home, tmp_path, monkeypatch, capsys):
    markers = ("crypto-key-MARKER-5f1c", "hopsworks-key-MARKER-9a2e")
    monkeypatch.setenv("CRYPTO_API_KEY", markers[0])
    monkeypatch.setenv("HOPSWORKS_API_KEY", markers[1])
    monkeypatch.setenv("CRYPTOCAST_BACKEND", "local")
    docs = tmp_path / "docs"
    assert build(docs) == 0
    files = [p for p in docs.rglob("*") if p.is_file()]
    assert len(files) == len(CHARTS) + 7  # both pages, forecast.json, the CSV, .nojekyll, the manifest and the lock
    for path in files:
        data = path.read_bytes()
        assert all(m.encode() not in data for m in markers), path.name
    captured = capsys.readouterr()
    assert all(m not in captured.out + captured.err for m in markers)


def test_re_running_with_another_horizon_replaces_its_chart(out, site_home):
    assert build(out, "--horizon", "3") == 0
    names = {p.name for p in out.glob("*.png")}
    assert {"hindcast_h3.png", "hindcast_h3-narrow.png"} <= names
    assert not {"hindcast_h5.png", "hindcast_h5-narrow.png"} & names
    assert list(json.loads((out / "forecast.json").read_text())["hindcast"]) == ["1", "3", "10"]
    assert not [p for p in out.iterdir() if p.name.startswith(".build-") or p.name.endswith(".tmp")]


@pytest.mark.parametrize("value", ["0", "11", "x"])
def test_a_horizon_outside_1_to_10_is_refused(site_home, tmp_path, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build(tmp_path / "docs", "--horizon", value)
    assert exit_info.value.code == 1  # a usage error is exit 1, one line (issue 20: exits are 0, 1, 130)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "from 1 to 10" in err[0]
    assert not (tmp_path / "docs").exists()


@pytest.mark.parametrize("where", ["under_a_file", "is_a_file"])
def test_an_unwritable_out_dir_is_one_line(site_home, tmp_path, capsys, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    target = blocker / "docs" if where == "under_a_file" else blocker
    assert build(target) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: plots: cannot write the site to {target}: ")
    assert blocker.read_text() == "not a directory"


DAMAGE = {
    "evaluation.json": lambda p: p.write_bytes(p.read_bytes()[:50]),
    "history.json": lambda p: p.write_text(json.dumps({"loss": ["low", "lower"]})),
    "backtest_forecasts.csv": lambda p: p.write_text("forecast_day,horizon\n2024-01-01,1\n"),
    "evaluation.json ": lambda p: p.write_text(json.dumps({"models": {"lstm": {"per_horizon": "none"}}})),
    "evaluation.json  ": lambda p: p.write_text(json.dumps(
        json.loads(p.read_text()) | {"distribution": {"methods": {"calibrated": {"pinball_mean": "low"}}}})),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_corrupt_model_artifact_is_one_line_and_keeps_the_previous_site(out, site_home, capsys, damage):
    before = snapshot(out)
    capsys.readouterr()
    artifact = LocalModelRegistry(site_home).production(MODEL_NAME).path / damage.strip()
    DAMAGE[damage](artifact)
    as_registered(LocalModelRegistry(site_home), MODEL_NAME, 1)  # registered so: past the registry's checksums
    assert build(out) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"error: plots: {artifact}: "), lines
    assert snapshot(out) == before
    assert {p.name for p in out.iterdir() if p.name.startswith(".")} == {".nojekyll", output.MANIFEST, output.LOCK}


def test_a_folder_of_the_users_is_refused_in_one_line_before_any_work(site_home, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "trend.png").write_bytes(b"my own chart")
    assert build(mine) == 1
    assert error_lines(capsys) == [f"error: plots: {mine} is not empty and was not written by plots.py (it has no "
                                   f"{output.MANIFEST}): choose an empty or new directory"]
    assert {p.name for p in mine.iterdir()} == {"trend.png"}


def test_plots_never_imports_tensorflow(site_home, tmp_path):
    code = (f"import sys, plots; rc = plots.main(['--out', {str(tmp_path / 'docs')!r}]); assert rc == 0, rc; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
    assert (tmp_path / "docs" / "scoreboard.png").is_file()
