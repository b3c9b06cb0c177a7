"""Importing TensorFlow prints nothing of its own: training's log stays one line per step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryptocast.modeling import quiet_import

from conftest import REPO

NOISE = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
         "I0000 00:00:1795953603.791791   25576 port.cc:153] oneDNN custom operations are on. You may see slightly "
         "different numerical results due to floating-point round-off errors from different computation orders. To "
         "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n")


def test_known_import_noise_is_dropped_and_everything_else_passes(capfd):
    with quiet_import.native_stderr_without(quiet_import.TENSORFLOW_NOISE):
        os.write(2, NOISE.encode())
        os.write(2, b"E0000 something that went wrong\n")
    assert capfd.readouterr().err == "E0000 something that went wrong\n"


def test_stderr_is_restored_when_the_import_fails(capfd):
    with pytest.raises(ImportError), quiet_import.native_stderr_without(quiet_import.TENSORFLOW_NOISE):
        raise ImportError("no tensorflow here")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


@pytest.mark.slow
def test_importing_keras_for_training_prints_nothing():
    code = "from cryptocast.modeling.train import _keras; _keras(); print('ok')"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.stdout.strip() == "ok" and done.stderr == "", done.stderr[-2000:]
