#!/usr/bin/env bash
# The benchmark (`make bench`): loads 100k users, 1M payments and 10M events into its own database on
# the configured server, serves the API as `make run` does (uWSGI under uwsgi.ini), drives every
# endpoint with wrk between runs of the fixed yardstick (bare Flask under gunicorn's defaults),
# profiles with py-spy, compares the candidate servers, and writes bench/RESULTS.md. About 30 min.
#
#   bench/run.sh              the full run
#   QUICK=1 bench/run.sh      a smoke test: 5k users, 60k payments, 200k events, short runs (about 5 min);
#                             writes bench/results/RESULTS-quick.md instead
#
# Settings (environment): KEEP_DB=1 keeps the database `payments_bench` (dropped otherwise);
# RUNS, DURATION (s), CONNECTIONS, THREADS, USERS, PAYMENTS, WEB_CONCURRENCY (workers, default
# uwsgi.ini's); EVENTS (10M); PROFILE=0 skips py-spy, SERVERS=0 skips the server comparison;
# BENCH_API_PORT (8181), BENCH_CEILING_PORT (8182), BENCH_YARDSTICK_PORT (8183), BENCH_REFERENCE_PORT (8185). The database server is the one DB_HOST/DB_PORT/DB_USER/DB_PASSWORD
# (environment or .env) name, as for the app. Only the database `payments_bench` is created or dropped.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p bench/results
PIDS=bench/results/servers.pids
bench_pid=

# Whatever happens, stop the orchestrator and any server it started (their process groups).
cleanup() {
  local status=$? pid
  trap - EXIT INT TERM HUP
  if [ -n "$bench_pid" ] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  if [ -f "$PIDS" ]; then
    while read -r pid; do
      [ -n "$pid" ] || continue
      if grep -qaE "gunicorn|uwsgi|granian" "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        sleep 2
        kill -KILL -- "-$pid" 2>/dev/null || true
      fi
    done <"$PIDS"
    rm -f "$PIDS"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

scripts/bootstrap.sh dev # .venv with the pinned runtime and tool requirements (py-spy included)
scripts/ensure_db.sh     # a database server answers (the configured one, or the project's private one)

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "bench: installing wrk (apt-get)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
  else
    echo "bench: wrk is missing; install it (sudo apt-get install wrk) and run again." >&2
    exit 1
  fi
fi

# Run in the background and wait, so that a signal reaches the trap at once.
.venv/bin/python -m bench.bench &
bench_pid=$!
wait "$bench_pid"
