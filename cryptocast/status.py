"""What is in the store: the `status` report (a JSON contract later work extends) and CSV export.

The contract only grows: `known_holes` (per group, the missing days its current upstream has confirmed
it does not have, see `holes.py`) was added beside the original keys, which are unchanged.
"""

from __future__ import annotations

import pandas as pd

from cryptocast.errors import StoreError
from cryptocast.features import FORECASTS, INGESTED_GROUPS, GroupSpec, missing_days
from cryptocast.forecasts import read_forecasts
from cryptocast.health import HEALTH
from cryptocast.holes import HoleBook
from cryptocast.ingest import Upstream
from cryptocast.registry import open_model_registry
from cryptocast.settings import Settings
from cryptocast.stores import FeatureStore

ALL_GROUPS = {spec.name: spec for spec in (*INGESTED_GROUPS, FORECASTS, HEALTH)}


def group_status(store: FeatureStore, spec: GroupSpec, settings: Settings) -> dict:
    """Version, size, span and holes of one group; `behind_days` says how stale it is."""
    group = store.get_feature_group(spec)
    return freshness(spec, group.read() if group else None, settings)


def freshness(spec: GroupSpec, rows: pd.DataFrame | None, settings: Settings) -> dict:
    """`group_status` of rows the caller has already read (None or empty: the group is empty)."""
    if rows is None or rows.empty:
        return {"version": spec.version, "rows": 0, "first_day": None, "last_day": None, "missing_days": [],
                "behind_days": None}
    days = rows[spec.event_time].drop_duplicates()
    first, last = days.min(), days.max()
    holes = missing_days(days, first, last)
    return {
        "version": spec.version,
        "rows": int(len(rows)),
        "first_day": first.strftime("%Y-%m-%d"),
        "last_day": last.strftime("%Y-%m-%d"),
        "missing_days": [d.strftime("%Y-%m-%d") for d in holes],
        "behind_days": max(0, (pd.Timestamp(settings.last_complete_day) - last).days),
    }


def known_holes(store: FeatureStore, settings: Settings, groups: dict[str, dict]) -> None:
    """Add `known_holes` to each group's report: its missing days that its upstream confirmed it lacks."""
    book, upstream = HoleBook(store, settings), Upstream(settings)
    for name, report in groups.items():
        spec = ALL_GROUPS[name]
        known = book.known(name, upstream.origin(spec)) if spec in INGESTED_GROUPS else set()
        report["known_holes"] = [day for day in report["missing_days"] if pd.Timestamp(day) in known]


def status(store: FeatureStore, settings: Settings) -> dict:
    groups = {name: group_status(store, spec, settings) for name, spec in ALL_GROUPS.items()}
    known_holes(store, settings, groups)
    return {"backend": store.backend, "groups": groups, "models": open_model_registry(settings).summary()}


def format_status(report: dict) -> str:
    lines = [f"backend: {report['backend']}"]
    for name, g in report["groups"].items():
        if not g["rows"]:
            lines.append(f"{name} v{g['version']}: empty")
            continue
        holes = g["missing_days"]
        shown = ", ".join(holes[:5]) + (" ..." if len(holes) > 5 else "")
        known = f" ({len(g['known_holes'])} known upstream holes)" if g.get("known_holes") else ""
        lines.append(f"{name} v{g['version']}: {g['rows']} rows, {g['first_day']}..{g['last_day']}, "
                     f"{len(holes)} missing{known}{': ' + shown if holes else ''}, {g['behind_days']} day(s) behind")
    for name, model in report["models"].items():
        for v in model["versions"]:
            star = " (production)" if v["version"] == model["production"] else ""
            lines.append(f"model {name} v{v['version']}{star}: created {v['created']}, backtest rel. MAE vs naive "
                         f"{v['metrics'].get('rel_mae_mean', float('nan')):.3f}")
    return "\n".join(lines)


def export_frame(store: FeatureStore, spec: GroupSpec) -> pd.DataFrame:
    """The group as `export` writes it (see `export_table`); forecasts from every version of their
    group, in the current shape (`read_forecasts`)."""
    group = store.get_feature_group(spec)
    if spec.name == FORECASTS.name:
        df = read_forecasts(store)
        if df.empty and group is None:
            raise StoreError(f"feature group {spec.name} does not exist in the {store.backend} store")
    elif group is None:
        raise StoreError(f"feature group {spec.name} v{spec.version} does not exist in the {store.backend} store")
    else:
        df = group.read()
    return export_table(spec, df)


def export_table(spec: GroupSpec, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of a group as a plain table: date columns as YYYY-MM-DD, key columns first.

    Forecast prices are model output, and cents are all the precision they carry (17 digits read
    as a precision nobody has); ingested prices keep the source's own decimals, since SOL traded
    below $4 with four of them.
    """
    df = rows.copy()
    for c in spec.columns:
        if c.dtype == "date":
            df[c.name] = df[c.name].dt.strftime("%Y-%m-%d")
        elif c.dtype == "float" and spec.name == FORECASTS.name:  # "177.50", not "177.5": cents as text
            df[c.name] = df[c.name].map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    keys = list(spec.primary_key)
    return df[keys + [c for c in df.columns if c not in keys]]
