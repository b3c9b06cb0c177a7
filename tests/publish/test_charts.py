"""Chart functions on plain frames: the edge cases a young or damaged store produces."""

from __future__ import annotations

import functools

import matplotlib.colors
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


def scored(source: str, horizon: int, n: int) -> pd.DataFrame:
    target = DAYS[-n:]
    return pd.DataFrame({"forecast_day": target - pd.Timedelta(days=horizon), "target_day": target, "horizon": horizon,
                         "point": np.arange(n) + 1.0, "naive": np.zeros(n), "actual": np.arange(n) * 2.0,
                         "source": source})


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
