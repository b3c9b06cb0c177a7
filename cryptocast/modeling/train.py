"""Fitting the Keras networks: ours, and a faithful re-creation of the original system's.

TensorFlow is imported inside these functions only: the daily inference path and most tests
never pay its 11-19 s import.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from cryptocast.modeling.quiet_import import import_keras

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Sizes and schedule; every field is a setting (see Settings.train_config)."""

    units: int = 32
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 8
    validation_fraction: float = 0.2
    seed: int = 42


@dataclass
class Fitted:
    model: object  # a keras.Model
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    seconds: float = 0.0


def _keras():
    keras = import_keras()
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    return keras


def lstm_network(config: TrainConfig, lookback: int, n_features: int, horizon: int):
    """Ours: one LSTM, dropout, a direct multi-output head (all 10 horizons at once, not recursive)."""
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    return keras.Sequential([
        keras.Input((lookback, n_features)),
        keras.layers.LSTM(config.units),
        keras.layers.Dropout(config.dropout),
        keras.layers.Dense(horizon),
    ])


def original_network(config: TrainConfig, lookback: int, n_features: int, horizon: int):
    """The original system's model: LSTM(30) -> Dense(10, relu) -> Dense(10), on MinMax-scaled levels."""
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    return keras.Sequential([
        keras.Input((lookback, n_features)),
        keras.layers.LSTM(30),
        keras.layers.Dense(10, activation="relu"),
        keras.layers.Dense(horizon),
    ])


def purged_split(n: int, fraction: float, gap: int) -> tuple[slice, slice]:
    """Time-ordered train/validation split with `gap` windows dropped between them.

    Windows `gap` apart share target days, so without the gap validation would peek at training
    targets and early stopping would stop too late.
    """
    n_val = max(1, int(round(n * fraction)))
    return slice(0, max(1, n - n_val - gap)), slice(n - n_val, n)


def fit(model, x: np.ndarray, y: np.ndarray, config: TrainConfig, loss: str, gap: int) -> Fitted:
    """Train with early stopping on a purged, time-ordered validation tail; keep the best epoch."""
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    train, val = purged_split(len(x), config.validation_fraction, gap)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss)
    stop = keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True)
    started = time.monotonic()
    history = model.fit(x[train], y[train], validation_data=(x[val], y[val]), epochs=config.epochs,
                        batch_size=config.batch_size, shuffle=True, callbacks=[stop], verbose=0)
    seconds = time.monotonic() - started
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return Fitted(model, curves, len(curves.get("loss", [])), seconds)


def predict(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x.astype("float32"), training=False), dtype=float)
