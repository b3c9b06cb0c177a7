"""The training step: backtest, fit the production model, register it with its evidence.

The backtest decides whether the new version may replace production (registry promotion rule);
the production model itself is then fitted on every window, so it is as fresh as the data.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast import backtest, health, ranges
from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK, Windows, make_windows, read_feature_frame
from cryptocast.features import FORECAST_QUANTILES
from cryptocast.modeling import calibration
from cryptocast.modeling.forecasters import Drift, Ets, LstmForecaster, Naive, OriginalForecaster
from cryptocast.modeling.train import TrainConfig
from cryptocast.registry import INPUT_EXAMPLE, MODEL_NAME, ModelVersion, open_model_registry
from cryptocast.settings import Settings
from cryptocast.stores import open_feature_store

log = logging.getLogger(__name__)


def _metrics(doc: dict) -> dict:
    """The flat figures the registry compares and the status shows; the full report is an artifact."""
    models = doc["models"]
    ours = doc["distribution"]["methods"]["calibrated"]
    return {
        "rel_mae_mean": models["lstm"]["rel_mae_mean"],
        "mae_mean": models["lstm"]["mae_mean"],
        "rel_mae_by_horizon": [r["rel_mae"] for r in models["lstm"]["per_horizon"]],
        "baseline_rel_mae_mean": {name: m["rel_mae_mean"] for name, m in models.items() if name != "lstm"},
        "mae_reduction_vs_original": doc["mae_reduction_vs_original"],
        **{f"coverage_{pct}_mean": ours[f"coverage_{pct}_mean"] for pct in ("80", "90", "95")},
        **{f"coverage_{pct}_{name}": ours[f"coverage_{pct}_{name}_mean"] for pct in ("80", "95")
           for name in backtest.TERCILES},
        "coverage_80_by_horizon": [r["coverage_80"] for r in ours["per_horizon"]],
        "pinball_mean": ours["pinball_mean"],
        "interval_score_80_mean": ours["winkler_80_mean"],
        "interval_score_95_mean": ours["winkler_95_mean"],
        "interval_score_80_vs_fixed_band_h1_3": ours["winkler_80_vs_fixed_band_h1_3"],
        "interval_score_80_vs_fixed_band_mean": ours["winkler_80_vs_fixed_band_mean"],
        "backtest_origins": doc["origins"],
        **_range_metrics(doc["distribution"]),
    }


def _range_metrics(dist: dict) -> dict:
    """Which ranges are published and why, and how they stand against the peers with 90% intervals (issue 19).

    `range_method` is the fold winner (`ranges.rule`), `range_method_reason` one sentence on why; the
    `*_interval` pairs are the block-bootstrap 90% intervals of the scored year; `ranges_beat_fixed_band_h1_3`
    is true only when the interval of the 80% interval-score ratio at h = 1-3 lies wholly below 1.
    """
    methods = dist["methods"]
    ours = methods["calibrated"]["intervals"]
    choice = dist.get("choice") or {}
    ratio = ours["winkler_80_vs_fixed_band"]
    return {
        "range_method": choice.get("method"),
        "range_method_reason": choice.get("reason"),
        "range_method_folds": choice.get("folds"),
        "range_method_fold_pinball": choice.get("fold_pinball"),
        "range_method_fold_coverage_missed": {k: len(v) for k, v in (choice.get("fold_coverage_missed") or {}).items()},
        "peer_pinball_mean": {name: m["pinball_mean"] for name, m in methods.items() if name != "calibrated"},
        "peer_interval_score_80_vs_fixed_band_mean": {name: m["winkler_80_vs_fixed_band_mean"]
                                                      for name, m in methods.items() if name != "calibrated"},
        "peer_coverage_80_mean": {name: m["coverage_80_mean"] for name, m in methods.items() if name != "calibrated"},
        "peer_coverage_95_mean": {name: m["coverage_95_mean"] for name, m in methods.items() if name != "calibrated"},
        "pinball_vs_garch_t_band": (ours["pinball_vs_garch_t_band"] or [None])[0],
        "pinball_vs_garch_t_band_interval": (ours["pinball_vs_garch_t_band"] or [None])[1:],
        "pinball_vs_fixed_band": ours["pinball_vs_fixed_band"][0],
        "pinball_vs_fixed_band_interval": ours["pinball_vs_fixed_band"][1:],
        "interval_score_80_vs_fixed_band_h1_3_interval": ratio["h1_3"][1:],
        "interval_score_80_vs_fixed_band_mean_interval": ratio["mean"][1:],
        "ranges_beat_fixed_band_h1_3": ratio["h1_3"][2] < 1,
        **{f"coverage_{pct}_mean_interval": ours[f"coverage_{pct}"]["mean"][1:] for pct in ("80", "95")},
        **{f"coverage_{pct}_{t}_interval": ours[f"coverage_{pct}"][t][1:] for pct in ("80", "95")
           for t in backtest.TERCILES},
    }


def backtest_forecasts(bt: backtest.Backtest, quantiles: np.ndarray) -> pd.DataFrame:
    """Our model's out-of-sample forecast at every backtest origin beside naive and the outcome.

    Kept as an artifact so the dashboard's hindcast can show a year of honest forecasts from the
    day a model version is registered, instead of waiting for published forecasts to mature. The
    quantiles are the ones that would have been published then, from outcomes known then.
    """
    horizons = np.tile(np.arange(1, HORIZON + 1), len(bt.origins))
    origins = pd.DatetimeIndex(np.repeat(bt.origins.to_numpy(), HORIZON))
    rows = pd.DataFrame({"forecast_day": origins, "target_day": origins + pd.to_timedelta(horizons, unit="D"),
                         "horizon": horizons, "point": bt.forecasts[backtest.MODEL].ravel()})
    for i, name in enumerate(FORECAST_QUANTILES):
        rows[name] = quantiles[..., i].ravel()
    rows["naive"] = np.repeat(bt.last_close, HORIZON)
    rows["actual"] = bt.actual.ravel()
    return rows


def input_example(windows: Windows) -> pd.DataFrame:
    """The newest window the model was fitted on, unscaled, one row per day: what one input looks like.

    Stored as an artifact so a registry (Hopsworks' `input_example`) can show a reader the model's input.
    """
    last = windows.origins[-1]
    days = pd.date_range(end=last, periods=LOOKBACK, freq="D", name="day")
    return pd.DataFrame(windows.x[-1], columns=list(FEATURES), index=days).reset_index()


def _write_artifacts(directory: Path, model: LstmForecaster, dist: backtest.Distributions, doc: dict,
                     bt: backtest.Backtest, example: pd.DataFrame, inputs: dict) -> None:
    from cryptocast.modeling.portable import export_network

    model.fitted.model.save(directory / "model.keras")
    export_network(model.fitted.model, directory)
    (directory / "scaler.json").write_text(model.scaler.to_json())
    (directory / calibration.CALIBRATION_FILE).write_text(dist.state.to_json(str(bt.origins[-1].date())))
    (directory / "evaluation.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    (directory / "history.json").write_text(json.dumps(model.fitted.history, indent=2) + "\n")
    backtest_forecasts(bt, dist.quantiles["calibrated"]).to_csv(directory / "backtest_forecasts.csv", index=False,
                                                                date_format="%Y-%m-%d")
    example.to_csv(directory / INPUT_EXAMPLE, index=False, date_format="%Y-%m-%d")
    (directory / health.INPUT_PROFILE).write_text(json.dumps(inputs, indent=2, allow_nan=False) + "\n")


def train(settings: Settings) -> tuple[ModelVersion, bool]:
    """Backtest, fit on everything, register; returns the new version and whether it is production."""
    config = TrainConfig(**settings.model)
    frame = read_feature_frame(open_feature_store(settings), None, settings.last_complete_day)
    started = time.monotonic()
    choice = ranges.choose(frame, backtest.backtest_origins(frame, settings.backtest_days)[0], settings.refit_every)
    log.info("ranges: %s, chosen on folds before the backtest (%s): %s", choice.name, ", ".join(choice.folds),
             choice.reason)
    models = [Naive(), Drift(), Ets(), LstmForecaster(config), OriginalForecaster(config)]
    bt = backtest.walk_forward(frame, models, settings.backtest_days, settings.refit_every,
                               warmup_days=choice.config.window + HORIZON)
    dist = backtest.distributions(bt, frame.frame, choice.config, settings.refit_every)
    training_close = frame.frame["sol_close"].loc[: bt.origins[0]].dropna().to_numpy()
    doc = backtest.report(bt, training_close, dist, ranges.summary(choice))
    for line in backtest.summary_lines(doc):
        log.info("%s", line)
    log.info("backtest: %.0fs", time.monotonic() - started)

    windows = make_windows(frame)
    production = LstmForecaster(config)
    production.fit(frame, windows.origins)
    log.info("production fit: %d windows %s..%s, %d epochs, %.1fs, output kept at %.2f of the network's "
             "(0 = naive)", len(windows.origins), windows.origins[0].date(), windows.origins[-1].date(),
             production.fitted.epochs_run, production.fitted.seconds, production.shrink)
    metadata = {"features": list(FEATURES), "lookback": LOOKBACK, "horizon": HORIZON, "config": config.__dict__,
                "shrinkage": production.shrink,
                "training_window": {"first_origin": str(windows.origins[0].date()),
                                    "last_origin": str(windows.origins[-1].date()), "windows": len(windows.origins)},
                "data_through": str(settings.last_complete_day), "fear_greed_filled_days": frame.fear_greed_filled}
    with tempfile.TemporaryDirectory() as tmp:
        _write_artifacts(Path(tmp), production, dist, doc, bt, input_example(windows),
                         health.input_profile(frame.frame, (windows.origins[0], windows.origins[-1])))
        description = (f"{config.heads} x LSTM({config.units}) ensemble on {len(FEATURES)} scale-free features, "
                       f"15 days in, 10 out, calibrated quantiles; "
                       f"backtest rel. MAE vs naive {doc['models']['lstm']['rel_mae_mean']:.3f}")
        return open_model_registry(settings).register_and_promote(MODEL_NAME, Path(tmp), _metrics(doc),
                                                                  description, metadata)
