"""Writing the site all-or-nothing, as far as a reader can tell, and only ever over our own files.

Everything is rendered in memory first, written into a hidden staging folder inside the output
directory, then renamed into place with index.html last, so a failure before that leaves the
previous site as it was. A manifest (.cryptocast-site.json) lists the files plots.py wrote: a
later run replaces or removes only those, and refuses a non-empty directory without one, so
`--out` pointed at someone's folder never deletes their files. Runs into one directory take
turns (a lock file), so a staging folder found at the start is a killed run's, and is removed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from cryptocast.atomic import atomic_write_bytes, fsync_directory
from cryptocast.errors import CryptocastError
from cryptocast.stores.local import LOCK_TIMEOUT_S, exclusive

MANIFEST = ".cryptocast-site.json"
LOCK = ".cryptocast-site.lock"
STAGING_PREFIX = ".build-"
# What the version before manifests wrote: a directory holding only these is a previous site of ours.
BEFORE_MANIFESTS = {"index.html", "forecast.json", ".nojekyll", "forecast.png", "scoreboard.png", "training.png",
                    "trend.png", "correlation.png", "fear_greed.png", *(f"hindcast_h{h}.png" for h in range(1, 11))}


class PublishError(CryptocastError):
    """The site could not be written where it was asked to go."""


def _fail(out: Path, exc: OSError | str) -> PublishError:
    reason = exc if isinstance(exc, str) else exc.strerror or str(exc)
    return PublishError(f"cannot write the site to {out}: {reason}")


def prepare_directory(out: Path) -> None:
    """Create `out` if needed and refuse it if it is someone else's: checked before any rendering work."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        _ours(out)
    except OSError as exc:
        raise _fail(out, exc) from None


def read_manifest(out: Path) -> set[str] | None:
    """The files a previous run wrote into `out`, or None when no run of ours has."""
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise _fail(out, f"{MANIFEST} is unreadable ({type(exc).__name__}); remove it if the folder is ours") from None
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f for f in files):
        raise _fail(out, f"{MANIFEST} does not list plain file names; remove it if the folder is ours")
    return set(files)


def _ours(out: Path) -> set[str]:
    """Files of ours in `out` that a run may replace or remove; refuses a folder that is someone else's."""
    manifest = read_manifest(out)
    if manifest is not None:
        return manifest
    present = {p.name for p in out.iterdir()
               if p.name != LOCK and not (p.name.startswith(STAGING_PREFIX) and p.is_dir())}
    if present and not ({"index.html", "forecast.json"} <= present <= BEFORE_MANIFESTS):
        raise PublishError(f"{out} is not empty and was not written by plots.py (it has no {MANIFEST}): "
                           f"choose an empty or new directory")
    return present


def _write_manifest(out: Path, files: set[str]) -> None:
    atomic_write_bytes(out / MANIFEST, json.dumps({"written_by": "cryptocast plots.py", "files": sorted(files)},
                                                  indent=1).encode())


def _remove_staging_of_killed_runs(out: Path) -> None:
    for leftover in out.glob(f"{STAGING_PREFIX}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover)


def publish(out: Path, files: dict[str, bytes]) -> None:
    """Stage every file, then rename them into place with index.html last; drop our files no longer drawn.

    The manifest is widened to old and new files before anything moves and narrowed to the new
    ones after, so at every instant it covers every file of ours in the directory.
    """
    prepare_directory(out)  # before the lock file goes in
    with exclusive(FileLock(out / LOCK), f"the site in {out}", LOCK_TIMEOUT_S):
        try:
            previous = _ours(out)
            _remove_staging_of_killed_runs(out)
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        except OSError as exc:
            raise _fail(out, exc) from None
        try:
            for name, data in files.items():
                atomic_write_bytes(staging / name, data)
            _write_manifest(out, previous | set(files))
            for name in sorted(files, key=lambda n: n == "index.html"):
                (staging / name).replace(out / name)
            for stale in previous - set(files):
                (out / stale).unlink(missing_ok=True)
            _write_manifest(out, set(files))
            fsync_directory(out)
        except OSError as exc:
            raise _fail(out, exc) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
