"""The store layout before Delta Lake, read once to migrate it: `manifest.json` + one Parquet file per year.

    feature_store/<group>_v<version>/manifest.json        schema + {"partitions": {year: file name}}
    feature_store/<group>_v<version>/<year>-<sha16>.parquet   named by the first 16 hex digits of its SHA-256

The manifest carries the whole schema, so any group version found on disk can be migrated, including
versions this code no longer defines. Every file is checked against the hash in its name first: a
damaged old store is refused with the file named, never converted.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cryptocast.errors import StoreError
from cryptocast.features import Column, GroupSpec, empty_frame

MANIFEST = "manifest.json"
_FILE = re.compile(r"[0-9]{4}-([0-9a-f]{16})\.parquet")
_DTYPES = ("date", "float", "int", "str")


def is_legacy_file(path: Path) -> bool:
    return path.name == MANIFEST or _FILE.fullmatch(path.name) is not None


def read_legacy(directory: Path) -> tuple[GroupSpec, pd.DataFrame]:
    """The group a legacy directory holds and all its rows; StoreError naming the first bad file."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        spec = GroupSpec(manifest["name"], manifest["version"], manifest["description"],
                         tuple(manifest["primary_key"]), manifest["event_time"],
                         tuple(Column(c["name"], c["dtype"], c["description"]) for c in manifest["columns"]))
        partitions = manifest["partitions"]
        if not isinstance(partitions, dict) or any(c.dtype not in _DTYPES for c in spec.columns):
            raise TypeError("partitions is not an object, or a column has an unknown dtype")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        what = f"no {exc}" if isinstance(exc, KeyError) else type(exc).__name__
        raise StoreError(f"cannot migrate {directory}: unreadable manifest {path}: {what}") from None
    frames = [_read_file(directory / str(name), spec) for _, name in sorted(partitions.items())]
    frames = [f for f in frames if len(f)]
    rows = pd.concat(frames, ignore_index=True) if frames else empty_frame(spec)
    return spec, rows


def _read_file(path: Path, spec: GroupSpec) -> pd.DataFrame:
    match = _FILE.fullmatch(path.name)
    try:
        data = path.read_bytes()
        if match is None or hashlib.sha256(data).hexdigest()[:16] != match.group(1):
            raise ValueError("its content does not match the hash in its name")
        df = pq.read_table(pa.BufferReader(data)).to_pandas(date_as_object=False)
        df = df[spec.column_names]
    except (OSError, ValueError, KeyError, pa.ArrowException) as exc:
        raise StoreError(f"cannot migrate {path.parent}: {path.name}: {type(exc).__name__}: {exc}") from None
    for c in spec.columns:
        if c.dtype == "date":
            df[c.name] = df[c.name].astype("datetime64[ns]")
    return df
