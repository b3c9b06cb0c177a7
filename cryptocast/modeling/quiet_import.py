"""Import TensorFlow without the lines it prints about itself, so a run's log stays one line per step.

TensorFlow 2.19 and later print, at import, absl's "All log messages before absl::InitializeLog()
is called are written to STDERR" and an INFO line that oneDNN is on, from C++ straight to the
process's stderr: TF_CPP_MIN_LOG_LEVEL no longer silences them (tensorflow/tensorflow#100442).
They are caught at the file descriptor while importing; anything else written there is passed
on, so a real error is never hidden.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

TENSORFLOW_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*")


@contextmanager
def native_stderr_without(noise: re.Pattern) -> Iterator[None]:
    """Send fd 2 to a file for the block, then write back every line that is not `noise`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not noise.fullmatch(line.rstrip("\n"))]
            os.write(2, "".join(kept).encode())


def import_keras():
    """Keras, with TensorFlow under it, imported quietly (a no-op once imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # its C++ log prints harmless "E0000" lines in fit
    with native_stderr_without(TENSORFLOW_NOISE):
        import keras
        import tensorflow  # noqa: F401  (keras imports it lazily; its import noise belongs in here)
    return keras
