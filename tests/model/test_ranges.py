"""Which ranges training publishes (cryptocast.ranges): the rule, and that the choice sees only the folds
before the scored year (no TensorFlow)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cryptocast import backtest, ranges
from cryptocast.dataset import build_features, make_windows

from fakeapi import synthetic_history


def scores(pinball: float, missed: int = 0) -> dict:
    return {"pinball": pinball, "missed": [f"80% h{h + 1}" for h in range(missed)], "checks": 28}


CANDIDATES = ["blend", "term", "garch", "fixed"]


def test_the_lowest_pinball_among_those_whose_coverage_holds_wins():
    name, reason = ranges.rule({"blend": scores(1.40, missed=1), "term": scores(1.50), "garch": scores(1.45),
                                "fixed": scores(1.60, missed=9)}, CANDIDATES)
    assert name == "garch"
    assert reason.startswith("lowest mean pinball loss on the folds, 1.45") and "blend 1.4 (misses 1)" in reason


def test_when_no_coverage_holds_everywhere_the_fewest_misses_decide():
    name, reason = ranges.rule({"blend": scores(1.40, missed=2), "term": scores(1.50, missed=1),
                                "garch": scores(1.45, missed=1), "fixed": scores(1.60, missed=5)}, CANDIDATES)
    assert name == "garch" and "misses the fewest (1 of 28: 80% h1)" in reason


def test_a_market_aware_winner_no_better_than_the_fixed_band_gives_way_to_it():
    name, reason = ranges.rule({"blend": scores(1.62), "term": scores(1.61), "garch": scores(1.70),
                                "fixed": scores(1.61, missed=3)}, CANDIDATES)
    assert name == "fixed"
    assert "the best market-aware candidate, term" in reason and "the fixed band is published" in reason


@pytest.fixture(scope="module")
def frame():
    history = synthetic_history("2021-01-01", 820, seed=5)
    return build_features(history["solana"], history["bitcoin"], history["fear_greed"])


@pytest.mark.slow
def test_the_choice_sees_only_outcomes_before_the_scored_year(frame, monkeypatch):
    monkeypatch.setattr(backtest, "BOOTSTRAP_REPS", 100)  # the intervals' precision is not what is tested here
    first_scored = make_windows(frame).origins[-100]
    choice = ranges.choose(frame, first_scored, 30)
    assert choice.name in ranges.CANDIDATES and choice.config == ranges.CANDIDATES[choice.name]
    assert set(choice.scores) == {*ranges.CANDIDATES, "fixed_band", "ewma_band", "garch_t_band"}
    last = pd.Timestamp(choice.folds[-1].split("..")[1].split(" ")[0])
    assert last + pd.Timedelta(days=10) < first_scored
    later = frame.frame.copy()
    later.loc[first_scored:, ["sol_close", "sol_high"]] *= 3  # a scored year nothing like the past
    later.loc[first_scored:, ["sol_log_return", "sol_log_range"]] *= 3
    again = ranges.choose(type(frame)(**{**frame.__dict__, "frame": later}), first_scored, 30)
    assert again.name == choice.name and json.dumps(again.scores) == json.dumps(choice.scores)  # NaN == NaN here


def test_too_short_a_history_keeps_the_default(frame):
    choice = ranges.choose(frame, make_windows(frame).origins[300], 30)
    assert choice.name == ranges.DEFAULT and choice.scores == {} and "too little history" in choice.reason
