#!/usr/bin/env bash
# Health check: GET /health says whether the API runs and its database answers
# (200 {"status": "ok", "database": "up"}; 503 with Retry-After when the database is down).
# Usage: scripts/curl/health.sh            (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "Is the API up, and does its database answer?"
NO_AUTH=1 request 200 GET /health
expect "status" "$(json status)" "ok"
expect "database" "$(json database)" "up"
