"""The test Galera cluster of scripts/galera.sh (three MariaDB nodes on 127.0.0.1:3311-3313 by default), for tests."""

import os
import subprocess

import mysql.connector

import db
from tests.live import ROOT

SCRIPT = ROOT / "scripts" / "galera.sh"
NODES = (1, 2, 3)
# Long enough for a node's state transfer on a busy machine; the script fails with the node's log before.
SCRIPT_TIMEOUT = 300
# The script's GALERA_PORT_BASE, read the same way: node N's SQL port is the base + N.
PORT_BASE = int(os.environ.get("GALERA_PORT_BASE") or 3310)


def port(node: int) -> int:
    """Return a node's SQL port."""
    return PORT_BASE + node


HOSTS = ",".join(f"127.0.0.1:{port(node)}" for node in NODES)


def galera(*args: str) -> str:
    """Run scripts/galera.sh with arguments; return what it printed, or raise with it."""
    result = subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/galera.sh {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def running_nodes() -> int:
    """Return how many nodes of the cluster run (a node listed as not running does not)."""
    status = galera("status").splitlines()[1:]
    return sum(1 for line in status if "not running" not in line)


def rotated(hosts: str, steps: int) -> str:
    """Return a server list (`host[:port],…`) started `steps` entries later, so API processes favour different nodes."""
    servers = hosts.split(",")
    steps %= len(servers)
    return ",".join(servers[steps:] + servers[:steps])


def starting_at(node: int) -> str:
    """Return the cluster's server list with `node` first, then the others in turn."""
    return rotated(HOSTS, node - 1)


def rows_on_node(settings: dict, node: int, statement: str, params: tuple = ()) -> list[dict]:
    """Run a query on one node only, after it has applied everything the cluster committed; return its rows."""
    cnx = db.connect(db.connection_settings({**settings, "DB_HOST": f"127.0.0.1:{port(node)}"}), sync_wait=1)
    try:
        cursor = cnx.cursor(dictionary=True)
        cursor.execute(statement, params)
        return cursor.fetchall()
    finally:
        cnx.close()


def drop_database(settings: dict) -> None:
    """Drop a settings' database on the cluster (the drop replicates to every node)."""
    cnx = mysql.connector.connect(**db.connection_settings(settings, with_database=False))
    try:
        cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{settings['DB_NAME']}`")
    finally:
        cnx.close()
