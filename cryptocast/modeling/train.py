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
    heads: int = 4
    dropout: float = 0.2
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3
    patience: int = 4
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


def _head_masks(config: TrainConfig, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Which weights connect a head to itself: the LSTM's recurrent kernel and the Dense kernel, 1 or 0.

    Keras lays an LSTM's kernels out gate-major (input, forget, cell, output gates of `heads * units`
    each); head k owns units k*units..(k+1)*units-1 in every gate, and outputs k*horizon..(k+1)*horizon-1.
    """
    heads, units = config.heads, config.units
    unit_head = np.arange(heads * units) // units
    recurrent = (unit_head[:, None] == np.tile(unit_head, 4)[None, :]).astype("float32")
    dense = (unit_head[:, None] == (np.arange(heads * horizon) // horizon)[None, :]).astype("float32")
    return recurrent, dense


def lstm_network(config: TrainConfig, lookback: int, n_features: int, horizon: int):
    """Ours: `heads` independent LSTM(units) -> Dropout -> Dense(horizon) heads, run as one wide network.

    One LSTM(heads * units) whose recurrent kernel is held block-diagonal, and one Dense(heads * horizon)
    held block-diagonal, so head k sees only its own units: trained against the target repeated per
    head, each head's loss depends on its own weights alone. An ensemble over initialisations fitted in
    one pass at about the cost of one network; `merge_heads` turns it into their average.
    """
    keras = _keras()
    keras.utils.set_random_seed(config.seed)
    recurrent_mask, dense_mask = _head_masks(config, horizon)

    class Masked(keras.constraints.Constraint):
        def __init__(self, mask: np.ndarray) -> None:
            self.mask = mask

        def __call__(self, w):
            return w * self.mask

    lstm = keras.layers.LSTM(config.heads * config.units, recurrent_constraint=Masked(recurrent_mask))
    dense = keras.layers.Dense(config.heads * horizon, kernel_constraint=Masked(dense_mask))
    model = keras.Sequential([keras.Input((lookback, n_features)), lstm, keras.layers.Dropout(config.dropout), dense])
    kernel, recurrent, bias = lstm.cell.get_weights()
    lstm.cell.set_weights([kernel, recurrent * recurrent_mask, bias])
    dense.set_weights([dense.get_weights()[0] * dense_mask, dense.get_weights()[1]])
    return model


def merge_heads(model, config: TrainConfig, horizon: int):
    """The ensemble's average as a plain LSTM(heads * units) -> Dense(horizon) network, exactly.

    The LSTM is kept as it is; averaging the heads' outputs is one Dense layer whose kernel sums each
    unit's (only non-zero) block of outputs and divides by the number of heads. The portable NumPy
    runner and its export need nothing new.
    """
    keras = _keras()
    lstm, dense = (layer for layer in model.layers if not isinstance(layer, keras.layers.Dropout))
    kernel, bias = dense.get_weights()
    merged = keras.Sequential([keras.Input(model.inputs[0].shape[1:]), keras.layers.LSTM(lstm.units),
                               keras.layers.Dense(horizon)])
    merged.layers[0].cell.set_weights(lstm.cell.get_weights())
    merged.layers[1].set_weights([kernel.reshape(len(kernel), config.heads, horizon).sum(axis=1) / config.heads,
                                  bias.reshape(config.heads, horizon).mean(axis=0)])
    return merged


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
