"""Chart functions on plain frames: the edge cases a young or damaged store produces."""

from __future__ import annotations

import functools

import matplotlib.colors
import matplotlib.dates as mdates
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cryptocast.publish import charts

DAYS = pd.date_range("2024-01-01", periods=40, freq="D")


def texts(fig: Figure) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def closes() -> pd.Series:
    return pd.Series(np.linspace(100, 139, len(DAYS)), index=DAYS)


def forecast_rows(origin: str = "2024-02-09") -> pd.DataFrame:
    day = pd.Timestamp(origin)
    horizons = np.arange(1, 11)
    point = np.full(10, 140.0)
    factors = {"q2_5": 0.9, "q5": 0.92, "q10": 0.95, "q25": 0.98, "q50": 1.0, "q75": 1.02, "q90": 1.05, "q95": 1.08,
               "q97_5": 1.1}
    return pd.DataFrame({"forecast_day": day, "target_day": day + pd.to_timedelta(horizons, unit="D"),
                         "horizon": horizons, "point": point, **{q: point * f for q, f in factors.items()},
                         "model_version": 1})


def scored(source: str, horizon: int, n: int, width: float = np.nan) -> pd.DataFrame:
    """`n` scored forecasts; with `width`, 80%/95% ranges of point -/+ width and 2 x width around each."""
    target = DAYS[-n:]
    point = np.arange(n) + 1.0
    ranges = {"q2_5": point - 2 * width, "q10": point - width, "q90": point + width, "q97_5": point + 2 * width}
    return pd.DataFrame({"forecast_day": target - pd.Timedelta(days=horizon), "target_day": target, "horizon": horizon,
                         "point": point, **ranges, "naive": np.zeros(n), "actual": np.arange(n) * 2.0,
                         "source": source})[list(charts.SCORED_COLUMNS)]


def is_placeholder(fig: Figure) -> bool:
    return all(not ax.axison for ax in fig.axes) and len(fig.axes) == 1


def test_png_bytes_are_a_png_and_the_same_for_the_same_chart():
    first = charts.png_bytes(charts.forecast_chart(closes(), forecast_rows()))
    second = charts.png_bytes(charts.forecast_chart(closes(), forecast_rows()))
    assert first.startswith(b"\x89PNG\r\n\x1a\n") and first == second


def test_forecast_chart_starts_the_bands_at_the_known_close():
    fig = charts.forecast_chart(closes(), forecast_rows())
    forecast_line = next(line for line in fig.axes[0].lines if line.get_label() == "forecast")
    assert list(forecast_line.get_ydata()) == [139.0] + [140.0] * 10  # the last close, then the 10 points
    assert not is_placeholder(fig)


def band_edges(band) -> tuple[np.ndarray, np.ndarray]:
    """The lower and upper edge of a fill_between band, each in x order (matplotlib draws lower, then upper back)."""
    vertices = band.get_paths()[0].vertices  # a closed path: start, lower edge, end, upper edge back, start
    n = (len(vertices) - 3) // 2
    return vertices[1:n + 1, 1], vertices[n + 2:2 * n + 2, 1][::-1]


def test_the_forecast_is_a_fan_of_the_headlines_ranges_labelled_on_its_last_day():
    rows = forecast_rows()
    fig = charts.forecast_chart(closes(), rows)
    ax = fig.axes[0]
    bands = {band.get_label(): band for band in ax.collections}
    assert list(bands) == ["95% range", "80% range"]  # the headline's and the table's; widest first, inner on top
    for label, (low, high) in (("95% range", ("q2_5", "q97_5")), ("80% range", ("q10", "q90"))):
        lower, upper = band_edges(bands[label])
        np.testing.assert_allclose(lower, [139.0, *rows[low]])  # each range grows from the known close
        np.testing.assert_allclose(upper, [139.0, *rows[high]])
    shades = [matplotlib.colors.to_rgb(band.get_facecolor()[0]) for band in bands.values()]
    assert [sum(rgb) for rgb in shades] == sorted((sum(rgb) for rgb in shades), reverse=True)  # darker inside
    hues = {round(matplotlib.colors.rgb_to_hsv(rgb)[0], 2) for rgb in shades}
    assert len(hues) == 1  # one hue
    last = rows.iloc[-1]
    assert {f"{last[c]:,.2f}" for c in ("q2_5", "q10", "q90", "q97_5")} <= set(texts(fig).split())
    assert not fig.legends and ax.get_legend() is None  # explained once in words under the chart instead
    left, right = (mdates.num2date(v).replace(tzinfo=None) for v in ax.get_xlim())
    forecast_share = (right - pd.Timestamp(rows["forecast_day"].iloc[0])) / (right - left)
    assert forecast_share > 0.55  # the forecast is the subject; the history is context


def test_a_forecast_published_before_quantiles_draws_its_two_ranges():
    rows = forecast_rows()
    rows[["q5", "q25", "q50", "q75", "q95"]] = np.nan  # what read_forecasts gives for a v1 row
    bands = [band.get_label() for band in charts.forecast_chart(closes(), rows).axes[0].collections]
    assert bands == ["95% range", "80% range"]


def test_forecast_chart_without_a_forecast_or_without_anything():
    assert "no forecast yet" in texts(charts.forecast_chart(closes(), None))
    empty = charts.forecast_chart(pd.Series(dtype=float), None)
    assert is_placeholder(empty) and "No SOL prices" in texts(empty)


def test_score_published_joins_outcomes_and_naive_and_drops_the_unscored():
    rows = charts.score_published(forecast_rows("2024-02-05"), closes())
    assert rows["target_day"].max() == DAYS[-1] and len(rows) == 4  # targets 02-06..02-09 are known
    assert rows["naive"].eq(closes()[pd.Timestamp("2024-02-05")]).all()
    assert rows["actual"].tolist() == closes().loc["2024-02-06":].tolist()
    assert rows["source"].eq("published").all()
    assert charts.score_published(forecast_rows("2024-03-01"), closes()).empty


def test_hindcast_with_nothing_scored_is_a_placeholder():
    for frame in (charts.empty_scored(), scored("published", 3, 10)):
        fig = charts.hindcast_chart(frame, 1)
        assert is_placeholder(fig) and "No scored forecasts yet" in texts(fig)
        charts.png_bytes(fig)


def test_hindcast_draws_errors_over_time_with_naive_as_an_area_the_model_line_cannot_hide():
    frame = pd.concat([scored("published", 1, 5), scored("backtest", 1, 30)], ignore_index=True)
    fig = charts.hindcast_chart(frame, 1)
    top, bottom = fig.axes
    errors = np.arange(5) + 1.0 - np.arange(5) * 2.0  # forecast - actual, not the price itself
    published_error = next(line for line in top.lines if line.get_label() == "forecast, published")
    np.testing.assert_allclose(published_error.get_ydata(), errors)
    assert len(bottom.lines) == 2  # the model's running MAE, per source; naive is not a line
    np.testing.assert_allclose(bottom.lines[0].get_ydata(), np.cumsum(np.abs(errors)) / np.arange(1, 6))
    naive_area = bottom.collections[0].get_paths()[0].vertices[:, 1]
    assert naive_area.max() == pytest.approx(max(np.cumsum(np.arange(5) * 2.0) / np.arange(1, 6)))
    assert bottom.collections[0].get_zorder() < bottom.lines[0].get_zorder()
    assert "naive (no change): its error, its MAE" in texts(fig)
    assert top.get_xlabel() == "" and bottom.get_xlabel() == "date (UTC)"  # the shared axis is labelled once
    summary = charts.hindcast_summary(frame, 1)
    assert summary["published"]["n"] == 5 and summary["backtest"]["n"] == 30
    assert summary["published"]["mae"] == pytest.approx(np.abs(errors).mean())
    assert summary["published"]["naive_mae"] == pytest.approx(np.mean(np.arange(5) * 2.0))


def test_the_track_record_counts_outcomes_inside_the_ranges_per_source():
    frame = pd.concat([scored("published", 1, 5, width=1.5), scored("backtest", 1, 30, width=4.0),
                       scored("backtest", 2, 30)], ignore_index=True)
    summary = charts.hindcast_summary(frame, 1)
    # outcome - point = i - 1 for the i-th forecast: inside +-1.5 for i <= 2, inside +-4 for i <= 5
    assert summary["published"] | {"mae": 0, "naive_mae": 0} == {
        "n": 5, "first_target_day": "2024-02-05", "last_target_day": "2024-02-09", "mae": 0, "naive_mae": 0,
        "ranged": 5, "coverage_80": 3 / 5, "coverage_95": 1.0}
    assert summary["backtest"]["coverage_80"] == 6 / 30 and summary["backtest"]["coverage_95"] == 10 / 30
    unranged = charts.hindcast_summary(frame, 2)["backtest"]
    assert unranged["ranged"] == 0 and unranged["coverage_80"] is None and unranged["coverage_95"] is None


def test_ranges_over_time_show_each_outcome_inside_or_outside_its_range():
    frame = pd.concat([scored("published", 1, 5, width=1.5), scored("backtest", 1, 30, width=4.0),
                       scored("backtest", 10, 30, width=4.0)], ignore_index=True)
    fig = charts.ranges_chart(frame, [1, 10])
    one_day, ten_days = fig.axes
    assert "1 day ahead, inside the 80% / 95% range: published 60% / 100%; backtest 20% / 33%" in texts(fig).replace(
        "\n", " ")
    inside_dots, outside_dots = one_day.collections[2].get_offsets(), one_day.collections[3].get_offsets()
    assert len(inside_dots) == 3 and len(outside_dots) == 2  # published: outcome - point = i - 1 against +-1.5
    assert list(inside_dots[:, 1]) == pytest.approx([(i * 2.0) / (i + 1.0) * 100 - 100 for i in range(3)])
    lower, upper = band_edges(one_day.collections[1])  # the published 80% range, as % around each point
    assert upper[0] == pytest.approx(1.5 / 1.0 * 100) and lower[-1] == pytest.approx(-1.5 / 5.0 * 100)
    assert "80% range, published" in texts(fig) and "outcome outside it" in texts(fig)
    assert "no published forecast has matured yet" not in texts(fig)
    assert ten_days.get_xlabel() == "date (UTC)"
    backtest_only = charts.ranges_chart(scored("backtest", 1, 30, width=4.0), [1])
    assert "no published forecast has matured yet" in texts(backtest_only)


def test_ranges_over_time_without_any_range_is_a_placeholder():
    for frame in (charts.empty_scored(), scored("backtest", 1, 30)):  # scored, but from before ranges were kept
        fig = charts.ranges_chart(frame, [1, 5, 10])
        assert is_placeholder(fig) and "No range has been judged yet" in texts(fig)


def evaluation(rel: list[float | None], intervals: bool) -> dict:
    doc = {"models": {"lstm": {"per_horizon": [{"horizon": h, "rel_mae": r} for h, r in enumerate(rel, 1)]},
                      "naive": {"per_horizon": [{"horizon": h, "rel_mae": 1.0} for h in range(1, 11)]}}}
    if intervals:
        doc["intervals"] = {level: {"per_horizon": [{"horizon": h, "coverage": 0.3} for h in range(1, 11)]}
                            for level in ("0.8", "0.95")}
    return doc


def test_scoreboard_with_and_without_intervals_and_with_nulls():
    full = charts.scoreboard_chart(evaluation([1.1] * 10, intervals=True))
    assert len(full.axes) == 2 and full.axes[1].get_ylim()[0] <= 0.25  # a coverage of 30% stays in view
    sparse = charts.scoreboard_chart(evaluation([None] * 5 + [0.9] * 5, intervals=False))
    assert len(sparse.axes) == 1
    lstm = next(line for line in sparse.axes[0].lines if line.get_label() == "our LSTM")
    assert np.isnan(lstm.get_ydata()[:5]).all()
    charts.png_bytes(sparse)


def test_the_scoreboard_shows_the_classical_peer_and_naive_as_the_line_at_1():
    doc = evaluation([1.0] * 10, intervals=False)
    doc["models"]["ets"] = {"per_horizon": [{"horizon": h, "rel_mae": 1.0 + h / 100} for h in range(1, 11)]}
    ax = charts.scoreboard_chart(doc).axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert list(lines) == ["naive (no change): 1 by definition", "our LSTM", "AutoETS (a classical forecaster)"]
    assert lines["our LSTM"].get_zorder() > lines["naive (no change): 1 by definition"].get_zorder()
    np.testing.assert_allclose(lines["AutoETS (a classical forecaster)"].get_ydata(), 1 + np.arange(1, 11) / 100)


def distribution(calibrated_ratio: float = 0.98) -> dict:
    """evaluation.json's `distribution` as training writes it, for three range methods."""
    def method(ratio: float, calm: float | None) -> dict:
        return {"per_horizon": [{"horizon": h, "winkler_80_vs_fixed_band": ratio} for h in range(1, 11)],
                "coverage_80_calm_mean": calm, "coverage_80_middle_mean": 0.78, "coverage_80_wild_mean": 0.93}
    return {"methods": {"calibrated": method(calibrated_ratio, 0.82), "fixed_band": method(1.0, 0.86),
                        "ewma_band": method(1.01, None)}}


def test_range_scores_compare_our_ranges_with_the_fixed_and_ewma_bands():
    fig = charts.range_scores_chart(distribution())
    top, bottom = fig.axes
    ratios = {line.get_label(): line.get_ydata() for line in top.lines}
    assert list(ratios) == ["our ranges", "fixed-width band", "EWMA volatility band"]
    np.testing.assert_allclose(ratios["our ranges"], [0.98] * 10)
    heights = [bar.get_height() for bar in bottom.patches]
    assert heights[:3] == [0.82, 0.78, 0.93] and heights[3:6] == [0.86, 0.78, 0.93]
    assert np.isnan(heights[6]) and heights[7:] == [0.78, 0.93]  # a null tercile is left out, not an error
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["calm days", "middle days", "wild days"]
    assert bottom.lines[0].get_ydata()[0] == 0.8  # the promise


def test_the_garch_peer_has_its_own_label_and_colour():
    dist = distribution()
    dist["methods"]["garch_t_band"] = dist["methods"]["ewma_band"]
    top = charts.range_scores_chart(dist).axes[0]
    lines = {line.get_label(): line.get_color() for line in top.lines}
    assert list(lines)[-1] == "GARCH(1,1)-t band"
    assert len(set(lines.values())) == len(lines)  # no two methods share a colour


def test_training_chart_marks_the_kept_epoch_and_handles_no_history():
    fig = charts.training_chart({"loss": [3, 2, 1, 0.5], "val_loss": [3, 1, 2, 2.5]})
    assert "kept: epoch 2" in [line.get_label() for line in fig.axes[0].lines]
    assert is_placeholder(charts.training_chart({}))
    assert not is_placeholder(charts.training_chart({"loss": [1.0, 0.5]}))


def market(n: int, with_fear_greed: bool = True) -> pd.DataFrame:
    days = pd.date_range("2023-01-01", periods=n, freq="D")
    fng = pd.Series(np.arange(n) % 100 + 1.0, index=days) if with_fear_greed else pd.Series(dtype=float)
    sol, btc = pd.Series(np.arange(n) + 10.0, index=days), pd.Series(np.arange(n) * 3 + 5.0, index=days)
    return charts.market_frame(sol, btc, fng)


def test_market_charts_on_empty_and_partial_data():
    empty = market(0)
    for draw in (charts.trend_chart, charts.correlation_chart, lambda m: charts.fear_greed_chart(m["Fear & Greed"])):
        assert is_placeholder(draw(empty))
    no_fng = market(30, with_fear_greed=False)
    trend = charts.trend_chart(no_fng)
    assert [line.get_label() for line in trend.axes[0].lines][:2] == ["SOL", "BTC"]
    charts.png_bytes(charts.correlation_chart(no_fng))


def test_market_charts_use_the_last_year_only():
    trend = charts.trend_chart(market(500), days=365)
    sol = trend.axes[0].lines[0]
    assert len(sol.get_xdata()) == 365 and sol.get_ydata()[0] == 100
    heatmaps = charts.correlation_chart(market(500))
    assert "2023-05-16..2024-05-14" in texts(heatmaps)
    assert "-0.00" not in texts(heatmaps)


def test_scoreboard_is_linear_around_1_and_names_the_original_model_instead_of_squashing_the_axis():
    doc = evaluation([1.02] * 9 + [1.05], intervals=True)
    doc["models"]["drift"] = {"per_horizon": [{"horizon": h, "rel_mae": 1.0 + h / 100} for h in range(1, 11)]}
    doc["models"]["original"] = {"per_horizon": [{"horizon": h, "rel_mae": 2.0 + h / 10} for h in range(1, 11)]}
    fig = charts.scoreboard_chart(doc)
    top = fig.axes[0]
    assert top.get_yscale() == "linear"
    low, high = top.get_ylim()
    assert low < 1 < high <= 1.2  # the drawn models fill the axis
    assert "the original system's model" not in [line.get_label() for line in top.lines]
    assert "the original system's model: 2.5× naive's error on average, up to 3.0×" in texts(fig).replace("\n", " ")
    assert [ax.get_xlabel() for ax in fig.axes] == ["days ahead", "days ahead"]


def test_trend_keeps_fear_and_greed_on_its_own_0_to_100_scale():
    frame = market(400)
    fig = charts.trend_chart(frame, days=365)
    prices, fear_greed = fig.axes
    assert [line.get_label() for line in prices.lines][:2] == ["SOL", "BTC"]
    window = frame.iloc[-365:]
    np.testing.assert_allclose(fear_greed.lines[0].get_ydata(), window["Fear & Greed"].to_numpy())
    assert fear_greed.get_ylim() == (0, 100)


def test_correlation_is_of_daily_changes_only():
    frame = market(400)
    fig = charts.correlation_chart(frame, days=365)
    assert len(fig.axes) == 1
    window = frame.iloc[-365:]
    expected = window["SOL"].pct_change().corr(window["BTC"].pct_change())
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert f"{expected:.2f}" in cells
    assert "levels" not in texts(fig)


def contrast(color: str) -> float:
    """WCAG contrast ratio of a colour against white."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = matplotlib.colors.to_rgb(color)
    luminance = 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    return 1.05 / (luminance + 0.05)


@functools.cache
def every_chart(size: charts.Size) -> dict[str, Figure]:
    """One of each chart (and a placeholder) at `size`, drawn once for the tests that only inspect them."""
    frame = pd.concat([scored("published", 1, 5), scored("backtest", 1, 30)], ignore_index=True)
    return {
        "forecast": charts.forecast_chart(closes(), forecast_rows(), size),
        "hindcast": charts.hindcast_chart(frame, 1, size),
        "scoreboard": charts.scoreboard_chart(evaluation([1.1] * 10, intervals=True), size),
        "ranges": charts.ranges_chart(pd.concat([scored("published", h, 5, width=1.5) for h in (1, 5, 10)]), [1, 5, 10],
                                      size),
        "range_scores": charts.range_scores_chart(distribution(), size),
        "training": charts.training_chart({"loss": [3, 2, 1], "val_loss": [3, 1, 2]}, size),
        "trend": charts.trend_chart(market(400), 365, size),
        "correlation": charts.correlation_chart(market(400), 365, size),
        "fear_greed": charts.fear_greed_chart(market(400)["Fear & Greed"], size),
        "placeholder": charts.hindcast_chart(charts.empty_scored(), 5, size),
    }


def test_every_text_on_white_has_4_5_to_1_contrast():
    for name, fig in every_chart(charts.NARROW).items():
        heatmap_cells = set(fig.axes[0].texts) if name == "correlation" else set()  # on coloured cells
        for text in fig.findobj(matplotlib.text.Text):
            if text.get_text().strip() and text not in heatmap_cells:
                assert contrast(text.get_color()) >= 4.5, (name, text.get_text(), text.get_color())


@pytest.mark.parametrize("size", charts.SIZES, ids=lambda s: s.name)
def test_no_text_is_smaller_than_the_size_allows(size):
    """Fonts are in pt = CSS px at the design width; narrow charts on a 390 px phone show slightly larger."""
    for name, fig in every_chart(size).items():
        rendered = charts.render(lambda _size, fig=fig: fig, size)
        assert rendered.width == size.width * charts.SCALE, name
        assert rendered.smallest_text_px >= size.small * charts.SCALE, name
        assert rendered.smallest_text_px / charts.SCALE >= 11, name


@pytest.mark.parametrize("size", charts.SIZES, ids=lambda s: s.name)
def test_nothing_drawn_runs_off_the_chart(size):
    """Titles, labels, ticks and legends all inside the figure (its tight box is in inches)."""
    for name, fig in every_chart(size).items():
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        drawn = fig.get_tightbbox(canvas.get_renderer())
        width, height = fig.get_size_inches()
        slack = 1 / charts.DPI  # a pixel
        assert drawn.x0 >= -slack and drawn.y0 >= -slack, (name, drawn.bounds)
        assert drawn.x1 <= width + slack and drawn.y1 <= height + slack, (name, drawn.bounds, (width, height))
