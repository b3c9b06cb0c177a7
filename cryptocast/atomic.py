"""Atomic file writes: a reader, or a crash, sees the old content or the new, never a torn file; and the
checksum both the store's record and the model registry keep of what they wrote.

Shared by the feature store, the model registry and the portable network export. Standard
library only, so any module can use it without paying for pandas or TensorFlow.
"""

from __future__ import annotations

import hashlib
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


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a unique, fsynced temp file beside `path` (removed again if anything fails).

    The temp file is created with mode 0o666 minus umask (not mkstemp's 0o600), so files stay
    readable by a job running as another user. Its name starts with a dot, so the store branch's
    `.gitignore` and Delta readers both ignore a leftover of a killed run.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:  # a full disk: os.write does not say which file, and the one line must
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then `os.replace` it into place."""
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_create_bytes(path: Path, data: bytes) -> None:
    """Like `atomic_write_bytes`, but only if `path` does not exist yet (FileExistsError otherwise).

    A hard link is the portable "rename unless the target exists": it is how a Delta Lake commit
    claims its version number, so two writers can never both commit version N.
    """
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_directory(path.parent)


def sha256_file(path: Path) -> str | None:
    """The SHA-256 of a file, read in blocks (a model file may be large), or None if it is not there."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        return None
    return digest.hexdigest()
