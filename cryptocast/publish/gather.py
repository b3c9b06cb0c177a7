"""Everything the site shows, read once through the feature store and model registry interfaces.

Never their files: a hosted backend implementing the interfaces publishes the same site. The
model's optional artifacts (evaluation.json, history.json, backtest_forecasts.csv) are checked
here, so a damaged one is one line naming the file, before anything is drawn or written.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cryptocast.features import BITCOIN, FEAR_GREED, FORECASTS, SOLANA, GroupSpec, empty_frame
from cryptocast.forecasts import read_forecasts
from cryptocast.modeling.portable import CorruptModelError
from cryptocast.publish import charts
from cryptocast.registry import MODEL_NAME, ModelVersion, open_model_registry
from cryptocast.settings import Settings, public_repository_url
from cryptocast.status import export_table, freshness
from cryptocast.stores import FeatureStore, open_feature_store

# source column value -> (market, unit): what a reader needs to know the prices are
MARKETS = {"binance": ("Binance's SOLUSDT market", "USDT"), "kraken": ("Kraken's SOL-USD market", "USD"),
           "cryptocompare": ("Kraken's SOL-USD market", "USD")}


@dataclass(frozen=True)
class SiteInputs:
    """What the page is made of, read once from the stores."""

    backend: str
    closes: pd.Series  # SOL close by day
    markets: list[str]  # where SOL's prices come from, newest last
    unit: str  # what the newest prices are quoted in (USDT or USD)
    market: pd.DataFrame  # SOL, BTC, Fear & Greed by day
    forecasts: pd.DataFrame  # every published forecast of any version, in FORECASTS' columns (`read_forecasts`)
    forecasts_csv: bytes  # the same rows as `python -m cryptocast export solana_forecasts`
    repository: str | None  # the repository's web address, when known
    groups: dict[str, dict]
    model: ModelVersion | None
    evaluation: dict | None
    history: dict | None
    backtest: pd.DataFrame | None  # scored, charts.SCORED_COLUMNS
    health: str | None = None  # one sentence on the model's live health, shown under the answer when set


def _read(store: FeatureStore, spec: GroupSpec) -> pd.DataFrame:
    group = store.get_feature_group(spec)
    return group.read() if group else empty_frame(spec)


def _markets(solana: pd.DataFrame) -> tuple[list[str], str]:
    """Where the stored SOL prices come from (in order of first use) and the unit of the newest close."""
    sources = solana.sort_values("day")["source"]
    markets = list(dict.fromkeys(MARKETS.get(s, (s, "USD"))[0] for s in sources))
    return markets, MARKETS.get(sources.iloc[-1], ("", "USD"))[1] if len(sources) else MARKETS["binance"][1]


def git_remote() -> str | None:
    """The `origin` remote of the checkout the site is built in, if there is one."""
    try:
        done = subprocess.run(["git", "config", "--get", "remote.origin.url"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def repository(settings: Settings) -> str | None:
    """The setting, or GitHub Actions' repository, or the checkout's origin; None: the page links to none."""
    remote = settings.repository_url or git_remote()
    return public_repository_url(remote) if remote else None


def _series(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.set_index("day")[column].astype(float).sort_index()


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _horizon_rows(rows: Any, key: str) -> bool:
    return isinstance(rows, list) and all(
        isinstance(r, dict) and is_number(r.get("horizon")) and (r.get(key) is None or is_number(r.get(key)))
        for r in rows)


def evaluation_problem(doc: dict) -> str | None:
    """What is wrong with the parts of evaluation.json the page reads (see `backtest.report`), if anything."""
    models = doc.get("models")
    if not isinstance(models, dict) or not models:
        return "'models' must be a non-empty object"
    for name, model in models.items():
        if not isinstance(model, dict) or not _horizon_rows(model.get("per_horizon"), "rel_mae"):
            return f"models.{name}.per_horizon must be rows with 'horizon' and a numeric 'rel_mae'"
    intervals = doc.get("intervals", {})
    if not isinstance(intervals, dict) or not all(
            isinstance(v, dict) and _horizon_rows(v.get("per_horizon"), "coverage") for v in intervals.values()):
        return "'intervals' must map levels to per_horizon rows with a numeric 'coverage'"
    return _distribution_problem(doc.get("distribution", {}))


def _distribution_problem(distribution: Any) -> str | None:
    """The range scores (issue 9) the page reads; absent in versions registered before them, which is fine."""
    methods = distribution.get("methods", {}) if isinstance(distribution, dict) else None
    if not isinstance(methods, dict) or not all(isinstance(m, dict) for m in methods.values()):
        return "'distribution.methods' must map each range method to an object"
    for name, method in methods.items():
        if not _horizon_rows(method.get("per_horizon", []), "winkler_80_vs_fixed_band"):
            return f"distribution.methods.{name}.per_horizon must be rows with 'horizon' and numeric scores"
        if not all(value is None or is_number(value) for key, value in method.items() if key.endswith("_mean")):
            return f"distribution.methods.{name}: every '..._mean' must be a number or null"
    return None


def history_problem(doc: dict) -> str | None:
    """What is wrong with history.json (Keras' curves: a list of numbers per metric), if anything."""
    for key in ("loss", "val_loss"):
        values = doc.get(key, [])
        if not isinstance(values, list) or not all(is_number(v) for v in values):
            return f"'{key}' must be a list of numbers"
    return None


def _artifact_json(path: Path, problem: Callable[[dict], str | None]) -> dict | None:
    """An optional JSON artifact: None when absent (older versions), an error when unreadable or malformed."""
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None
    found = f"expected a JSON object, got {type(doc).__name__}" if not isinstance(doc, dict) else problem(doc)
    if found:
        raise CorruptModelError(f"{path}: {found}")
    return doc


def _artifact_backtest(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    try:
        return charts.score_backtest(pd.read_csv(path))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, pd.errors.ParserError) as exc:
        raise CorruptModelError(f"{path}: {type(exc).__name__}: {exc}") from None


def gather(settings: Settings) -> SiteInputs:
    """Read every group and the production model's evidence."""
    store = open_feature_store(settings)
    groups = {spec.name: (spec, _read(store, spec)) for spec in (SOLANA, BITCOIN, FEAR_GREED)}
    groups[FORECASTS.name] = (FORECASTS, read_forecasts(store))  # every version of the group, in the newest shape
    solana, bitcoin, fear_greed, forecasts = (rows for _, rows in groups.values())
    closes = _series(solana, "close")
    market = charts.market_frame(closes, _series(bitcoin, "close"), _series(fear_greed, "value"))
    model = open_model_registry(settings).production(MODEL_NAME)
    path = model.path if model else None
    markets, unit = _markets(solana)
    return SiteInputs(
        backend=store.backend,
        closes=closes,
        markets=markets,
        unit=unit,
        market=market,
        forecasts=forecasts,
        forecasts_csv=export_table(FORECASTS, forecasts).to_csv(index=False).encode(),
        repository=repository(settings),
        groups={name: freshness(spec, rows, settings) for name, (spec, rows) in groups.items()},
        model=model,
        evaluation=_artifact_json(path / "evaluation.json", evaluation_problem) if path else None,
        history=_artifact_json(path / "history.json", history_problem) if path else None,
        backtest=_artifact_backtest(path / "backtest_forecasts.csv") if path else None,
    )
