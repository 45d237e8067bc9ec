# Sourced by scripts/ensure_db.sh and scripts/galera.sh, from the checkout's root.

# The user mariadbd runs as: yourself, or mysql when run as root (mariadbd refuses root),
# unless mysql cannot reach the checkout (e.g. it lies under /root).
server_user() {
  if [ "$(id -u)" != 0 ]; then id -un
  elif id mysql >/dev/null 2>&1 && runuser -u mysql -- test -x "$PWD" 2>/dev/null; then echo mysql
  else echo root
  fi
}
