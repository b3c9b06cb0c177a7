"""Atomic file writes: a reader, or a crash, sees the old content or the new, never a torn file.

Shared by the feature store, the model registry and the portable network export. Standard
library only, so any module can use it without paying for pandas or TensorFlow.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make renames in `directory` durable across a crash (best effort: not every OS allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a unique temp file beside `path`, fsync, then `os.replace` it into place.

    The temp file is created with mode 0o666 minus umask (not mkstemp's 0o600), so files stay
    readable by a job running as another user; it is removed if anything fails.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
