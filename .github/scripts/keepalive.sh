#!/usr/bin/env bash
# Keep scheduled workflows from being switched off by GitHub's 60-day rule.
#
# In a public repository GitHub disables a scheduled workflow when the repository has had no activity
# for 60 days, and scheduled runs stop silently until someone re-enables it. Calling the REST
# endpoint "enable a workflow" (PUT /repos/{owner}/{repo}/actions/workflows/{file}/enable) restarts
# that 60-day count even when the workflow is already active, with no commit needed. The daily
# workflow calls this every run, so the count never gets near 60 days. (Its commits to the store
# branch may count as activity too, but they do not happen with the Hopsworks backend, and whether
# bot pushes to a non-default branch count is not documented, so we do not rely on them.)
#
# A workflow someone disabled by hand (state disabled_manually) is left alone.
#
# Usage: keepalive.sh WORKFLOW_FILE...   e.g. keepalive.sh daily.yml retrain.yml
# Needs the GitHub CLI (`gh`, preinstalled on GitHub-hosted runners), GH_TOKEN with `actions: write`,
# and GH_REPO=owner/name.
set -euo pipefail

say() { printf 'keepalive.sh: %s\n' "$*"; }
die() { printf 'error: keepalive.sh: %s\n' "$*" >&2; exit 1; }

[[ $# -gt 0 ]] || die "usage: keepalive.sh WORKFLOW_FILE..."
[[ -n "${GH_REPO:-}" ]] || die "GH_REPO (owner/name) is not set"

for workflow in "$@"; do
  state="$(gh api "repos/$GH_REPO/actions/workflows/$workflow" --jq .state)" \
    || die "cannot read the state of $workflow in $GH_REPO"
  case "$state" in
    disabled_manually)
      say "$workflow was disabled by hand: leaving it off"
      ;;
    active | disabled_inactivity)
      gh api --method PUT "repos/$GH_REPO/actions/workflows/$workflow/enable" --silent \
        || die "cannot enable $workflow in $GH_REPO (the job needs permissions: actions: write)"
      say "$workflow was $state: enabled, the 60-day inactivity count starts again"
      ;;
    *)
      say "$workflow is $state: leaving it"
      ;;
  esac
done
