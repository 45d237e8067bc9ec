#!/usr/bin/env bash
# Make sure a MySQL/MariaDB server answers for the app, starting a private MariaDB if needed.
# Usage: scripts/ensure_db.sh         ensure a server answers
#        scripts/ensure_db.sh stop    stop the project's private MariaDB, if it runs
#
# Which server: DB_HOST, DB_PORT, DB_USER, DB_PASSWORD from the environment, else from .env.
# - When one of them is set, that server is used (the private instance is started if that is it).
# - Otherwise 127.0.0.1:3306 with root and no password is used if it answers.
# - Otherwise a private MariaDB is started: data in .mariadb/, port 3307 on 127.0.0.1, its own
#   socket, and DB_HOST/DB_PORT are appended to .env so the app and later runs find it.
# Nothing here creates or drops a database: `flask --app app init-db` creates the app's database.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mariadb_user.sh # server_user
PATH=$PATH:/usr/sbin:/usr/local/sbin # mariadbd lives in sbin, often not on a user's PATH

PRIVATE_DIR=$PWD/.mariadb
PRIVATE_PORT=3307
DATADIR=$PRIVATE_DIR/data
SOCKET=$PRIVATE_DIR/mysqld.sock
PIDFILE=$PRIVATE_DIR/mysqld.pid
ERRLOG=$PRIVATE_DIR/mysqld.err
ENV_MARKER="# Private MariaDB started by scripts/ensure_db.sh"

die() { echo "ensure_db: $*" >&2; exit 1; }
say() { echo "ensure_db: $*"; }

# Print the value .env gives NAME (the last assignment wins, as with python-dotenv); fail if none.
env_file_value() {
  local line value
  [ -f .env ] || return 1
  line=$(grep -E "^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=" .env | tail -n 1) || return 1
  value=${line#*=}
  value=${value#"${value%%[![:space:]]*}"}
  case $value in
    \"*) value=${value#\"}; value=${value%%\"*} ;;
    \'*) value=${value#\'}; value=${value%%\'*} ;;
    *) value=${value%%[[:space:]]#*}; value=${value%"${value##*[![:space:]]}"} ;;
  esac
  printf '%s\n' "$value"
}

is_configured() { [ -n "${!1+x}" ] || env_file_value "$1" >/dev/null; }

# Print the value of setting NAME: the environment's, else .env's, else DEFAULT.
setting() {
  if [ -n "${!1+x}" ]; then printf '%s\n' "${!1}"; else env_file_value "$1" || printf '%s\n' "$2"; fi
}

# Log in as the app would (TCP). Status 0: logged in; 1: the server answered but refused; 2: no answer.
try_login() {
  local host=$1 port=$2 user=$3 password=$4 client out
  if client=$(command -v mariadb || command -v mysql); then
    out=$(MYSQL_PWD=$password "$client" --protocol=TCP -h "$host" -P "$port" -u "$user" \
      --connect-timeout=3 -e 'SELECT 1' 2>&1 >/dev/null) && return 0
    case $out in *"ERROR 2002"* | *"ERROR 2003"* | *"ERROR 2005"* | *"ERROR 2013"*) return 2 ;; esac
    echo "$out" >&2
    return 1
  elif [ -x .venv/bin/python ]; then
    DB_CHECK_PASSWORD=$password .venv/bin/python - "$host" "$port" "$user" <<'EOF'
import os, sys
import mysql.connector
host, port, user = sys.argv[1:]
try:
    mysql.connector.connect(host=host, port=int(port), user=user,
                            password=os.environ["DB_CHECK_PASSWORD"], connection_timeout=3).close()
except mysql.connector.Error as e:
    no_answer = e.errno in (2002, 2003, 2005, 2013)
    if not no_answer:
        print(e, file=sys.stderr)
    sys.exit(2 if no_answer else 1)
EOF
  else
    die "no mariadb/mysql client and no .venv to check the database with; run scripts/bootstrap.sh first."
  fi
}

private_pid() { # print the pid of the running private instance; fail if it is not running
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_server() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && command -v mariadb-admin >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing mariadb-server and mariadb-client (apt-get)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client
    return
  fi
  die "No database server for the app: none answers where DB_* point (by default 127.0.0.1:3306," \
    "user root, no password), and MariaDB is not installed here to start a private one. Either" \
    "install it (sudo apt-get install mariadb-server; then \`make run\` starts a private MariaDB in" \
    ".mariadb/ on port $PRIVATE_PORT by itself), or point the app at a running MySQL 8 / MariaDB" \
    "10.6+ server by setting DB_HOST, DB_PORT, DB_USER and DB_PASSWORD in .env (see .env.example)."
}

# Run a command in its own session where setsid exists, so Ctrl-C on `make run` leaves the database up.
detach() { if command -v setsid >/dev/null; then setsid "$@"; else "$@"; fi; }

start_private() {
  local user pid
  install_server
  user=$(server_user)
  mkdir -p "$PRIVATE_DIR"
  if [ "$user" != "$(id -un)" ]; then chown "$user": "$PRIVATE_DIR"; fi
  if [ ! -d "$DATADIR/mysql" ]; then
    say "initialising a private MariaDB in .mariadb/"
    rm -rf "$DATADIR" # an earlier initialisation that did not finish
    mariadb-install-db --no-defaults --datadir="$DATADIR" --user="$user" \
      --auth-root-authentication-method=normal --skip-test-db >"$PRIVATE_DIR/install.log" 2>&1 ||
      { tail -n 20 "$PRIVATE_DIR/install.log" >&2; die "mariadb-install-db failed (log: .mariadb/install.log)."; }
  fi
  say "starting the private MariaDB on 127.0.0.1:$PRIVATE_PORT"
  # --no-defaults: the system's my.cnf points at /run/mysqld and port 3306, which are not ours.
  detach mariadbd --no-defaults --user="$user" --datadir="$DATADIR" --socket="$SOCKET" \
    --port="$PRIVATE_PORT" --bind-address=127.0.0.1 --pid-file="$PIDFILE" --log-error="$ERRLOG" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci </dev/null >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 60); do
    if mariadb-admin --no-defaults --socket="$SOCKET" -u root --connect-timeout=2 ping >/dev/null 2>&1; then return; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$ERRLOG" >&2 || true
      die "the private MariaDB stopped while starting (log above, in .mariadb/mysqld.err)."
    fi
    sleep 0.5
  done
  tail -n 20 "$ERRLOG" >&2 || true
  die "the private MariaDB did not answer within 30 s (log above, in .mariadb/mysqld.err)."
}

wait_private() { # the instance runs (maybe still starting up): wait until it answers
  for _ in $(seq 60); do
    mariadb-admin --no-defaults --socket="$SOCKET" -u root --connect-timeout=2 ping >/dev/null 2>&1 && return
    sleep 0.5
  done
  tail -n 20 "$ERRLOG" >&2 || true
  die "the private MariaDB (pid $(cat "$PIDFILE")) runs but does not answer (log: .mariadb/mysqld.err)."
}

ensure_private() {
  if private_pid >/dev/null; then wait_private; else start_private; fi
}

stop_private() {
  local pid
  if ! pid=$(private_pid); then say "no private MariaDB is running"; return; fi
  kill -TERM "$pid" # a clean shutdown: mariadbd flushes and exits on SIGTERM
  for _ in $(seq 120); do
    if ! kill -0 "$pid" 2>/dev/null; then say "stopped the private MariaDB"; return; fi
    sleep 0.5
  done
  die "the private MariaDB (pid $pid) did not stop within 60 s."
}

append_private_to_env() {
  [ -f .env ] || python3 scripts/make_env.py # keep the card keys' file the one make_env.py writes
  if [ -s .env ] && [ -n "$(tail -c 1 .env)" ]; then echo >>.env; fi
  cat >>.env <<EOF

$ENV_MARKER (\`make run\`, \`make test\`): data in .mariadb/,
# stop it with \`make db-stop\`. Remove these two lines to use another server.
DB_HOST=127.0.0.1
DB_PORT=$PRIVATE_PORT
EOF
  say "wrote DB_HOST=127.0.0.1 and DB_PORT=$PRIVATE_PORT to .env"
}

is_private() { # HOST PORT: is this the project's private instance?
  case $1 in 127.0.0.1 | localhost) ;; *) return 1 ;; esac
  [ "$2" = "$PRIVATE_PORT" ] && { [ -d "$DATADIR" ] || grep -qF "$ENV_MARKER" .env 2>/dev/null; }
}

check_login() { # HOST PORT USER PASSWORD: stop with a clear message unless the app can log in
  local status=0
  try_login "$@" || status=$?
  case $status in
    0) say "using the database server at $1:$2 (user $3)" ;;
    1) die "The database server at $1:$2 answers but refused user '$3' (error above). Set DB_USER" \
      "and DB_PASSWORD in .env to an account that can create the database $(setting DB_NAME payments)." ;;
    *) die "The database server named by DB_HOST/DB_PORT ($1:$2, from the environment or .env) does" \
      "not answer. Start that server, or correct DB_HOST, DB_PORT, DB_USER and DB_PASSWORD in .env;" \
      "or remove them from .env to use a server on 127.0.0.1:3306 or else a private MariaDB started" \
      "in .mariadb/." ;;
  esac
}

# HOSTS PORT USER PASSWORD: a DB_HOST list (a cluster): check the first server that answers, as the app does.
check_first_answering() {
  local entry host port status
  for entry in ${1//,/ }; do
    host=${entry%:*} port=$2
    if [[ $entry == *:* ]]; then port=${entry##*:}; fi
    status=0
    try_login "$host" "$port" "$3" "$4" 2>/dev/null || status=$?
    if [ "$status" != 2 ]; then check_login "$host" "$port" "$3" "$4"; return; fi
  done
  die "None of the database servers in DB_HOST ($1) answers. Start them (scripts/galera.sh start for" \
    "the test cluster), or correct DB_HOST in .env."
}

main() {
  local host port user password status=0
  host=$(setting DB_HOST 127.0.0.1)
  port=$(setting DB_PORT 3306)
  user=$(setting DB_USER root)
  password=$(setting DB_PASSWORD "")

  if is_configured DB_HOST || is_configured DB_PORT || is_configured DB_USER || is_configured DB_PASSWORD; then
    if [[ $host == *,* ]]; then check_first_answering "$host" "$port" "$user" "$password"; return; fi
    if is_private "$host" "$port"; then ensure_private; fi
    check_login "$host" "$port" "$user" "$password"
    return
  fi
  try_login "$host" "$port" "$user" "$password" 2>/dev/null || status=$?
  case $status in
    0) say "using the database server at $host:$port (user $user)"; return ;;
    1) say "the server on $host:$port refused root without a password; starting a private MariaDB instead" ;;
    *) say "no database server answers on $host:$port; starting a private MariaDB" ;;
  esac
  ensure_private
  append_private_to_env
  check_login 127.0.0.1 "$PRIVATE_PORT" root ""
}

case "${1:-}" in
  "") main ;;
  stop) stop_private ;;
  *) die "usage: scripts/ensure_db.sh [stop]" ;;
esac
