"""The GitHub Actions workflows, checked offline (the scripts they run: test_workflow_scripts.py).

Workflows: valid against GitHub's workflow schema (check-jsonschema's vendored copy, never a download),
every script and path they name exists, the schedule, the job chain, least-privilege permissions,
secrets only in `env:`, one shared concurrency group. Each rule is a function returning the problems
it finds, run on the real files (no problems) and on a broken variant (the problem is found).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = GITHUB / "workflows"
SCRIPTS = GITHUB / "scripts"
STORE_SH = SCRIPTS / "store.sh"
KEEPALIVE_SH = SCRIPTS / "keepalive.sh"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
ACTION_FILES = sorted(GITHUB.glob("actions/*/action.yml"))
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
SECRET_REFERENCE = re.compile(r"\bsecrets\.|\bgithub\.token\b|\bsecrets\[")
STORE_BRANCH = "cryptocast-store"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def workflow(name: str) -> dict:
    return load(WORKFLOWS / name)


def triggers(wf: dict) -> dict:
    """The `on:` mapping; YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True."""
    on = wf.get("on", wf.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on or {}


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


def uses(job: dict) -> list[str]:
    return [s["uses"] for s in steps(job) if "uses" in s]


def needs(job: dict) -> list[str]:
    value = job.get("needs", [])
    return [value] if isinstance(value, str) else list(value)


# ---------------------------------------------------------------------------------------------------
# Schema, offline


def check_jsonschema(schema: str, *files: Path) -> subprocess.CompletedProcess:
    """check-jsonschema with its vendored schema and every proxy pointing at a closed port: if it
    tried to download anything, it would fail."""
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead, "https_proxy": dead,
           "NO_PROXY": "", "no_proxy": ""}
    return subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"daily.yml", "retrain.yml", "ci.yml"}


def test_every_workflow_is_valid_against_the_github_workflow_schema():
    result = check_jsonschema("vendor.github-workflows", *WORKFLOW_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_local_action_is_valid_against_the_github_action_schema():
    assert ACTION_FILES, "the workflows use a local action for the Python setup"
    result = check_jsonschema("vendor.github-actions", *ACTION_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


BROKEN = {  # a real workflow, one mistake each
    "unknown job key": ("    steps:\n      - id: deployment", "    stepz:\n      - id: deployment"),
    "invalid permission level": ("      pages: write", "      pages: admin"),
    "a step with both uses and run": ("uses: actions/deploy-pages@v5",
                                      "uses: actions/deploy-pages@v5\n        run: echo both"),
    "cancel-in-progress not a boolean": ("cancel-in-progress: false", "cancel-in-progress: maybe"),
}


@pytest.mark.parametrize("mistake", sorted(BROKEN))
def test_the_validator_rejects_a_broken_workflow(mistake, tmp_path):
    old, new = BROKEN[mistake]
    text = (WORKFLOWS / "daily.yml").read_text()
    assert old in text
    broken = tmp_path / "daily.yml"
    broken.write_text(text.replace(old, new, 1))
    result = check_jsonschema("vendor.github-workflows", broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert str(broken) in result.stdout


# ---------------------------------------------------------------------------------------------------
# Every script and path a workflow names exists

SCRIPT_TOKEN = re.compile(r"(?<![\w/.-])((?:\.github/|\.ci/)?[\w./-]*\.(?:py|sh)|\.ci/run)(?![\w/.-])")
PYTHON_MODULE = re.compile(r"\bpython3? -m ([\w.]+)")
INSTALLED_MODULES = {"pip", "venv", "pytest"}  # run with -m, but not from the repository
REQUIREMENTS = re.compile(r"(?:^|\s)-r\s+(\S+)")
HASHFILES = re.compile(r"hashFiles\(([^)]*)\)")
WORKFLOW_ARGUMENT = re.compile(r"keepalive\.sh((?:\s+[\w.-]+\.ya?ml)+)")


def referenced_paths(doc: dict) -> set[str]:
    """Repository paths a workflow or action relies on: scripts it runs, modules it runs with -m,
    local actions, files its cache keys hash, and workflows it asks keepalive.sh to re-enable."""
    found: set[str] = set()
    jobs = doc.get("jobs") or {"action": {"steps": doc.get("runs", {}).get("steps", [])}}
    for job in jobs.values():
        for step in steps(job):
            command = step.get("run", "")
            found |= set(SCRIPT_TOKEN.findall(command))
            found |= {m.replace(".", "/") + "/__main__.py" for m in PYTHON_MODULE.findall(command)
                      if m not in INSTALLED_MODULES}
            found |= set(REQUIREMENTS.findall(command))
            for names in WORKFLOW_ARGUMENT.findall(command):
                found |= {f".github/workflows/{n}" for n in names.split()}
            if step.get("uses", "").startswith("./"):
                found.add(step["uses"][2:].rstrip("/") + "/action.yml")
            with_ = step.get("with", {}) or {}
            if "cache-dependency-path" in with_:
                found |= set(str(with_["cache-dependency-path"]).split())
            for value in with_.values():
                for args in HASHFILES.findall(str(value)):
                    found |= set(re.findall(r"'([^']+)'", args))
    return found


def missing(paths: set[str]) -> list[str]:
    return sorted(p for p in paths if not (REPO / p).exists())


def test_the_reference_finder_sees_every_kind_of_reference():
    wf = {"jobs": {"a": {"steps": [
        {"run": "python nowhere.py --out _site\n.github/scripts/gone.sh push x\nbash .ci/run"},
        {"run": "python -m cryptocast status && python -m nomodule && python -m pip install -r gone.txt"},
        {"run": ".github/scripts/keepalive.sh daily.yml nothere.yml"},
        {"uses": "./.github/actions/absent"},
        {"uses": "actions/setup-python@v7", "with": {"cache-dependency-path": "requirements-gone.txt"}},
        {"uses": "actions/cache@v6", "with": {"key": "k-${{ hashFiles('requirements.txt', 'lost.txt') }}"}},
    ]}}}
    assert missing(referenced_paths(wf)) == [
        ".github/actions/absent/action.yml", ".github/scripts/gone.sh", ".github/workflows/nothere.yml", "gone.txt",
        "lost.txt", "nomodule/__main__.py", "nowhere.py", "requirements-gone.txt"]


@pytest.mark.parametrize("path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: p.name if p.name != "action.yml"
                         else p.parent.name)
def test_every_script_and_path_a_workflow_names_exists(path):
    found = referenced_paths(load(path))
    assert found, "expected the workflow to run something from the repository"
    assert missing(found) == []


def test_the_pipeline_scripts_the_store_script_runs_exist():
    named = set(re.findall(r'"\$ROOT/([\w.]+\.py)"', STORE_SH.read_text()))
    assert named == {"feature_backfill.py", "training_pipeline.py"}
    assert missing(named) == []


def test_each_job_runs_its_step():
    daily, retrain = workflow("daily.yml")["jobs"], workflow("retrain.yml")["jobs"]
    assert "python feature_pipeline.py" in runs(daily["features"])
    assert "python inference_pipeline.py" in runs(daily["inference"])
    assert re.search(r"python plots\.py --out (\S+)", runs(daily["plots"]))
    assert "python training_pipeline.py" in runs(retrain["train"])
    assert [s["run"] for s in steps(workflow("ci.yml")["jobs"]["test"]) if "run" in s] == ["bash .ci/run"]


# ---------------------------------------------------------------------------------------------------
# Schedule


def cron_problems(cron: str, hour: int | None = None, weekly: bool = False) -> list[str]:
    fields = cron.split()
    if len(fields) != 5:
        return [f"{cron!r}: not five fields"]
    minute, hours, day, month, weekday = fields
    problems = []
    if not minute.isdigit() or int(minute) == 0 or int(minute) > 59:
        problems.append(f"{cron!r}: not a single minute off the hour")
    if hour is not None and hours != str(hour):
        problems.append(f"{cron!r}: not at {hour:02d}:xx UTC")
    if (day, month) != ("*", "*"):
        problems.append(f"{cron!r}: restricted to some days of the month")
    if weekly != (weekday != "*") or (weekly and not weekday.isdigit()):
        problems.append(f"{cron!r}: not {'weekly' if weekly else 'daily'}")
    return problems


def crons(wf: dict) -> list[str]:
    return [entry["cron"] for entry in triggers(wf).get("schedule") or []]


def test_the_cron_rules_catch_bad_schedules():
    assert cron_problems("0 6 * * *", hour=6)
    assert cron_problems("17 7 * * *", hour=6)
    assert cron_problems("*/5 6 * * *", hour=6)
    assert cron_problems("17 6 1 * *", hour=6)
    assert cron_problems("17 6 * * 1", hour=6)
    assert cron_problems("23 5 * * *", weekly=True)
    assert cron_problems("17 6 * *")


def test_daily_runs_every_day_a_little_after_six_utc_and_by_hand():
    wf = workflow("daily.yml")
    assert len(crons(wf)) == 1
    assert cron_problems(crons(wf)[0], hour=6) == []
    assert "workflow_dispatch" in triggers(wf)


def test_retrain_runs_weekly_off_the_hour_and_by_hand():
    wf = workflow("retrain.yml")
    assert len(crons(wf)) == 1
    assert cron_problems(crons(wf)[0], weekly=True) == []
    assert "workflow_dispatch" in triggers(wf)


def test_ci_runs_on_push_and_pull_request():
    assert {"push", "pull_request"} <= set(triggers(workflow("ci.yml")))


# ---------------------------------------------------------------------------------------------------
# The daily chain: a failure anywhere publishes nothing


def chain_to(jobs: dict, last: str) -> list[str]:
    """Follow `needs` back from `last`; each job must need exactly the one before it."""
    order = [last]
    while needs(jobs[order[0]]):
        if len(needs(jobs[order[0]])) != 1 or needs(jobs[order[0]])[0] in order:
            return ["<not a single chain>"]
        order.insert(0, needs(jobs[order[0]])[0])
    return order


def test_the_chain_rule_sees_a_broken_chain():
    jobs = copy.deepcopy(workflow("daily.yml")["jobs"])
    jobs["deploy"]["needs"] = "inference"
    assert chain_to(jobs, "deploy") != ["features", "inference", "plots", "deploy"]
    jobs["deploy"]["needs"] = ["plots", "features"]
    assert chain_to(jobs, "deploy") == ["<not a single chain>"]


def test_deploy_needs_plots_needs_inference_needs_features():
    jobs = workflow("daily.yml")["jobs"]
    assert chain_to(jobs, "deploy") == ["features", "inference", "plots", "deploy"]


def test_pages_are_built_and_deployed_with_the_pages_actions():
    jobs = workflow("daily.yml")["jobs"]
    upload = [s for s in steps(jobs["plots"]) if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(upload) == 1
    out = re.search(r"python plots\.py --out (\S+)", runs(jobs["plots"])).group(1)
    assert upload[0]["with"]["path"] == out
    assert upload[0]["with"]["include-hidden-files"] is True, ".nojekyll is a dot-file"
    deploy = jobs["deploy"]
    (step,) = steps(deploy)
    assert step["uses"].startswith("actions/deploy-pages@")
    assert deploy["environment"] == {"name": "github-pages", "url": f"${{{{ steps.{step['id']}.outputs.page_url }}}}"}


def test_the_keepalive_job_covers_every_scheduled_workflow():
    scheduled = {p.name for p in WORKFLOW_FILES if crons(load(p))}
    (job,) = [j for j in workflow("daily.yml")["jobs"].values() if "keepalive.sh" in runs(j)]
    named = set(WORKFLOW_ARGUMENT.search(runs(job)).group(1).split())
    assert named == scheduled == {"daily.yml", "retrain.yml"}
    assert not needs(job), "keepalive must run even on a day the pipeline fails"
    assert job["permissions"].get("actions") == "write"


# ---------------------------------------------------------------------------------------------------
# Permissions: nothing by default, write only where it is used

WRITE_NEEDS = {  # a job may hold this write scope only if one of its steps does this
    "contents": lambda job: "store.sh push" in runs(job),
    "actions": lambda job: "keepalive.sh" in runs(job),
    "pages": lambda job: any(u.startswith("actions/deploy-pages@") for u in uses(job)),
    "id-token": lambda job: any(u.startswith("actions/deploy-pages@") for u in uses(job)),
}


def permission_problems(wf: dict) -> list[str]:
    problems = []
    top = wf.get("permissions")
    if not isinstance(top, dict) or any(v != "read" or k != "contents" for k, v in top.items()):
        problems.append(f"top-level permissions must be {{}} or contents: read, not {top!r}")
    for name, job in wf["jobs"].items():
        granted = job.get("permissions", {})
        if not isinstance(granted, dict):
            problems.append(f"{name}: permissions {granted!r} instead of a per-scope mapping")
            continue
        for scope, level in granted.items():
            if level == "write" and not WRITE_NEEDS.get(scope, lambda job: False)(job):
                problems.append(f"{name}: {scope}: write without a step that needs it")
            elif level not in ("read", "write", "none"):
                problems.append(f"{name}: {scope}: {level!r}")
    return problems


def test_the_permission_rules_catch_too_much():
    wf = copy.deepcopy(workflow("daily.yml"))
    assert permission_problems(wf) == []
    wf["permissions"] = "write-all"
    wf["jobs"]["plots"]["permissions"] = {"contents": "read", "pages": "write", "id-token": "write"}
    wf["jobs"]["inference"]["permissions"] = "write-all"
    wf["jobs"]["keepalive"]["permissions"]["contents"] = "write"
    assert permission_problems(wf) == [
        "top-level permissions must be {} or contents: read, not 'write-all'",
        "inference: permissions 'write-all' instead of a per-scope mapping",
        "plots: pages: write without a step that needs it",
        "plots: id-token: write without a step that needs it",
        "keepalive: contents: write without a step that needs it",
    ]
    assert permission_problems({"jobs": {}}) == ["top-level permissions must be {} or contents: read, not None"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path):
    assert permission_problems(load(path)) == []
    assert "write-all" not in path.read_text() and "read-all" not in path.read_text()


def test_only_the_deploy_job_may_publish_pages():
    for path in WORKFLOW_FILES:
        for name, job in load(path)["jobs"].items():
            granted = set(job.get("permissions", {}))
            assert not granted & {"pages", "id-token"} or (path.name, name) == ("daily.yml", "deploy")
    assert workflow("daily.yml")["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}


# ---------------------------------------------------------------------------------------------------
# Secrets only through env:


def secret_leaks(node, path: tuple = ()) -> list[str]:
    """Every string outside an `env:` mapping that mentions a secret or the token."""
    if isinstance(node, dict):
        return [leak for k, v in node.items() for leak in secret_leaks(v, (*path, str(k)))]
    if isinstance(node, list):
        return [leak for i, v in enumerate(node) for leak in secret_leaks(v, (*path, str(i)))]
    if isinstance(node, str) and SECRET_REFERENCE.search(node) and "env" not in path:
        return [".".join(path)]
    return []


def test_the_secret_rule_catches_a_secret_in_a_command_or_input():
    wf = copy.deepcopy(workflow("daily.yml"))
    assert secret_leaks(wf) == []
    wf["jobs"]["features"]["steps"][0]["with"] = {"token": "${{ secrets.PAT }}"}
    wf["jobs"]["plots"]["steps"].append({"run": 'curl -H "key: ${{ secrets.HOPSWORKS_API_KEY }}" x'})
    wf["jobs"]["deploy"]["steps"].append({"run": "gh api -H ${{ github.token }} x"})
    assert secret_leaks(wf) == ["jobs.features.steps.0.with.token", "jobs.plots.steps.5.run", "jobs.deploy.steps.1.run"]


@pytest.mark.parametrize("path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_secrets_appear_only_in_env(path):
    assert secret_leaks(load(path)) == []


def test_the_pipelines_get_their_settings_from_secrets_and_variables():
    for name in ("daily.yml", "retrain.yml"):
        wf = workflow(name)
        assert wf["env"]["CRYPTOCAST_BACKEND"] == "${{ vars.CRYPTOCAST_BACKEND || 'auto' }}"
        for job in wf["jobs"].values():
            if "store.sh" in runs(job):
                assert job["env"]["HOPSWORKS_API_KEY"] == "${{ secrets.HOPSWORKS_API_KEY }}"
    assert workflow("daily.yml")["jobs"]["features"]["env"]["CRYPTO_API_KEY"] == "${{ secrets.CRYPTO_API_KEY }}"


# ---------------------------------------------------------------------------------------------------
# Concurrency, Python, store handling


def test_daily_and_retrain_share_one_concurrency_group_that_never_cancels():
    daily, retrain = workflow("daily.yml")["concurrency"], workflow("retrain.yml")["concurrency"]
    assert daily == retrain
    assert daily["cancel-in-progress"] is False
    assert "${{" not in daily["group"], "the group must not depend on the branch or the run"


def python_setup_problems(job: dict, action: dict) -> list[str]:
    names = uses(job)
    if "./.github/actions/python" not in names:
        return ["does not use ./.github/actions/python"]
    if names.index("./.github/actions/python") < 1 or not names[0].startswith("actions/checkout@"):
        return ["sets up Python before checking out"]
    (setup,) = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    expected = {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "requirements.txt"}
    return [] if setup["with"] == expected else [f"setup-python with {setup['with']}"]


def test_every_python_job_gets_python_311_with_the_pip_cache():
    action = load(GITHUB / "actions" / "python" / "action.yml")
    broken = copy.deepcopy(action)
    broken["runs"]["steps"][0]["with"]["python-version"] = "3.12"
    checked = 0
    for name in ("daily.yml", "retrain.yml"):
        for job in workflow(name)["jobs"].values():
            if "python" in runs(job):
                assert python_setup_problems(job, action) == []
                assert python_setup_problems(job, broken) != []
                checked += 1
    assert checked == 4
    assert python_setup_problems({"steps": [{"uses": "actions/setup-python@v7"}]}, action) != []


def test_ci_uses_python_311_with_a_pip_cache():
    job = workflow("ci.yml")["jobs"]["test"]
    assert job["container"].startswith("python:3.11-")
    (cache,) = [s for s in steps(job) if s.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"] == "~/.cache/pip"


def test_every_store_writer_pulls_first_and_pushes_after_each_change():
    for name in ("daily.yml", "retrain.yml"):
        for job_name, job in workflow(name)["jobs"].items():
            commands = [s.get("run", "") for s in steps(job)]
            pipeline = [i for i, c in enumerate(commands) if re.search(r"python \w+\.py|store\.sh \w+-if-", c)]
            if not pipeline:
                continue
            pulls = [i for i, c in enumerate(commands) if c == ".github/scripts/store.sh pull"]
            assert pulls and pulls[0] < pipeline[0], f"{name} {job_name}: no pull before the pipeline"
            if job["permissions"].get("contents") == "write":
                assert "store.sh push" in commands[-1] or "store.sh push" in commands[-2], f"{name} {job_name}"


def test_remote_actions_are_github_first_party_on_a_major_tag():
    for path in WORKFLOW_FILES + ACTION_FILES:
        doc = load(path)
        jobs = doc.get("jobs") or {"action": {"steps": doc["runs"]["steps"]}}
        for job in jobs.values():
            for name in uses(job):
                if not name.startswith("./"):
                    assert re.fullmatch(r"actions/[\w-]+@v\d+", name), f"{path.name}: {name}"
