"""Tests for the TensorFlow-free portable network (cryptocast.modeling.portable).

Fast tests write model directories by hand from the documented file format, so the
format itself is under test and no Keras import is needed. Tests marked ``slow``
import Keras (once per session, in a module-scoped fixture) and check that the NumPy
forward pass reproduces real, briefly trained Keras models.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from cryptocast.modeling.portable import CorruptModelError, PortableNetwork, export_network

from modelfiles import make_spec, random_arrays, write_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMESTEPS, N_FEATURES, N_OUTPUTS = 15, 7, 10


def set_checksum(directory: pathlib.Path) -> None:
    """Record the current weights.npz digest, so a damaged npz reaches the npz parser."""
    spec = json.loads((directory / "network.json").read_text())
    spec["weights_sha256"] = hashlib.sha256((directory / "weights.npz").read_bytes()).hexdigest()
    (directory / "network.json").write_text(json.dumps(spec))


STACKED_LAYERS = [
    {"type": "lstm", "units": 4, "activation": "tanh", "recurrent_activation": "sigmoid",
     "return_sequences": True},
    {"type": "lstm", "units": 3, "activation": "tanh", "recurrent_activation": "sigmoid",
     "return_sequences": False},
    {"type": "dense", "units": 5, "activation": "relu"},
    {"type": "dense", "units": 2, "activation": "linear"},
]


@pytest.fixture
def handmade(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict[str, Any], dict[str, Any]]:
    spec = make_spec(json.loads(json.dumps(STACKED_LAYERS)), [6, 3])
    arrays = random_arrays(spec, np.random.default_rng(7))
    directory = tmp_path / "model"
    write_dir(directory, spec, arrays)
    return directory, spec, arrays


def test_load_and_predict_handmade(handmade):
    directory, _, _ = handmade
    net = PortableNetwork.load(directory)
    assert (net.timesteps, net.n_features, net.n_outputs) == (6, 3, 2)
    out = net.predict(np.random.default_rng(0).normal(size=(5, 6, 3)))
    assert out.shape == (5, 2)
    assert out.dtype == np.float64
    assert np.all(np.isfinite(out))


def _sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_predict_matches_scalar_lstm_reference(tmp_path):
    """A one-unit LSTM computed by hand: gate order i, f, c, o, zero initial state."""
    spec = make_spec(
        [
            {"type": "lstm", "units": 1, "activation": "tanh",
             "recurrent_activation": "sigmoid", "return_sequences": False},
            {"type": "dense", "units": 1, "activation": "linear"},
        ],
        [3, 1],
    )
    w = [0.9, -0.4, 1.3, 0.2]  # input kernel: i, f, c, o
    r = [-0.7, 0.5, 0.3, -1.1]  # recurrent kernel
    b = [0.1, 1.0, -0.2, 0.3]
    dense_k, dense_b = 1.7, -0.25
    arrays = {
        "layer0_kernel": np.array([w]),
        "layer0_recurrent_kernel": np.array([r]),
        "layer0_bias": np.array(b),
        "layer1_kernel": np.array([[dense_k]]),
        "layer1_bias": np.array([dense_b]),
    }
    write_dir(tmp_path, spec, arrays)
    xs = [0.5, -1.2, 2.0]

    h = c = 0.0
    for x in xs:
        z = [w[k] * x + r[k] * h + b[k] for k in range(4)]
        i, f, g, o = _sig(z[0]), _sig(z[1]), math.tanh(z[2]), _sig(z[3])
        c = f * c + i * g
        h = o * math.tanh(c)
    expected = dense_k * h + dense_b

    out = PortableNetwork.load(tmp_path).predict(np.array(xs).reshape(1, 3, 1))
    assert out.shape == (1, 1)
    assert abs(out[0, 0] - expected) < 1e-12


# --------------------------------------------------------------------------- #
# Corruption: every case must be a CorruptModelError naming the file
# --------------------------------------------------------------------------- #

Mutator = Callable[[pathlib.Path, dict[str, Any], dict[str, Any]], pathlib.Path]


def _missing_directory(d, spec, arrays):
    return d.parent / "does-not-exist"


def _missing_weights(d, spec, arrays):
    (d / "weights.npz").unlink()
    return d


def _bad_json(d, spec, arrays):
    (d / "network.json").write_text('{"format": "cryptocast-portable-network", ')
    return d


def _json_not_object(d, spec, arrays):
    (d / "network.json").write_text("[1, 2, 3]")
    return d


def _unknown_version(d, spec, arrays):
    write_dir(d, dict(spec, format_version=2), arrays)
    return d


def _truncated_npz(d, spec, arrays):
    blob = (d / "weights.npz").read_bytes()
    (d / "weights.npz").write_bytes(blob[: len(blob) // 2])
    return d


def _garbage_npz_with_checksum(d, spec, arrays):
    (d / "weights.npz").write_bytes(b"this is not a zip archive at all" * 10)
    set_checksum(d)
    return d


def _missing_array(d, spec, arrays):
    write_dir(d, spec, {k: v for k, v in arrays.items() if k != "layer1_bias"})
    return d


def _extra_array(d, spec, arrays):
    write_dir(d, spec, dict(arrays, layer9_kernel=np.zeros((2, 2))))
    return d


def _wrong_shape(d, spec, arrays):
    write_dir(d, spec, dict(arrays, layer0_kernel=arrays["layer0_kernel"].T.copy()))
    return d


def _nan_weight(d, spec, arrays):
    bias = arrays["layer2_bias"].copy()
    bias[1] = np.nan
    write_dir(d, spec, dict(arrays, layer2_bias=bias))
    return d


def _inf_weight(d, spec, arrays):
    kernel = arrays["layer1_recurrent_kernel"].copy()
    kernel[0, 0] = -np.inf
    write_dir(d, spec, dict(arrays, layer1_recurrent_kernel=kernel))
    return d


def _integer_weight(d, spec, arrays):
    write_dir(d, spec, dict(arrays, layer3_bias=np.array([1, 2])))
    return d


def _pickled_object_array(d, spec, arrays):
    obj = np.empty(2, dtype=object)
    obj[:] = [1.0, 2.0]
    write_dir(d, spec, dict(arrays, layer3_bias=obj))  # np.savez pickles object arrays
    return d


def _last_lstm_returns_sequences(d, spec, arrays):
    layers = json.loads(json.dumps(spec["layers"]))
    layers[1]["return_sequences"] = True
    write_dir(d, dict(spec, layers=layers), arrays)
    return d


def _softmax_dense(d, spec, arrays):
    layers = json.loads(json.dumps(spec["layers"]))
    layers[3]["activation"] = "softmax"
    write_dir(d, dict(spec, layers=layers), arrays)
    return d


CORRUPTIONS: list[tuple[Mutator, str, str]] = [
    (_missing_directory, "network.json", "not found"),
    (_missing_weights, "weights.npz", "not found"),
    (_bad_json, "network.json", "invalid JSON"),
    (_json_not_object, "network.json", "JSON object"),
    (_unknown_version, "network.json", "format_version"),
    (_truncated_npz, "weights.npz", "weights_sha256"),
    (_garbage_npz_with_checksum, "weights.npz", "npz"),
    (_missing_array, "weights.npz", "layer1_bias"),
    (_extra_array, "weights.npz", "layer9_kernel"),
    (_wrong_shape, "weights.npz", "shape"),
    (_nan_weight, "weights.npz", "non-finite"),
    (_inf_weight, "weights.npz", "non-finite"),
    (_integer_weight, "weights.npz", "dtype"),
    (_pickled_object_array, "weights.npz", "npz"),
    (_last_lstm_returns_sequences, "network.json", "return_sequences"),
    (_softmax_dense, "network.json", "softmax"),
]


@pytest.mark.parametrize(
    ("mutate", "filename", "fragment"), CORRUPTIONS, ids=[c[0].__name__[1:] for c in CORRUPTIONS]
)
def test_corrupt_directory_raises(handmade, mutate, filename, fragment):
    directory, spec, arrays = handmade
    target = mutate(directory, spec, arrays)
    with pytest.raises(CorruptModelError) as info:
        PortableNetwork.load(target)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert filename in message
    assert fragment in message
    assert "\n" not in message


def test_truncated_npz_reaching_the_parser_raises(handmade):
    """With the checksum updated, truncations at many offsets must still fail cleanly."""
    directory, _, _ = handmade
    blob = (directory / "weights.npz").read_bytes()
    for cut in sorted({1, 10, 100, len(blob) // 3, len(blob) // 2, len(blob) - 30, len(blob) - 1}):
        (directory / "weights.npz").write_bytes(blob[:cut])
        set_checksum(directory)
        with pytest.raises(CorruptModelError, match="weights.npz"):
            PortableNetwork.load(directory)


@pytest.mark.parametrize(
    "shape", [(6, 3), (2, 6, 4), (2, 5, 3), (2, 6, 3, 1)], ids=["2d", "features", "steps", "4d"]
)
def test_predict_rejects_wrong_shape(handmade, shape):
    net = PortableNetwork.load(handmade[0])
    with pytest.raises(ValueError, match="shape") as info:
        net.predict(np.zeros(shape))
    assert not isinstance(info.value, CorruptModelError)


def test_predict_rejects_non_finite_input(handmade):
    net = PortableNetwork.load(handmade[0])
    x = np.zeros((2, 6, 3))
    x[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        net.predict(x)


def test_import_does_not_load_tensorflow_or_keras():
    code = (
        "import sys\n"
        "import cryptocast.modeling.portable\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
        "print(heavy)\n"
        "sys.exit(1 if heavy else 0)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- #
# Keras (slow): one import, three briefly trained models, built once per module
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def keras():
    import keras as keras_module

    return keras_module


def _lstm_dense(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.LSTM(16), k.layers.Dense(N_OUTPUTS)]
    )


def _original_system(k):
    return k.Sequential(
        [
            k.Input((TIMESTEPS, N_FEATURES)),
            k.layers.LSTM(30),
            k.layers.Dense(10, activation="relu"),
            k.layers.Dense(N_OUTPUTS),
        ]
    )


def _stacked_functional(k):
    inputs = k.Input((TIMESTEPS, N_FEATURES))
    h = k.layers.LSTM(12, return_sequences=True)(inputs)
    h = k.layers.Dropout(0.3)(h)
    h = k.layers.LSTM(8)(h)
    h = k.layers.Dropout(0.3)(h)
    return k.Model(inputs, k.layers.Dense(N_OUTPUTS)(h))


BUILDERS = {"lstm_dense": _lstm_dense, "original": _original_system, "stacked": _stacked_functional}


@pytest.fixture(scope="module")
def trained(keras, tmp_path_factory):
    """Each model trained for one epoch (weights moved off their init) and exported."""
    rng = np.random.default_rng(42)
    x = rng.normal(size=(64, TIMESTEPS, N_FEATURES)).astype("float32")
    y = rng.normal(size=(64, N_OUTPUTS)).astype("float32")
    models = {}
    for seed, (name, build) in enumerate(BUILDERS.items()):
        keras.utils.set_random_seed(1000 + seed)
        model = build(keras)
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
        before = [w.copy() for w in model.get_weights()]
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        after = model.get_weights()
        assert all(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
        directory = tmp_path_factory.mktemp(name)
        export_network(model, directory)
        models[name] = (model, directory)
    return models


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BUILDERS))
def test_portable_matches_keras(trained, name):
    model, directory = trained[name]
    x = np.random.default_rng(123).normal(size=(32, TIMESTEPS, N_FEATURES)).astype("float32")
    expected = model.predict(x, verbose=0)
    actual = PortableNetwork.load(directory).predict(x)
    assert actual.shape == expected.shape == (32, N_OUTPUTS)
    assert np.abs(expected).max() > 1e-2  # a meaningful comparison, not zeros vs zeros
    assert np.max(np.abs(actual - expected)) < 1e-5


@pytest.mark.slow
def test_exported_files_follow_format(trained):
    _, directory = trained["stacked"]
    assert sorted(p.name for p in directory.iterdir()) == ["network.json", "weights.npz"]
    spec = json.loads((directory / "network.json").read_text())
    assert spec["format_version"] == 1
    assert spec["input_shape"] == [TIMESTEPS, N_FEATURES]
    assert [(layer["type"], layer["units"]) for layer in spec["layers"]] == [
        ("lstm", 12), ("lstm", 8), ("dense", N_OUTPUTS)
    ]  # dropout is not exported
    assert [layer.get("return_sequences") for layer in spec["layers"]] == [True, False, None]
    blob = (directory / "weights.npz").read_bytes()
    assert spec["weights_sha256"] == hashlib.sha256(blob).hexdigest()
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        shapes = {name: npz[name].shape for name in npz.files}
        assert all(npz[name].dtype.kind == "f" for name in npz.files)
    assert shapes == {
        "layer0_kernel": (N_FEATURES, 48),
        "layer0_recurrent_kernel": (12, 48),
        "layer0_bias": (48,),
        "layer1_kernel": (12, 32),
        "layer1_recurrent_kernel": (8, 32),
        "layer1_bias": (32,),
        "layer2_kernel": (8, N_OUTPUTS),
        "layer2_bias": (N_OUTPUTS,),
    }


@pytest.mark.slow
def test_reexport_replaces_previous_model(trained, tmp_path):
    first, _ = trained["lstm_dense"]
    second, _ = trained["original"]
    x = np.random.default_rng(5).normal(size=(4, TIMESTEPS, N_FEATURES)).astype("float32")
    export_network(first, tmp_path)
    export_network(second, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["network.json", "weights.npz"]
    actual = PortableNetwork.load(tmp_path).predict(x)
    assert np.max(np.abs(actual - second.predict(x, verbose=0))) < 1e-5


def _gru(k):
    return k.Sequential([k.Input((TIMESTEPS, N_FEATURES)), k.layers.GRU(4), k.layers.Dense(2)])


def _softmax(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.LSTM(4),
         k.layers.Dense(2, activation="softmax")]
    )


def _bidirectional(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.Bidirectional(k.layers.LSTM(4)),
         k.layers.Dense(2)]
    )


def _go_backwards(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.LSTM(4, go_backwards=True), k.layers.Dense(2)]
    )


def _relu_lstm(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.LSTM(4, activation="relu"), k.layers.Dense(2)]
    )


def _sequences_into_dense(k):
    return k.Sequential(
        [k.Input((TIMESTEPS, N_FEATURES)), k.layers.LSTM(4, return_sequences=True),
         k.layers.Dense(2)]
    )


def _shared_dense_applied_twice(k):
    inputs = k.Input((TIMESTEPS, N_FEATURES))
    dense = k.layers.Dense(4)
    return k.Model(inputs, dense(dense(k.layers.LSTM(4)(inputs))))


UNSUPPORTED = [
    (_gru, "GRU"),
    (_softmax, "softmax"),
    (_bidirectional, "Bidirectional"),
    (_go_backwards, "go_backwards"),
    (_relu_lstm, "tanh"),
    (_sequences_into_dense, "return_sequences"),
    (_shared_dense_applied_twice, "does not reproduce"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("build", "fragment"), UNSUPPORTED, ids=[u[0].__name__[1:] for u in UNSUPPORTED]
)
def test_export_rejects_unsupported(keras, tmp_path, build, fragment):
    keras.utils.set_random_seed(0)
    model = build(keras)
    target = tmp_path / "export"
    with pytest.raises(ValueError, match=fragment):
        export_network(model, target)
    assert not target.exists()  # nothing written for a rejected model
