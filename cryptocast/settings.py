"""One settings object, so every knob has one name, one default and one place it is read.

Precedence: command-line flags > process environment > `.env` in the working directory > defaults.
The env names are a contract (the README's settings table): numbers are bounded, so a typo cannot
make a run hang or hammer an API, and an unknown `CRYPTOCAST_*` name is reported, not ignored.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values

from cryptocast.errors import SettingsError
from cryptocast.logs import redact

BACKENDS = ("auto", "local", "hopsworks")
# Feature-group time-travel formats hsfs 5.2 documents for `get_or_create_feature_group`. Ours is HUDI, not the client's
# DELTA: from outside the cluster hsfs writes DELTA with delta-rs, which a hosted (Serverless) project cannot take
# (no external load balancers); HUDI goes through Kafka and the cluster's materialization job (guide/hopsworks.md).
HOPSWORKS_FORMATS = ("DELTA", "HUDI", "ICEBERG")
ISO_DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # ASCII digits: \d would match any script's digits
EARLIEST_DAY = dt.date(2009, 1, 3)  # Bitcoin's first block: no crypto market has a day before it
MAX_SHOWN_CHARS = 32  # a longer value in an error may be a pasted key: say how long it is, not what

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
    "CRYPTOCAST_HTTP_RETRY_AFTER_MAX": "60",
    "CRYPTOCAST_HTTP_MAX_MB": "16",
    "CRYPTOCAST_HOLE_ASKS": "3",
    "CRYPTOCAST_HOLE_DAYS": "7",
    "CRYPTOCAST_LSTM_UNITS": "32",
    "CRYPTOCAST_LSTM_HEADS": "4",
    "CRYPTOCAST_LSTM_DROPOUT": "0.2",
    "CRYPTOCAST_LSTM_EPOCHS": "60",
    "CRYPTOCAST_LSTM_BATCH_SIZE": "64",
    "CRYPTOCAST_LSTM_LEARNING_RATE": "0.001",
    "CRYPTOCAST_LSTM_PATIENCE": "4",
    "CRYPTOCAST_LSTM_SEED": "42",
    "CRYPTOCAST_BACKTEST_DAYS": "365",
    "CRYPTOCAST_REFIT_EVERY": "30",
    "CRYPTOCAST_HEALTH_DAYS": "90",
    "CRYPTOCAST_HEALTH_MIN_DAYS": "30",
    "CRYPTOCAST_HEALTH_LEVEL": "0.95",
    "CRYPTOCAST_DRIFT_DAYS": "30",
    "CRYPTOCAST_DRIFT_PSI": "2.0",
    "CRYPTOCAST_FROZEN_DAYS": "5",
    "CRYPTOCAST_HOPSWORKS_TIMEOUT": "900",
    "CRYPTOCAST_HOPSWORKS_FORMAT": "HUDI",
    "CRYPTOCAST_REPOSITORY_URL": "",
    "GITHUB_SERVER_URL": "https://github.com",
}
MODEL_SETTINGS = {  # env name -> (TrainConfig field, type)
    "CRYPTOCAST_LSTM_UNITS": ("units", int),
    "CRYPTOCAST_LSTM_HEADS": ("heads", int),
    "CRYPTOCAST_LSTM_DROPOUT": ("dropout", float),
    "CRYPTOCAST_LSTM_EPOCHS": ("epochs", int),
    "CRYPTOCAST_LSTM_BATCH_SIZE": ("batch_size", int),
    "CRYPTOCAST_LSTM_LEARNING_RATE": ("learning_rate", float),
    "CRYPTOCAST_LSTM_PATIENCE": ("patience", int),
    "CRYPTOCAST_LSTM_SEED": ("seed", int),
}
# Names the code read before the README's became the contract; still honoured, with a note to rename.
OLD_NAMES = {old: old.replace("CRYPTOCAST_", "CRYPTOCAST_LSTM_") for old in (
    "CRYPTOCAST_DROPOUT", "CRYPTOCAST_EPOCHS", "CRYPTOCAST_BATCH_SIZE", "CRYPTOCAST_LEARNING_RATE",
    "CRYPTOCAST_PATIENCE", "CRYPTOCAST_SEED")}
# Read by the test harness, not by the package (tests/publish/test_browser.py).
OTHER_KNOWN_NAMES = ("CRYPTOCAST_REQUIRE_BROWSER",)
HTTP_BOUNDS = {  # env name -> (type, lowest, highest)
    "CRYPTOCAST_HTTP_TIMEOUT": (float, 1, 600),
    "CRYPTOCAST_HTTP_RETRIES": (int, 0, 10),
    "CRYPTOCAST_HTTP_BACKOFF": (float, 0, 60),
    "CRYPTOCAST_HTTP_RETRY_AFTER_MAX": (float, 0, 600),
    "CRYPTOCAST_HTTP_MAX_MB": (int, 1, 1024),
    "CRYPTOCAST_HOLE_ASKS": (int, 1, 100),
    "CRYPTOCAST_HOLE_DAYS": (int, 0, 3650),
}
# Model and backtest settings a model can be trained with: outside these a run fails only after minutes
# (HEADS=0, a backtest longer than any history), or trains nothing and is promoted (EPOCHS=0).
MODEL_BOUNDS = {
    "CRYPTOCAST_LSTM_UNITS": (int, 1, 1024),
    "CRYPTOCAST_LSTM_HEADS": (int, 1, 64),
    "CRYPTOCAST_LSTM_DROPOUT": (float, 0, 0.9),
    "CRYPTOCAST_LSTM_EPOCHS": (int, 1, 10_000),
    "CRYPTOCAST_LSTM_BATCH_SIZE": (int, 1, 65_536),
    "CRYPTOCAST_LSTM_LEARNING_RATE": (float, 1e-6, 1),
    "CRYPTOCAST_LSTM_PATIENCE": (int, 0, 1000),
    "CRYPTOCAST_LSTM_SEED": (int, 0, 2**32 - 1),
    "CRYPTOCAST_BACKTEST_DAYS": (int, 10, 3650),
    "CRYPTOCAST_REFIT_EVERY": (int, 0, 3650),
}
KEY_SETTINGS = ("CRYPTO_API_KEY", "HOPSWORKS_API_KEY")
URL_SETTINGS = ("CRYPTOCOMPARE_URL", "BINANCE_URL", "FEAR_GREED_URL")
KEY_LIKE = re.compile(r"[A-Za-z0-9]{16,}")  # a run of 16 letters and digits: what API keys are made of
HEALTH_BOUNDS = {  # env name -> (type, lowest, highest): the model-health thresholds (cryptocast/health.py)
    "CRYPTOCAST_HEALTH_DAYS": (int, 14, 365),
    "CRYPTOCAST_HEALTH_MIN_DAYS": (int, 1, 365),
    "CRYPTOCAST_HEALTH_LEVEL": (float, 0.5, 0.999),
    "CRYPTOCAST_DRIFT_DAYS": (int, 7, 365),
    "CRYPTOCAST_DRIFT_PSI": (float, 0.01, 100),
    "CRYPTOCAST_FROZEN_DAYS": (int, 2, 365),
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
    http_retry_after_max: float = 60.0
    http_max_bytes: int = 16 * 2**20
    hole_asks: int = 3
    hole_days: int = 7
    crypto_api_key: str = field(default="", repr=False)
    hopsworks_api_key: str = field(default="", repr=False)
    hopsworks_project: str = ""
    hopsworks_host: str = ""
    hopsworks_timeout: float = 900.0
    hopsworks_format: str = "HUDI"
    model: dict = field(default_factory=dict)
    backtest_days: int = 365
    refit_every: int = 30
    notes: tuple[str, ...] = field(default=(), repr=False)  # warnings for the log: old or unknown names
    repository_url: str = ""  # the site links to it; "" = not known
    health_days: int = 90  # live scores: forecasts whose outcome became known in the last this many days
    health_min_days: int = 30  # fewer matured forecast days than this: a live check says it cannot tell yet
    health_level: float = 0.95  # central level of the backtest's bootstrap range a live score must lie in
    drift_days: int = 30  # input drift: the last this many days against the training window
    drift_psi: float = 2.0  # population-stability index above this: an input has drifted
    frozen_days: int = 5  # an input with the same value this many days running is frozen

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


def _shown(name: str, value: str) -> str:
    """`NAME='value'` for an error line; a long value, or one with a key-like run of letters and digits, could
    be a pasted key, so only its length is told."""
    if len(value) <= MAX_SHOWN_CHARS and not KEY_LIKE.search(value):
        return f"{name}={value!r}"
    return f"{name}=(a {len(value)}-character value)"


def parse_day(text: object) -> dt.date | None:
    """A day written exactly as YYYY-MM-DD in ASCII digits, else None. `date.fromisoformat` alone also
    takes 20240101 and 2024-W01-1, and `\\d` any script's digits: every day read from text goes through here."""
    if not isinstance(text, str) or not re.fullmatch(ISO_DAY, text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _parse_date(name: str, value: str, earliest: dt.date) -> dt.date:
    day = parse_day(value)
    if day is None:
        raise SettingsError(f"{_shown(name, value)} is not a date in YYYY-MM-DD form")
    if day < earliest:
        raise SettingsError(f"{_shown(name, value)} is before {earliest} (no market data exists earlier)")
    return day


def _to_number(name: str, value: str, kind: type) -> float | int:
    try:
        return kind(value)
    except ValueError:
        raise SettingsError(f"{_shown(name, value)} is not a {kind.__name__}") from None


def _parse_number(name: str, value: str, kind: type) -> float | int:
    number = _to_number(name, value, kind)
    if not math.isfinite(number) or number < 0:
        raise SettingsError(f"{_shown(name, value)} must not be negative (and must be finite)")
    return number


def _parse_bounded(name: str, value: str) -> float | int:
    """A number inside the range the README states: outside it a run could hang, be banned, or train nothing."""
    kind, lowest, highest = {**HTTP_BOUNDS, **MODEL_BOUNDS, **HEALTH_BOUNDS}[name]
    number = _to_number(name, value, kind)
    if not (math.isfinite(number) and lowest <= number <= highest):
        raise SettingsError(f"{_shown(name, value)} must be between {lowest} and {highest}")
    return number


def _parse_key(name: str, value: str) -> str:
    """A key as it must go into a header: printable ASCII without spaces. A pasted newline would be sent
    (and echoed by errors) as part of it; a non-ASCII character cannot be sent at all. Never shown."""
    if any(c.isspace() for c in value):
        where = "around" if value.strip() and not any(c.isspace() for c in value.strip()) else "in"
        raise SettingsError(f"{name} has whitespace {where} it (a pasted newline or space?): remove it "
                            "(the key is not shown)")
    odd = next((i for i, c in enumerate(value) if not (c.isascii() and c.isprintable())), None)
    if odd is not None:
        raise SettingsError(f"{name} has a character that is not printable ASCII at position {odd + 1}: API keys "
                            "are ASCII (the key is not shown)")
    return value


def _parse_url(name: str, value: str) -> str:
    """An http(s) base URL with a host a request can be made to; checked here so a typo fails before any
    group is fetched, with one line naming the setting."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises for a port that is not a number in 0..65535
        host = parts.hostname or ""
        host.encode("idna")  # raises for a label over 63 characters or an unencodable name
    except (ValueError, UnicodeError) as exc:
        raise SettingsError(f"{_shown(name, value)} is not a URL: {str(exc)[:80]}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise SettingsError(f"{_shown(name, value)} is not an http(s) URL with a host, like https://api.example.com")
    if len(host) > 253 or any(c.isspace() or not c.isprintable() for c in value) or port == 0:
        raise SettingsError(f"{_shown(name, value)} is not a usable URL (a host over 253 characters, a space, or "
                            "port 0)")
    return value.rstrip("/")


def _parse_positive(name: str, value: str) -> float:
    """A duration that must allow some time: zero would fail every call before it starts."""
    number = _parse_number(name, value, float)
    if number == 0:
        raise SettingsError(f"{_shown(name, value)} must be greater than zero (seconds)")
    return number


def _parse_format(value: str) -> str:
    """The time-travel format new feature groups get: the client's default unless a cluster refuses direct writes.

    Empty means unset, as a workflow passes a repository variable nobody defined.
    """
    value = value or DEFAULTS["CRYPTOCAST_HOPSWORKS_FORMAT"]
    if value.upper() not in HOPSWORKS_FORMATS:
        shown = _shown("CRYPTOCAST_HOPSWORKS_FORMAT", value)
        raise SettingsError(f"{shown} must be one of {', '.join(HOPSWORKS_FORMATS)}")
    return value.upper()


def _parse_home(value: str) -> Path:
    """An empty value would silently mean the working directory; refuse it instead. A name no file system
    takes (a component over 255 bytes, a path over 4096) would fail later with an error echoing it whole,
    and such a value is more likely a pasted key than a directory: refused here, by its length only."""
    if not value.strip():
        raise SettingsError("CRYPTOCAST_HOME is empty; name a directory for the local store (default .cryptocast)")
    if len(value.encode()) > 4096 or any(len(part.encode()) > 255 for part in Path(value).parts):
        raise SettingsError(f"{_shown('CRYPTOCAST_HOME', value)} is not a usable directory name (a name over 255 "
                            "bytes, or a path over 4096)")
    return Path(value).expanduser()


# https://[user[:token]@]host/owner/name[.git], git@host:owner/name[.git], ssh://git@host[:port]/owner/name[.git]
_REPOSITORY = re.compile(r"(?:https?://(?:[^@/]+@)?|ssh://[^@/]+@|[^@/:]+@)(?P<host>[A-Za-z0-9.-]+)(?::\d+)?[/:]"
                         r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?")


def public_repository_url(remote: str) -> str | None:
    """A git remote as the web address of its repository, with any credentials dropped; None if it is not one."""
    found = _REPOSITORY.fullmatch(remote.strip())
    return f"https://{found['host']}/{found['owner']}/{found['name']}" if found else None


def _repository_url(merged: Mapping[str, str]) -> str:
    """The setting if given, else the repository a GitHub Actions run belongs to."""
    if merged["CRYPTOCAST_REPOSITORY_URL"]:
        url = public_repository_url(merged["CRYPTOCAST_REPOSITORY_URL"])
        if url is None:  # the value may hold a credential: never echo it
            raise SettingsError("CRYPTOCAST_REPOSITORY_URL is not a repository address like https://host/owner/name")
        return url
    repository = merged.get("GITHUB_REPOSITORY", "")
    return public_repository_url(f"{merged['GITHUB_SERVER_URL'].rstrip('/')}/{repository}") or "" if repository else ""


def _resolve_backend(value: str, hopsworks_key: str) -> str:
    if value not in BACKENDS:
        raise SettingsError(f"{_shown('CRYPTOCAST_BACKEND', value)} must be one of {', '.join(BACKENDS)}")
    if value == "auto":
        return "hopsworks" if hopsworks_key else "local"
    return value


def _names_in_use(layers: list[Mapping[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Old model-setting names mapped onto the README's, and a note for each old or unknown name."""
    given = {k: v for layer in layers for k, v in layer.items()}
    renamed, notes = {}, []
    for old, new in OLD_NAMES.items():
        if old in given and new in given:
            notes.append(f"{old} is the old name of {new}: ignored, {new} is set")
        elif old in given:
            renamed[new] = given[old]
            notes.append(f"{old} is the old name of {new}: rename it")
    known = {*DEFAULTS, *OLD_NAMES, *OTHER_KNOWN_NAMES}
    for name in sorted(n for n in given if n.startswith("CRYPTOCAST_") and n not in known):
        close = difflib.get_close_matches(name.removeprefix("CRYPTOCAST_"),
                                          [n.removeprefix("CRYPTOCAST_") for n in DEFAULTS], n=1)
        notes.append(f"unknown setting {name} ignored" + (f" (did you mean CRYPTOCAST_{close[0]}?)" if close else ""))
    return renamed, notes


def load_settings(
    overrides: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
    today: dt.date | None = None,
) -> Settings:
    """Merge defaults, `.env`, the environment and flag overrides (keys are the env var names).

    A setting's error never shows a secret, even one pasted into the wrong setting.
    """
    dotenv_file = dotenv_path if dotenv_path is not None else Path.cwd() / ".env"
    from_file = {k: v for k, v in dotenv_values(dotenv_file).items() if v is not None}
    env = os.environ if environ is None else environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    renamed, notes = _names_in_use([from_file, env])
    merged = {**DEFAULTS, **renamed, **from_file, **env, **flags}
    secrets = [merged.get("CRYPTO_API_KEY", ""), merged.get("HOPSWORKS_API_KEY", "")]
    try:
        return _resolve(merged, today or dt.datetime.now(dt.UTC).date(), tuple(notes))
    except SettingsError as exc:
        raise SettingsError(redact(str(exc), secrets)) from None


def _resolve(merged: dict[str, str], real_today: dt.date, notes: tuple[str, ...]) -> Settings:
    as_of_text = merged["CRYPTOCAST_AS_OF"]
    as_of = (_parse_date("CRYPTOCAST_AS_OF", as_of_text, EARLIEST_DAY + dt.timedelta(days=1)) if as_of_text
             else real_today)
    hopsworks_key = merged.get("HOPSWORKS_API_KEY", "")
    return Settings(
        backend=_resolve_backend(merged["CRYPTOCAST_BACKEND"], hopsworks_key),
        home=_parse_home(merged["CRYPTOCAST_HOME"]),
        as_of=as_of,
        today=real_today,
        history_start=_parse_date("CRYPTOCAST_HISTORY_START", merged["CRYPTOCAST_HISTORY_START"], EARLIEST_DAY),
        cryptocompare_url=_parse_url("CRYPTOCOMPARE_URL", merged["CRYPTOCOMPARE_URL"]),
        binance_url=_parse_url("BINANCE_URL", merged["BINANCE_URL"]),
        fear_greed_url=_parse_url("FEAR_GREED_URL", merged["FEAR_GREED_URL"]),
        http_timeout=float(_parse_bounded("CRYPTOCAST_HTTP_TIMEOUT", merged["CRYPTOCAST_HTTP_TIMEOUT"])),
        http_retries=_parse_bounded("CRYPTOCAST_HTTP_RETRIES", merged["CRYPTOCAST_HTTP_RETRIES"]),
        http_backoff=float(_parse_bounded("CRYPTOCAST_HTTP_BACKOFF", merged["CRYPTOCAST_HTTP_BACKOFF"])),
        http_retry_after_max=float(_parse_bounded("CRYPTOCAST_HTTP_RETRY_AFTER_MAX",
                                                  merged["CRYPTOCAST_HTTP_RETRY_AFTER_MAX"])),
        http_max_bytes=_parse_bounded("CRYPTOCAST_HTTP_MAX_MB", merged["CRYPTOCAST_HTTP_MAX_MB"]) * 2**20,
        hole_asks=_parse_bounded("CRYPTOCAST_HOLE_ASKS", merged["CRYPTOCAST_HOLE_ASKS"]),
        hole_days=_parse_bounded("CRYPTOCAST_HOLE_DAYS", merged["CRYPTOCAST_HOLE_DAYS"]),
        crypto_api_key=_parse_key("CRYPTO_API_KEY", merged.get("CRYPTO_API_KEY", "")),
        hopsworks_api_key=_parse_key("HOPSWORKS_API_KEY", hopsworks_key),
        hopsworks_project=merged.get("HOPSWORKS_PROJECT", ""),
        hopsworks_host=merged.get("HOPSWORKS_HOST", ""),
        hopsworks_timeout=_parse_positive("CRYPTOCAST_HOPSWORKS_TIMEOUT", merged["CRYPTOCAST_HOPSWORKS_TIMEOUT"]),
        hopsworks_format=_parse_format(merged["CRYPTOCAST_HOPSWORKS_FORMAT"]),
        model={key: _parse_bounded(env, merged[env]) for env, (key, _) in MODEL_SETTINGS.items()},
        backtest_days=_parse_bounded("CRYPTOCAST_BACKTEST_DAYS", merged["CRYPTOCAST_BACKTEST_DAYS"]),
        refit_every=max(1, _parse_bounded("CRYPTOCAST_REFIT_EVERY", merged["CRYPTOCAST_REFIT_EVERY"])),
        notes=notes,
        repository_url=_repository_url(merged),
        **{name.removeprefix("CRYPTOCAST_").lower(): _parse_bounded(name, merged[name]) for name in HEALTH_BOUNDS},
    )
