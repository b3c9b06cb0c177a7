#!/usr/bin/env bash
# The one open issue a script keeps, found by its title: sourced by report.sh (failed runs) and health.sh
# (model health), so both find, post to and close their issue the same way. Needs the GitHub CLI (`gh`),
# GH_REPO=owner/name, and the caller's `title`.
set -euo pipefail

# The number of the open issue titled "$title", or nothing.
open_issue() {
  gh issue list --repo "$GH_REPO" --state open --limit 100 --json number,title \
    --jq ".[] | select(.title == \"$title\") | .number" | head -n 1
}

# Comment BODY ($2) on issue NUMBER ($1), or open the issue with it when NUMBER is empty; prints what it did.
# Run inside $(...), where errexit does not reach: a failed write returns its status itself.
post_issue() {
  if [[ -n "$1" ]]; then
    gh issue comment "$1" --repo "$GH_REPO" --body "$2" >/dev/null || return
    printf 'commented on issue #%s' "$1"
  else
    gh issue create --repo "$GH_REPO" --title "$title" --body "$2" >/dev/null || return
    printf 'opened an issue'
  fi
}

# Comment BODY ($2) on issue NUMBER ($1), then close it.
close_issue() {
  gh issue comment "$1" --repo "$GH_REPO" --body "$2" >/dev/null
  gh issue close "$1" --repo "$GH_REPO" >/dev/null
}
