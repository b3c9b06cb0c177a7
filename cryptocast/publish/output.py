"""Writing the site all-or-nothing, as far as a reader can tell.

Everything is rendered in memory first, written into a hidden staging directory inside the
output directory, then renamed into place with index.html last, so a failure before that leaves
the previous site as it was.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from cryptocast.atomic import atomic_write_bytes, fsync_directory
from cryptocast.errors import CryptocastError

OUR_PNG = re.compile(r"(forecast|hindcast_h[0-9]+|scoreboard|training|trend|correlation|fear_greed)\.png")


class PublishError(CryptocastError):
    """The site could not be written where it was asked to go."""


def make_directory(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc.strerror or exc}") from None


def publish(out: Path, files: dict[str, bytes]) -> None:
    """Stage every file, then rename them into place with index.html last; drop charts no longer drawn."""
    make_directory(out)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=out))
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc}") from None
    try:
        for name, data in files.items():
            atomic_write_bytes(staging / name, data)
        for name in sorted(files, key=lambda n: n == "index.html"):
            (staging / name).replace(out / name)
        for stale in out.iterdir():
            if OUR_PNG.fullmatch(stale.name) and stale.name not in files:
                stale.unlink()
        fsync_directory(out)
    except OSError as exc:
        raise PublishError(f"cannot write the site to {out}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
