"""One settings object, so every knob has one name, one default and one place it is read.

Precedence: command-line flags > process environment > `.env` in the working directory > defaults.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import dotenv_values

from cryptocast.errors import SettingsError

BACKENDS = ("auto", "local", "hopsworks")

DEFAULTS = {
    "CRYPTOCAST_BACKEND": "auto",
    "CRYPTOCAST_HOME": ".cryptocast",
    "CRYPTOCAST_AS_OF": "",
    "CRYPTOCAST_HISTORY_START": "2018-01-01",
    "CRYPTOCOMPARE_URL": "https://data-api.cryptocompare.com",
    "BINANCE_URL": "https://data-api.binance.vision",
    "FEAR_GREED_URL": "https://api.alternative.me",
    "CRYPTOCAST_HTTP_TIMEOUT": "30",
    "CRYPTOCAST_HTTP_RETRIES": "3",
    "CRYPTOCAST_HTTP_BACKOFF": "1.0",
    "CRYPTOCAST_LSTM_UNITS": "32",
    "CRYPTOCAST_LSTM_HEADS": "4",
    "CRYPTOCAST_DROPOUT": "0.2",
    "CRYPTOCAST_EPOCHS": "60",
    "CRYPTOCAST_BATCH_SIZE": "64",
    "CRYPTOCAST_LEARNING_RATE": "0.001",
    "CRYPTOCAST_PATIENCE": "4",
    "CRYPTOCAST_SEED": "42",
    "CRYPTOCAST_BACKTEST_DAYS": "365",
    "CRYPTOCAST_REFIT_EVERY": "30",
    "CRYPTOCAST_HOPSWORKS_TIMEOUT": "900",
}
MODEL_SETTINGS = {  # env name -> (TrainConfig field, type)
    "CRYPTOCAST_LSTM_UNITS": ("units", int),
    "CRYPTOCAST_LSTM_HEADS": ("heads", int),
    "CRYPTOCAST_DROPOUT": ("dropout", float),
    "CRYPTOCAST_EPOCHS": ("epochs", int),
    "CRYPTOCAST_BATCH_SIZE": ("batch_size", int),
    "CRYPTOCAST_LEARNING_RATE": ("learning_rate", float),
    "CRYPTOCAST_PATIENCE": ("patience", int),
    "CRYPTOCAST_SEED": ("seed", int),
}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration for one run. Secrets are excluded from `repr` so they never print."""

    backend: str
    home: Path
    as_of: dt.date
    today: dt.date
    history_start: dt.date
    cryptocompare_url: str
    binance_url: str
    fear_greed_url: str
    http_timeout: float
    http_retries: int
    http_backoff: float
    crypto_api_key: str = field(default="", repr=False)
    hopsworks_api_key: str = field(default="", repr=False)
    hopsworks_project: str = ""
    hopsworks_host: str = ""
    hopsworks_timeout: float = 900.0
    model: dict = field(default_factory=dict)
    backtest_days: int = 365
    refit_every: int = 30

    @property
    def last_complete_day(self) -> dt.date:
        """The newest day whose candle is closed: the day before `as_of`, never today or later."""
        return min(self.as_of, self.today) - dt.timedelta(days=1)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must be scrubbed from anything printed or logged."""
        return tuple(s for s in (self.crypto_api_key, self.hopsworks_api_key) if s)

    def describe(self) -> dict[str, str]:
        """A printable view of the settings, with secrets reduced to whether they are set."""
        shown = {f.name: str(getattr(self, f.name)) for f in fields(self) if f.repr}
        shown["crypto_api_key"] = "set" if self.crypto_api_key else "unset"
        shown["hopsworks_api_key"] = "set" if self.hopsworks_api_key else "unset"
        return shown


def _parse_date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a date in YYYY-MM-DD form") from None


def _parse_number(name: str, value: str, kind: type) -> float | int:
    try:
        number = kind(value)
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a {kind.__name__}") from None
    if not math.isfinite(number) or number < 0:
        raise SettingsError(f"{name}={value!r} must not be negative (and must be finite)")
    return number


def _parse_positive(name: str, value: str) -> float:
    """A duration that must allow some time: zero would fail every call before it starts."""
    number = _parse_number(name, value, float)
    if number == 0:
        raise SettingsError(f"{name}={value!r} must be greater than zero (seconds)")
    return number


def _resolve_backend(value: str, hopsworks_key: str) -> str:
    if value not in BACKENDS:
        raise SettingsError(f"CRYPTOCAST_BACKEND={value!r} must be one of {', '.join(BACKENDS)}")
    if value == "auto":
        return "hopsworks" if hopsworks_key else "local"
    return value


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    today: dt.date | None = None,
) -> Settings:
    """Merge defaults, `.env`, the environment and flag overrides (keys are the env var names)."""
    dotenv_file = dotenv_path if dotenv_path is not None else Path.cwd() / ".env"
    from_file = {k: v for k, v in dotenv_values(dotenv_file).items() if v is not None}
    env = os.environ if environ is None else environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    merged = {**DEFAULTS, **from_file, **env, **flags}
    real_today = today or dt.datetime.now(dt.UTC).date()
    as_of_text = merged["CRYPTOCAST_AS_OF"]
    as_of = _parse_date("CRYPTOCAST_AS_OF", as_of_text) if as_of_text else real_today
    hopsworks_key = merged.get("HOPSWORKS_API_KEY", "")
    return Settings(
        backend=_resolve_backend(merged["CRYPTOCAST_BACKEND"], hopsworks_key),
        home=Path(merged["CRYPTOCAST_HOME"]).expanduser(),
        as_of=as_of,
        today=real_today,
        history_start=_parse_date("CRYPTOCAST_HISTORY_START", merged["CRYPTOCAST_HISTORY_START"]),
        cryptocompare_url=merged["CRYPTOCOMPARE_URL"].rstrip("/"),
        binance_url=merged["BINANCE_URL"].rstrip("/"),
        fear_greed_url=merged["FEAR_GREED_URL"].rstrip("/"),
        http_timeout=_parse_number("CRYPTOCAST_HTTP_TIMEOUT", merged["CRYPTOCAST_HTTP_TIMEOUT"], float),
        http_retries=_parse_number("CRYPTOCAST_HTTP_RETRIES", merged["CRYPTOCAST_HTTP_RETRIES"], int),
        http_backoff=_parse_number("CRYPTOCAST_HTTP_BACKOFF", merged["CRYPTOCAST_HTTP_BACKOFF"], float),
        crypto_api_key=merged.get("CRYPTO_API_KEY", ""),
        hopsworks_api_key=hopsworks_key,
        hopsworks_project=merged.get("HOPSWORKS_PROJECT", ""),
        hopsworks_host=merged.get("HOPSWORKS_HOST", ""),
        hopsworks_timeout=_parse_positive("CRYPTOCAST_HOPSWORKS_TIMEOUT", merged["CRYPTOCAST_HOPSWORKS_TIMEOUT"]),
        model={key: _parse_number(env, merged[env], kind) for env, (key, kind) in MODEL_SETTINGS.items()},
        backtest_days=_parse_number("CRYPTOCAST_BACKTEST_DAYS", merged["CRYPTOCAST_BACKTEST_DAYS"], int),
        refit_every=max(1, _parse_number("CRYPTOCAST_REFIT_EVERY", merged["CRYPTOCAST_REFIT_EVERY"], int)),
    )
