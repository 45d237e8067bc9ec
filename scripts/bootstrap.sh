#!/usr/bin/env bash
# Create .venv, install the pinned requirements when they changed, and create .env if missing.
# Usage: scripts/bootstrap.sh        runtime requirements (requirements.txt)
#        scripts/bootstrap.sh dev    runtime + test/lint tools (requirements-dev.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

die() { echo "bootstrap: $*" >&2; exit 1; }

case "${1:-}" in
  "") files=(requirements.txt) ;;
  dev) files=(requirements.txt requirements-dev.txt) ;;
  *) die "usage: scripts/bootstrap.sh [dev]" ;;
esac
req=${files[-1]}

if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found. Install Python 3.11 or newer (sudo apt-get install python3 python3-venv)."
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$PYTHON" -V 2>&1) is too old; Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11 to pick one)."
  # Debian and Ubuntu ship venv without ensurepip; without it `python3 -m venv` leaves a venv with no pip.
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "$(command -v "$PYTHON")" = /usr/bin/python3 ]; then
      echo "bootstrap: installing python3-venv"
      apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    else
      die "Python's venv module is missing. Install it with: sudo apt-get install python3-venv"
    fi
  fi
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV" || { rm -rf "$VENV"; die "could not create $VENV (see the error above)."; }
fi

# One stamp per requirements file: a hash of every file it pulls in, so an edit triggers a reinstall.
stamp() { cat "${@}" | "$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'; }
hash=$(stamp "${files[@]}")
if [ "$(cat "$VENV/.stamp-$req" 2>/dev/null)" != "$hash" ]; then
  echo "bootstrap: installing $req into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
  echo "$hash" >"$VENV/.stamp-$req"
  # requirements-dev.txt includes requirements.txt, so that one is installed too.
  if [ "$req" != requirements.txt ]; then stamp requirements.txt >"$VENV/.stamp-requirements.txt"; fi
fi

"$VENV/bin/python" scripts/make_env.py
