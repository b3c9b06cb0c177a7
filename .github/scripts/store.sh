#!/usr/bin/env bash
# Keep the local feature store and model registry (CRYPTOCAST_HOME) between GitHub Actions runs by
# committing it to a dedicated orphan branch, so no day's data, forecast or model is lost.
#
#   store.sh pull               check the store branch out into CRYPTOCAST_HOME; on the very first run,
#                               when the branch does not exist yet, start an empty store there instead
#   store.sh push LABEL         commit CRYPTOCAST_HOME if anything in it changed and push the branch;
#                               does nothing when nothing changed; fails loudly if the push is rejected
#   store.sh backfill-if-empty  run feature_backfill.py when an ingested feature group has no rows
#   store.sh model-missing      print `missing=true` when no model has a production version, else
#                               `missing=false` (a step output: the workflow installs the training
#                               environment and trains only then)
#
# pull and push do nothing unless the backend is "local": with Hopsworks the store lives there.
# The backend and CRYPTOCAST_HOME are resolved by cryptocast's own settings (environment, then .env,
# then defaults), so this script and the pipeline scripts always agree on both.
#
# Run it from the root of a git checkout of this repository. The store is checked out as a
# `git worktree` of that checkout, sharing its objects; every network operation (ls-remote, fetch,
# push) runs in the main checkout. Credentials: the workflows check out with persist-credentials:
# false and hand the token as STORE_TOKEN to the pull and push steps only. This script takes it out of
# the environment at once (the Python it runs never sees it) and gives it to those git commands alone,
# as the header actions/checkout would have stored. Without STORE_TOKEN, git uses its own config.
# Store files are never rewritten (Delta Lake: each write adds a commit and a small Parquet file), so
# a day's update commits a few small new files.
#
# Environment: STORE_BRANCH (default cryptocast-store), STORE_REMOTE (a remote name, default origin),
# PYTHON (the interpreter with cryptocast installed, default python), STORE_TOKEN (see above),
# GITHUB_SERVER_URL (where the token is sent, default https://github.com).
set -euo pipefail

TOKEN="${STORE_TOKEN:-}"
unset STORE_TOKEN

BRANCH="${STORE_BRANCH:-cryptocast-store}"
REMOTE="${STORE_REMOTE:-origin}"
PYTHON="${PYTHON:-python}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Commits are made by the workflow, not by a person.
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-github-actions[bot]}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}"
export GIT_COMMITTER_NAME="${GIT_COMMITTER_NAME:-$GIT_AUTHOR_NAME}"
export GIT_COMMITTER_EMAIL="${GIT_COMMITTER_EMAIL:-$GIT_AUTHOR_EMAIL}"

COMMAND="${1:-}"
say() { printf 'store.sh %s: %s\n' "$COMMAND" "$*"; }
die() { printf 'error: store.sh %s: %s\n' "$COMMAND" "$*" >&2; exit 1; }

load_settings() {
  local resolved
  resolved="$("$PYTHON" -c '
import sys
from cryptocast.errors import CryptocastError
from cryptocast.settings import load_settings
try:
    s = load_settings()
except CryptocastError as e:
    sys.exit(f"settings: {e}")
print(s.backend)
print(s.home)
')" || die "cannot resolve the cryptocast settings with $PYTHON"
  BACKEND="${resolved%%$'\n'*}"
  HOME_DIR="${resolved#*$'\n'}"
}

# git for the network: with the token, if one was handed over, as an extra header for the server only
# (in git's environment for this one command, never in a file or on the command line).
git_remote() {
  if [[ -z "$TOKEN" ]]; then
    git "$@"
    return
  fi
  local header
  header="AUTHORIZATION: basic $(printf 'x-access-token:%s' "$TOKEN" | base64 | tr -d '\n')"
  GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
    GIT_CONFIG_VALUE_0="$header" git "$@"
}

in_git_checkout() {
  git rev-parse --git-dir >/dev/null 2>&1 || die "$(pwd) is not a git checkout; run from the repository root"
}

# The first commit of the branch: no data yet, only what keeps the branch clean.
root_commit() {
  local ignore attributes readme tree
  ignore="$(printf '%s\n' \
    '# Written by .github/scripts/store.sh. Lock files and half-written temporaries are dot-files:' \
    '# none of them belongs in the store.' \
    '.*' '!.gitignore' '!.gitattributes' | git hash-object -w --stdin)"
  attributes="$(printf '%s\n' '# Store files are stored byte for byte.' '* -text' | git hash-object -w --stdin)"
  readme="$(printf '%s\n' \
    '# cryptocast store' '' \
    'The local feature store and model registry (`CRYPTOCAST_HOME`), written only by the scheduled' \
    'workflows through `.github/scripts/store.sh` on the default branch. Do not edit it by hand.' \
    | git hash-object -w --stdin)"
  tree="$(printf '100644 blob %s\t%s\n' "$attributes" .gitattributes "$ignore" .gitignore "$readme" README.md \
    | git mktree)"
  git -c commit.gpgsign=false commit-tree "$tree" -m "Start the $BRANCH branch: the cryptocast store"
}

cmd_pull() {
  load_settings
  if [[ "$BACKEND" != local ]]; then
    say "backend is $BACKEND: the store lives there, nothing to pull"
    return 0
  fi
  in_git_checkout
  if [[ -e "$HOME_DIR/.git" ]]; then
    die "$HOME_DIR is already a checkout of the store branch"
  fi
  if [[ -e "$HOME_DIR" && ! -d "$HOME_DIR" ]]; then
    die "$HOME_DIR exists and is not a directory"
  fi
  if [[ -d "$HOME_DIR" && -n "$(ls -A "$HOME_DIR")" ]]; then
    die "$HOME_DIR already holds files; refusing to replace a store (move it away first)"
  fi
  git worktree prune
  local found=0
  git_remote ls-remote --exit-code --heads "$REMOTE" "refs/heads/$BRANCH" >/dev/null || found=$?
  case "$found" in
    0)
      git_remote fetch --quiet --no-tags --depth=1 "$REMOTE" "refs/heads/$BRANCH" \
        || die "cannot fetch $BRANCH from $REMOTE"
      git worktree add --quiet --detach "$HOME_DIR" FETCH_HEAD
      say "checked out $BRANCH at $(git -C "$HOME_DIR" rev-parse --short HEAD) into $HOME_DIR"
      ;;
    2)
      git worktree add --quiet --detach "$HOME_DIR" "$(root_commit)"
      say "$BRANCH does not exist on $REMOTE yet (first run): starting an empty store in $HOME_DIR"
      ;;
    *)
      die "cannot list the branches of $REMOTE (git ls-remote exit code $found)"
      ;;
  esac
}

cmd_push() {
  local label="${1:-}"
  [[ -n "$label" ]] || die "usage: store.sh push LABEL"
  load_settings
  if [[ "$BACKEND" != local ]]; then
    say "backend is $BACKEND: the store lives there, nothing to push"
    return 0
  fi
  in_git_checkout
  [[ -e "$HOME_DIR/.git" ]] || die "$HOME_DIR is not a checkout of $BRANCH; run 'store.sh pull' first"
  git -C "$HOME_DIR" add --all .
  if git -C "$HOME_DIR" diff --cached --quiet HEAD; then
    say "nothing changed in $HOME_DIR: nothing to push"
    return 0
  fi
  local stat message commit
  stat="$(git -C "$HOME_DIR" diff --cached --shortstat HEAD)"
  message="$label $(date -u +%Y-%m-%d)${GITHUB_RUN_ID:+ (${GITHUB_WORKFLOW:-workflow} run $GITHUB_RUN_ID)}"
  git -C "$HOME_DIR" -c commit.gpgsign=false commit --quiet --no-verify -m "$message"
  commit="$(git -C "$HOME_DIR" rev-parse HEAD)"
  # No --force: if another run moved the branch since our pull, the push is refused and nothing is lost.
  if ! git_remote push --quiet "$REMOTE" "$commit:refs/heads/$BRANCH"; then
    die "push of $BRANCH to $REMOTE was rejected (did another run update it since the pull?); the remote branch is untouched, re-run the workflow"
  fi
  say "pushed '$message' to $BRANCH:${stat}"
}

# The store report as JSON, then a Python expression over it (`r`) that prints what to do.
ask_status() {
  local report
  report="$("$PYTHON" -m cryptocast status --json)" || die "python -m cryptocast status --json failed"
  printf '%s' "$report" | "$PYTHON" -c "import json, sys; r = json.load(sys.stdin); $1"
}

cmd_backfill_if_empty() {
  local empty
  empty="$(ask_status '
from cryptocast.features import INGESTED_GROUPS
print(" ".join(g.name for g in INGESTED_GROUPS if not r["groups"].get(g.name, {}).get("rows")))')"
  if [[ -z "$empty" ]]; then
    say "every feature group has rows: no backfill needed"
    return 0
  fi
  say "no rows yet in: $empty; running feature_backfill.py (first run)"
  "$PYTHON" "$ROOT/feature_backfill.py"
}

cmd_model_missing() {
  local serving
  serving="$(ask_status 'print(sum(m.get("production") is not None for m in r.get("models", {}).values()))')"
  if [[ "$serving" != 0 ]]; then
    say "a production model exists: no training needed" >&2
    echo "missing=false"
  else
    say "no production model yet: the first model must be trained (first run)" >&2
    echo "missing=true"
  fi
}

case "$COMMAND" in
  pull) cmd_pull ;;
  push) shift; cmd_push "$@" ;;
  backfill-if-empty) cmd_backfill_if_empty ;;
  model-missing) cmd_model_missing ;;
  *) die "usage: store.sh pull | push LABEL | backfill-if-empty | model-missing" ;;
esac
