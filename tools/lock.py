"""Make the lock files from pyproject.toml: `make lock` (needs the network, to PyPI only).

Each lock is one complete environment, every transitive package pinned with its PyPI hashes, for
every supported Python and platform at once (`uv pip compile --universal`), so the same file installs
on 3.11, 3.12 and 3.13, on Linux and macOS, with `pip install --require-hashes -r FILE`.

The dev lock (everything) is resolved first and the others are constrained to it, so a package has
the same version in every environment: a store written by the full environment is read by the daily
one with the same pyarrow, pandas and numpy.

Each lock's first line records a digest of what it was made from (requires-python, every dependency
group, and the options below). tests/code/test_locks.py recomputes it offline and fails when
pyproject.toml changed without `make lock`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"

# lock file -> the optional groups it adds to the default (daily) set; the first is resolved first.
LOCKS: dict[str, tuple[str, ...]] = {
    "requirements/dev.txt": ("train", "hopsworks", "dev"),
    "requirements.txt": ("train", "hopsworks"),
    "requirements/train.txt": ("train",),
    "requirements/hopsworks.txt": ("hopsworks",),
    "requirements/daily.txt": (),
}
INDEX = "https://pypi.org/simple"  # PyPI alone: what a user and GitHub's runners have
UV_ARGS = ("pip", "compile", "--universal", "--generate-hashes", "--no-config",
           "--index-url", INDEX, "--python-version", "3.11", "--custom-compile-command", "make lock", "--quiet")
DIGEST_PREFIX = "# pyproject-sha256: "
# pip itself, installed first into every venv from its own hashed lock: the pip that Python 3.11.7
# bundles (23.2) mishandles extras in --require-hashes mode (pypa/pip#9644, #12345), refusing either
# hopsworks' PyMySQL[rsa] or formulaic's plain pandas whichever way the locks write them.
PIP_PIN = "pip==26.3"
PIP_LOCK = "requirements/pip.txt"
# Every pinned package must have a wheel for each of these (no source builds on a user's machine or a
# runner). hops-deltalake publishes wheels for these two platforms only.
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")
PLATFORMS = ("x86_64-manylinux_2_28", "aarch64-apple-darwin")


def declared_digest(pyproject: Path = PYPROJECT) -> str:
    """A digest of everything the locks are made from; any change to it makes every lock stale."""
    project = tomllib.loads(pyproject.read_text())["project"]
    declared = {"requires-python": project.get("requires-python"), "dependencies": project.get("dependencies", []),
                "optional-dependencies": project.get("optional-dependencies", {}), "locks": LOCKS, "uv": UV_ARGS,
                "pip": PIP_PIN}
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def uv_command() -> str:
    """uv beside this interpreter (the dev environment installs it), else on PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        sys.exit("error: make lock: uv is not installed: run `make .venv/bin/.dev` or `pip install uv`")
    return found


def compile_lock(uv: str, target: Path, extras: tuple[str, ...], constraints: Path | None,
                 source: Path = PYPROJECT) -> None:
    command = [uv, *UV_ARGS, str(source), "-o", str(target)]
    if source != PYPROJECT:
        command.append("--no-annotate")  # the source is a temporary file: keep its path out of the lock
    command += [arg for extra in extras for arg in ("--extra", extra)]
    if constraints:
        command += ["--constraint", str(constraints)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
    subprocess.run(command, check=True, cwd=ROOT, env=env)
    body = target.read_text()
    target.write_text(f"{DIGEST_PREFIX}{declared_digest()}\n{body}")


def pinned(lock: Path) -> list[str]:
    """The lock's `name==version ; markers` lines, without hashes or comments."""
    return [line.rstrip(" \\") for line in lock.read_text().splitlines()
            if line and not line[0].isspace() and not line.startswith("#")]


def check_wheels(uv: str, lock: Path, tmp: Path) -> None:
    """Fail unless every package pinned in `lock` has a wheel for each supported Python and platform."""
    pins = tmp / "pins.txt"
    pins.write_text("\n".join(pinned(lock)) + "\n")
    for python in SUPPORTED_PYTHONS:
        for platform in PLATFORMS:
            result = subprocess.run([uv, "pip", "compile", "--no-config", "--index-url", INDEX, "--quiet", "--no-deps",
                                     "--only-binary", ":all:", "--python-version", python, "--python-platform",
                                     platform, str(pins), "-o", os.devnull], capture_output=True, text=True, cwd=ROOT)
            if result.returncode != 0:
                sys.exit(f"error: make lock: {lock.relative_to(ROOT)} on Python {python} {platform}: "
                         f"{' '.join(result.stderr.split())}")
    print(f"lock: {lock.relative_to(ROOT)}: wheels for Python {', '.join(SUPPORTED_PYTHONS)} on "
          f"{' and '.join(PLATFORMS)}", flush=True)


def main() -> int:
    uv = uv_command()
    (ROOT / "requirements").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pip_in = Path(tmp) / "pip.in"
        pip_in.write_text(PIP_PIN + "\n")
        compile_lock(uv, ROOT / PIP_LOCK, (), None, source=pip_in)
        constraints = None
        for name, extras in LOCKS.items():
            with tempfile.NamedTemporaryFile("w", dir=ROOT / Path(name).parent, suffix=".tmp", delete=False) as out:
                staged = Path(out.name)
            try:
                compile_lock(uv, staged, extras, constraints)
                staged.replace(ROOT / name)
            finally:
                staged.unlink(missing_ok=True)
            print(f"lock: {name}: {len(pinned(ROOT / name))} "
                  "packages", flush=True)
            if constraints is None:
                check_wheels(uv, ROOT / name, Path(tmp))
                constraints = Path(tmp) / "constraints.txt"
                constraints.write_text("\n".join(pinned(ROOT / name)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
