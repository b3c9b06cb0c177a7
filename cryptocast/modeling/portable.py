"""Keras-free inference for the small LSTM forecaster.

Importing TensorFlow costs 11-19 s on the production machine, which the daily
inference step should not have to pay for a network this small. Training (which
does use Keras) calls :func:`export_network` to write the weights next to the
``.keras`` file in a portable, pickle-free form. Inference loads them with
:meth:`PortableNetwork.load` and runs the forward pass in NumPy.

Directory layout written by :func:`export_network`::

    network.json   architecture, see below
    weights.npz    plain float arrays written with ``np.savez`` (no pickle)

``network.json``::

    {
      "format": "cryptocast-portable-network",
      "format_version": 1,
      "input_shape": [timesteps, n_features],   # timesteps may be null (any length)
      "layers": [
        {"type": "lstm", "units": 30, "activation": "tanh",
         "recurrent_activation": "sigmoid", "return_sequences": false},
        {"type": "dense", "units": 10, "activation": "relu"},
        {"type": "dense", "units": 10, "activation": "linear"}
      ],
      "weights_sha256": "<hex digest of weights.npz>"
    }

Arrays in ``weights.npz`` for the layer at index ``i`` of ``layers``:

* LSTM: ``layer{i}_kernel`` (n_in, 4*units), ``layer{i}_recurrent_kernel``
  (units, 4*units), ``layer{i}_bias`` (4*units,); gate columns in Keras order
  input, forget, cell candidate, output.
* Dense: ``layer{i}_kernel`` (n_in, units), ``layer{i}_bias`` (units,).

Dropout layers are identity at inference and are therefore not exported.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from cryptocast.atomic import atomic_write_bytes
from cryptocast.errors import StoreError

FORMAT_NAME = "cryptocast-portable-network"
FORMAT_VERSION = 1
NETWORK_FILE = "network.json"
WEIGHTS_FILE = "weights.npz"

_LSTM_KEYS = frozenset(
    {"type", "units", "activation", "recurrent_activation", "return_sequences"}
)
_DENSE_KEYS = frozenset({"type", "units", "activation"})
_TOP_KEYS = frozenset({"format", "format_version", "input_shape", "layers", "weights_sha256"})
_DENSE_ACTIVATIONS = ("linear", "relu")
_HEX_DIGITS = frozenset("0123456789abcdef")

# Tolerance for the self-check run by export_network: the float64 NumPy forward
# pass must reproduce the (float32) Keras model. Structural mistakes produce
# differences of order one, float32 round-off is orders of magnitude below this.
_SELF_CHECK_ATOL = 1e-4
_SELF_CHECK_RTOL = 1e-3


class CorruptModelError(StoreError, ValueError):
    """A portable model directory is missing, unreadable or inconsistent.

    A ``ValueError`` (bad data) and a ``StoreError``, so entry points report it as
    one actionable line (exit 1) rather than as an unexpected bug; the message
    names the file and the problem.
    """


# --------------------------------------------------------------------------- #
# Validation shared by export (before writing) and load (after reading)
# --------------------------------------------------------------------------- #


class _FormatError(ValueError):
    """A spec or weight set that violates the format; load turns it into CorruptModelError."""


def _is_int(value: Any) -> bool:
    """JSON booleans are ints in Python; they are never a valid size."""
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_spec(spec: Any) -> None:
    """Check the parsed network.json; raise ValueError describing the first problem."""
    if not isinstance(spec, dict):
        raise _FormatError(f"top level must be a JSON object, got {type(spec).__name__}")
    if spec.get("format") != FORMAT_NAME:
        raise _FormatError(f"'format' must be {FORMAT_NAME!r}, got {spec.get('format')!r}")
    version = spec.get("format_version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise _FormatError(
            f"unsupported format_version {version!r} (this code reads version {FORMAT_VERSION})"
        )
    keys = set(spec)
    if keys != _TOP_KEYS:
        missing, extra = sorted(_TOP_KEYS - keys), sorted(keys - _TOP_KEYS)
        raise _FormatError(f"unexpected top-level keys (missing {missing}, extra {extra})")

    digest = spec["weights_sha256"]
    if not (isinstance(digest, str) and len(digest) == 64 and set(digest) <= _HEX_DIGITS):
        raise _FormatError("'weights_sha256' must be a 64-character lowercase hex string")

    shape = spec["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 2):
        raise _FormatError(f"'input_shape' must be [timesteps, n_features], got {shape!r}")
    timesteps, n_features = shape
    if not (timesteps is None or (_is_int(timesteps) and timesteps > 0)):
        raise _FormatError(f"input timesteps must be a positive integer or null, got {timesteps!r}")
    if not (_is_int(n_features) and n_features > 0):
        raise _FormatError(f"input n_features must be a positive integer, got {n_features!r}")

    layers = spec["layers"]
    if not isinstance(layers, list) or not layers:
        raise _FormatError("'layers' must be a non-empty list")
    seen_dense = False
    n_lstm = 0
    for index, layer in enumerate(layers):
        where = f"layers[{index}]"
        if not isinstance(layer, dict):
            raise _FormatError(f"{where} must be an object")
        kind = layer.get("type")
        expected_keys = {"lstm": _LSTM_KEYS, "dense": _DENSE_KEYS}.get(kind)
        if expected_keys is None:
            raise _FormatError(f"{where} has unknown type {kind!r} (expected 'lstm' or 'dense')")
        if set(layer) != expected_keys:
            raise _FormatError(
                f"{where} ({kind}) keys must be {sorted(expected_keys)}, got {sorted(layer)}"
            )
        if not (_is_int(layer["units"]) and layer["units"] > 0):
            raise _FormatError(f"{where} units must be a positive integer, got {layer['units']!r}")
        if kind == "lstm":
            if seen_dense:
                raise _FormatError(f"{where}: an LSTM layer cannot follow a dense layer")
            if layer["activation"] != "tanh" or layer["recurrent_activation"] != "sigmoid":
                raise _FormatError(
                    f"{where}: LSTM activations must be tanh/sigmoid, got "
                    f"{layer['activation']!r}/{layer['recurrent_activation']!r}"
                )
            if not isinstance(layer["return_sequences"], bool):
                raise _FormatError(f"{where}: return_sequences must be true or false")
            n_lstm += 1
        else:
            if n_lstm == 0:
                raise _FormatError(f"{where}: the network must start with an LSTM layer")
            if layer["activation"] not in _DENSE_ACTIVATIONS:
                raise _FormatError(
                    f"{where}: dense activation must be one of {list(_DENSE_ACTIVATIONS)}, "
                    f"got {layer['activation']!r}"
                )
            seen_dense = True
    if not seen_dense:
        raise _FormatError("the network must end with at least one dense layer")
    for index, layer in enumerate(layers[:n_lstm]):
        wanted = index < n_lstm - 1
        if layer["return_sequences"] != wanted:
            raise _FormatError(
                f"layers[{index}]: return_sequences must be {str(wanted).lower()} "
                "(true for all but the last LSTM)"
            )


def _expected_shapes(spec: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Array name -> shape implied by a validated spec."""
    shapes: dict[str, tuple[int, ...]] = {}
    n_in = spec["input_shape"][1]
    for index, layer in enumerate(spec["layers"]):
        units = layer["units"]
        if layer["type"] == "lstm":
            shapes[f"layer{index}_kernel"] = (n_in, 4 * units)
            shapes[f"layer{index}_recurrent_kernel"] = (units, 4 * units)
            shapes[f"layer{index}_bias"] = (4 * units,)
        else:
            shapes[f"layer{index}_kernel"] = (n_in, units)
            shapes[f"layer{index}_bias"] = (units,)
        n_in = units
    return shapes


def _validate_arrays(spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Check names, dtypes, shapes and finiteness; raise ValueError on the first problem."""
    expected = _expected_shapes(spec)
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing:
        raise _FormatError(f"missing array(s) {missing}")
    if extra:
        raise _FormatError(f"unexpected array(s) {extra}")
    for name, shape in expected.items():
        array = arrays[name]
        if array.dtype.kind != "f":
            raise _FormatError(f"array {name!r} has dtype {array.dtype}, expected floating point")
        if array.shape != shape:
            raise _FormatError(f"array {name!r} has shape {array.shape}, expected {shape}")
        if not np.all(np.isfinite(array)):
            raise _FormatError(f"array {name!r} contains non-finite values (NaN or inf)")


# --------------------------------------------------------------------------- #
# Inference
# --------------------------------------------------------------------------- #


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function via tanh: exact and free of exp() overflow warnings."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class PortableNetwork:
    """LSTM -> Dense forward pass in float64 NumPy, loaded without TensorFlow."""

    def __init__(self, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        """Build from an already validated spec and weights; use :meth:`load` normally."""
        self._layers = [dict(layer) for layer in spec["layers"]]
        self._timesteps: int | None = spec["input_shape"][0]
        self._n_features: int = spec["input_shape"][1]
        self._weights = {
            name: np.array(value, dtype=np.float64) for name, value in arrays.items()
        }

    @property
    def timesteps(self) -> int | None:
        """Sequence length the network was built for (None: any length)."""
        return self._timesteps

    @property
    def n_features(self) -> int:
        """Number of features per timestep expected by :meth:`predict`."""
        return self._n_features

    @property
    def n_outputs(self) -> int:
        """Width of the output of :meth:`predict`."""
        return int(self._layers[-1]["units"])

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> PortableNetwork:
        """Load and fully validate a directory written by :func:`export_network`.

        Everything is checked up front so a damaged model fails here, loudly, with
        :class:`CorruptModelError`, rather than producing a silently wrong forecast.
        """
        directory = pathlib.Path(directory)
        network_path = directory / NETWORK_FILE
        weights_path = directory / WEIGHTS_FILE

        def corrupt(path: pathlib.Path, problem: str) -> CorruptModelError:
            one_line = " ".join(str(problem).split())
            return CorruptModelError(f"{path}: {one_line}")

        try:
            text = network_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise corrupt(network_path, "file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise corrupt(network_path, f"cannot read file ({exc})") from exc
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise corrupt(network_path, f"invalid JSON ({exc})") from exc
        try:
            _validate_spec(spec)
        except _FormatError as exc:
            raise corrupt(network_path, str(exc)) from exc

        try:
            blob = weights_path.read_bytes()
        except FileNotFoundError:
            raise corrupt(weights_path, "file not found") from None
        except OSError as exc:
            raise corrupt(weights_path, f"cannot read file ({exc})") from exc
        if hashlib.sha256(blob).hexdigest() != spec["weights_sha256"]:
            raise corrupt(
                weights_path,
                f"content does not match weights_sha256 in {NETWORK_FILE} "
                "(truncated, modified, or from a different export)",
            )
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise corrupt(weights_path, f"not a readable npz archive ({exc})") from exc
        try:
            _validate_arrays(spec, arrays)
        except _FormatError as exc:
            raise corrupt(weights_path, str(exc)) from exc
        return cls(spec, arrays)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Forward pass for x of shape (batch, timesteps, n_features); returns (batch, outputs).

        Raises ValueError for a wrong shape or non-finite input: a NaN forecast fed
        downstream is worse than a failed run.
        """
        try:
            x = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input must be a numeric array ({exc})") from exc
        if x.ndim != 3:
            raise ValueError(
                f"input must have shape (batch, timesteps, n_features), got {x.shape}"
            )
        expected_t = "any" if self._timesteps is None else self._timesteps
        if x.shape[2] != self._n_features or (
            self._timesteps is not None and x.shape[1] != self._timesteps
        ):
            raise ValueError(
                f"input shape {x.shape} does not match (batch, {expected_t}, {self._n_features})"
            )
        if x.shape[1] == 0:
            raise ValueError("input must contain at least one timestep")
        if not np.all(np.isfinite(x)):
            raise ValueError("input contains non-finite values (NaN or inf)")

        out = x
        for index, layer in enumerate(self._layers):
            kernel = self._weights[f"layer{index}_kernel"]
            bias = self._weights[f"layer{index}_bias"]
            if layer["type"] == "lstm":
                recurrent = self._weights[f"layer{index}_recurrent_kernel"]
                out = self._lstm(out, kernel, recurrent, bias, layer["return_sequences"])
            else:
                out = out @ kernel + bias
                if layer["activation"] == "relu":
                    out = np.maximum(out, 0.0)
        return out

    @staticmethod
    def _lstm(
        x: np.ndarray,
        kernel: np.ndarray,
        recurrent: np.ndarray,
        bias: np.ndarray,
        return_sequences: bool,
    ) -> np.ndarray:
        """One Keras LSTM layer (gates i, f, c, o; tanh / sigmoid), zero initial state."""
        batch, steps, _ = x.shape
        units = recurrent.shape[0]
        projected = x @ kernel + bias  # (batch, steps, 4*units), input part of all steps
        h = np.zeros((batch, units))
        c = np.zeros((batch, units))
        sequence = np.empty((batch, steps, units)) if return_sequences else None
        for t in range(steps):
            z = projected[:, t, :] + h @ recurrent
            i = _sigmoid(z[:, :units])
            f = _sigmoid(z[:, units : 2 * units])
            g = np.tanh(z[:, 2 * units : 3 * units])
            o = _sigmoid(z[:, 3 * units :])
            c = f * c + i * g
            h = o * np.tanh(c)
            if sequence is not None:
                sequence[:, t, :] = h
        return sequence if sequence is not None else h


# --------------------------------------------------------------------------- #
# Export (the only part that touches Keras)
# --------------------------------------------------------------------------- #


def _extract(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Translate a Keras model into (spec, arrays) or raise ValueError naming the problem."""
    import keras  # lazy: importing this module must not import TensorFlow

    to_numpy = keras.ops.convert_to_numpy
    activations = keras.activations

    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"model must be built with a defined input shape ({exc})") from exc
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"model must have exactly one input and one output, got {len(inputs)} and "
            f"{len(outputs)}"
        )
    input_shape = tuple(inputs[0].shape)
    if len(input_shape) != 3 or input_shape[2] is None:
        raise ValueError(
            f"model input must be (batch, timesteps, n_features) with known n_features, "
            f"got {input_shape}"
        )
    timesteps = None if input_shape[1] is None else int(input_shape[1])
    n_features = int(input_shape[2])

    layers: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    exported: list[str] = []  # for error messages: exported index -> Keras layer name

    def as_float64(variable: Any) -> np.ndarray:
        # Variable.numpy(), not ops.convert_to_numpy: the latter warns under NumPy 2 (TF).
        return np.array(variable.numpy(), dtype=np.float64)

    for position, layer in enumerate(model.layers):
        kind = type(layer)
        label = f"layer {position} {layer.name!r} ({kind.__name__})"
        if kind is keras.layers.InputLayer or kind is keras.layers.Dropout:
            continue
        if kind not in (keras.layers.LSTM, keras.layers.Dense):
            raise ValueError(
                f"{label}: unsupported layer type; only LSTM, Dense and Dropout can be exported"
            )
        if str(layer.compute_dtype) not in ("float32", "float64"):
            raise ValueError(f"{label}: unsupported compute dtype {layer.compute_dtype}")
        index = len(layers)
        exported.append(f"layers[{index}]={layer.name!r}")
        if kind is keras.layers.LSTM:
            cell = layer.cell
            problems = []
            if cell.activation is not activations.tanh:
                problems.append("activation must be tanh")
            if cell.recurrent_activation is not activations.sigmoid:
                problems.append("recurrent_activation must be sigmoid")
            if not cell.use_bias:
                problems.append("use_bias=False")
            for option in ("go_backwards", "stateful", "return_state"):
                if getattr(layer, option):
                    problems.append(f"{option}=True")
            if problems:
                raise ValueError(f"{label}: unsupported option(s): {', '.join(problems)}")
            if layers and layers[-1]["type"] == "dense":
                raise ValueError(f"{label}: an LSTM after a Dense layer is not supported")
            layers.append(
                {
                    "type": "lstm",
                    "units": int(cell.units),
                    "activation": "tanh",
                    "recurrent_activation": "sigmoid",
                    "return_sequences": bool(layer.return_sequences),
                }
            )
            arrays[f"layer{index}_kernel"] = as_float64(cell.kernel)
            arrays[f"layer{index}_recurrent_kernel"] = as_float64(cell.recurrent_kernel)
            arrays[f"layer{index}_bias"] = as_float64(cell.bias)
        else:
            if getattr(layer, "quantization_mode", None) is not None:
                raise ValueError(f"{label}: quantized Dense layers are not supported")
            if layer.activation is activations.linear:
                activation = "linear"
            elif layer.activation is activations.relu:
                activation = "relu"
            else:
                name = getattr(layer.activation, "__name__", repr(layer.activation))
                raise ValueError(
                    f"{label}: unsupported activation {name!r}; only linear and relu"
                )
            units = int(layer.units)
            layers.append({"type": "dense", "units": units, "activation": activation})
            # `kernel` (not get_weights) so a LoRA-enabled layer exports its merged kernel.
            arrays[f"layer{index}_kernel"] = as_float64(layer.kernel)
            arrays[f"layer{index}_bias"] = (
                as_float64(layer.bias) if layer.use_bias else np.zeros(units)
            )

    spec = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "input_shape": [timesteps, n_features],
        "layers": layers,
        "weights_sha256": "0" * 64,  # placeholder, replaced once the npz bytes exist
    }
    try:  # ordering / return_sequences rules, the same ones load() enforces
        _validate_spec(spec)
        _validate_arrays(spec, arrays)
    except _FormatError as exc:
        raise ValueError(
            f"unsupported architecture: {exc}; exported layers: {', '.join(exported) or 'none'}"
        ) from exc

    # Self-check: the layer list above only sees layer types, not how they are wired
    # (e.g. a layer applied twice in a functional model). Compare outputs instead.
    probe_steps = timesteps if timesteps is not None else 8
    probe = np.random.default_rng(0).normal(size=(4, probe_steps, n_features))
    expected = np.asarray(
        to_numpy(model(probe.astype(_input_dtype(model)), training=False)), dtype=np.float64
    )
    actual = PortableNetwork(spec, arrays).predict(probe)
    if expected.shape != actual.shape or not np.allclose(
        actual, expected, atol=_SELF_CHECK_ATOL, rtol=_SELF_CHECK_RTOL
    ):
        detail = (
            f"shape {actual.shape} vs {expected.shape}"
            if expected.shape != actual.shape
            else f"max abs difference {np.max(np.abs(actual - expected)):.3g}"
        )
        raise ValueError(
            f"exported network does not reproduce the Keras model ({detail}); the model is "
            "probably not a plain LSTM -> Dense chain"
        )
    return spec, arrays


def _input_dtype(model: Any) -> str:
    """Input dtype the model expects (float32 unless built otherwise)."""
    return str(getattr(model.inputs[0], "dtype", "float32"))


def export_network(model: Any, directory: pathlib.Path) -> None:
    """Write ``network.json`` and ``weights.npz`` for ``model`` into ``directory``.

    Called by training so that inference can run without importing TensorFlow.
    Unsupported architectures raise ValueError before anything is written. Each
    file is replaced atomically; the weights go first and network.json records
    their SHA-256, so a reader racing an export gets CorruptModelError rather
    than a mix of old architecture and new weights.
    """
    directory = pathlib.Path(directory)
    spec, arrays = _extract(model)

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    blob = buffer.getvalue()
    spec["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    text = json.dumps(spec, indent=2) + "\n"

    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / WEIGHTS_FILE, blob)
    atomic_write_bytes(directory / NETWORK_FILE, text.encode("utf-8"))

