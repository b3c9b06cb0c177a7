"""Unit tests for cryptocast.settings.load_settings: precedence, parsing, backend choice, secrets.

Every test passes an explicit `environ` dict and a `.env` path under tmp_path, so nothing here
depends on the real environment or on a `.env` in the working directory.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from cryptocast.errors import SettingsError
from cryptocast.settings import load_settings, public_repository_url

TODAY = dt.date(2024, 3, 1)


def write_env(tmp_path: Path, **values: str) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def load(tmp_path: Path, flags=None, environ=None, dotenv=None, today=TODAY):
    dotenv_path = write_env(tmp_path, **dotenv) if dotenv is not None else tmp_path / "absent.env"
    return load_settings(flags or {}, environ or {}, dotenv_path, today)


# --- precedence: flags > environ > .env > defaults ------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "environ", "dotenv", "expected"),
    [
        ({}, {}, {}, ".cryptocast"),
        ({}, {}, {"CRYPTOCAST_HOME": "/from/dotenv"}, "/from/dotenv"),
        ({}, {"CRYPTOCAST_HOME": "/from/env"}, {"CRYPTOCAST_HOME": "/from/dotenv"}, "/from/env"),
        ({"CRYPTOCAST_HOME": "/from/flag"}, {"CRYPTOCAST_HOME": "/from/env"}, {"CRYPTOCAST_HOME": "/from/dotenv"},
         "/from/flag"),
        ({"CRYPTOCAST_HOME": "/from/flag"}, {}, {}, "/from/flag"),
        # a flag that was not given arrives as None and must not mask the lower layers
        ({"CRYPTOCAST_HOME": None}, {"CRYPTOCAST_HOME": "/from/env"}, {}, "/from/env"),
    ],
)
def test_home_precedence(tmp_path, flags, environ, dotenv, expected):
    assert load(tmp_path, flags, environ, dotenv).home == Path(expected)


@pytest.mark.parametrize(
    ("flags", "environ", "dotenv", "expected"),
    [
        ({}, {}, {}, TODAY),
        ({}, {}, {"CRYPTOCAST_AS_OF": "2023-05-05"}, dt.date(2023, 5, 5)),
        ({}, {"CRYPTOCAST_AS_OF": "2023-06-06"}, {"CRYPTOCAST_AS_OF": "2023-05-05"}, dt.date(2023, 6, 6)),
        ({"CRYPTOCAST_AS_OF": "2023-07-07"}, {"CRYPTOCAST_AS_OF": "2023-06-06"}, {"CRYPTOCAST_AS_OF": "2023-05-05"},
         dt.date(2023, 7, 7)),
        ({"CRYPTOCAST_AS_OF": None}, {"CRYPTOCAST_AS_OF": "2023-06-06"}, {}, dt.date(2023, 6, 6)),
    ],
)
def test_as_of_precedence(tmp_path, flags, environ, dotenv, expected):
    assert load(tmp_path, flags, environ, dotenv).as_of == expected


def test_dotenv_fills_values_the_environment_does_not_set(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_HOME": "/env"},
             dotenv={"CRYPTOCAST_HOME": "/dotenv", "CRYPTOCAST_HTTP_RETRIES": "7"})
    assert (s.home, s.http_retries) == (Path("/env"), 7)


def test_defaults(tmp_path):
    s = load(tmp_path)
    assert s.backend == "local"
    assert s.home == Path(".cryptocast")
    assert s.as_of == TODAY and s.today == TODAY
    assert s.history_start == dt.date(2018, 1, 1)
    assert s.cryptocompare_url == "https://data-api.cryptocompare.com"
    assert s.binance_url == "https://data-api.binance.vision"
    assert s.fear_greed_url == "https://api.alternative.me"
    assert (s.http_timeout, s.http_retries, s.http_backoff) == (30.0, 3, 1.0)
    assert isinstance(s.http_retries, int) and isinstance(s.http_timeout, float)
    assert s.crypto_api_key == "" and s.hopsworks_api_key == ""


# --- backend ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "dotenv", "expected"),
    [
        ({}, {}, "local"),
        ({"HOPSWORKS_API_KEY": "hw"}, {}, "hopsworks"),
        ({}, {"HOPSWORKS_API_KEY": "hw"}, "hopsworks"),
        ({"HOPSWORKS_API_KEY": ""}, {}, "local"),
        ({"CRYPTOCAST_BACKEND": "auto", "HOPSWORKS_API_KEY": "hw"}, {}, "hopsworks"),
        ({"CRYPTOCAST_BACKEND": "local", "HOPSWORKS_API_KEY": "hw"}, {}, "local"),
        ({"CRYPTOCAST_BACKEND": "hopsworks"}, {}, "hopsworks"),
    ],
)
def test_backend_resolution(tmp_path, environ, dotenv, expected):
    assert load(tmp_path, environ=environ, dotenv=dotenv).backend == expected


def test_backend_flag_beats_environment(tmp_path):
    s = load(tmp_path, flags={"CRYPTOCAST_BACKEND": "local"},
             environ={"CRYPTOCAST_BACKEND": "hopsworks", "HOPSWORKS_API_KEY": "hw"})
    assert s.backend == "local"


@pytest.mark.parametrize("bad", ["s3", "Local", ""])
def test_invalid_backend(tmp_path, bad):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={"CRYPTOCAST_BACKEND": bad})
    assert f"CRYPTOCAST_BACKEND={bad!r}" in str(info.value)


# --- dates and numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CRYPTOCAST_AS_OF", "2024-02-30"),
        ("CRYPTOCAST_AS_OF", "yesterday"),
        ("CRYPTOCAST_AS_OF", "01/03/2024"),
        ("CRYPTOCAST_HISTORY_START", "2018-13-01"),
        ("CRYPTOCAST_HISTORY_START", "soon"),
        ("CRYPTOCAST_AS_OF", "20240101"),  # date.fromisoformat takes these on 3.11; the message says YYYY-MM-DD
        ("CRYPTOCAST_AS_OF", "2024-W01-1"),
        ("CRYPTOCAST_HISTORY_START", "２０２４-01-01"),
    ],
)
def test_invalid_dates(tmp_path, name, value):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={name: value})
    assert name in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("CRYPTOCAST_HTTP_TIMEOUT", "-1", "must be between 1 and 600"),
        ("CRYPTOCAST_HTTP_RETRIES", "-2", "must be between 0 and 10"),
        ("CRYPTOCAST_HTTP_BACKOFF", "-0.5", "must be between 0 and 60"),
        ("CRYPTOCAST_HTTP_TIMEOUT", "thirty", "is not a float"),
        ("CRYPTOCAST_HTTP_RETRIES", "1.5", "is not a int"),
        ("CRYPTOCAST_HTTP_RETRIES", "", "is not a int"),
        # bounds: a setting that would hang or hammer an API is refused (issue 10, findings 5 and 7)
        ("CRYPTOCAST_HTTP_TIMEOUT", "0", "must be between 1 and 600"),
        ("CRYPTOCAST_HTTP_TIMEOUT", "86400", "must be between 1 and 600"),
        ("CRYPTOCAST_HTTP_RETRIES", "100000", "must be between 0 and 10"),
        ("CRYPTOCAST_HTTP_BACKOFF", "1e9", "must be between 0 and 60"),
        ("CRYPTOCAST_HTTP_RETRY_AFTER_MAX", "3601", "must be between 0 and 600"),
        ("CRYPTOCAST_HTTP_MAX_MB", "0", "must be between 1 and 1024"),
        ("CRYPTOCAST_HOLE_ASKS", "0", "must be between 1 and 100"),
        ("CRYPTOCAST_HOLE_DAYS", "-1", "must be between 0 and 3650"),
    ],
)
def test_invalid_numbers(tmp_path, name, value, problem):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={name: value})
    assert str(info.value) == f"{name}={value!r} {problem}"


@pytest.mark.parametrize("name", ["CRYPTOCAST_HTTP_TIMEOUT", "CRYPTOCAST_HTTP_BACKOFF"])
def test_nan_is_not_a_usable_number(tmp_path, name):
    """NaN is neither negative nor a usable timeout/backoff; it must be rejected at load time."""
    with pytest.raises(SettingsError):
        load(tmp_path, environ={name: "nan"})


def test_zero_is_allowed(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_HTTP_RETRIES": "0", "CRYPTOCAST_HTTP_BACKOFF": "0"})
    assert (s.http_retries, s.http_backoff) == (0, 0.0)


def test_numbers_are_parsed(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_HTTP_TIMEOUT": "2.5", "CRYPTOCAST_HTTP_RETRIES": "5",
                                "CRYPTOCAST_HTTP_BACKOFF": "0.25"})
    assert (s.http_timeout, s.http_retries, s.http_backoff) == (2.5, 5, 0.25)


# --- as_of and last_complete_day -------------------------------------------------------------------


def test_as_of_defaults_to_the_given_today(tmp_path):
    s = load(tmp_path, today=dt.date(2022, 12, 31))
    assert s.as_of == dt.date(2022, 12, 31)
    assert s.last_complete_day == dt.date(2022, 12, 30)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        ("2024-03-01", dt.date(2024, 2, 29)),  # as_of == today, leap year
        ("2024-01-01", dt.date(2023, 12, 31)),  # across a year boundary
        ("2024-02-10", dt.date(2024, 2, 9)),
    ],
)
def test_last_complete_day_is_the_day_before_as_of(tmp_path, as_of, expected):
    assert load(tmp_path, environ={"CRYPTOCAST_AS_OF": as_of}).last_complete_day == expected


@pytest.mark.parametrize("as_of", ["2024-03-02", "2030-01-01"])
def test_last_complete_day_never_reaches_today_for_a_future_as_of(tmp_path, as_of):
    s = load(tmp_path, environ={"CRYPTOCAST_AS_OF": as_of})
    assert s.last_complete_day == dt.date(2024, 2, 29)
    assert s.last_complete_day < TODAY


# --- secrets ---------------------------------------------------------------------------------------

CC_KEY = "cc-secret-4f9a1b"
HW_KEY = "hw-secret-77e0c2"


def test_secrets_never_print(tmp_path):
    s = load(tmp_path, environ={"CRYPTO_API_KEY": CC_KEY}, dotenv={"HOPSWORKS_API_KEY": HW_KEY})
    assert (s.crypto_api_key, s.hopsworks_api_key) == (CC_KEY, HW_KEY)  # loaded...
    shown = s.describe()
    for text in (repr(s), str(s), str(shown), *shown.keys(), *shown.values()):
        assert CC_KEY not in text and HW_KEY not in text  # ...but never shown
    assert shown["crypto_api_key"] == "set"
    assert shown["hopsworks_api_key"] == "set"
    assert shown["backend"] == "hopsworks"
    assert shown["as_of"] == "2024-03-01"
    assert set(s.secrets) == {CC_KEY, HW_KEY} and len(s.secrets) == 2


def test_secrets_lists_only_the_set_ones(tmp_path):
    only_cc = load(tmp_path, environ={"CRYPTO_API_KEY": CC_KEY})
    assert only_cc.secrets == (CC_KEY,)
    assert only_cc.describe()["crypto_api_key"] == "set"
    assert only_cc.describe()["hopsworks_api_key"] == "unset"
    none = load(tmp_path, environ={"CRYPTO_API_KEY": ""})
    assert none.secrets == ()
    assert none.describe()["crypto_api_key"] == "unset"


# --- URLs --------------------------------------------------------------------------------------------


def test_trailing_slashes_are_stripped(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCOMPARE_URL": "http://127.0.0.1:8080/", "BINANCE_URL": "https://b.example//"},
             dotenv={"FEAR_GREED_URL": "http://fng.example/api/"})
    assert s.cryptocompare_url == "http://127.0.0.1:8080"
    assert s.binance_url == "https://b.example"
    assert s.fear_greed_url == "http://fng.example/api"


# --- Hopsworks feature-group format -------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [(None, "HUDI"), ("", "HUDI"), ("HUDI", "HUDI"),
                                                  ("iceberg", "ICEBERG"), ("delta", "DELTA")])
def test_the_hopsworks_format_defaults_to_hudi_and_is_upper_cased(tmp_path, given, expected):
    environ = {} if given is None else {"CRYPTOCAST_HOPSWORKS_FORMAT": given}
    assert load(tmp_path, environ=environ).hopsworks_format == expected


@pytest.mark.parametrize("bad", ["parquet", "NONE", " "])
def test_an_unknown_hopsworks_format_is_a_settings_error(tmp_path, bad):
    with pytest.raises(SettingsError, match=f"CRYPTOCAST_HOPSWORKS_FORMAT={bad!r} must be one of DELTA, HUDI, ICEBERG"):
        load(tmp_path, environ={"CRYPTOCAST_HOPSWORKS_FORMAT": bad})




def test_http_and_hole_defaults(tmp_path):
    s = load(tmp_path)
    assert (s.http_retry_after_max, s.http_max_bytes) == (60.0, 16 * 2**20)
    assert (s.hole_asks, s.hole_days) == (3, 7)


@pytest.mark.parametrize("as_of", ["0001-01-01", "1900-01-01", "2009-01-03"])
def test_as_of_before_any_market_day_is_refused(tmp_path, as_of):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={"CRYPTOCAST_AS_OF": as_of})
    assert str(info.value) == f"CRYPTOCAST_AS_OF={as_of!r} is before 2009-01-04 (no market data exists earlier)"


def test_history_start_before_any_market_day_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="CRYPTOCAST_HISTORY_START='1900-01-01' is before 2009-01-03"):
        load(tmp_path, environ={"CRYPTOCAST_HISTORY_START": "1900-01-01"})


@pytest.mark.parametrize("flag", ["--as-of=0001-01-01", "--as-of=9999-99-99"])
def test_as_of_flag_out_of_range_is_one_line_exit_1(flag, tmp_path, monkeypatch, capsys):
    import feature_pipeline

    monkeypatch.chdir(tmp_path)
    assert feature_pipeline.main([flag, "--home", str(tmp_path / "home")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: feature_pipeline: CRYPTOCAST_AS_OF=")


def test_http_timeout_zero_is_one_line_exit_1(tmp_path, monkeypatch, capsys):
    import feature_pipeline

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRYPTOCAST_HTTP_TIMEOUT", "0")
    assert feature_pipeline.main(["--home", str(tmp_path / "home")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: feature_pipeline: CRYPTOCAST_HTTP_TIMEOUT='0' must be between 1 and 600"]


# --- secrets in settings errors (issue 10, finding 7) ------------------------------------------------------


def test_a_key_pasted_into_another_setting_is_not_printed(tmp_path):
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={"CRYPTO_API_KEY": CC_KEY, "CRYPTOCAST_HTTP_TIMEOUT": CC_KEY})
    assert CC_KEY not in str(info.value)
    assert str(info.value).startswith("CRYPTOCAST_HTTP_TIMEOUT=")


def test_a_long_value_is_not_echoed_even_when_no_key_is_set(tmp_path):
    """A key pasted into the wrong setting (its own setting left empty) is not known to be a secret."""
    pasted = "0123456789abcdef0123456789abcdef0123456789abcdef"
    with pytest.raises(SettingsError) as info:
        load(tmp_path, environ={"CRYPTOCAST_BACKEND": pasted})
    assert pasted[:8] not in str(info.value)
    assert str(info.value) == "CRYPTOCAST_BACKEND=(a 48-character value) must be one of auto, local, hopsworks"


# --- names: the README's are the contract; unknown names warn (issue 10, finding 8) -----------------------

README_MODEL_NAMES = {"CRYPTOCAST_LSTM_UNITS": ("units", "16", 16),
                      "CRYPTOCAST_LSTM_HEADS": ("heads", "2", 2),
                      "CRYPTOCAST_LSTM_DROPOUT": ("dropout", "0.1", 0.1),
                      "CRYPTOCAST_LSTM_EPOCHS": ("epochs", "3", 3),
                      "CRYPTOCAST_LSTM_BATCH_SIZE": ("batch_size", "8", 8),
                      "CRYPTOCAST_LSTM_LEARNING_RATE": ("learning_rate", "0.01", 0.01),
                      "CRYPTOCAST_LSTM_PATIENCE": ("patience", "2", 2),
                      "CRYPTOCAST_LSTM_SEED": ("seed", "7", 7)}


def test_readme_names_the_model_settings_the_code_reads(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "guide" / "usage.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `CRYPTOCAST_LSTM_UNITS`"))
    names = ["CRYPTOCAST_LSTM_UNITS"] + [f"CRYPTOCAST_LSTM{n}" for n in re.findall(r"`(_[A-Z_]+)`", row)]
    assert set(names) == set(README_MODEL_NAMES)
    s = load(tmp_path, environ={name: raw for name, (_, raw, _) in README_MODEL_NAMES.items()})
    assert s.model == {key: value for key, _, value in README_MODEL_NAMES.values()}
    assert s.notes == ()


def test_old_model_names_still_work_with_a_note(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_EPOCHS": "5"}, dotenv={"CRYPTOCAST_SEED": "9"})
    assert (s.model["epochs"], s.model["seed"]) == (5, 9)
    assert s.notes == ("CRYPTOCAST_EPOCHS is the old name of CRYPTOCAST_LSTM_EPOCHS: rename it",
                       "CRYPTOCAST_SEED is the old name of CRYPTOCAST_LSTM_SEED: rename it")


def test_the_readme_name_wins_over_the_old_one(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_EPOCHS": "5", "CRYPTOCAST_LSTM_EPOCHS": "6"})
    assert s.model["epochs"] == 6
    assert s.notes == ("CRYPTOCAST_EPOCHS is the old name of CRYPTOCAST_LSTM_EPOCHS: ignored, "
                       "CRYPTOCAST_LSTM_EPOCHS is set",)


def test_unknown_cryptocast_names_warn(tmp_path):
    s = load(tmp_path, environ={"CRYPTOCAST_HTTP_TIMOUT": "5", "OTHER_TOOL_SETTING": "x"},
             dotenv={"CRYPTOCAST_NOPE": "1"})
    assert s.notes == ("unknown setting CRYPTOCAST_HTTP_TIMOUT ignored (did you mean CRYPTOCAST_HTTP_TIMEOUT?)",
                       "unknown setting CRYPTOCAST_NOPE ignored")


def test_notes_are_logged_once_each_by_every_entry_point(tmp_path, monkeypatch, capsys):
    from cryptocast.__main__ import main as cryptocast_main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRYPTOCAST_LSTM_EPOCHZ", "3")
    assert cryptocast_main(["status", "--home", str(tmp_path / "home")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "unknown setting CRYPTOCAST_LSTM_EPOCHZ ignored (did you mean " in warnings[0]


# --- the repository the site links to ----------------------------------------------------------------


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, ""),
    ({"GITHUB_REPOSITORY": "owner/cryptocast"}, "https://github.com/owner/cryptocast"),
    ({"GITHUB_REPOSITORY": "owner/cryptocast", "GITHUB_SERVER_URL": "https://ghe.example.com"},
     "https://ghe.example.com/owner/cryptocast"),
    ({"CRYPTOCAST_REPOSITORY_URL": "https://gitlab.example.com/me/fork.git", "GITHUB_REPOSITORY": "owner/cryptocast"},
     "https://gitlab.example.com/me/fork"),
])
def test_repository_url_from_the_setting_or_github_actions(tmp_path, environ, expected):
    assert load(tmp_path, environ=environ).repository_url == expected


@pytest.mark.parametrize(("remote", "expected"), [
    ("https://github.com/owner/cryptocast.git", "https://github.com/owner/cryptocast"),
    ("https://x-access-token:ghs_SECRET123@github.com/owner/cryptocast.git", "https://github.com/owner/cryptocast"),
    ("git@github.com:owner/cryptocast.git", "https://github.com/owner/cryptocast"),
    ("ssh://git@github.com:22/owner/cryptocast", "https://github.com/owner/cryptocast"),
    ("/srv/git/cryptocast.git", None),
    ("https://github.com/owner", None),
    ("https://github.com/owner/repo\"><script>", None),
])
def test_public_repository_url_keeps_host_owner_and_name_only(remote, expected):
    assert public_repository_url(remote) == expected


def test_a_repository_setting_that_is_not_a_repository_url_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(SettingsError, match="CRYPTOCAST_REPOSITORY_URL is not") as error:
        load(tmp_path, environ={"CRYPTOCAST_REPOSITORY_URL": "ftp://user:hunter2@host/x"})
    assert "hunter2" not in str(error.value)


def test_the_health_thresholds_have_documented_bounded_defaults(tmp_path):
    from cryptocast.health import Thresholds
    from cryptocast.settings import HEALTH_BOUNDS

    usage = (Path(__file__).resolve().parents[2] / "guide" / "usage.md").read_text()
    assert all(f"`{name}`" in usage for name in HEALTH_BOUNDS)
    s = load(tmp_path)
    assert Thresholds.from_settings(s) == Thresholds() == Thresholds(90, 30, 0.95, 30, 2.0, 5)
    s = load(tmp_path, environ={"CRYPTOCAST_HEALTH_DAYS": "60", "CRYPTOCAST_DRIFT_PSI": "1.5",
                                "CRYPTOCAST_FROZEN_DAYS": "3"})
    assert (s.health_days, s.drift_psi, s.frozen_days) == (60, 1.5, 3) and s.notes == ()
    for name, value in (("CRYPTOCAST_HEALTH_LEVEL", "1"), ("CRYPTOCAST_FROZEN_DAYS", "1"),
                        ("CRYPTOCAST_HEALTH_DAYS", "ninety")):
        with pytest.raises(SettingsError, match=name):
            load(tmp_path, environ={name: value})
