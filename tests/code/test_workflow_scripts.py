"""The shell scripts the workflows run, exercised for real: `bash -n`; `store.sh` against a local bare git
repository (file://, no network): first-run branch creation, commit only when something changed, a
rejected push fails loudly, the token given to git alone; `keepalive.sh` and `report.sh` against a
stand-in `gh`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / ".github" / "scripts"
STORE_SH = SCRIPTS / "store.sh"
KEEPALIVE_SH = SCRIPTS / "keepalive.sh"
REPORT_SH = SCRIPTS / "report.sh"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
STORE_BRANCH = "cryptocast-store"


# ---------------------------------------------------------------------------------------------------
# Shell scripts


def test_the_shell_scripts_parse_and_are_executable():
    assert {p.name for p in SHELL_SCRIPTS} >= {"store.sh", "keepalive.sh", "report.sh"}
    for script in SHELL_SCRIPTS:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is run directly by the workflows"
        assert script.read_text().startswith("#!/usr/bin/env bash\n")
        assert "set -euo pipefail" in script.read_text()


def test_bash_n_rejects_a_broken_script(tmp_path):
    broken = tmp_path / "broken.sh"
    broken.write_text(STORE_SH.read_text().replace("esac\n", "", 1))
    assert subprocess.run(["bash", "-n", str(broken)], capture_output=True).returncode != 0


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env=isolated_git_env(cwd)).stdout.strip()


def isolated_git_env(home: Path) -> dict[str, str]:
    """No user or system git config, a fixed identity, and none of the runner's own settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "GITHUB_", "HOPSWORKS_", "CRYPTOCAST_", "STORE_"))}
    return {**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid"}


@pytest.fixture
def remote(tmp_path) -> Path:
    """A bare repository standing in for GitHub, holding a main branch with one commit."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "--quiet", str(seed))
    git(seed, "commit", "--quiet", "--allow-empty", "-m", "main")
    git(seed, "push", "--quiet", bare.as_uri(), "HEAD:refs/heads/main")
    git(bare, "symbolic-ref", "HEAD", "refs/heads/main")
    return bare


def checkout(remote: Path, name: str, shallow: bool = True) -> Path:
    """A fresh clone, as actions/checkout makes one (depth 1 by default)."""
    where = remote.parent / name
    git(remote.parent, "clone", "--quiet", *(["--depth", "1"] if shallow else []), remote.as_uri(), str(where))
    return where


def store(cwd: Path, *args: str, script: Path = STORE_SH, **env: str) -> subprocess.CompletedProcess:
    full_env = {**isolated_git_env(cwd), "PYTHON": sys.executable, "PYTHONPATH": str(REPO),
                "CRYPTOCAST_BACKEND": "local", "CRYPTOCAST_HOME": ".cryptocast", **env}
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        full_env.pop(name)  # the script's own bot identity
    return subprocess.run(["bash", str(script), *args], cwd=cwd, capture_output=True, text=True, env=full_env,
                          timeout=120)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def branch_tip(remote: Path) -> str | None:
    result = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{STORE_BRANCH}"], cwd=remote,
                            capture_output=True, text=True, env=isolated_git_env(remote))
    return result.stdout.strip() or None


def files_on_branch(remote: Path) -> set[str]:
    return set(git(remote, "ls-tree", "-r", "--name-only", STORE_BRANCH).splitlines())


PARQUET = bytes(range(256)) * 3  # binary, with NUL and CR/LF bytes: must come back byte for byte


def write_store(home: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_bytes(data)


def test_first_run_starts_the_branch_and_commits_only_what_changed(remote):
    main = checkout(remote, "run1")
    out = ok(store(main, "pull"))
    assert "does not exist on origin yet (first run)" in out
    home = main / ".cryptocast"
    assert sorted(p.name for p in home.iterdir()) == [".git", ".gitattributes", ".gitignore", "README.md"]
    assert branch_tip(remote) is None, "pull never writes to the remote"

    assert "nothing changed" in ok(store(main, "push", "features"))
    assert branch_tip(remote) is None, "an empty store is not pushed"

    write_store(home, {"feature_store/solana_v1/2024-0123456789abcdef.parquet": PARQUET,
                       "feature_store/solana_v1/manifest.json": b'{"version": 1}\r\n',
                       ".lock": b"", ".registry.lock": b"",
                       "feature_store/solana_v1/.2024-x.parquet.123.ab.tmp": b"half",
                       "model_registry/sol_lstm/.v2-abc/artifacts/model.keras": b"half-built"})
    out = ok(store(main, "push", "features"))
    assert "pushed 'features " in out and "2 files changed" in out
    assert files_on_branch(remote) == {".gitattributes", ".gitignore", "README.md",
                                       "feature_store/solana_v1/2024-0123456789abcdef.parquet",
                                       "feature_store/solana_v1/manifest.json"}
    assert subprocess.run(["git", "show", f"{STORE_BRANCH}:feature_store/solana_v1/2024-0123456789abcdef.parquet"],
                          cwd=remote, capture_output=True, check=True).stdout == PARQUET
    history = git(remote, "rev-list", "--parents", STORE_BRANCH).splitlines()
    assert len(history) == 2 and len(history[-1].split()) == 1, "an orphan branch: two commits from a root"
    assert git(remote, "log", "-1", "--format=%an", STORE_BRANCH) == "github-actions[bot]"
    assert git(remote, "rev-parse", "main") == git(main, "rev-parse", "HEAD"), "main is untouched"

    tip = branch_tip(remote)
    assert "nothing changed" in ok(store(main, "push", "inference"))
    assert branch_tip(remote) == tip


def test_the_next_job_continues_the_branch_from_a_shallow_checkout(remote):
    first = checkout(remote, "run1")
    ok(store(first, "pull"))
    write_store(first / ".cryptocast", {"feature_store/a.parquet": PARQUET})
    ok(store(first, "push", "features"))
    tip = branch_tip(remote)

    second = checkout(remote, "run2", shallow=True)
    assert f"checked out {STORE_BRANCH} at " in ok(store(second, "pull"))
    home = second / ".cryptocast"
    assert (home / "feature_store/a.parquet").read_bytes() == PARQUET
    assert "nothing changed" in ok(store(second, "push", "inference"))
    assert branch_tip(remote) == tip

    write_store(home, {"feature_store/a.parquet": PARQUET[::-1], "feature_store/forecasts.parquet": b"\x00f"})
    ok(store(second, "push", "inference"))
    assert git(remote, "rev-parse", f"{STORE_BRANCH}^") == tip, "a child of the previous tip, never a rewrite"
    assert git(remote, "rev-list", "--count", STORE_BRANCH) == "3"


@pytest.mark.parametrize("first_run", [True, False], ids=["racing first runs", "racing runs"])
def test_a_rejected_push_fails_loudly_and_overwrites_nothing(remote, first_run):
    if not first_run:
        seed = checkout(remote, "seed-run")
        ok(store(seed, "pull"))
        write_store(seed / ".cryptocast", {"a": b"1"})
        ok(store(seed, "push", "features"))
    one, two = checkout(remote, "one"), checkout(remote, "two")
    ok(store(one, "pull"))
    ok(store(two, "pull"))
    write_store(one / ".cryptocast", {"a": b"from one"})
    write_store(two / ".cryptocast", {"a": b"from two"})
    ok(store(one, "push", "features"))
    winner = branch_tip(remote)
    result = store(two, "push", "features")
    assert result.returncode == 1
    assert "error: store.sh push: push of cryptocast-store to origin was rejected" in result.stderr
    assert branch_tip(remote) == winner
    assert git(remote, "show", f"{STORE_BRANCH}:a") == "from one"


def test_pull_never_replaces_an_existing_store(remote):
    main = checkout(remote, "run")
    (main / ".cryptocast").mkdir()
    (main / ".cryptocast" / "keep.parquet").write_bytes(b"mine")
    result = store(main, "pull")
    assert result.returncode == 1 and "refusing to replace a store" in result.stderr
    assert (main / ".cryptocast" / "keep.parquet").read_bytes() == b"mine"
    assert not (main / ".cryptocast" / ".git").exists()


def test_push_without_a_pull_fails(remote):
    main = checkout(remote, "run")
    result = store(main, "push", "features")
    assert result.returncode == 1 and "run 'store.sh pull' first" in result.stderr
    assert store(main, "push").returncode == 1, "a label is required"
    assert store(main, "fetch").returncode == 1, "an unknown command is an error"


@pytest.mark.parametrize("settings", [{"CRYPTOCAST_BACKEND": "hopsworks"},
                                      {"CRYPTOCAST_BACKEND": "auto", "HOPSWORKS_API_KEY": "k"}],
                         ids=["hopsworks", "auto with a key"])
def test_with_hopsworks_the_store_is_not_persisted_in_git(remote, settings):
    main = checkout(remote, "run")
    # A remote that does not exist: any git operation would fail, so success means none was tried.
    env = {**settings, "STORE_REMOTE": "no-such-remote"}
    assert "backend is hopsworks: the store lives there, nothing to pull" in ok(store(main, "pull", **env))
    assert not (main / ".cryptocast").exists()
    assert "nothing to push" in ok(store(main, "push", "features", **env))
    assert branch_tip(remote) is None


def test_with_the_local_backend_a_missing_remote_is_an_error(remote):
    main = checkout(remote, "run")
    result = store(main, "pull", STORE_REMOTE="no-such-remote")
    assert result.returncode == 1 and "cannot list the branches of no-such-remote" in result.stderr


def test_a_bad_backend_setting_stops_the_script(remote):
    main = checkout(remote, "run")
    result = store(main, "pull", CRYPTOCAST_BACKEND="cloud")
    assert result.returncode == 1 and "CRYPTOCAST_BACKEND='cloud'" in result.stderr


# --- first-run decisions: backfill, and whether a model must be trained, from `status --json`

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the pipeline scripts (records the call); the rest goes to the real interpreter.
case "${1:-}" in
  */feature_backfill.py|*/training_pipeline.py)
    echo "${1##*/}" >> "$CALLS"; exit "${FAKE_EXIT:-0}";;
  -c)
    if [[ -n "${STORE_TOKEN+set}" ]]; then echo "python-saw-STORE_TOKEN" >> "$CALLS"; fi;;
  -m)
    if [[ "$*" == "-m cryptocast status --json" && -n "${FAKE_STATUS_ERROR:-}" ]]; then
      echo "$FAKE_STATUS_ERROR" >&2; exit 1; fi
    if [[ "$*" == "-m cryptocast status --json" && -n "${FAKE_STATUS:-}" ]]; then cat "$FAKE_STATUS"; exit 0; fi;;
esac
exec "$REAL_PYTHON" "$@"
"""


def status_report(rows: dict[str, int], production: int | None) -> dict:
    groups = {name: {"version": 1, "rows": n} for name, n in rows.items()}
    models = {} if production is False else {"sol_lstm": {"production": production, "versions": []}}
    return {"backend": "local", "groups": groups, "models": models}


@pytest.fixture
def pipeline(tmp_path):
    """Run store.sh's first-run commands with the pipeline scripts replaced by a recorder."""
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    workdir = tmp_path / "work"
    workdir.mkdir()

    def run(command: str, report: dict | None = None, script: Path = STORE_SH,
            **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        extra = {"PYTHON": str(fake), "REAL_PYTHON": sys.executable, "CALLS": str(calls), **env}
        if report is not None:
            (tmp_path / "status.json").write_text(json.dumps(report))
            extra["FAKE_STATUS"] = str(tmp_path / "status.json")
        calls.write_text("")
        result = store(workdir, command, script=script, **extra)
        return result, calls.read_text().split()

    return run


def test_an_empty_store_is_backfilled_and_needs_a_model(pipeline):
    # The real `status --json` of an empty local store: the contract the decision reads.
    result, calls = pipeline("backfill-if-empty")
    assert ok(result).startswith("store.sh backfill-if-empty: no rows yet in: solana bitcoin fear_greed")
    assert calls == ["feature_backfill.py"]
    result, calls = pipeline("model-missing")
    assert ok(result) == "missing=true\n", "exactly a step output on stdout"
    assert "no production model yet" in result.stderr and calls == []


def test_a_filled_store_with_a_serving_model_runs_nothing(pipeline):
    report = status_report({"solana": 10, "bitcoin": 10, "fear_greed": 9, "solana_forecasts": 0}, production=2)
    result, calls = pipeline("backfill-if-empty", report)
    assert "no backfill needed" in ok(result) and calls == []
    result, calls = pipeline("model-missing", report)
    assert ok(result) == "missing=false\n" and "no training needed" in result.stderr and calls == []


def test_one_empty_group_or_no_production_version_is_enough(pipeline):
    report = status_report({"solana": 10, "bitcoin": 10, "fear_greed": 0}, production=None)
    result, calls = pipeline("backfill-if-empty", report)
    assert "no rows yet in: fear_greed;" in ok(result) and calls == ["feature_backfill.py"]
    result, _ = pipeline("model-missing", report)
    assert ok(result) == "missing=true\n"
    result, _ = pipeline("model-missing", status_report({"solana": 1}, production=False))
    assert ok(result) == "missing=true\n"


# --- the token: handed to the pull and push steps as STORE_TOKEN, given to git alone


def test_the_python_store_sh_runs_never_sees_the_token(pipeline, tmp_path):
    _, calls = pipeline("pull", STORE_TOKEN="t0ken")
    assert calls == [], "settings were resolved without the token in the environment"
    leaky = tmp_path / "leaky-store.sh"
    leaky.write_text(STORE_SH.read_text().replace("unset STORE_TOKEN\n", "", 1))
    _, calls = pipeline("pull", script=leaky, STORE_TOKEN="t0ken")
    assert calls == ["python-saw-STORE_TOKEN"], "the check sees a script that leaves the token in place"


@pytest.fixture
def github(httpserver, tmp_path):
    """A checkout whose origin is a local HTTP server standing in for GitHub (it refuses every request)."""
    httpserver.expect_request(re.compile(".*")).respond_with_data("no", status=404)
    main = tmp_path / "main"
    git(tmp_path, "init", "--quiet", str(main))
    git(main, "remote", "add", "origin", httpserver.url_for("/owner/repo.git"))
    return main


def authorizations(httpserver) -> list[str]:
    return [request.headers.get("Authorization", "") for request, _ in httpserver.log]


def test_the_token_goes_to_git_as_githubs_header_and_nowhere_else(github, httpserver):
    server = httpserver.url_for("").rstrip("/")
    result = store(github, "pull", STORE_TOKEN="t0ken", GITHUB_SERVER_URL=server)
    assert result.returncode == 1 and "cannot list the branches of origin" in result.stderr
    expected = "basic " + base64.b64encode(b"x-access-token:t0ken").decode()
    assert authorizations(httpserver) and set(authorizations(httpserver)) == {expected}
    assert "t0ken" not in result.stdout + result.stderr
    assert "extraheader" not in git(github, "config", "--list", "--local"), "nothing written to git's config"


def test_without_a_token_or_for_another_server_git_sends_none(github, httpserver):
    assert store(github, "pull").returncode == 1
    store(github, "pull", STORE_TOKEN="t0ken", GITHUB_SERVER_URL="https://github.com")
    assert authorizations(httpserver) and set(authorizations(httpserver)) == {""}


def test_an_unreadable_store_fails_the_step_instead_of_backfilling_or_training(pipeline):
    """`status --json` exits 1 when the registry cannot be read (a key without the dataset scopes): that must
    stop the job, never read as "no model yet" and retrain every day."""
    error = "error: status: hopsworks: read production of model sol_lstm failed: RestAPIError: HTTP 403 Forbidden"
    for command in ("model-missing", "backfill-if-empty"):
        result, calls = pipeline(command, FAKE_STATUS_ERROR=error)
        assert result.returncode == 1 and calls == [], result.stdout
        assert "missing=" not in result.stdout
        assert error in result.stderr and "python -m cryptocast status --json failed" in result.stderr


def test_a_failing_pipeline_fails_the_step(pipeline):
    result, calls = pipeline("backfill-if-empty", FAKE_EXIT="1")
    assert result.returncode == 1 and calls == ["feature_backfill.py"]


# ---------------------------------------------------------------------------------------------------
# keepalive.sh, against a stand-in gh

FAKE_GH = """#!/usr/bin/env bash
echo "$*" >> "$CALLS"
if [[ "$*" == *"--method PUT"* ]]; then exit "${PUT_EXIT:-0}"; fi
file="${2##*/}"
state_var="STATE_${file%%.*}"
echo "${!state_var}"
"""


@pytest.fixture
def gh(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    calls = tmp_path / "gh-calls"

    def run(*workflows: str, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        calls.write_text("")
        full = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
                "GH_REPO": "owner/repo", **env}
        result = subprocess.run(["bash", str(KEEPALIVE_SH), *workflows], capture_output=True, text=True, env=full,
                                timeout=60)
        return result, calls.read_text().splitlines()

    return run


def test_keepalive_enables_active_and_inactivity_disabled_workflows(gh):
    result, calls = gh("daily.yml", "retrain.yml", STATE_daily="active", STATE_retrain="disabled_inactivity")
    assert ok(result).count("the 60-day inactivity count starts again") == 2
    assert calls == ["api repos/owner/repo/actions/workflows/daily.yml --jq .state",
                     "api --method PUT repos/owner/repo/actions/workflows/daily.yml/enable --silent",
                     "api repos/owner/repo/actions/workflows/retrain.yml --jq .state",
                     "api --method PUT repos/owner/repo/actions/workflows/retrain.yml/enable --silent"]


def test_keepalive_leaves_a_hand_disabled_workflow_off(gh):
    result, calls = gh("retrain.yml", STATE_retrain="disabled_manually")
    assert "disabled by hand" in ok(result)
    assert not any("PUT" in c for c in calls)


def test_keepalive_fails_loudly(gh):
    result, _ = gh("daily.yml", STATE_daily="active", PUT_EXIT="1")
    assert result.returncode == 1 and "actions: write" in result.stderr
    assert gh()[0].returncode == 1
    assert gh("daily.yml", STATE_daily="active", GH_REPO="")[0].returncode == 1


# ---------------------------------------------------------------------------------------------------
# report.sh, against a stand-in gh that answers from canned JSON through the real jq (as gh --jq does)

FAKE_GH_JSON = """#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["CALLS"], "a") as f:
    f.write(json.dumps(args) + "\\n")
jq = args[args.index("--jq") + 1] if "--jq" in args else None
if args[:2] == ["issue", "list"]:
    data = os.environ["ISSUES"]
elif args[0] == "api" and args[1].endswith("/jobs") and "/runs/" in args[1]:
    data = os.environ["JOBS"]
elif args[:2] == ["run", "list"]:
    data = os.environ["RUNS"]
elif args[:2] == ["issue", "view"]:
    data = os.environ["ISSUE"]
elif args[0] == "api" and args[1].endswith("/logs"):
    sys.stdout.write(open(os.environ["LOG"]).read() if args[1] == os.environ["LOG_PATH"] else "")
    sys.exit(0)
else:
    sys.exit(int(os.environ.get("WRITE_EXIT", "0")))
sys.stdout.write(subprocess.run(["jq", "-r", jq], input=data, capture_output=True, text=True, check=True).stdout)
"""

JOBS = {"jobs": [
    {"id": 11, "name": "Features, forecast, site", "conclusion": "failure",
     "steps": [{"name": "Pull the store", "conclusion": "success"},
               {"name": "Update the feature groups to yesterday", "conclusion": "failure"},
               {"name": "Push the store", "conclusion": "skipped"}]},
    {"id": 12, "name": "Publish on GitHub Pages", "conclusion": "skipped", "steps": []},
    {"id": 13, "name": "Report the day", "conclusion": None, "steps": []}]}
LOG = ("2026-11-29T06:17:31.1234567Z store.sh pull: checked out cryptocast-store at abc1234\n"
       "2026-11-29T06:17:33.0000000Z error: an earlier line\n"
       "2026-11-29T06:17:35.5000000Z error: feature_pipeline: binance 2026-11-28: HTTP 418 after 3 attempts\n"
       "2026-11-29T06:17:35.6000000Z ##[error]Process completed with exit code 1.\n")
DAILY_ISSUE = "Scheduled daily run failed"


@pytest.fixture
def reporter(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH_JSON.format(python=sys.executable))
    (bin_dir / "gh").chmod(0o755)
    calls, log = tmp_path / "gh-calls", tmp_path / "job.log"

    def run(result: str, issues: list[dict], jobs: dict = JOBS, job_log: str = LOG,
            **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        calls.write_text("")
        log.write_text(job_log)
        full = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
                "ISSUES": json.dumps(issues), "JOBS": json.dumps(jobs), "LOG": str(log),
                "LOG_PATH": "repos/owner/repo/actions/jobs/11/logs", "GH_REPO": "owner/repo", "RUN_ID": "777",
                "RUN_URL": "https://github.com/owner/repo/actions/runs/777", "WORKFLOW": "daily", **env}
        done = subprocess.run(["bash", str(REPORT_SH), result], capture_output=True, text=True, env=full, timeout=60)
        return done, [json.loads(line) for line in calls.read_text().splitlines()]

    return run


def writes(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[:2] in (["issue", "create"], ["issue", "comment"], ["issue", "close"])]


def body(call: list[str]) -> str:
    return call[call.index("--body") + 1]


def test_a_failed_day_opens_one_issue_with_the_step_and_its_error(reporter):
    done, calls = reporter("failure", [{"number": 3, "title": "Something else"}])
    assert "opened an issue" in ok(done)
    (create,) = writes(calls)
    assert create[:2] == ["issue", "create"] and create[create.index("--title") + 1] == DAILY_ISSUE
    text = body(create)
    assert "failed at **Features, forecast, site / Update the feature groups to yesterday**" in text
    assert "\nerror: feature_pipeline: binance 2026-11-28: HTTP 418 after 3 attempts\n" in text
    assert "error: an earlier line" not in text and "##[error]" not in text
    assert text.rstrip().endswith("https://github.com/owner/repo/actions/runs/777")


def test_a_second_failed_day_comments_on_the_open_issue(reporter):
    done, calls = reporter("failure", [{"number": 3, "title": "Something else"}, {"number": 9, "title": DAILY_ISSUE}])
    assert "commented on issue #9" in ok(done)
    (comment,) = writes(calls)
    assert comment[:3] == ["issue", "comment", "9"] and "HTTP 418" in body(comment)


def test_the_next_green_day_closes_the_issue_and_a_green_day_alone_writes_nothing(reporter):
    done, calls = reporter("success", [{"number": 9, "title": DAILY_ISSUE}])
    assert "closed issue #9" in ok(done)
    assert [c[:3] for c in writes(calls)] == [["issue", "comment", "9"], ["issue", "close", "9"]]
    done, calls = reporter("success", [{"number": 3, "title": "Something else"}])
    assert "no open issue" in ok(done) and writes(calls) == []


def test_each_workflow_has_its_own_issue(reporter):
    done, calls = reporter("failure", [{"number": 9, "title": DAILY_ISSUE}], WORKFLOW="retrain")
    (create,) = writes(calls)
    assert create[create.index("--title") + 1] == "Scheduled retrain run failed"


def test_a_failure_without_an_error_line_says_what_failed(reporter):
    cancelled = {"jobs": [{"id": 11, "name": "Train, backtest, register", "conclusion": "timed_out",
                           "steps": [{"name": "Train", "conclusion": "cancelled"}]}]}
    done, calls = reporter("failure", [], jobs=cancelled, job_log="2026-11-29T05:23:00Z killed\n")
    ok(done)
    text = body(writes(calls)[0])
    assert "**Train, backtest, register / Train**" in text and "no error:" not in text
    assert "\nTrain, backtest, register timed out at step Train before it printed an error line\n" in text


def test_a_failed_deploy_quotes_the_actions_own_error(reporter):
    """actions/deploy-pages prints no `error:` line of ours, only the runner's ##[error] annotation."""
    jobs = {"jobs": [{"id": 11, "name": "Publish on GitHub Pages", "conclusion": "failure",
                      "steps": [{"name": "Run actions/deploy-pages@cd2ce8f", "conclusion": "failure"}]}]}
    log = ("2026-11-29T06:40:00.1Z Fetching artifact metadata\n"
           "2026-11-29T06:40:02.2Z ##[error]Failed to create deployment (status: 404) with build version abc. "
           "Ensure GitHub Pages has been enabled\n")
    done, calls = reporter("failure", [], jobs=jobs, job_log=log)
    ok(done)
    text = body(writes(calls)[0])
    assert "\nFailed to create deployment (status: 404) with build version abc. Ensure GitHub Pages has been " \
           "enabled\n" in text and "##[error]" not in text


def test_a_failed_keepalive_is_reported_with_its_error_line(reporter):
    jobs = {"jobs": [{"id": 12, "name": "Features, forecast, site", "conclusion": "success", "steps": []},
                     {"id": 11, "name": "Keep the schedules alive", "conclusion": "failure",
                      "steps": [{"name": "Re-enable daily.yml and retrain.yml", "conclusion": "failure"}]}]}
    log = ("2026-11-29T06:17:35.5Z error: keepalive.sh: cannot enable daily.yml in owner/repo (the job needs "
           "permissions: actions: write)\n2026-11-29T06:17:35.6Z ##[error]Process completed with exit code 1.\n")
    done, calls = reporter("failure", [], jobs=jobs, job_log=log)
    text = body(writes(calls)[0])
    assert "**Keep the schedules alive / Re-enable daily.yml and retrain.yml**" in text
    assert "\nerror: keepalive.sh: cannot enable daily.yml" in text and "exit code 1" not in text


def test_report_fails_loudly(reporter):
    assert reporter("maybe", [])[0].returncode == 1
    done, _ = reporter("failure", [], RUN_ID="")
    assert done.returncode == 1 and "RUN_ID is not set" in done.stderr
    done, _ = reporter("failure", [], WRITE_EXIT="1")
    assert done.returncode == 1


# ---------------------------------------------------------------------------------------------------
# health.sh, against the same stand-in gh: the model health issue and the retrain dispatch

HEALTH_SH = SCRIPTS / "health.sh"
HEALTH_ISSUE = "Model health"


def health_record(failing: dict[str, str] | None = None, verdict: str | None = None) -> dict:
    """A `health --json` document; `failing` maps a check to its kind (live or input)."""
    failing = failing or {}
    checks = [{"check": name, "kind": kind, "statistic": 0.61, "threshold_low": 0.7, "threshold_high": 0.9,
               "window": "2026-09-01..2026-11-29 (targets), 90 forecast days", "verdict": "fail",
               "failing_since": "2026-11-20", "detail": f"{name} is off"} for name, kind in failing.items()]
    checks.append({"check": "frozen fear_greed", "kind": "input", "statistic": 1.0, "threshold_low": None,
                   "threshold_high": 4.0, "window": "w", "verdict": "ok", "failing_since": None, "detail": "fine"})
    return {"day": "2026-11-29", "model_version": 7, "verdict": verdict or ("fail" if failing else "ok"),
            "failing": list(failing), "checks": checks}


@pytest.fixture
def health_sh(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH_JSON.format(python=sys.executable))
    (bin_dir / "gh").chmod(0o755)
    calls = tmp_path / "gh-calls"

    def run(record: dict | str, issues: list[dict], runs: list[dict] | None = None, posts: tuple[str, ...] = ("",),
            **env: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        calls.write_text("")
        issue = {"body": posts[0], "comments": [{"body": text} for text in posts[1:]]}
        full = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CALLS": str(calls),
                "ISSUES": json.dumps(issues), "RUNS": json.dumps(runs or []), "ISSUE": json.dumps(issue),
                "GH_REPO": "owner/repo",
                "RUN_URL": "https://github.com/owner/repo/actions/runs/888",
                "HEALTH_JSON": record if isinstance(record, str) else json.dumps(record), **env}
        done = subprocess.run(["bash", str(HEALTH_SH)], capture_output=True, text=True, env=full, timeout=60)
        return done, [json.loads(line) for line in calls.read_text().splitlines()]

    return run


def dispatches(calls: list[list[str]]) -> list[list[str]]:
    return [c for c in calls if c[:2] == ["workflow", "run"]]


def days_ago(days: float) -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_failing_check_opens_the_health_issue_and_asks_for_a_retrain(health_sh):
    record = health_record({"coverage_80 h1-3": "live", "frozen sol_log_range": "input"})
    done, calls = health_sh(record, [{"number": 4, "title": "Scheduled daily run failed"}])
    assert "opened an issue" in ok(done) and "Asked for a retrain" in done.stdout
    (create,) = writes(calls)
    assert create[create.index("--title") + 1] == HEALTH_ISSUE
    text = body(create)
    assert text.startswith("2026-11-29: model health fails (model v7).")
    assert "- **coverage_80 h1-3** since 2026-11-20: coverage_80 h1-3 is off [2026-09-01..2026-11-29" in text
    assert "- **frozen sol_log_range** since 2026-11-20" in text and "frozen fear_greed" not in text
    assert "the promotion gate decides" in text and "/actions/runs/888\n<!-- failing: " in text
    assert dispatches(calls) == [["workflow", "run", "retrain.yml", "--repo", "owner/repo"]]


def test_a_retrain_is_asked_for_at_most_once_a_week(health_sh):
    record = health_record({"drift fear_greed": "input"})
    done, calls = health_sh(record, [{"number": 12, "title": HEALTH_ISSUE}], [{"createdAt": days_ago(3)}])
    assert "commented on issue #12" in ok(done)
    assert dispatches(calls) == []
    assert "A retrain was already asked for at " in body(writes(calls)[0]) and "not again" in body(writes(calls)[0])
    done, calls = health_sh(record, [{"number": 12, "title": HEALTH_ISSUE}], [{"createdAt": days_ago(7.1)}])
    assert len(dispatches(ok(done) and calls)) == 1


def test_the_same_failing_checks_comment_once_until_they_change_or_a_retrain_is_asked_for(health_sh):
    record = health_record({"drift fear_greed": "input", "coverage_80 h1-3": "live"})
    recent = [{"createdAt": days_ago(2)}]
    done, calls = health_sh(record, [], recent)
    (create,) = writes(calls)
    assert body(create).rstrip().endswith("<!-- failing: coverage_80 h1-3,drift fear_greed -->")
    same = ("older text", body(create))
    done, calls = health_sh(record, [{"number": 12, "title": HEALTH_ISSUE}], recent, posts=same)
    assert "the same checks as issue #12 last said; no comment" in ok(done) and writes(calls) == []
    done, calls = health_sh(health_record({"drift fear_greed": "input"}), [{"number": 12, "title": HEALTH_ISSUE}],
                            recent, posts=same)
    assert "commented on issue #12" in ok(done)
    done, calls = health_sh(record, [{"number": 12, "title": HEALTH_ISSUE}], [{"createdAt": days_ago(8)}],
                            posts=same)
    assert "commented on issue #12" in ok(done) and len(dispatches(calls)) == 1


def test_health_returning_closes_the_issue_and_a_healthy_day_alone_writes_nothing(health_sh):
    done, calls = health_sh(health_record(), [{"number": 12, "title": HEALTH_ISSUE}])
    assert "closed issue #12" in ok(done)
    assert [c[:3] for c in writes(calls)] == [["issue", "comment", "12"], ["issue", "close", "12"]]
    assert dispatches(calls) == []
    done, calls = health_sh(health_record(), [{"number": 4, "title": "Scheduled daily run failed"}])
    assert "no open issue" in ok(done) and writes(calls) == [] and dispatches(calls) == []


def test_checks_that_cannot_tell_yet_are_not_a_failure(health_sh):
    done, calls = health_sh(health_record(verdict="unknown"), [])
    assert "health 2026-11-29: unknown; no open issue" in ok(done)
    assert writes(calls) == [] and dispatches(calls) == []


def test_no_record_does_nothing(health_sh):
    for record in ("", json.dumps({"day": None, "verdict": "unknown", "checks": []})):
        done, calls = health_sh(record, [{"number": 12, "title": HEALTH_ISSUE}])
        assert "no health record today; nothing to do" in ok(done) and calls == []


def test_health_sh_fails_loudly(health_sh):
    done, _ = health_sh(health_record(), [], GH_REPO="")
    assert done.returncode == 1 and "error: health.sh: GH_REPO is not set" in done.stderr
    done, _ = health_sh(health_record({"coverage_80 h1-3": "live"}), [], WRITE_EXIT="1")
    assert done.returncode == 1
