"""Reading the lock files `make lock` writes: one `name==version [; marker]` line per package, then hashes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]


def parse(text: str) -> list[Pin]:
    """`name==version [; marker] \\` lines, each followed by its `--hash=sha256:` lines."""
    pins: list[Pin] = []
    for block in re.split(r"\n(?=\S)", text):
        first, *rest = block.split("\n")
        if not first or first.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)(?:\[[\w,.-]+\])?==(\S+?)(?: ; (.+?))?(?: \\)?", first.strip())
        assert match, f"not a pinned requirement: {first!r}"
        hashes = tuple(h for line in rest for h in re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        pins.append(Pin(canonicalize_name(match[1]), match[2], match[3] or "", hashes))
    return pins
