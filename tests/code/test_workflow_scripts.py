"""The shell scripts the workflows run, exercised for real: `bash -n`; `store.sh` against a local bare git
repository (file://, no network): first-run branch creation, commit only when something changed, a
rejected push fails loudly; `keepalive.sh` against a stand-in `gh`.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / ".github" / "scripts"
STORE_SH = SCRIPTS / "store.sh"
KEEPALIVE_SH = SCRIPTS / "keepalive.sh"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
STORE_BRANCH = "cryptocast-store"


# ---------------------------------------------------------------------------------------------------
# Shell scripts


def test_the_shell_scripts_parse_and_are_executable():
    assert {p.name for p in SHELL_SCRIPTS} >= {"store.sh", "keepalive.sh"}
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


def store(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**isolated_git_env(cwd), "PYTHON": sys.executable, "PYTHONPATH": str(REPO),
                "CRYPTOCAST_BACKEND": "local", "CRYPTOCAST_HOME": ".cryptocast", **env}
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        full_env.pop(name)  # the script's own bot identity
    return subprocess.run(["bash", str(STORE_SH), *args], cwd=cwd, capture_output=True, text=True, env=full_env,
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


# --- first-run decisions: backfill and training, from `python -m cryptocast status --json`

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for the pipeline scripts (records the call); the rest goes to the real interpreter.
case "${1:-}" in
  */feature_backfill.py|*/training_pipeline.py)
    echo "${1##*/}" >> "$CALLS"; exit "${FAKE_EXIT:-0}";;
  -m)
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

    def run(command: str, report: dict | None = None, **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
        extra = {"PYTHON": str(fake), "REAL_PYTHON": sys.executable, "CALLS": str(calls), **env}
        if report is not None:
            (tmp_path / "status.json").write_text(json.dumps(report))
            extra["FAKE_STATUS"] = str(tmp_path / "status.json")
        calls.write_text("")
        result = store(workdir, command, **extra)
        return result, calls.read_text().split()

    return run


def test_an_empty_store_is_backfilled_and_trained(pipeline):
    # The real `status --json` of an empty local store: the contract the decision reads.
    result, calls = pipeline("backfill-if-empty")
    assert ok(result).startswith("store.sh backfill-if-empty: no rows yet in: solana bitcoin fear_greed")
    assert calls == ["feature_backfill.py"]
    result, calls = pipeline("train-if-no-model")
    assert "no production model yet" in ok(result)
    assert calls == ["training_pipeline.py"]


def test_a_filled_store_with_a_serving_model_runs_nothing(pipeline):
    report = status_report({"solana": 10, "bitcoin": 10, "fear_greed": 9, "solana_forecasts": 0}, production=2)
    result, calls = pipeline("backfill-if-empty", report)
    assert "no backfill needed" in ok(result) and calls == []
    result, calls = pipeline("train-if-no-model", report)
    assert "no training needed" in ok(result) and calls == []


def test_one_empty_group_or_no_production_version_is_enough(pipeline):
    report = status_report({"solana": 10, "bitcoin": 10, "fear_greed": 0}, production=None)
    result, calls = pipeline("backfill-if-empty", report)
    assert "no rows yet in: fear_greed;" in ok(result) and calls == ["feature_backfill.py"]
    result, calls = pipeline("train-if-no-model", report)
    assert calls == ["training_pipeline.py"]
    result, calls = pipeline("train-if-no-model", status_report({"solana": 1}, production=False))
    assert calls == ["training_pipeline.py"]


def test_a_failing_pipeline_fails_the_step(pipeline):
    result, calls = pipeline("backfill-if-empty", FAKE_EXIT="1")
    assert result.returncode == 1 and calls == ["feature_backfill.py"]
    result, calls = pipeline("train-if-no-model", FAKE_EXIT="3")
    assert result.returncode == 3 and calls == ["training_pipeline.py"]


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
