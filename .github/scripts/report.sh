#!/usr/bin/env bash
# Make a failed scheduled run visible: one open issue per workflow, named by its title.
#
#   report.sh failure   open the issue (or comment on the open one): the failed job and step, the last
#                       `error: ...` line that step printed, and a link to the run
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

open_issue() {
  gh issue list --repo "$GH_REPO" --state open --limit 100 --json number,title \
    --jq ".[] | select(.title == \"$title\") | .number" | head -n 1
}

# "job / step" of the first failed step, and that job's id, from the run's jobs (in progress: this one).
failed_step() {
  gh api "repos/$GH_REPO/actions/runs/$RUN_ID/jobs" --paginate --jq '.jobs[]
    | select(.conclusion == "failure" or .conclusion == "timed_out" or .conclusion == "cancelled") | "\(.id)\t\(.name) / \(([.steps[]? | select(.conclusion == "failure" or .conclusion == "cancelled") | .name] + ["(no step)"])[0])"' | head -n 1
}

# The last line the failed job printed that starts with "error:", without the log's timestamp.
error_line() {
  gh api "repos/$GH_REPO/actions/jobs/$1/logs" | sed -E 's/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z //' \
    | grep -E '^error: ' | tail -n 1 || true
}

number="$(open_issue)" || die "cannot list the issues of $GH_REPO"
today="$(date -u +%Y-%m-%d)"

if [[ "$result" == success ]]; then
  if [[ -z "$number" ]]; then
    say "$WORKFLOW succeeded; no open issue"
    exit 0
  fi
  gh issue comment "$number" --repo "$GH_REPO" --body "$today: the scheduled run succeeded again: $RUN_URL" >/dev/null
  gh issue close "$number" --repo "$GH_REPO" >/dev/null
  say "$WORKFLOW succeeded; closed issue #$number"
  exit 0
fi

where="$(failed_step)" || die "cannot read the jobs of run $RUN_ID"
step="${where#*$'\t'}"
error=""
if [[ -n "$where" ]]; then
  error="$(error_line "${where%%$'\t'*}")" || true
fi
body="$(printf '%s: the scheduled run failed at **%s**.\n\n```\n%s\n```\n\n%s\n' "$today" \
  "${step:-an unknown step}" "${error:-(no error: line in the log; see the run)}" "$RUN_URL")"
if [[ -n "$number" ]]; then
  gh issue comment "$number" --repo "$GH_REPO" --body "$body" >/dev/null
  say "$WORKFLOW failed at ${step:-an unknown step}; commented on issue #$number"
else
  gh issue create --repo "$GH_REPO" --title "$title" --body "$body" >/dev/null
  say "$WORKFLOW failed at ${step:-an unknown step}; opened an issue"
fi
