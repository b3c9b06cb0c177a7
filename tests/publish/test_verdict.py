"""The ranges' verdict by the backtest's bootstrap intervals (issue 19): a claim only when the interval excludes 1."""

from __future__ import annotations

import re

import pytest

from cryptocast.publish import document


def scores(ours: float, intervals: dict[str, list[float]], **peers: float) -> dict:
    """Range scores where every point score of a method is the given number, and ours carry `intervals`."""
    out = {name: {"winkler_80": v, "winkler_95": v * 1.5, "pinball": v / 10, "intervals": {}}
           for name, v in {"calibrated": ours, **peers}.items()}
    out["calibrated"]["intervals"] = intervals
    return out


BOTH = "the pinball loss and the interval score of the 80% range"


def test_ours_beat_a_peer_only_when_every_interval_lies_below_one():
    text = document.range_verdict(scores(0.97, {"pinball_vs_fixed_band": [0.97, 0.95, 0.99],
                                                 "winkler_80_vs_fixed_band": [0.96, 0.93, 0.995],
                                                 "pinball_vs_garch_t_band": [0.98, 0.96, 0.999]},
                                         fixed_band=1.0, garch_t_band=1.0))
    assert text.startswith(f"The ranges are the useful part: on the backtest's own scores they beat a fixed-width band "
                           f"(by {BOTH}, every 90% interval below 1; the pinball loss 3.0% lower, 90% interval 5.0% "
                           f"lower to 1.0% lower)")
    assert "they beat a GARCH(1,1)-t band (by the pinball loss, every 90% interval below 1)" in text


def test_ours_do_worse_only_when_every_interval_lies_above_one():
    text = document.range_verdict(scores(1.05, {"pinball_vs_fixed_band": [1.05, 1.01, 1.09],
                                                 "winkler_80_vs_fixed_band": [1.04, 1.002, 1.08]}, fixed_band=1.0))
    assert text.startswith(f"The ranges do no better than a band of fixed width: on the backtest's own scores they do "
                           f"worse than a fixed-width band (by {BOTH}, every 90% interval above 1; the pinball loss "
                           f"5.0% higher, 90% interval 1.0% higher to 9.0% higher)")
    assert "useful part" not in text and "cannot be told apart" not in text


def test_an_interval_that_holds_one_cannot_tell_the_two_apart_even_when_the_points_are_lower():
    # the point scores alone (0.99 of the fixed band's on every score) would call this a win
    text = document.range_verdict(scores(0.99, {"pinball_vs_fixed_band": [0.998, 0.990, 1.007],
                                                 "winkler_80_vs_fixed_band": [0.9979, 0.985, 1.011]}, fixed_band=1.0))
    assert "useful part" not in text and "they beat" not in text
    assert (f"they cannot be told apart from a fixed-width band on one year of forecasts (by {BOTH}, a 90% interval "
            f"holds 1; the pinball loss 0.2% lower, 90% interval 1.0% lower to 0.7% higher)") in text
    figures = re.findall(r"\d+\.\d+%?", text)
    assert figures == ["0.2%", "1.0%", "0.7%"]  # the ratio and its interval once, at the page's 0.1%


def test_clear_on_one_score_and_unclear_on_the_other_is_no_win():
    text = document.range_verdict(scores(0.97, {"pinball_vs_fixed_band": [0.97, 0.95, 0.99],
                                                 "winkler_80_vs_fixed_band": [0.99, 0.97, 1.01]}, fixed_band=1.0))
    assert "cannot be told apart from a fixed-width band" in text and "useful part" not in text


def test_opposite_clear_verdicts_on_two_scores_are_mixed():
    text = document.range_verdict(scores(1.0, {"pinball_vs_fixed_band": [0.97, 0.95, 0.99],
                                                "winkler_80_vs_fixed_band": [1.03, 1.01, 1.05]}, fixed_band=1.0))
    assert f"against a fixed-width band they are mixed (by {BOTH}, one 90% interval below 1 and one above" in text


def test_a_peer_without_an_interval_is_reported_but_never_beaten():
    text = document.range_verdict(scores(0.9, {"pinball_vs_fixed_band": [0.97, 0.95, 0.99]},
                                         fixed_band=1.0, ewma_band=1.0))
    assert "against an EWMA volatility band the backtest gives no interval, so no claim" in text
    assert not text.startswith("The ranges are the useful part")


@pytest.mark.parametrize("shape", ["flat", "by_horizon"])
def test_range_scores_carry_the_reports_ratio_intervals(shape):
    winkler = [0.998, 0.985, 1.011]
    report = {"pinball_vs_fixed_band": [0.998, 0.990, 1.007], "pinball_vs_garch_t_band": [0.986, 0.974, 0.998],
              "winkler_80_vs_fixed_band": winkler if shape == "flat" else
              {"h1_3": [0.99, 0.97, 1.0], "mean": winkler, "by_horizon": [winkler] * 10},
              "coverage_80": {"mean": [0.82, 0.78, 0.86]}}
    evaluation = {"distribution": {"methods": {"calibrated": {"per_horizon": [], "intervals": report},
                                               "fixed_band": {"per_horizon": []}}}}
    got = document.range_scores(evaluation)
    assert got["calibrated"]["intervals"] == {"pinball_vs_fixed_band": [0.998, 0.990, 1.007],
                                              "pinball_vs_garch_t_band": [0.986, 0.974, 0.998],
                                              "winkler_80_vs_fixed_band": winkler}
    assert got["fixed_band"]["intervals"] == {}
