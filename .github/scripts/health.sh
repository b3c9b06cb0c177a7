#!/usr/bin/env bash
# Act on the day's model health record (`python -m cryptocast health --json`, in HEALTH_JSON):
#
#   a check fails   open the "Model health" issue (or comment on the open one): each failing check, since
#                   when, and what it found; and ask for a retrain (dispatch retrain.yml) unless one was
#                   asked for in the last RETRAIN_EVERY_DAYS (7) days. The promotion gate in
#                   training_pipeline.py still decides whether the new version serves. A day whose
#                   failing checks are those of the issue's last post, and that asks for no retrain,
#                   adds no comment (a drift lasting weeks is one comment a week, not one a day).
#   all pass        comment on the open issue, if any, and close it: health has returned
#   no record,      say so and do nothing (a check that cannot tell yet is not a failure)
#   or unknowns
#
# Distinct from report.sh's "Scheduled daily run failed" issue: that one is about runs that broke,
# this one about a model that runs but no longer does what its backtest promised, or inputs that
# changed character.
#
# Needs the GitHub CLI (`gh`) and jq, GH_TOKEN with `issues: write` and `actions: write`, and
# GH_REPO=owner/name, RUN_URL, HEALTH_JSON (the record; empty when the health step failed).
set -euo pipefail

say() { printf 'health.sh: %s\n' "$*"; }
die() { printf 'error: health.sh: %s\n' "$*" >&2; exit 1; }

for name in GH_REPO RUN_URL; do
  [[ -n "${!name:-}" ]] || die "$name is not set"
done
every="${RETRAIN_EVERY_DAYS:-7}"
title="Model health"
source "$(dirname "${BASH_SOURCE[0]}")/issues.sh"
record="${HEALTH_JSON:-}"

if [[ -z "$record" ]] || ! day="$(jq -er '.day // empty' <<<"$record")"; then
  say "no health record today; nothing to do"
  exit 0
fi
verdict="$(jq -r '.verdict' <<<"$record")" || die "HEALTH_JSON is not a health record"

# The newest dispatched retrain's creation time (ISO 8601), if any.
last_dispatch() {
  gh run list --repo "$GH_REPO" --workflow retrain.yml --event workflow_dispatch --limit 1 --json createdAt \
    --jq '.[0].createdAt // empty'
}

number="$(open_issue)" || die "cannot list the issues of $GH_REPO"

if [[ "$verdict" != fail ]]; then
  if [[ -z "$number" ]]; then
    say "health $day: $verdict; no open issue"
    exit 0
  fi
  close_issue "$number" "$day: every check that can be computed passes again ($verdict): $RUN_URL"
  say "health $day: $verdict; closed issue #$number"
  exit 0
fi

checks="$(jq -r '.checks[] | select(.verdict == "fail")
  | "- **\(.check)** since \(.failing_since // "today"): \(.detail) [\(.window)]"' <<<"$record")"

since="$(last_dispatch)" || die "cannot list the retrain runs of $GH_REPO"
now="$(date -u +%s)"
dispatched=false
if [[ -n "$since" ]] && (( now - $(date -u -d "$since" +%s) < every * 86400 )); then
  retrain="A retrain was already asked for at $since (less than $every days ago); not again."
else
  dispatched=true
  gh workflow run retrain.yml --repo "$GH_REPO" >/dev/null || die "cannot dispatch retrain.yml"
  retrain="Asked for a retrain (retrain.yml); the promotion gate decides whether the new version serves."
fi

# The failing checks, as a marker the next day compares with (hidden in the rendered issue).
marker="<!-- failing: $(jq -r '[.checks[] | select(.verdict == "fail") | .check] | sort | join(",")' <<<"$record") -->"
body="$(printf '%s: model health fails (model v%s).\n\n%s\n\n%s\n\n%s\n%s\n' "$day" \
  "$(jq -r '.model_version' <<<"$record")" "$checks" "$retrain" "$RUN_URL" "$marker")"
if [[ -n "$number" && "$dispatched" == false ]]; then
  last="$(gh issue view "$number" --repo "$GH_REPO" --json body,comments \
    --jq '([.body] + [.comments[].body]) | last')" || die "cannot read issue #$number"
  if [[ "$last" == *"$marker"* ]]; then
    say "health $day: fail; the same checks as issue #$number last said; no comment"
    exit 0
  fi
fi
did="$(post_issue "$number" "$body")"
say "health $day: fail; $did; ${retrain%%;*}"
