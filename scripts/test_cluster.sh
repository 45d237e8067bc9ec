#!/usr/bin/env bash
# The tests that talk to the database, run again on the 3-node Galera cluster of scripts/galera.sh:
# the in-process app and the tests' own SQL favour node 1, the live server node 2 (tests/conftest.py);
# then tests/test_cluster.py (an API process on each node: failover, races across nodes, a node
# killed under load; a webhook worker on each node, one node killed under them). Starts the cluster,
# and stops it and deletes its data at the end. GALERA_PORT_BASE moves its ports (scripts/galera.sh).
# Usage: scripts/test_cluster.sh [PYTEST OPTION...]   (run by `make test`; `make test-cluster` alone)
set -euo pipefail
cd "$(dirname "$0")/.."

# The modules whose tests go through the database and need no server of their own (test_outage,
# test_pool, test_db and test_startup start, stop or misconfigure one; test_openapi and test_fuzz
# generate random input and add minutes, not coverage of the cluster). The webhook modules run here
# too: their workers favour node 1 like the in-process app, and their one test that stops a database
# starts a server of its own beside the cluster (a few seconds).
MODULES=(
  tests/test_user_routes.py tests/test_payment_routes.py tests/test_idempotency.py tests/test_races.py
  tests/test_events.py tests/test_access.py tests/test_models.py tests/test_cards.py tests/test_key_rotation.py
  tests/test_errors.py tests/test_smoke.py tests/test_logs.py tests/test_postman.py tests/test_curl_scripts.py
  tests/test_webhook_delivery.py tests/test_webhook_endpoints.py tests/test_cluster.py
)

trap 'scripts/galera.sh stop --purge' EXIT
scripts/galera.sh start
# -m "": also the tests marked `cluster`, which the default selection (pyproject.toml) leaves out.
base=${GALERA_PORT_BASE:-3310}
DB_HOST=127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3)) DB_USER=root DB_PASSWORD= \
  .venv/bin/python -m pytest -m "" "$@" "${MODULES[@]}"
