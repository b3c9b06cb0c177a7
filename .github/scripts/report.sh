#!/usr/bin/env bash
# Make a failed scheduled run visible: one open issue per workflow, named by its title.
#
#   report.sh failure   open the issue (or comment on the open one): the failed job and step, a line
#                       saying what failed, and a link to the run. That line is the last `error: ...`
#                       line the job printed (ours, secrets scrubbed); else the runner's last `##[error]`
#                       annotation (an action's own failure: deploy-pages, say), other than the bare
#                       "Process completed with exit code N"; else the job's conclusion at its step.
#   report.sh success   comment on the open issue, if any, and close it: the next green run
#
# GitHub mails a failed scheduled run only to whoever last edited its cron line; an issue reaches
# everyone watching the repository. The error line is one the pipeline scripts print with secrets
# already scrubbed, read from the job's log (GitHub masks secrets there too).
#
# Needs the GitHub CLI (`gh`, preinstalled on GitHub-hosted runners) with GH_TOKEN holding
# `issues: write` and `actions: read`, and GH_REPO=owner/name, RUN_ID, RUN_URL, WORKFLOW (its name).
set -euo pipefail

say() { printf 'report.sh: %s\n' "$*"; }
die() { printf 'error: report.sh: %s\n' "$*" >&2; exit 1; }

result="${1:-}"
[[ "$result" == success || "$result" == failure ]] || die "usage: report.sh success|failure"
for name in GH_REPO RUN_ID RUN_URL WORKFLOW; do
  [[ -n "${!name:-}" ]] || die "$name is not set"
done
title="Scheduled $WORKFLOW run failed"
source "$(dirname "${BASH_SOURCE[0]}")/issues.sh"

# The first failed job: its id, conclusion, name and first failed step, tab-separated, from the run's jobs
# (in progress: this one).
failed_step() {
  gh api "repos/$GH_REPO/actions/runs/$RUN_ID/jobs" --paginate --jq '.jobs[]
    | select(.conclusion == "failure" or .conclusion == "timed_out" or .conclusion == "cancelled") | "\(.id)\t\(.conclusion)\t\(.name)\t\(([.steps[]? | select(.conclusion == "failure" or .conclusion == "cancelled") | .name] + ["(no step)"])[0])"' | head -n 1
}

# What the failed job said went wrong: its last "error:" line, else the runner's last ##[error] annotation
# that is more than the exit code, without the log's timestamps.
error_line() {
  local log
  log="$(gh api "repos/$GH_REPO/actions/jobs/$1/logs" | sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z //')" || true
  grep -E '^error: ' <<<"$log" | tail -n 1 && return
  grep -E '^##\[error\]' <<<"$log" | grep -vE '^##\[error\]Process completed with exit code [0-9]+\.$' \
    | tail -n 1 | sed -E 's/^##\[error\]//' || true
}

number="$(open_issue)" || die "cannot list the issues of $GH_REPO"
today="$(date -u +%Y-%m-%d)"

if [[ "$result" == success ]]; then
  if [[ -z "$number" ]]; then
    say "$WORKFLOW succeeded; no open issue"
    exit 0
  fi
  close_issue "$number" "$today: the scheduled run succeeded again: $RUN_URL"
  say "$WORKFLOW succeeded; closed issue #$number"
  exit 0
fi

where="$(failed_step)" || die "cannot read the jobs of run $RUN_ID"
step="" error=""
if [[ -n "$where" ]]; then
  IFS=$'\t' read -r job_id conclusion job_name step_name <<<"$where"
  step="$job_name / $step_name"
  error="$(error_line "$job_id")" || true
  case "$conclusion" in
    timed_out) did="timed out" ;;
    cancelled) did="was cancelled" ;;
    *) did="failed" ;;
  esac
  error="${error:-$job_name $did at step $step_name before it printed an error line}"
fi
body="$(printf '%s: the scheduled run failed at **%s**.\n\n```\n%s\n```\n\n%s\n' "$today" \
  "${step:-an unknown step}" "${error:-no failed job found in run $RUN_ID: see the run}" "$RUN_URL")"
did="$(post_issue "$number" "$body")"
say "$WORKFLOW failed at ${step:-an unknown step}; $did"
