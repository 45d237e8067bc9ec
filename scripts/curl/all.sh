#!/usr/bin/env bash
# Runs every curl walkthrough in this folder, in order, against BASE_URL (default http://localhost:8080).
# Usage: scripts/curl/all.sh              (BASE_URL=http://host:port to target another server)
set -euo pipefail
here=$(dirname "$0")

for script in health users payments errors access events webhooks; do
  printf '\n\n########## %s.sh ##########\n' "$script"
  bash "$here/$script.sh"
done
printf '\nAll curl walkthroughs passed.\n'
