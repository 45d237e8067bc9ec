#!/usr/bin/env bash
# Install Debian's Chromium (/usr/bin/chromium) for the Swagger UI browser test and the screenshots.
# Playwright drives this system browser; it never downloads a browser build of its own.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium: $CHROMIUM is missing. Install Debian's Chromium as root:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "install_chromium: $CHROMIUM is missing and apt-get is not available; install Chromium so that" >&2
  echo "  $CHROMIUM exists (the browser tests and scripts/screenshots.py need it)." >&2
  exit 1
fi
echo "install_chromium: installing Debian's chromium"
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
[ -x "$CHROMIUM" ] || { echo "install_chromium: chromium installed but $CHROMIUM is not there" >&2; exit 1; }
