"""Model directories written by hand from the documented portable format (no Keras needed)."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
from typing import Any

import numpy as np

from cryptocast.dataset import FEATURES, HORIZON, LOOKBACK
from cryptocast.modeling.forecasters import Scaler

SERVING_LAYERS = [{"type": "lstm", "units": 4, "activation": "tanh", "recurrent_activation": "sigmoid",
                   "return_sequences": False}, {"type": "dense", "units": HORIZON, "activation": "linear"}]
SERVING_SCALES = [0.05, 0.05, 10, 10, 0.05, 0.05, 0.2]  # the scaler's feature scales: inputs by hand divide by these


def make_spec(layers: list[dict[str, Any]], input_shape: list[Any]) -> dict[str, Any]:
    return {
        "format": "cryptocast-portable-network",
        "format_version": 1,
        "input_shape": input_shape,
        "layers": layers,
        "weights_sha256": "",
    }


def random_arrays(spec: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {}
    n_in = spec["input_shape"][1]
    for i, layer in enumerate(spec["layers"]):
        units = layer["units"]
        if layer["type"] == "lstm":
            arrays[f"layer{i}_kernel"] = rng.normal(scale=0.5, size=(n_in, 4 * units))
            arrays[f"layer{i}_recurrent_kernel"] = rng.normal(scale=0.5, size=(units, 4 * units))
            arrays[f"layer{i}_bias"] = rng.normal(scale=0.1, size=4 * units)
        else:
            arrays[f"layer{i}_kernel"] = rng.normal(scale=0.5, size=(n_in, units))
            arrays[f"layer{i}_bias"] = rng.normal(scale=0.1, size=units)
        n_in = units
    return arrays


def write_dir(directory: pathlib.Path, spec: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write both files with a checksum that matches, so later checks are reached."""
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (directory / "weights.npz").write_bytes(buffer.getvalue())
    spec = dict(spec, weights_sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    (directory / "network.json").write_text(json.dumps(spec))


def make_artifacts(directory: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A model directory like training writes, for registry tests: binary and text files, and a nested folder."""
    directory.mkdir(parents=True)
    (directory / "model.keras").write_bytes(bytes(range(256)) * 4 + bytes([seed]))
    (directory / "network.json").write_text(json.dumps({"layers": [{"units": 8}], "seed": seed}))
    (directory / "weights.npz").write_bytes(b"PK\x03\x04" + bytes([seed]) * 100)
    (directory / "scaler.json").write_text('{"mean": [1.5], "scale": [2.0]}')
    (directory / "extra").mkdir()
    (directory / "extra" / "notes.txt").write_text("anything else the trainer keeps\n")
    return directory


def as_registered(registry: Any, name: str, version: int) -> None:
    """Record a local version's files as they are now, as if it had been registered with exactly these
    files (its checksums, and the production pointer if it serves): for tests of damaged or older models."""
    from cryptocast.registry.local import CHECKSUMS, checksums_record

    directory = registry.root / name / f"v{version}"
    (directory / CHECKSUMS).write_bytes(checksums_record(directory))
    pointer = registry.root / name / "production.json"
    if not pointer.exists() or json.loads(pointer.read_text())["version"] == version:
        registry.set_production(name, version)


def files(directory: pathlib.Path) -> dict[str, bytes]:
    """Every file under `directory` by relative path, for byte-for-byte comparisons."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def write_serving_model(directory: pathlib.Path, seed: int = 0, calibrated_through: str = "2024-01-01") -> pathlib.Path:
    """What inference reads from a registered version: a small random network in the portable format,
    its scaler (feature scales SERVING_SCALES, target scale 0.05) and a calibration state whose last
    backtest origin is `calibrated_through`."""
    spec = make_spec(SERVING_LAYERS, [LOOKBACK, len(FEATURES)])
    write_dir(directory, spec, random_arrays(spec, np.random.default_rng(seed)))
    scaler = Scaler("standard", list(FEATURES), [0.0] * 7, SERVING_SCALES, [0.0] * 10, [0.05] * 10)
    (directory / "scaler.json").write_text(scaler.to_json())
    write_calibration(directory, calibrated_through)
    return directory


def write_calibration(directory: pathlib.Path, last_origin: str = "2024-01-01", seed: int = 0, n: int = 365,
                      config=None) -> None:
    """A calibration state like training writes: `n` normalised scores per horizon, levels not yet adapted;
    `config` a CalibrationConfig (the default one unless given)."""
    from cryptocast.modeling import calibration

    state = calibration.State(config or calibration.CalibrationConfig(), 10)
    rng = np.random.default_rng(seed)
    for h in range(10):
        for score in rng.normal(0.0, 0.2, n):
            state.ingest(h, score, None)
    (directory / calibration.CALIBRATION_FILE).write_text(state.to_json(last_origin))
