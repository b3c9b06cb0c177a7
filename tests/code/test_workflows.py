"""The GitHub Actions workflows, checked offline (the scripts they run: test_workflow_scripts.py).

Valid against GitHub's workflow schema (check-jsonschema's vendored copy, never a download) and clean
under zizmor (--offline); every script and path they name exists; the schedule; a failure publishes
nothing; least privilege job by job and step by step (permissions, the token, the API keys);
writing jobs only on the default branch; one store concurrency group that queues and never cancels;
each job installs only the lock it needs, cached by its hash; CI on every supported Python; actions
pinned by commit SHA, images by digest, both kept current by dependabot; a failed scheduled run
reported. Every rule applies to every file in .github/workflows, so a new workflow is checked too.
Each rule is a function returning the problems it finds, run on the real files (no problems) and on a
broken variant (the problem is found).
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

from cryptocast import doctor
from cryptocast.settings import DEFAULTS

REPO = Path(__file__).resolve().parents[2]
GITHUB = REPO / ".github"
WORKFLOWS = GITHUB / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))
ACTION_FILES = sorted(GITHUB.glob("actions/*/action.yml"))
SECRET_REFERENCE = re.compile(r"\bsecrets\.|\bgithub\.token\b|\bsecrets\[")
sys.path.insert(0, str(REPO / "tools"))
import lock  # noqa: E402


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


def jobs_of(doc: dict) -> dict:
    """A workflow's jobs, or a composite action's steps as one job."""
    return doc.get("jobs") or {"action": {"steps": doc.get("runs", {}).get("steps", [])}}


def test_the_workflows_exist():
    assert {p.name for p in WORKFLOW_FILES} >= {"daily.yml", "retrain.yml", "ci.yml", "doctor.yml"}


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
    "a step with both uses and run": ("uses: actions/deploy-pages@cd2ce8fcbc39b97be8ca5fce6e763baed58fa128",
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
REQUIREMENTS = re.compile(r"(?:^|\s)-r\s+([^\s\"$]\S*)")  # a file name, not a shell variable
LOCK_FILE = re.compile(r"(?<![\w/.-])(requirements[\w/.-]*\.txt)\b")
HASHFILES = re.compile(r"hashFiles\(([^)]*)\)")
WORKFLOW_ARGUMENT = re.compile(r"keepalive\.sh((?:\s+[\w.-]+\.ya?ml)+)")


def referenced_paths(doc: dict) -> set[str]:
    """Repository paths a workflow or action relies on: scripts it runs, modules it runs with -m,
    local actions, files its cache keys hash, and workflows it asks keepalive.sh to re-enable."""
    found: set[str] = set()
    for job in jobs_of(doc).values():
        for step in steps(job):
            command = step.get("run", "")
            found |= set(SCRIPT_TOKEN.findall(command))
            found |= {m.replace(".", "/") + "/__main__.py" for m in PYTHON_MODULE.findall(command)
                      if m not in INSTALLED_MODULES}
            found |= set(REQUIREMENTS.findall(command)) | set(LOCK_FILE.findall(command))
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
    named = set(re.findall(r'"\$ROOT/([\w.]+\.py)"', (GITHUB / "scripts" / "store.sh").read_text()))
    assert named == {"feature_backfill.py"}
    assert missing(named) == []


def test_each_job_runs_its_step():
    daily, retrain = workflow("daily.yml")["jobs"], workflow("retrain.yml")["jobs"]
    commands = [s.get("run") for s in steps(daily["pipeline"]) if "run" in s]
    order = ["python feature_pipeline.py", "python inference_pipeline.py", "python plots.py --out _site"]
    assert [c for c in commands if c in order] == order
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
# A failure publishes nothing: the site is uploaded last, and deployed only after that job succeeded


def publishing_problems(jobs: dict) -> list[str]:
    problems = []
    work = jobs.get("pipeline", {})
    names = [s.get("uses", "") or s.get("run", "") for s in steps(work)]
    upload = [i for i, n in enumerate(names) if n.startswith("actions/upload-pages-artifact@")]
    if upload != [len(names) - 1]:
        problems.append("the site is not uploaded once, as the work job's last step")
    for i, name in enumerate(names):
        if re.match(r"python \w+\.py", name) and steps(work)[i].get("continue-on-error"):
            problems.append(f"{name}: continue-on-error would publish after a failure")
    if needs(jobs.get("deploy", {})) != ["pipeline"]:
        problems.append("deploy does not need exactly the work job")
    if "always()" in str(jobs.get("deploy", {}).get("if", "")):
        problems.append("deploy runs even when the work failed")
    return problems


def test_a_failed_step_publishes_nothing():
    jobs = workflow("daily.yml")["jobs"]
    assert publishing_problems(jobs) == []
    broken = copy.deepcopy(jobs)
    broken["deploy"]["needs"] = []
    broken["deploy"]["if"] = "always()"
    broken["pipeline"]["steps"].insert(3, broken["pipeline"]["steps"].pop(-1))
    assert publishing_problems(broken) == ["the site is not uploaded once, as the work job's last step",
                                           "deploy does not need exactly the work job",
                                           "deploy runs even when the work failed"]


def test_pages_are_built_and_deployed_with_the_pages_actions():
    jobs = workflow("daily.yml")["jobs"]
    upload = [s for s in steps(jobs["pipeline"]) if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert len(upload) == 1
    out = re.search(r"python plots\.py --out (\S+)", runs(jobs["pipeline"])).group(1)
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
# Permissions: nothing by default, write only where it is used, only on the default branch

WRITE_NEEDS = {  # a job may hold this write scope only if one of its steps does this
    "contents": lambda job: "store.sh push" in runs(job),
    "actions": lambda job: "keepalive.sh" in runs(job) or "health.sh" in runs(job),  # health.sh dispatches retrain
    "pages": lambda job: any(u.startswith("actions/deploy-pages@") for u in uses(job)),
    "id-token": lambda job: any(u.startswith("actions/deploy-pages@") for u in uses(job)),
    "issues": lambda job: "report.sh" in runs(job) or "health.sh" in runs(job),
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
    wf["jobs"]["pipeline"]["permissions"] = {"contents": "write", "pages": "write", "issues": "write"}
    wf["jobs"]["deploy"]["permissions"] = "write-all"
    wf["jobs"]["keepalive"]["permissions"]["contents"] = "write"
    assert permission_problems(wf) == [
        "top-level permissions must be {} or contents: read, not 'write-all'",
        "pipeline: pages: write without a step that needs it",
        "pipeline: issues: write without a step that needs it",
        "deploy: permissions 'write-all' instead of a per-scope mapping",
        "keepalive: contents: write without a step that needs it",
    ]
    assert permission_problems({"jobs": {}}) == ["top-level permissions must be {} or contents: read, not None"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_least_privilege(path):
    assert permission_problems(load(path)) == []
    assert "write-all" not in path.read_text() and "read-all" not in path.read_text()


def test_only_the_deploy_job_may_publish_pages_and_only_reporters_touch_issues():
    for path in WORKFLOW_FILES:
        for name, job in load(path)["jobs"].items():
            granted = set(job.get("permissions", {}))
            assert not granted & {"pages", "id-token"} or (path.name, name) == ("daily.yml", "deploy")
            assert "issues" not in granted or "report.sh" in runs(job) or "health.sh" in runs(job)
    assert workflow("daily.yml")["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}


# Scheduled runs carry no repository in their event (github.event.repository is empty), and run on the
# default branch by definition; a manual run must have been started from the default branch.
DEFAULT_BRANCH_ONLY = "github.event_name == 'schedule' || github.ref_name == github.event.repository.default_branch"
SCHEDULE_ONLY = "github.event_name == 'schedule'"


def branch_problems(wf: dict) -> list[str]:
    """Every job that can write (any write scope, or a deployment environment) runs only on the default
    branch: guarded by DEFAULT_BRANCH_ONLY, or by a schedule-only condition."""
    problems = []
    for name, job in wf["jobs"].items():
        granted = job.get("permissions", {})
        writes = "environment" in job or (isinstance(granted, dict) and "write" in granted.values())
        condition = str(job.get("if", ""))
        conjuncts = [c.strip() for c in condition.split("&&")]
        if writes and condition.strip() != DEFAULT_BRANCH_ONLY and SCHEDULE_ONLY not in conjuncts:
            problems.append(f"{name}: writes without running only on the default branch")
    return problems


def test_the_branch_rule_sees_an_unguarded_or_wrongly_guarded_writer():
    wf = copy.deepcopy(workflow("daily.yml"))
    assert branch_problems(wf) == []
    del wf["jobs"]["pipeline"]["if"]
    wf["jobs"]["deploy"]["if"] = "github.ref_name == github.event.repository.default_branch"  # skips schedules
    wf["jobs"]["report"]["if"] = "always() || github.event_name == 'schedule'"
    assert branch_problems(wf) == ["pipeline: writes without running only on the default branch",
                                   "deploy: writes without running only on the default branch",
                                   "report: writes without running only on the default branch"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_writing_jobs_run_only_on_the_default_branch(path):
    assert branch_problems(load(path)) == []


# ---------------------------------------------------------------------------------------------------
# The token and the API keys: only in the steps that use them

TOKEN = re.compile(r"\bgithub\.token\b|\bsecrets\.GITHUB_TOKEN\b")
SECRET_VALUE = re.compile(r"\bsecrets\.(\w+)\b(?!\s*[!=]=)")  # a secret's value, not a test of its presence
API_STEP = re.compile(r"^python [\w]+\.py\b|^python -m cryptocast\b|^\.github/scripts/store\.sh "
                      r"(backfill-if-empty|model-missing)\b")
TOKEN_STEP = re.compile(r"^\.github/scripts/(store\.sh (pull|push)|keepalive\.sh|report\.sh|health\.sh)\b")


def secret_leaks(node, path: tuple = ()) -> list[str]:
    """Every string outside an `env:` mapping that mentions a secret or the token."""
    if isinstance(node, dict):
        return [leak for k, v in node.items() for leak in secret_leaks(v, (*path, str(k)))]
    if isinstance(node, list):
        return [leak for i, v in enumerate(node) for leak in secret_leaks(v, (*path, str(i)))]
    if isinstance(node, str) and SECRET_REFERENCE.search(node) and "env" not in path:
        return [".".join(path)]
    return []


def step_scope_problems(doc: dict) -> list[str]:
    """Secret values and the token only in the `env` of the steps that call the APIs (the keys) or run
    git and gh for the store, the schedules and the issue (the token): never workflow- or job-wide, where
    every step, the installs included, would see them. Checkout keeps no token."""
    problems = []
    for where, env in [("workflow env", doc.get("env", {})),
                       *[(f"{name} env", job.get("env", {})) for name, job in jobs_of(doc).items()]]:
        for key, value in (env or {}).items():
            if SECRET_VALUE.search(str(value)) or TOKEN.search(str(value)):
                problems.append(f"{where}: {key}")
    for name, job in jobs_of(doc).items():
        for step in steps(job):
            command = step.get("run", "").strip()
            label = f"{name}.{step.get('name') or step.get('uses') or command}"
            for key, value in (step.get("env") or {}).items():
                if SECRET_VALUE.search(str(value)) and not API_STEP.match(command):
                    problems.append(f"{label}: {key} (an API key in a step that calls no API)")
                if TOKEN.search(str(value)) and not TOKEN_STEP.match(command):
                    problems.append(f"{label}: {key} (the token in a step that needs none)")
            if step.get("uses", "").startswith("actions/checkout@") and \
                    (step.get("with") or {}).get("persist-credentials") is not False:
                problems.append(f"{label}: checkout keeps the token (persist-credentials: false)")
    return problems


def test_the_step_scope_rule_sees_every_kind_of_overreach():
    wf = copy.deepcopy(workflow("daily.yml"))
    assert step_scope_problems(wf) == []
    job = wf["jobs"]["pipeline"]
    job["env"] = {"CRYPTO_API_KEY": "${{ secrets.CRYPTO_API_KEY }}"}
    wf["env"]["GH_TOKEN"] = "${{ github.token }}"
    job["steps"][0]["with"] = {}
    job["steps"][1]["env"] = {"HOPSWORKS_API_KEY": "${{ secrets.HOPSWORKS_API_KEY }}"}
    job["steps"][2]["env"]["KEY"] = "${{ secrets.CRYPTO_API_KEY }}"
    feature_step = next(s for s in job["steps"] if s.get("run") == "python feature_pipeline.py")
    feature_step["env"]["GH_TOKEN"] = "${{ github.token }}"
    assert step_scope_problems(wf) == [
        "workflow env: GH_TOKEN",
        "pipeline env: CRYPTO_API_KEY",
        "pipeline.actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1: checkout keeps the token "
        "(persist-credentials: false)",
        "pipeline../.github/actions/python: HOPSWORKS_API_KEY (an API key in a step that calls no API)",
        "pipeline.Pull the store: KEY (an API key in a step that calls no API)",
        "pipeline.Update the feature groups to yesterday: GH_TOKEN (the token in a step that needs none)",
    ]


@pytest.mark.parametrize("path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_secrets_and_the_token_reach_only_the_steps_that_use_them(path):
    assert secret_leaks(load(path)) == []
    assert step_scope_problems(load(path)) == []


def test_the_secret_rule_catches_a_secret_in_a_command_or_input():
    wf = copy.deepcopy(workflow("daily.yml"))
    assert secret_leaks(wf) == []
    wf["jobs"]["pipeline"]["steps"][0]["with"] = {"token": "${{ secrets.PAT }}"}
    wf["jobs"]["pipeline"]["steps"].append({"run": 'curl -H "key: ${{ secrets.HOPSWORKS_API_KEY }}" x'})
    wf["jobs"]["deploy"]["steps"].append({"run": "gh api -H ${{ github.token }} x"})
    last = len(wf["jobs"]["pipeline"]["steps"]) - 1
    assert secret_leaks(wf) == ["jobs.pipeline.steps.0.with.token", f"jobs.pipeline.steps.{last}.run",
                                "jobs.deploy.steps.1.run"]


API_ENV = {"HOPSWORKS_API_KEY": "${{ secrets.HOPSWORKS_API_KEY }}",
           "HOPSWORKS_PROJECT": "${{ vars.HOPSWORKS_PROJECT || secrets.HOPSWORKS_PROJECT }}",
           "HOPSWORKS_HOST": "${{ vars.HOPSWORKS_HOST || secrets.HOPSWORKS_HOST }}"}
BACKEND = ("${{ vars.CRYPTOCAST_BACKEND != '' && vars.CRYPTOCAST_BACKEND != 'auto' && vars.CRYPTOCAST_BACKEND "
           "|| (secrets.HOPSWORKS_API_KEY != '' && 'hopsworks' || 'local') }}")


def test_every_step_that_calls_an_api_gets_the_settings_and_keys():
    for name in ("daily.yml", "retrain.yml"):
        wf = workflow(name)
        assert wf["env"]["CRYPTOCAST_BACKEND"] == BACKEND, "auto resolved once, without exposing the key"
        for job in wf["jobs"].values():
            for step in steps(job):
                if API_STEP.match(step.get("run", "")):
                    assert API_ENV.items() <= (step.get("env") or {}).items(), step
                if re.match(r"python feature_pipeline\.py|\.github/scripts/store\.sh backfill", step.get("run", "")):
                    assert step["env"]["CRYPTO_API_KEY"] == "${{ secrets.CRYPTO_API_KEY }}"
                if TOKEN_STEP.match(step.get("run", "")) and "store.sh" in step["run"]:
                    assert step["env"] == {"STORE_TOKEN": "${{ github.token }}"}


# ---------------------------------------------------------------------------------------------------
# Concurrency: one writer of the store at a time, and nothing waiting is ever dropped


def test_the_doctor_runs_by_hand_with_exactly_the_pipelines_backend_settings():
    """What the doctor checks is what the scheduled runs will use: same backend, format, key, project and host."""
    doctor = workflow("doctor.yml")
    assert set(triggers(doctor)) == {"workflow_dispatch"}
    (job,) = doctor["jobs"].values()
    pull, check = [s for s in steps(job) if "run" in s]
    assert check["run"] == "python -m cryptocast doctor"
    assert job["permissions"] == {"contents": "read"} and doctor["permissions"] == {}
    assert install_problems(job) == []
    backend = ("CRYPTOCAST_BACKEND", "CRYPTOCAST_HOPSWORKS_FORMAT", "CRYPTOCAST_HOME", "STORE_BRANCH")
    hopsworks = ("HOPSWORKS_API_KEY", "HOPSWORKS_PROJECT", "HOPSWORKS_HOST")
    for name in ("daily.yml", "retrain.yml"):
        pipeline = workflow(name)
        assert {k: pipeline["env"].get(k) for k in backend} == {k: doctor["env"][k] for k in backend}, name
        for pipeline_job in pipeline["jobs"].values():
            for step in steps(pipeline_job):
                if "HOPSWORKS_API_KEY" in step.get("env", {}):
                    assert {k: step["env"].get(k) for k in hopsworks} == {k: check["env"][k] for k in hopsworks}


def test_the_doctor_reads_the_local_store_branch_and_has_time_for_its_calls():
    """On the local backend the real groups live on the store branch: without it the doctor read an empty home
    ("no production version"). Its timeout covers every call that waits on the cluster at its own bound."""
    (job,) = workflow("doctor.yml")["jobs"].values()
    pull, check = [s for s in steps(job) if "run" in s]
    assert pull["run"] == ".github/scripts/store.sh pull" and pull["env"] == {"STORE_TOKEN": "${{ github.token }}"}
    assert not any("store.sh push" in s.get("run", "") for s in steps(job))
    per_call = float(DEFAULTS["CRYPTOCAST_HOPSWORKS_TIMEOUT"])
    assert job["timeout-minutes"] * 60 > doctor.SLOW_CALLS * per_call


def test_the_feature_groups_a_failed_update_wrote_are_still_pushed():
    """A run writes every group that succeeded before it exits 1 naming the one that failed (each write
    is atomic), so the push after feature_pipeline must run after its failure too, as long as the store
    was pulled; the job still fails, so nothing downstream runs."""
    for name, job_name in (("daily.yml", "pipeline"), ("retrain.yml", "train")):
        job_steps = steps(workflow(name)["jobs"][job_name])
        pull = next(s for s in job_steps if s.get("run") == ".github/scripts/store.sh pull")
        update = next(i for i, s in enumerate(job_steps) if "feature_pipeline.py" in s.get("run", ""))
        push = next(s for s in job_steps[update:] if "store.sh push" in s.get("run", ""))
        assert pull.get("id") == "pull", name
        assert push.get("if") == "${{ !cancelled() && steps.pull.outcome == 'success' }}", name


def concurrency_problems(wfs: list[dict]) -> list[str]:
    """Every workflow that pushes the store shares one group that never cancels a running run and
    queues every waiting one (GitHub's default queue keeps one pending run and cancels it when another
    arrives)."""
    writers = [wf["concurrency"] for wf in wfs if any("store.sh push" in runs(j) for j in wf["jobs"].values())]
    problems = []
    if len({c.get("group") for c in writers}) != 1:
        problems.append("store writers are not in one group")
    for c in writers:
        if c.get("cancel-in-progress") is not False:
            problems.append(f"{c.get('group')}: cancel-in-progress is not false")
        if c.get("queue") != "max":
            problems.append(f"{c.get('group')}: a waiting run can be cancelled (queue is not max)")
        if "${{" in str(c.get("group")):
            problems.append(f"{c.get('group')}: the group depends on the branch or the run")
    return problems


def test_the_concurrency_rule_sees_a_dropped_or_cancelled_run():
    daily, retrain = copy.deepcopy(workflow("daily.yml")), copy.deepcopy(workflow("retrain.yml"))
    assert concurrency_problems([daily, retrain]) == []
    del retrain["concurrency"]["queue"]
    daily["concurrency"]["cancel-in-progress"] = True
    assert concurrency_problems([daily, retrain]) == ["cryptocast-store: cancel-in-progress is not false",
                                                      "cryptocast-store: a waiting run can be cancelled "
                                                      "(queue is not max)"]
    retrain["concurrency"]["group"] = "retrain-${{ github.ref }}"
    assert "store writers are not in one group" in concurrency_problems([daily, retrain])


def test_store_writers_share_one_queueing_group():
    assert concurrency_problems([load(p) for p in WORKFLOW_FILES]) == []


def test_the_publishing_guide_states_githubs_queueing_rules():
    readme = (REPO / "guide" / "publishing.md").read_text()
    assert "waits for it, never cancels it" not in readme, "GitHub cancels a waiting run by default"
    assert "one running and one pending run per group" in readme and "`queue: max`" in readme


# ---------------------------------------------------------------------------------------------------
# Each job installs only what it runs, from a lock, cached by the lock's hash

PYTHON_ACTION = "./.github/actions/python"


def install_problems(job: dict) -> list[str]:
    """A job that runs Python sets it up with the lock action after checkout: the daily lock unless it
    trains, the training lock (under the same condition) before it trains, and nothing else."""
    names = uses(job)
    commands = [s.get("run", "") for s in steps(job)]
    if not any(re.match(r"python\b", c) or "store.sh" in c for c in commands):
        return [] if PYTHON_ACTION not in names else ["installs Python without running it"]
    installs = [(i, s) for i, s in enumerate(steps(job)) if s.get("uses") == PYTHON_ACTION]
    if not installs or not names[0].startswith("actions/checkout@") or installs[0][0] < 1:
        return ["no lock installed after checkout"]
    problems = []
    trains = [(i, s) for i, s in enumerate(steps(job)) if s.get("run") == "python training_pipeline.py"]
    wanted = {"train"} if trains and installs[0][0] < trains[0][0] and not trains[0][1].get("if") else set()
    for i, install in installs:
        lock_name = install.get("with", {}).get("lock")
        if lock_name not in ("daily", "train"):
            problems.append(f"lock {lock_name!r}")
        elif lock_name == "train" and not any(install.get("if") == t.get("if") and i < j for j, t in trains):
            problems.append("installs the training lock without training")
    if trains and not any(s.get("with", {}).get("lock") == "train" for _, s in installs):
        problems.append("trains without the training lock")
    if not trains and not wanted and installs[0][1].get("with", {}).get("lock") != "daily":
        problems.append("the first install is not the daily lock")
    return problems


def test_the_install_rule_sees_too_much_or_too_little():
    daily = copy.deepcopy(workflow("daily.yml")["jobs"]["pipeline"])
    assert install_problems(daily) == []
    train_install = next(s for s in steps(daily) if s.get("with", {}).get("lock") == "train")
    del train_install["if"]
    assert install_problems(daily) == ["installs the training lock without training"]
    daily["steps"] = [s for s in steps(daily) if s is not train_install]
    assert install_problems(daily) == ["trains without the training lock"]
    retrain = copy.deepcopy(workflow("retrain.yml")["jobs"]["train"])
    assert install_problems(retrain) == []
    retrain["steps"] = [s for s in steps(retrain) if s.get("uses") != PYTHON_ACTION]
    assert install_problems(retrain) == ["no lock installed after checkout"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_job_installs_only_the_lock_it_needs(path):
    for name, job in load(path)["jobs"].items():
        assert install_problems(job) == [], name


def test_the_lock_action_maps_each_environment_to_its_lock_and_caches_by_its_hash():
    action = load(GITHUB / "actions" / "python" / "action.yml")
    choose = action["runs"]["steps"][0]["run"]
    for pattern, lock_file in [("daily/hopsworks", "requirements/hopsworks.txt"), ("daily/*", "requirements/daily.txt"),
                               ("train/hopsworks", "requirements.txt"), ("train/*", "requirements/train.txt")]:
        assert re.search(rf"^\s*{re.escape(pattern)}\) file={re.escape(lock_file)} ;;", choose, re.M)
        assert lock_file in lock.LOCKS
    (cache,) = [s for s in action["runs"]["steps"] if s.get("uses", "").startswith("actions/cache@")]
    assert "hashFiles(steps.lock.outputs.file)" in cache["with"]["key"]
    assert "python-version" in cache["with"]["key"], "a venv is only valid for its interpreter"
    (install,) = [s for s in action["runs"]["steps"] if "pip install" in s.get("run", "")]
    assert install["if"] == "steps.cache.outputs.cache-hit != 'true'"
    assert '--require-hashes -r "$FILE"' in install["run"]


def ci_problems(job: dict) -> list[str]:
    """One test job per supported Python, each in that Python's Debian 12 image pinned by digest, with pip's
    cache keyed by the dev lock and the version."""
    problems = []
    matrix = job.get("strategy", {}).get("matrix", {}).get("include", [])
    if [m.get("python") for m in matrix] != list(lock.SUPPORTED_PYTHONS):
        problems.append(f"tests {[m.get('python') for m in matrix]}, not {list(lock.SUPPORTED_PYTHONS)}")
    for entry in matrix:
        if not re.fullmatch(rf"python:{re.escape(str(entry.get('python')))}-bookworm@sha256:[0-9a-f]{{64}}",
                            str(entry.get("image"))):
            problems.append(f"{entry.get('image')}: not that Python's Debian 12 image pinned by digest")
    if job.get("container") != "${{ matrix.image }}":
        problems.append("the container is not the matrix image")
    caches = [s for s in steps(job) if s.get("uses", "").startswith("actions/cache@")]
    key = caches[0]["with"]["key"] if caches else ""
    if "hashFiles('requirements/dev.txt')" not in key or "matrix.python" not in key:
        problems.append("pip's cache is not keyed by the dev lock and the Python version")
    return problems


def test_the_ci_rule_sees_a_missing_version_a_tagged_image_and_a_stale_cache_key():
    job = copy.deepcopy(workflow("ci.yml")["jobs"]["test"])
    assert ci_problems(job) == []
    job["strategy"]["matrix"]["include"].pop()
    job["strategy"]["matrix"]["include"][1]["image"] = "python:3.12-bookworm"
    next(s for s in steps(job) if s.get("uses", "").startswith("actions/cache@"))["with"]["key"] = "pip"
    assert ci_problems(job) == ["tests ['3.11', '3.12'], not ['3.11', '3.12', '3.13']",
                                "python:3.12-bookworm: not that Python's Debian 12 image pinned by digest",
                                "pip's cache is not keyed by the dev lock and the Python version"]


def test_ci_tests_every_supported_python_in_a_pinned_debian_12_image():
    assert ci_problems(workflow("ci.yml")["jobs"]["test"]) == []
    assert [s["run"] for s in steps(workflow("ci.yml")["jobs"]["test"]) if "run" in s] == ["bash .ci/run"]


# A push that also runs after its step failed: the groups a partly failed update wrote are kept.
AFTER_PULL = "${{ !cancelled() && steps.pull.outcome == 'success' }}"


def _push_conditions(step_condition: str | None) -> tuple[str | None, ...]:
    return (step_condition,) if step_condition is not None else (None, AFTER_PULL)


def store_problems(job: dict) -> list[str]:
    """A job that writes the store pulls it first and pushes after each writing step, under the same
    condition (a first-run training step is pushed only when it ran, and always when it did), or, for
    an unconditional step, also after its failure once the pull succeeded."""
    commands = [s.get("run", "") for s in steps(job)]
    writes = [i for i, c in enumerate(commands)
              if re.match(r"python (feature|training|inference)_pipeline", c) or "store.sh backfill" in c]
    if not writes:
        return []
    problems = []
    pulls = [i for i, c in enumerate(commands) if c == ".github/scripts/store.sh pull"]
    if not pulls or pulls[0] > writes[0]:
        problems.append("no pull before the pipeline")
    for i in writes:
        pushed = [j for j in range(i + 1, len(commands)) if "store.sh push" in commands[j]]
        if not pushed:
            problems.append(f"{commands[i]}: never pushed")
        elif steps(job)[pushed[0]].get("if") not in _push_conditions(steps(job)[i].get("if")):
            problems.append(f"{commands[i]}: pushed under another condition")
    return problems


def test_the_store_rule_sees_a_missing_pull_or_push():
    job = copy.deepcopy(workflow("daily.yml")["jobs"]["pipeline"])
    assert store_problems(job) == []
    job["steps"] = [s for s in steps(job) if s.get("run") not in (".github/scripts/store.sh pull",
                                                                  ".github/scripts/store.sh push inference")]
    next(s for s in steps(job) if s.get("run") == '.github/scripts/store.sh push "first model"').pop("if")
    assert store_problems(job) == ["no pull before the pipeline",
                                   "python training_pipeline.py: pushed under another condition",
                                   "python inference_pipeline.py: never pushed"]
    job = copy.deepcopy(workflow("daily.yml")["jobs"]["pipeline"])
    push = next(s for s in steps(job) if s.get("run") == ".github/scripts/store.sh push features")
    push["if"] = "${{ always() }}"
    assert store_problems(job) == [".github/scripts/store.sh backfill-if-empty: pushed under another condition",
                                   "python feature_pipeline.py: pushed under another condition"]


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_store_writer_pulls_first_and_pushes_after_each_change(path):
    for name, job in load(path)["jobs"].items():
        assert store_problems(job) == [], name


# ---------------------------------------------------------------------------------------------------
# Pinned: actions by full commit SHA with the version in a comment, images by digest; kept current

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$")
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"\s+# v\d+(\.\d+){0,2}$")
IMAGE = re.compile(r"^\s*(?:-\s+)?(?:container|image):\s*(\S+)\s*$")


def pin_problems(text: str) -> list[str]:
    problems = []
    for line in text.splitlines():
        if match := USES_LINE.match(line):
            ref, rest = match.groups()
            if ref.startswith("./"):
                continue
            if not PINNED.fullmatch(ref):
                problems.append(f"{ref}: not pinned by a full commit SHA")
            elif not VERSION_COMMENT.fullmatch(rest):
                problems.append(f"{ref}: no '# vX.Y.Z' comment")
        if (match := IMAGE.match(line)) and "${{" not in match.group(1):
            if not re.search(r"@sha256:[0-9a-f]{64}$", match.group(1)):
                problems.append(f"{match.group(1)}: image not pinned by digest")
    return problems


def test_the_pin_rule_sees_a_tag_a_short_sha_a_missing_comment_and_a_tagged_image():
    assert pin_problems("      - uses: actions/checkout@v7\n"
                        "      - uses: actions/cache@27d5ce7 # v5.0.5\n"
                        "      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae\n"
                        "    container: python:3.11-bookworm\n"
                        "      - uses: ./.github/actions/python\n"
                        "      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5\n"
                        "            image: python:3.12-bookworm@sha256:" + "a" * 64 + "\n") == [
        "actions/checkout@v7: not pinned by a full commit SHA",
        "actions/cache@27d5ce7: not pinned by a full commit SHA",
        "actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae: no '# vX.Y.Z' comment",
        "python:3.11-bookworm: image not pinned by digest"]


@pytest.mark.parametrize("path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_actions_and_images_are_pinned(path):
    assert pin_problems(path.read_text()) == []


def test_one_action_has_one_pin_everywhere():
    pins: dict[str, set[str]] = {}
    for path in WORKFLOW_FILES + ACTION_FILES:
        for line in path.read_text().splitlines():
            if (match := USES_LINE.match(line)) and not match.group(1).startswith("./"):
                action, sha = match.group(1).split("@")
                pins.setdefault(action, set()).add(sha + match.group(2))
    assert pins and all(len(v) == 1 for v in pins.values()), pins


def test_dependabot_keeps_actions_and_python_dependencies_current():
    path = GITHUB / "dependabot.yml"
    result = check_jsonschema("vendor.dependabot", path)
    assert result.returncode == 0, result.stdout + result.stderr
    updates = {u["package-ecosystem"]: u for u in load(path)["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    action_dirs = {"/" + str(p.parent.relative_to(REPO)) for p in ACTION_FILES}
    assert set(updates["github-actions"]["directories"]) == {"/"} | action_dirs
    assert updates["pip"]["directory"] == "/"


def test_the_dependabot_check_rejects_a_broken_config(tmp_path):
    broken = tmp_path / "dependabot.yml"
    broken.write_text((GITHUB / "dependabot.yml").read_text().replace("interval: weekly", "interval: hourly", 1))
    assert check_jsonschema("vendor.dependabot", broken).returncode == 1


# ---------------------------------------------------------------------------------------------------
# zizmor, offline


def zizmor(*paths: Path) -> subprocess.CompletedProcess:
    binary = Path(sys.executable).with_name("zizmor")
    return subprocess.run([str(binary), "--offline", "--no-progress", "--config", str(GITHUB / "zizmor.yml"),
                           *map(str, paths)], capture_output=True, text=True, timeout=120)


def test_zizmor_finds_nothing_in_the_workflows_actions_and_dependabot():
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


ZIZMOR_BROKEN = {  # a real workflow, one weakness each, and the audit that must report it
    "a tag instead of a SHA": ("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
                               "actions/checkout@v7", "unpinned-uses"),
    "an expression in a command": ("run: python training_pipeline.py",
                                   'run: python training_pipeline.py "${{ github.event.head_commit.message }}"',
                                   "template-injection"),
    "a checkout that keeps the token": ("        with:\n          persist-credentials: false\n", "", "artipacked"),
}


@pytest.mark.parametrize("weakness", sorted(ZIZMOR_BROKEN))
def test_zizmor_reports_a_weakened_workflow(weakness, tmp_path):
    old, new, audit = ZIZMOR_BROKEN[weakness]
    text = (WORKFLOWS / "retrain.yml").read_text()
    assert old in text
    broken = tmp_path / "retrain.yml"
    broken.write_text(text.replace(old, new, 1))
    result = zizmor(broken)
    assert result.returncode != 0 and f"[{audit}]" in result.stdout + result.stderr, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------------
# A failed scheduled run is reported


@pytest.mark.parametrize("path", [p for p in WORKFLOW_FILES if crons(load(p))], ids=lambda p: p.name)
def test_every_scheduled_workflow_reports_its_result(path):
    jobs = load(path)["jobs"]
    reporters = [(n, j) for n, j in jobs.items() if "report.sh" in runs(j)]
    assert len(reporters) == 1
    name, job = reporters[0]
    assert job["if"] == "always() && github.event_name == 'schedule'"
    # health reports the model, in its own issue (health.sh)
    assert set(needs(job)) == set(jobs) - {name, "health"}, "it waits for every other job, keepalive and deploy too"
    assert job["permissions"] == {"issues": "write", "actions": "read", "contents": "read"}
    (step,) = [s for s in steps(job) if "report.sh" in s.get("run", "")]
    result = step["env"]["RESULT"]
    assert all(f"needs.{n}.result == 'success'" in result for n in needs(job))


def test_the_health_job_acts_on_the_pipeline_record_apart_from_the_run_report():
    jobs = workflow("daily.yml")["jobs"]
    job = jobs["health"]
    assert needs(job) == ["pipeline"] and "needs.pipeline.outputs.health != ''" in job["if"]
    assert "github.event_name == 'schedule'" in job["if"]
    assert job["permissions"] == {"issues": "write", "actions": "write", "contents": "read"}
    (step,) = [s for s in steps(job) if "health.sh" in s.get("run", "")]
    assert step["env"]["HEALTH_JSON"] == "${{ needs.pipeline.outputs.health }}"
    assert jobs["pipeline"]["outputs"]["health"] == "${{ steps.health.outputs.json }}"
    (record,) = [s for s in steps(jobs["pipeline"]) if s.get("id") == "health"]
    assert record["continue-on-error"] is True and "python -m cryptocast health --json" in record["run"]
