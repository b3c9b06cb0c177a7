"""The one way cryptocast talks to Hopsworks: a single login per process, every call bounded and named.

Each call runs in a daemon thread and is abandoned after CRYPTOCAST_HOPSWORKS_TIMEOUT seconds (a
daemon thread does not keep the process alive, so a hung request cannot hang the run). Whatever the
client raises becomes one StoreError line naming the step, with every secret scrubbed. The client
prints progress to stdout, so while a call runs stdout goes to stderr and `status --json` or `export`
stay parseable; stdin is empty, so a prompt (several projects and no HOPSWORKS_PROJECT) fails at
once instead of waiting for a keyboard.

`hopsworks.login` reads HOPSWORKS_HOST, HOPSWORKS_PROJECT, HOPSWORKS_PORT and more from `os.environ`
whenever its argument is None, and takes an empty value as given: the workflows set HOPSWORKS_HOST=""
when a repository defines none, which would become a connection to an empty host. Settings treat an
empty value as unset, so during the login the client sees those variables unset too. The engine is
always "python": left to choose, the client picks Spark whenever pyspark is installed.

`hopsworks` is imported inside `_login` only: the local backend never pays for it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any, TypeVar

from cryptocast.errors import CryptocastError, SettingsError, StoreError
from cryptocast.logs import redact
from cryptocast.settings import Settings

T = TypeVar("T")
MAX_DETAIL = 300
# The backend's error codes for a dataset path that is not there (RESTCodes.java, DatasetErrorCode, both sent with
# HTTP 400): PATH_NOT_FOUND under an existing dataset, DATASET_NOT_FOUND when the top-level dataset is missing.
# No client class declares them (the client leaves its DatasetApi calls undecorated), so they are named here.
DATASET_NOT_FOUND = (110018, 110011)
LOGIN_HINT = "check HOPSWORKS_API_KEY, HOPSWORKS_PROJECT and HOPSWORKS_HOST"
SCOPE_HINT = "the API key lacks a scope this call needs: see guide/hopsworks.md"
RESET_COMMAND = "python -m cryptocast hopsworks-reset --yes-delete-cryptocast-groups"
UNWRITTEN_HINT = ("the group exists but its offline table was never written: its first materialization job failed "
                  "or still runs (see the project's Jobs page); to start over: `" + RESET_COMMAND + "`")
DELTA_HINT = ("this cluster takes no direct DELTA writes from outside, as no hosted Serverless project does: unset "
              f"CRYPTOCAST_HOPSWORKS_FORMAT (HUDI), then remove the groups left behind with `{RESET_COMMAND}`")

_logins: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # (host, project, key) -> (hopsworks module, Project)


class HopsworksSession:
    """A lazily logged-in project and the wrapper every Hopsworks call goes through."""

    def __init__(self, settings: Settings) -> None:
        if not settings.hopsworks_api_key:
            raise SettingsError("the hopsworks backend needs HOPSWORKS_API_KEY (in the environment or .env)")
        self.settings = settings
        self.timeout = settings.hopsworks_timeout
        self._project: Any = None
        self._services: dict[str, Any] = {}

    @property
    def project(self) -> Any:
        if self._project is None:
            self._project = self.call("login", self._login)
        return self._project

    def service(self, what: str, getter: str) -> Any:
        """A project-wide handle (`what`: "feature store", "model registry", ...), fetched once per session."""
        if what not in self._services:
            project = self.project
            self._services[what] = self.call(f"open the {what}", getattr(project, getter))
        return self._services[what]

    def _login(self) -> Any:
        import hopsworks

        s = self.settings
        key = (s.hopsworks_host, s.hopsworks_project, s.hopsworks_api_key)
        cached = _logins.get(key)
        if cached is not None and cached[0] is hopsworks:
            return cached[1]
        with _empty_client_settings_unset():
            project = hopsworks.login(host=s.hopsworks_host or None, project=s.hopsworks_project or None,
                                      api_key_value=s.hopsworks_api_key, engine="python")
        if project is None:
            raise StoreError(f"hopsworks: login found no project for this API key; {LOGIN_HINT}")
        _logins[key] = (hopsworks, project)
        return project

    def call(self, step: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` within the timeout, or a StoreError naming `step`; never a traceback."""
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"hopsworks: {step}", daemon=True)
        with _quiet_console():
            worker.start()
            worker.join(self.timeout)
        if worker.is_alive():
            raise StoreError(f"hopsworks: {step} timed out after {self.timeout:g}s (CRYPTOCAST_HOPSWORKS_TIMEOUT)")
        if "error" in outcome:
            raise self._one_line(step, outcome["error"]) from None
        return outcome["value"]

    def _one_line(self, step: str, exc: BaseException) -> CryptocastError:
        if isinstance(exc, CryptocastError):
            return exc
        detail = redact(" ".join((_rest_detail(exc) or str(exc)).split()), self.settings.secrets)
        if len(detail) > MAX_DETAIL:  # after redaction: a cut through an echoed key would keep its first part
            detail = detail[:MAX_DETAIL] + " ..."
        line = f"hopsworks: {step} failed: {type(exc).__name__}{': ' + detail if detail else ''}{_hint(step, exc)}"
        return StoreError(redact(line, self.settings.secrets))


def _hint(step: str, exc: BaseException) -> str:
    if step == "login" or http_status(exc) == 401:
        return f" ({LOGIN_HINT})"
    if "load balancer has been setup" in str(exc):  # hsfs' delta-rs set-up found no external load balancer
        return f" ({DELTA_HINT})"
    if any(s in str(exc) for s in ("No commits found", "No delta logs found", "No hudi properties found")):
        return f" ({UNWRITTEN_HINT})"  # the Query Service found the group's offline table never written
    return f" ({SCOPE_HINT})" if http_status(exc) == 403 else ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a failed Hopsworks REST call (the client's RestAPIError keeps the response), else None."""
    return getattr(getattr(exc, "response", None), "status_code", None)


def is_not_found(exc: BaseException, codes: Collection[int]) -> bool:
    """Whether a failed REST call means "not there": the client's own rule (`_catch_not_found` in
    hopsworks_common/decorators.py), HTTP 400 or 404 with one of the not-found error `codes` in the body.

    The backend answers most "not found"s with 400 (a missing dataset path is PATH_NOT_FOUND, 400), so the
    status alone says nothing; any other failure is an error, never "absent".
    """
    if http_status(exc) not in (400, 404):
        return False
    try:
        body = exc.response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("errorCode") in codes


def _rest_detail(exc: BaseException) -> str | None:
    """What the server said, without the URL and raw body the client's RestAPIError message repeats."""
    response = getattr(exc, "response", None)
    if http_status(exc) is None:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = body.get("errorCode")
    message = body.get("usrMsg") or body.get("errorMsg") or ""
    return (f"HTTP {response.status_code} {response.reason}{f', error {code}' if code else ''}"
            f"{': ' + message if message else ''}")


@contextlib.contextmanager
def _empty_client_settings_unset() -> Iterator[None]:
    empty = {name: value for name, value in os.environ.items() if name.startswith("HOPSWORKS_") and not value}
    for name in empty:
        del os.environ[name]
    try:
        yield
    finally:
        os.environ.update(empty)


class _ToStderr(io.TextIOBase):
    """The client's stdout chatter, sent to stderr and ended with a newline so our next line starts clean."""

    def __init__(self) -> None:
        self.pending = False

    def write(self, text: str) -> int:
        if text:
            sys.stderr.write(text)
            self.pending = not text.endswith("\n")
        return len(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def finish(self) -> None:
        if self.pending:
            sys.stderr.write("\n")


@contextlib.contextmanager
def _quiet_console() -> Iterator[None]:
    stdin, chatter = sys.stdin, _ToStderr()
    sys.stdin = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):
            yield
    finally:
        sys.stdin = stdin
        chatter.finish()
