#!/usr/bin/env bash
# Create the virtualenv DIR with a Python that cryptocast supports, for `make`.
#
#   tools/venv.sh DIR
#
# PYTHON names the interpreter to use; otherwise the first suitable one of python3, python3.13,
# python3.12 and python3.11 on PATH; otherwise, when uv is installed, uv provides one. Suitable means a
# supported version (SUPPORTED, the versions every pinned wheel is published for; see pyproject.toml)
# with the venv module (Debian and Ubuntu ship it apart, as python3.X-venv). When none is found it
# says what it found and what to install, and exits 1.
set -euo pipefail

SUPPORTED="3.11 3.12 3.13"
CANDIDATES="python3 python3.13 python3.12 python3.11"
venv="${1:-}"
say() { printf 'venv.sh: %s\n' "$*"; }
die() { printf 'error: make: %s\n' "$*" >&2; exit 1; }
[[ -n "$venv" ]] || die "usage: tools/venv.sh DIR"

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
supported() { [[ " $SUPPORTED " == *" $1 "* ]]; }
has_venv() { "$1" -c 'import ensurepip, venv' >/dev/null 2>&1; }

create() {
  say "creating $venv with $1 (Python $2)"
  "$1" -m venv "$venv"
}

if [[ -n "${PYTHON:-}" ]]; then
  version="$(version_of "$PYTHON")" || die "PYTHON=$PYTHON does not run"
  supported "$version" || die "PYTHON=$PYTHON is Python $version; cryptocast supports ${SUPPORTED// /, }"
  has_venv "$PYTHON" || die "PYTHON=$PYTHON (Python $version) has no venv module: install python$version-venv"
  create "$PYTHON" "$version"
  exit 0
fi

found=()
for candidate in $CANDIDATES; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  version="$(version_of "$candidate")" || continue
  if supported "$version" && has_venv "$candidate"; then
    create "$(command -v "$candidate")" "$version"
    exit 0
  fi
  supported "$version" && found+=("$candidate is Python $version without the venv module (install python$version-venv)") \
    || found+=("$candidate is Python $version")
done

if command -v uv >/dev/null 2>&1; then
  say "no suitable python3 on PATH; uv provides Python 3.11-3.13 for $venv"
  uv venv --quiet --seed --clear --python ">=3.11,<3.14" "$venv" || die "uv could not provide Python 3.11-3.13"
  exit 0
fi

what="no python3 on PATH"
if ((${#found[@]})); then what="$(IFS=';'; echo "found: ${found[*]}")"; what="${what//;/; }"; fi
die "cryptocast needs Python ${SUPPORTED// /, } with venv; $what.
  Install one, then run make again: Debian/Ubuntu: sudo apt-get install python3.12 python3.12-venv;
  macOS: brew install python@3.13; or install uv (https://docs.astral.sh/uv/) and make uses it to get one.
  Or name one: make PYTHON=/path/to/python3.12"
