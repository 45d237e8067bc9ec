#!/usr/bin/env bash
# A 3-node MariaDB Galera cluster on this machine, for the cluster tests and CI (SPEC §10).
# Usage: scripts/galera.sh start            start the cluster (or check the running one); waits for 3 nodes
#        scripts/galera.sh stop [N]         stop all nodes cleanly (or only node N); keeps their data
#        scripts/galera.sh stop --purge     stop all nodes and delete .galera/ (also: scripts/galera.sh purge)
#        scripts/galera.sh kill N           SIGKILL node N (1-3), as a crash would
#        scripts/galera.sh restart N        start node N again so it rejoins the others; waits for 3 nodes
#        scripts/galera.sh status           each node's port, pid, wsrep state and cluster size
#
# Node N (1-3) listens on 127.0.0.1 only: by default SQL port 331N, Galera (gcomm) 456N, IST 457N,
# rsync SST 458N; socket .galera/nodeN/mysqld.sock, data in .galera/nodeN/data, log in
# .galera/nodeN/mysqld.err.
# root has no password, over TCP from 127.0.0.1 as over the socket, like CI's system MariaDB:
# DB_HOST=127.0.0.1 DB_PORT=3311 DB_USER=root DB_PASSWORD= points the app at node 1.
# GALERA_TIMEOUT (seconds, default 120) bounds each command's wait for the cluster.
# GALERA_PORT_BASE (default 3310) moves every port: node N's SQL port is BASE+N, gcomm BASE+1250+N,
# IST BASE+1260+N and SST BASE+1270+N (so 3311, 4561, 4571, 4581 for node 1 by default). Give every
# command, and tests/galera.py, the same value: a cluster started with one is not found with another.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mariadb_user.sh # server_user
PATH=$PATH:/usr/sbin:/usr/local/sbin # mariadbd lives in sbin, often not on a user's PATH

BASE=$PWD/.galera
NODES=(1 2 3)
TIMEOUT=${GALERA_TIMEOUT:-120}
PORT_BASE=${GALERA_PORT_BASE:-3310}
DEADLINE=$((SECONDS + TIMEOUT))

die() { echo "galera: $*" >&2; exit 1; }
say() { echo "galera: $*"; }
usage() { sed -n '3,8s/^# \{0,1\}//p' "$0"; }

node_dir() { echo "$BASE/node$1"; }
sql_port() { echo $((PORT_BASE + $1)); }
gcomm_port() { echo $((PORT_BASE + 1250 + $1)); }
ist_port() { echo $((PORT_BASE + 1260 + $1)); }
sst_port() { echo $((PORT_BASE + 1270 + $1)); }
ports() { echo "$(sql_port 1)-$(sql_port 3)"; } # the SQL ports, for messages

[[ $PORT_BASE =~ ^[0-9]+$ ]] && [ "$PORT_BASE" -ge 1024 ] && [ "$PORT_BASE" -le $((65535 - 1273)) ] ||
  die "GALERA_PORT_BASE must be a number from 1024 to $((65535 - 1273)) (the ports run up to BASE+1273), not '$PORT_BASE'."

provider() { # the Galera 4 library: Debian's path first (a symlink to /usr/lib/libgalera_smm.so there)
  local path
  for path in /usr/lib/galera/libgalera_smm.so /usr/lib/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so; do
    if [ -e "$path" ]; then echo "$path"; return; fi
  done
  return 1
}

install_packages() {
  local missing=() program
  for program in mariadbd mariadb-install-db mariadb wsrep_sst_rsync rsync; do
    command -v "$program" >/dev/null || missing+=("$program")
  done
  provider >/dev/null || missing+=(libgalera_smm.so)
  [ ${#missing[@]} = 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing mariadb-server, mariadb-client, galera-4 and rsync (apt-get)"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q mariadb-server mariadb-client galera-4 rsync
    return
  fi
  die "The test Galera cluster needs MariaDB's server and client programs, the Galera 4 provider" \
    "and rsync (for state transfers), and some are missing here (${missing[*]}). Install them" \
    "(Debian/Ubuntu: sudo apt-get install mariadb-server mariadb-client galera-4 rsync), or run" \
    "this script as root, which installs them with apt-get, then run scripts/galera.sh start again." \
    "The cluster runs beside any other MariaDB: it uses only 127.0.0.1 ports $(ports)," \
    "$(gcomm_port 1)-$(gcomm_port 3), $(ist_port 1)-$(ist_port 3) and $(sst_port 1)-$(sst_port 3) (GALERA_PORT_BASE moves them)."
}


# The other nodes' gcomm addresses: a node (re)joins through whichever of them runs. Node 1 lists
# only 2 and 3, so restarting it joins them instead of bootstrapping a second cluster.
peers() {
  local n list=""
  for n in "${NODES[@]}"; do
    [ "$n" = "$1" ] || list+="${list:+,}127.0.0.1:$(gcomm_port "$n")"
  done
  echo "$list"
}

# One option file per node, rewritten on every start, so the SST script (which reads the file
# mariadbd was given) and the server see the same settings and never the system's /etc/mysql.
write_config() {
  local n=$1 dir
  dir=$(node_dir "$n")
  cat >"$dir/my.cnf" <<EOF
# Written by scripts/galera.sh on every start of node $n: change the script, not this file.
[mysqld]
datadir=$dir/data
socket=$dir/mysqld.sock
port=$(sql_port "$n")
bind-address=127.0.0.1
pid-file=$dir/mysqld.pid
log-error=$dir/mysqld.err
skip-name-resolve
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
# Small and quick, for tests.
innodb-buffer-pool-size=64M
innodb-log-file-size=16M
innodb-buffer-pool-dump-at-shutdown=OFF
innodb-buffer-pool-load-at-startup=OFF
loose-performance-schema=OFF
# What Galera requires.
default-storage-engine=InnoDB
binlog-format=ROW
innodb-autoinc-lock-mode=2
wsrep-on=ON
wsrep-provider=$(provider)
wsrep-cluster-name=payments-test
wsrep-cluster-address=gcomm://$(peers "$n")
wsrep-node-name=node$n
wsrep-node-address=127.0.0.1:$(gcomm_port "$n")
wsrep-node-incoming-address=127.0.0.1:$(sql_port "$n")
wsrep-sst-method=rsync
wsrep-sst-receive-address=127.0.0.1:$(sst_port "$n")
# Explicit IST port: the default (gcomm port + 1) is the next node's gcomm port.
wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$(gcomm_port "$n");ist.recv_addr=127.0.0.1:$(ist_port "$n");gcache.size=64M"
EOF
}

# Print the pid of node N's mariadbd if it runs. The pid file may be stale after a SIGKILL (and
# the pid reused), so the process must also be the mariadbd started with this node's option file.
node_pid() {
  local dir file pid
  dir=$(node_dir "$1")
  for file in "$dir/mysqld.pid" "$dir/launched.pid"; do # mariadbd writes the first only after an SST
    pid=$(cat "$file" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "--defaults-file=$dir/my.cnf "; then
      echo "$pid"
      return
    fi
  done
  return 1
}

sql() { # N STATEMENT: run it as root over node N's socket
  mariadb --no-defaults --socket="$(node_dir "$1")/mysqld.sock" -u root --connect-timeout=2 -N -B -e "$2"
}

# Print "state|cluster size|ready" for node N; fail if it does not answer.
wsrep_status() {
  sql "$1" "SHOW GLOBAL STATUS WHERE Variable_name IN
    ('wsrep_local_state_comment', 'wsrep_cluster_size', 'wsrep_ready')" 2>/dev/null |
    awk -F'\t' '{ v[tolower($1)] = $2 }
      END { printf "%s|%s|%s\n", v["wsrep_local_state_comment"], v["wsrep_cluster_size"], v["wsrep_ready"] }'
}

log_tail() { # N: the end of node N's error log, on stderr
  local log
  log=$(node_dir "$1")/mysqld.err
  echo "--- last lines of ${log#"$PWD/"} ---" >&2
  tail -n 25 "$log" >&2 2>/dev/null || echo "(no error log)" >&2
}

fail_node() { log_tail "$1"; die "node $1: $2"; }

# Wait until every node in the list runs, answers, has wsrep_ready=ON and sees at least SIZE
# nodes in its cluster. A node that exits, or the deadline, ends the wait with its log.
wait_ready() {
  local size=$1 n status state cluster_size ready pending
  shift
  while :; do
    pending=""
    for n in "$@"; do
      node_pid "$n" >/dev/null || fail_node "$n" "mariadbd is not running (it exited; the end of its log is above)."
      if status=$(wsrep_status "$n"); then
        IFS='|' read -r state cluster_size ready <<<"$status"
        if [ "$ready" = ON ] && [ "${cluster_size:-0}" -ge "$size" ]; then continue; fi
      else
        state="not answering yet" cluster_size='?' ready='?'
      fi
      pending=$n
      break
    done
    [ -z "$pending" ] && return
    if [ "$SECONDS" -ge "$DEADLINE" ]; then
      fail_node "$pending" "not ready after ${TIMEOUT} s (state: $state, cluster size: $cluster_size," \
        "wsrep_ready: $ready; want ready ON in a cluster of $size); its log is above. GALERA_TIMEOUT sets the limit."
    fi
    sleep 0.2
  done
}

launch() { # N [OPTION...]: start node N's mariadbd in the background
  local n=$1 dir user session=()
  shift
  dir=$(node_dir "$n")
  user=$(server_user)
  mkdir -p "$dir/data"
  write_config "$n"
  touch "$dir/mysqld.err" # mariadbd opens its log as $user: it must own the file that catches its stderr too
  if [ "$user" != "$(id -un)" ]; then chown "$user": "$dir" "$dir/data" "$dir/mysqld.err"; fi
  # In its own session where setsid exists, so Ctrl-C on the caller leaves the node up; exec, so
  # that $! is mariadbd's pid (its own pid file appears only once a joiner has its data).
  if command -v setsid >/dev/null; then session=(setsid); fi
  # --defaults-file must come first; it keeps the system's my.cnf (port 3306, /run/mysqld) out.
  (exec "${session[@]}" mariadbd --defaults-file="$dir/my.cnf" --user="$user" "$@") \
    </dev/null >>"$dir/mysqld.err" 2>&1 &
  echo $! >"$dir/launched.pid"
  rm -f "$dir/recovered.position" # from now on the node's own files say where it is
  disown $! # its exit is reported from its log, not by bash's "Aborted" notice
}

initialise() { # N: create the system tables in node N's fresh datadir
  local n=$1 dir user
  dir=$(node_dir "$n")
  user=$(server_user)
  rm -rf "$dir/data" # an earlier initialisation that did not finish
  mkdir -p "$dir"
  if [ "$user" != "$(id -un)" ]; then chown "$user": "$dir"; fi
  # --skip-name-resolve: without /etc/hosts (some containers), resolveip stops the install.
  mariadb-install-db --no-defaults --datadir="$dir/data" --user="$user" --skip-name-resolve \
    --auth-root-authentication-method=normal --skip-test-db \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M >"$dir/install.log" 2>&1 ||
    { tail -n 20 "$dir/install.log" >&2; die "mariadb-install-db failed for node $n (log: ${dir#"$PWD/"}/install.log)."; }
}

grastate_seqno() { # N: the seqno Galera saved for node N (-1 after a crash); fail if none
  local seqno
  seqno=$(sed -n 's/^seqno:[[:space:]]*//p' "$(node_dir "$1")/data/grastate.dat" 2>/dev/null)
  [ -n "$seqno" ] && echo "$seqno"
}

# Print node N's last committed position (uuid:seqno) as InnoDB recorded it: after a crash
# grastate.dat says -1, and without the position the node would need a full SST instead of IST.
# Kept in recovered.position until the node starts: choosing the bootstrap node needs it too.
recover_position() {
  local n=$1 dir user position
  dir=$(node_dir "$n")
  if position=$(cat "$dir/recovered.position" 2>/dev/null) && [ -n "$position" ]; then echo "$position"; return; fi
  user=$(server_user)
  write_config "$n"
  rm -f "$dir/recover.log"
  mariadbd --defaults-file="$dir/my.cnf" --user="$user" --wsrep-recover --log-error="$dir/recover.log" \
    </dev/null >/dev/null 2>&1 || true
  position=$(sed -n 's/.*WSREP: Recovered position: *\([^ ]*\).*/\1/p' "$dir/recover.log" 2>/dev/null | tail -n 1)
  [ -n "$position" ] || return 1
  echo "$position" >"$dir/recovered.position"
  echo "$position"
}

# Start node N as a joiner of the running nodes (IST when its position is known, else SST).
join() {
  local n=$1 position args=()
  if [ "$(grastate_seqno "$n" || echo none)" = -1 ] && position=$(recover_position "$n"); then
    say "node $n stopped uncleanly; its recovered position is $position"
    args+=(--wsrep-start-position="$position")
  fi
  say "starting node $n on 127.0.0.1:$(sql_port "$n") to join the cluster"
  launch "$n" "${args[@]}"
}

# Start a new cluster from node N: the one whose data is newest, so nothing committed is lost.
bootstrap() {
  local n=$1 state position args=(--wsrep-new-cluster)
  state=$(node_dir "$n")/data/grastate.dat
  if [ "$(grastate_seqno "$n" || echo none)" = -1 ] && position=$(recover_position "$n"); then
    say "node $n stopped uncleanly; its recovered position is $position"
    args+=(--wsrep-start-position="$position")
  fi
  # Galera refuses --wsrep-new-cluster unless the node was the last one to leave; we chose it, so say so.
  if [ -f "$state" ]; then sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' "$state"; fi
  say "bootstrapping a new cluster from node $n on 127.0.0.1:$(sql_port "$n")"
  launch "$n" "${args[@]}"
}

# Print the node to bootstrap from: the highest seqno among nodes with data (recovered from InnoDB
# after a crash), the lowest-numbered on a tie; node 1, initialised now, when none has data.
bootstrap_node() {
  local n seqno best="" best_seqno=-2 position
  for n in "${NODES[@]}"; do
    [ -d "$(node_dir "$n")/data/mysql" ] || continue
    seqno=$(grastate_seqno "$n" || echo -1)
    if [ "$seqno" = -1 ] && position=$(recover_position "$n"); then seqno=${position##*:}; fi
    if [ "$seqno" -gt "$best_seqno" ]; then best=$n best_seqno=$seqno; fi
  done
  if [ -z "$best" ]; then
    say "initialising node 1 in .galera/node1 (nodes 2 and 3 get their data from it by SST)" >&2
    initialise 1
    best=1
  fi
  echo "$best"
}

running_nodes() { local n; for n in "${NODES[@]}"; do if node_pid "$n" >/dev/null; then echo "$n"; fi; done; }

# Wait until one of the running nodes given is in a primary component that no longer counts a
# killed node. A joiner that comes while the others still count the dead node (until they suspect
# it, evs.suspect_timeout = 5 s) merges only after another round of timeouts, about 10 s later.
wait_joinable() {
  local n status size ready primary said="" limit=$((SECONDS + 30))
  while :; do
    primary=""
    for n in "$@"; do
      status=$(wsrep_status "$n") || continue
      IFS='|' read -r _ size ready <<<"$status"
      if [ "$ready" = ON ]; then
        primary=$n
        if [ "${size:-0}" -le $# ]; then return; fi
      fi
    done
    if [ "$SECONDS" -ge "$limit" ] || [ "$SECONDS" -ge "$DEADLINE" ]; then
      [ -n "$primary" ] && return # it still counts someone; the joiner gets in eventually
      die "node(s) $* run but none is in a primary component (too many nodes were killed at once)," \
        "so no node can join them. Run scripts/galera.sh stop, then scripts/galera.sh start."
    fi
    if [ -z "$said" ] && [ -n "$primary" ]; then
      say "waiting for node(s) $* to notice that a killed node is gone"
      said=1
    fi
    sleep 0.2
  done
}

check_tcp_login() { # the way the app and the tests connect
  local n
  for n in "${NODES[@]}"; do
    mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$(sql_port "$n")" -u root --connect-timeout=3 \
      -e 'SELECT 1' >/dev/null || die "node $n answers on its socket but root cannot log in over TCP on 127.0.0.1:$(sql_port "$n")."
  done
}

cmd_start() {
  local n first running=() stopped=()
  install_packages
  mkdir -p "$BASE"
  for n in "${NODES[@]}"; do
    if node_pid "$n" >/dev/null; then running+=("$n"); else stopped+=("$n"); fi
  done
  if [ ${#stopped[@]} = 0 ]; then
    say "all three nodes are already running; checking them"
  elif [ ${#running[@]} -gt 0 ]; then
    say "node(s) ${running[*]} already run; starting node(s) ${stopped[*]} to join them"
    wait_joinable "${running[@]}"
    for n in "${stopped[@]}"; do join "$n"; done
  else
    first=$(bootstrap_node)
    bootstrap "$first"
    wait_ready 1 "$first"
    # Both join at once: Galera makes the second wait (or use the first as donor) while an SST runs.
    for n in "${NODES[@]}"; do if [ "$n" != "$first" ]; then join "$n"; fi; done
  fi
  wait_ready 3 "${NODES[@]}"
  check_tcp_login
  say "the cluster is up: 3 nodes on 127.0.0.1 ports $(ports) (root, no password)"
  cmd_status
}

stop_node() {
  local n=$1 pid
  pid=$(node_pid "$n") || { say "node $n is not running"; return 0; }
  kill -TERM "$pid" # a clean shutdown: the node leaves the cluster and saves its seqno in grastate.dat
  while node_pid "$n" >/dev/null; do # not kill -0: an exited node stays a zombie where nothing reaps it
    if [ "$SECONDS" -ge "$DEADLINE" ]; then fail_node "$n" "mariadbd (pid $pid) did not stop within ${TIMEOUT} s."; fi
    sleep 0.2
  done
  rm -f "$(node_dir "$n")/launched.pid"
  say "stopped node $n"
}

cmd_stop() {
  local n
  if [ -z "$(running_nodes)" ]; then say "no node of the Galera cluster is running"; return; fi
  # One at a time, node 1 last: the last node to leave is the one Galera marks safe to bootstrap.
  for n in 3 2 1; do stop_node "$n"; done
}

cmd_purge() {
  cmd_stop
  rm -rf "$BASE"
  say "deleted .galera/"
}

cmd_kill() {
  local n=$1 pid
  pid=$(node_pid "$n") || die "node $n is not running."
  kill -KILL "$pid"
  while node_pid "$n" >/dev/null; do sleep 0.1; done
  say "killed node $n (pid $pid); scripts/galera.sh restart $n brings it back"
}

cmd_restart() {
  local n=$1 m others=()
  install_packages
  if node_pid "$n" >/dev/null; then
    say "node $n is already running; waiting for a cluster of 3"
  else
    for m in $(running_nodes); do others+=("$m"); done
    [ ${#others[@]} -gt 0 ] ||
      die "no other node runs for node $n to join; scripts/galera.sh start starts the whole cluster."
    wait_joinable "${others[@]}"
    join "$n"
  fi
  wait_ready 3 "${NODES[@]}"
  say "node $n is back; the cluster has 3 nodes"
}

cmd_status() {
  local n pid status state cluster_size ready
  printf '%-5s %-6s %-8s %-16s %-13s %s\n' node port pid state cluster_size wsrep_ready
  for n in "${NODES[@]}"; do
    if ! pid=$(node_pid "$n"); then
      printf '%-5s %-6s %-8s %s\n' "$n" "$(sql_port "$n")" - "not running"
    elif status=$(wsrep_status "$n"); then
      IFS='|' read -r state cluster_size ready <<<"$status"
      printf '%-5s %-6s %-8s %-16s %-13s %s\n' "$n" "$(sql_port "$n")" "$pid" "$state" "$cluster_size" "$ready"
    else
      printf '%-5s %-6s %-8s %s\n' "$n" "$(sql_port "$n")" "$pid" "starting (not answering yet)"
    fi
  done
}

node_arg() { # check the N of kill, restart and stop
  case ${1:-} in
    1 | 2 | 3) ;;
    *) die "give a node number, 1, 2 or 3 (scripts/galera.sh --help)." ;;
  esac
}

case "${1:-}" in
  start) cmd_start ;;
  stop)
    case ${2:-} in
      "") cmd_stop ;;
      --purge) cmd_purge ;;
      *) node_arg "$2"; stop_node "$2" ;;
    esac
    ;;
  purge) cmd_purge ;;
  kill) node_arg "${2:-}"; cmd_kill "$2" ;;
  restart) node_arg "${2:-}"; cmd_restart "$2" ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
