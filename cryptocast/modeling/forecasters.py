"""Everything that makes a 10-day SOL price forecast from the feature view, behind one interface.

Ours (an LSTM on scale-free features predicting log returns), and the yardsticks every report
measures it against: naive persistence, random walk with drift, and the original system's model.
All return price forecasts of shape (n_origins, HORIZON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK, FeatureFrame, Windows, make_windows
from cryptocast.evaluation import diebold_mariano
from cryptocast.modeling.portable import CorruptModelError
from cryptocast.modeling.train import Fitted, TrainConfig

LEVELS = ("sol_close", "sol_volume", "btc_close", "btc_volume", "fear_greed_raw")


def select(windows: Windows, origins: pd.DatetimeIndex) -> Windows:
    """The windows at exactly these origins (all must exist)."""
    position = pd.Index(windows.origins).get_indexer(origins)
    if (position < 0).any():
        raise ValueError(f"no complete window at {origins[position < 0][0].date()}")
    return Windows(windows.x[position], windows.y[position], windows.origins[position],
                   windows.last_close[position])


class Forecaster(Protocol):
    """Fitted on the windows known at a refit, then asked for forecasts at later origins.

    An optional `refit_blocks` attribute (default 1) makes the backtest refit it only every that
    many blocks, keeping its previous fit in between.
    """

    name: str

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None: ...

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray: ...


class Naive:
    """Tomorrow, and every day after, looks like today: the bar any forecast must clear."""

    name = "naive"

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        pass

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        close = frame.frame["sol_close"].reindex(origins).to_numpy(dtype=float)
        return np.repeat(close[:, None], HORIZON, axis=1)


class Drift:
    """Random walk with drift: the mean daily log return seen so far, compounded h days."""

    name = "drift"

    def __init__(self) -> None:
        self.mu = 0.0

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        returns = frame.frame["sol_log_return"].loc[: origins.max()]
        self.mu = float(returns.mean())

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        return Naive().predict(frame, origins) * np.exp(self.mu * np.arange(1, HORIZON + 1))


class Ets:
    """A classical forecaster a user would pick instead: statsforecast's AutoETS on log closes.

    Refitted (model selection and parameters) at each refit on the closes known then; at each
    origin the fitted model is run forward over the closes up to that origin, without re-estimating.
    A price hole restarts the series after it: ETS needs a contiguous one.
    """

    name = "ets"

    def __init__(self) -> None:
        self.model = None

    @staticmethod
    def _log_closes(frame: FeatureFrame, last: pd.Timestamp) -> np.ndarray:
        closes = frame.frame["sol_close"].loc[:last]
        holes = np.flatnonzero(closes.isna().to_numpy())
        return np.log(closes.iloc[holes[-1] + 1 if len(holes) else 0 :].to_numpy(dtype=float))

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        from statsforecast.models import AutoETS

        known = origins.max() + pd.Timedelta(days=HORIZON)  # the last close these windows' targets reveal
        self.model = AutoETS(season_length=1).fit(self._log_closes(frame, known))

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        return np.exp(np.stack([self.model.forward(self._log_closes(frame, origin), h=HORIZON)["mean"]
                                for origin in origins]))


@dataclass
class Scaler:
    """Affine input/target scaling fitted on training windows only, stored as plain JSON."""

    kind: str  # "standard" (ours) or "minmax" (the original's)
    features: list[str]
    x_offset: list[float]
    x_scale: list[float]
    y_offset: list[float] = field(default_factory=list)
    y_scale: list[float] = field(default_factory=list)

    def x(self, x: np.ndarray) -> np.ndarray:
        return (x - np.asarray(self.x_offset)) / np.asarray(self.x_scale)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: Path) -> Scaler:
        try:
            data = json.loads(path.read_text())
            scaler = cls(**data)
            arrays = [scaler.x_offset, scaler.x_scale, scaler.y_offset, scaler.y_scale]
            if not all(np.isfinite(np.asarray(a, dtype=float)).all() for a in arrays):
                raise ValueError("non-finite parameter")
            lengths = {len(scaler.x_offset), len(scaler.x_scale)}, {len(scaler.y_offset), len(scaler.y_scale)}
            if lengths != ({len(scaler.features)}, {HORIZON}):
                raise ValueError("parameter lengths do not match the features and the horizon")
        except (OSError, ValueError, TypeError) as exc:
            raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
        return scaler


def _safe(scale: np.ndarray) -> np.ndarray:
    return np.where(scale > 0, scale, 1.0)


def standard_scaler(data: Windows) -> Scaler:
    """Input mean/std and target std from these (training) windows only."""
    rows = data.x.reshape(-1, data.x.shape[-1])
    return Scaler("standard", list(FEATURES), rows.mean(0).tolist(), _safe(rows.std(0)).tolist(),
                  [0.0] * HORIZON, _safe(data.y.std(0)).tolist())


SHRINK_GRID = np.linspace(0.0, 1.0, 21)


def shrinkage(y: np.ndarray, predicted: np.ndarray, scale: np.ndarray, significance: float = 0.05) -> float:
    """The one factor in [0, 1] on the network's output that minimises validation MAE over all horizons,
    or 0 unless that beats naive persistence significantly on the validation tail.

    Fitted on the validation tail only (never the test period). One factor for every horizon, so it
    cannot pick a different number from noise at each horizon and make the path zig-zag. Errors
    are divided by each horizon's target scale so every horizon counts alike. The best factor is
    kept only if a one-sided Diebold-Mariano test (per-window mean error, lag HORIZON - 1 for the
    overlapping windows) says it beats the factor 0, naive persistence, at `significance`: a
    network with no demonstrable skill is made to say so instead of adding noise to persistence.
    """
    errors = (np.abs(y[None] - SHRINK_GRID[:, None, None] * predicted[None]) / scale).mean(axis=2)  # (grid, n)
    best = int(errors.mean(axis=1).argmin())
    stat, p_value = diebold_mariano(errors[best], errors[0], h=y.shape[1])
    return float(SHRINK_GRID[best]) if np.isfinite(stat) and stat < 0 and p_value / 2 < significance else 0.0


def steady_path(log_returns: np.ndarray) -> np.ndarray:
    """The closest path (least squares, per row) that turns at most once over the horizons.

    Projected onto a*h + b*h**2: its step into day h, a + b*(2h - 1), is linear in h, so it changes
    sign at most once from the origin (h = 0, the last close) on. Each step is then clamped to that
    sign on the floats too, so rounding cannot add a wiggle. Shape (n, H) or (H,) in, same out.
    """
    rows = np.asarray(log_returns, dtype=float).reshape(-1, np.shape(log_returns)[-1])
    h = np.arange(1, rows.shape[1] + 1, dtype=float)
    a, b = np.linalg.lstsq(np.stack([h, h**2], axis=1), rows.T, rcond=None)[0][:, :, None]
    path = a * h + b * h**2
    rising = a + b * (2 * h - 1) >= 0  # computed monotonically in h, so its sign flips at most once too
    previous = np.zeros(len(rows))
    for k in range(len(h)):
        path[:, k] = np.where(rising[:, k], np.maximum(path[:, k], previous), np.minimum(path[:, k], previous))
        previous = path[:, k]
    return path.reshape(np.shape(log_returns))


class LstmForecaster:
    """Ours: log returns in, log returns out, scaled by training std without centring.

    Not centring the targets means an output of zero is the naive forecast: a network that has
    learned nothing falls back to persistence instead of to the training period's trend. The
    network is an ensemble of heads (`train.lstm_network`) merged into one average network; the
    validation-fitted shrinkage is folded into the stored target scale, and the output path is
    made steady (`steady_path`), here and in daily inference alike.
    """

    name = "lstm"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.scaler: Scaler | None = None
        self.fitted: Fitted | None = None
        self.shrink = 1.0

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        from cryptocast.modeling import train

        data = select(make_windows(frame), origins)
        self.scaler = standard_scaler(data)
        scale = np.asarray(self.scaler.y_scale)
        model = train.lstm_network(self.config, LOOKBACK, len(FEATURES), HORIZON)
        x, y = self.scaler.x(data.x), data.y / scale
        self.fitted = train.fit(model, x, np.tile(y, (1, self.config.heads)), self.config, "mae", gap=HORIZON)
        self.fitted.model = train.merge_heads(self.fitted.model, self.config, HORIZON)
        _, val = train.purged_split(len(x), self.config.validation_fraction, HORIZON)
        predicted = steady_path(train.predict(self.fitted.model, x[val]) * scale)
        self.shrink = shrinkage(data.y[val], predicted, scale)
        self.scaler.y_scale = (scale * self.shrink).tolist()

    def predict_log_returns(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        from cryptocast.modeling import train

        data = select(make_windows(frame, require_targets=False), origins)
        return steady_path(train.predict(self.fitted.model, self.scaler.x(data.x)) * np.asarray(self.scaler.y_scale))

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        return Naive().predict(frame, origins) * np.exp(self.predict_log_returns(frame, origins))


class OriginalForecaster:
    """The original system's model, re-created: price levels, MinMax scaling, LSTM(30)-Dense(10, relu)-Dense(10).

    The slowest fit in the backtest (it keeps improving for dozens of epochs) and a yardstick several
    times worse than naive, so the walk-forward refits it every third block only (`refit_blocks`).
    """

    name = "original"
    refit_blocks = 3

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.scaler: Scaler | None = None
        self.model = None

    def fit(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> None:
        from cryptocast.modeling import train

        data = select(make_windows(frame, LEVELS), origins)
        rows = data.x.reshape(-1, data.x.shape[-1])
        lo, hi = rows.min(0), rows.max(0)
        self.scaler = Scaler("minmax", list(LEVELS), lo.tolist(), _safe(hi - lo).tolist(),
                             [float(lo[0])] * HORIZON, [float(_safe(hi - lo)[0])] * HORIZON)
        prices = data.last_close[:, None] * np.exp(data.y)
        y = (prices - np.asarray(self.scaler.y_offset)) / np.asarray(self.scaler.y_scale)
        model = train.original_network(self.config, LOOKBACK, len(LEVELS), HORIZON)
        self.model = train.fit(model, self.scaler.x(data.x), y, self.config, "mse", gap=HORIZON).model

    def predict(self, frame: FeatureFrame, origins: pd.DatetimeIndex) -> np.ndarray:
        from cryptocast.modeling import train

        data = select(make_windows(frame, LEVELS, require_targets=False), origins)
        scaled = train.predict(self.model, self.scaler.x(data.x))
        return scaled * np.asarray(self.scaler.y_scale) + np.asarray(self.scaler.y_offset)
