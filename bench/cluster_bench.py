"""Throughput of the API on one MariaDB server and on the 3-node Galera cluster of scripts/galera.sh.

    scripts/galera.sh start && .venv/bin/python -m bench.cluster_bench   # then scripts/galera.sh stop --purge

Three set-ups, each given the same server workers in all (3) and the same wrk load in all (15
connections, 3 threads): "one server" (the server that DB_HOST/DB_PORT name, as for the app);
"cluster, one API process" (a process listing node 1 first, so every request goes through node 1);
"cluster, a process per node" (three one-worker processes, each listing its own node first, each
driven by its own wrk at a third of the load). Each set-up serves `POST /payments` (a durable commit
and an event) and `GET /users/<id>` in a database of its own, `payments_bench_cluster`, created with
contiguous user ids and dropped at the end. Rounds alternate the set-ups so that drift of the machine
spreads over all of them; the medians go to bench/results/cluster.md and stdout.
Settings (environment): RUNS (3), DURATION seconds per run (8), USERS (2000).
"""

import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import mysql.connector

from bench import wrk
from bench.servers import Server, production
from config import Config
from db import connection_settings, init_db
from services import api_keys
from utils.crypto_utils import generate_key
from utils.formatting import utc_now

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_NAME = "payments_bench_cluster"
CLUSTER = ["127.0.0.1:3311", "127.0.0.1:3312", "127.0.0.1:3313"]
WORKERS, CONNECTIONS, THREADS = 3, 15, 3
RUNS = int(os.environ.get("RUNS") or 3)
DURATION = int(os.environ.get("DURATION") or 8)
USERS = int(os.environ.get("USERS") or 2000)


@dataclass
class Setup:
    """One way of serving the API: its database servers and its API server processes (one server list each)."""

    name: str
    settings: dict
    server_lists: list[str]
    servers: list[Server] | None = None


def setups() -> list[Setup]:
    """Return the three set-ups compared."""
    single = {"DB_HOST": Config.DB_HOST, "DB_PORT": Config.DB_PORT}
    rotations = [",".join(CLUSTER[i:] + CLUSTER[:i]) for i in range(len(CLUSTER))]
    return [
        Setup("one server", single, [Config.DB_HOST]),
        Setup("cluster, one API process", {"DB_HOST": rotations[0], "DB_PORT": 3306}, rotations[:1]),
        Setup("cluster, a process per node", {"DB_HOST": rotations[0], "DB_PORT": 3306}, rotations),
    ]


def database_settings(setup: Setup) -> dict:
    """Return the settings of a set-up's benchmark database."""
    return {
        "DB_USER": Config.DB_USER,
        "DB_PASSWORD": Config.DB_PASSWORD,
        "DB_NAME": DB_NAME,
        "DB_CONNECT_TIMEOUT": 5,
        **setup.settings,
    }


def prepare(settings: dict, key: str) -> None:
    """Create the benchmark database (refusing one that exists), with USERS users of ids 1..USERS and an API key."""
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    cursor = cnx.cursor()
    cursor.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", (DB_NAME,))
    if cursor.fetchall():
        sys.exit(
            f"cluster_bench: the database {DB_NAME} exists on {settings['DB_HOST']}; drop it or keep it, not ours."
        )
    cnx.close()
    init_db(settings)
    cnx = mysql.connector.connect(**connection_settings(settings))
    cursor, now = cnx.cursor(), utc_now()
    rows = [(i, f"Bench {i}", f"bench-{i}@example.com", now, now) for i in range(1, USERS + 1)]
    cursor.executemany("INSERT INTO users (id, name, email, created_at, updated_at) VALUES (%s, %s, %s, %s, %s)", rows)
    api_keys.store_key(cursor, key, "cluster benchmark", api_keys.SCOPES, None, now)
    cnx.commit()
    cnx.close()


def drop(settings: dict) -> None:
    """Drop the benchmark database."""
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
    cnx.close()


def start_servers(setup: Setup, first_port: int, keys: dict, log_dir: Path) -> int:
    """Start a set-up's API server processes, sharing the workers among them; return the next free port."""
    workers = WORKERS // len(setup.server_lists)
    setup.servers = []
    for index, hosts in enumerate(setup.server_lists):
        env = {**os.environ, **keys, **{k: str(v) for k, v in database_settings(setup).items()}}
        env.update(DB_HOST=hosts, WEB_CONCURRENCY=str(workers))
        name = f"{setup.name.replace(' ', '-').replace(',', '')}-{index}"
        server = Server(name, "app:create_app()", first_port, env, log_dir, replace(production(), workers=workers))
        server.start("/health")
        setup.servers.append(server)
        first_port += 1
    return first_port


def measure(setup: Setup, load: wrk.Load, log_dir: Path) -> tuple[float, int]:
    """Drive each of a set-up's processes with its share of the load at once; return total req/s and errors."""
    share = len(setup.servers)

    def one(server: Server) -> wrk.Result:
        label = f"{setup.name} {load.path or load.script}"
        return wrk.run(label, server.base_url, load, DURATION, CONNECTIONS // share, max(1, THREADS // share), log_dir)

    with ThreadPoolExecutor(max_workers=share) as pool:
        results = list(pool.map(one, setup.servers))
    return sum(r.rps for r in results), sum(r.errors for r in results)


LOADS = {
    "POST /payments": wrk.Load(path="", script="post_payment.lua", args=(USERS,)),
    "GET /users/<id>": wrk.Load(path="", script="random_path.lua", args=("/users/", 1, USERS)),
}


def run_rounds(all_setups: list[Setup], log_dir: Path) -> dict:
    """Run RUNS rounds of every load on every set-up; return {(set-up, load): [(req/s, errors)]}."""
    figures: dict = {}
    for _ in range(RUNS):
        for name, load in LOADS.items():
            for setup in all_setups:
                figures.setdefault((setup.name, name), []).append(measure(setup, load, log_dir))
    return figures


def report(figures: dict, all_setups: list[Setup]) -> str:
    """Return the results as a Markdown table, medians of req/s with each run's errors."""
    machine = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Cluster benchmark (bench/cluster_bench.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine} cores shared by wrk, the API and every MariaDB node;"
        f" {RUNS} runs of {DURATION} s, {CONNECTIONS} connections, {WORKERS} server workers in all.",
        "",
        "| set-up | " + " | ".join(f"{name} req/s (median)" for name in LOADS) + " | errors |",
        "|---|" + "---:|" * len(LOADS) + "---:|",
    ]
    for setup in all_setups:
        cells = [f"{statistics.median(rps for rps, _ in figures[(setup.name, n)]):.0f}" for n in LOADS]
        errors = sum(e for n in LOADS for _, e in figures[(setup.name, n)])
        lines.append(f"| {setup.name} | " + " | ".join(cells) + f" | {errors} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Prepare the databases, start the servers, measure, report, clean up."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log_dir = RESULTS / "cluster-logs"
    log_dir.mkdir(exist_ok=True)
    key = api_keys.new_key()
    wrk.HEADERS["Authorization"] = f"Bearer {key}"
    keys = {name: f"1:{generate_key()}" for name in ("CARD_NUMBER_KEYS", "CARD_CVC_KEYS", "JWT_SIGNING_KEYS")}
    keys["CARD_FINGERPRINT_KEY"] = generate_key()
    all_setups = setups()
    prepared = []
    try:
        for setup in all_setups[:2]:  # the last set-up shares the cluster's database
            prepare(database_settings(setup), key)
            prepared.append(setup)
        port = 8191
        for setup in all_setups:
            port = start_servers(setup, port, keys, log_dir)
        text = report(run_rounds(all_setups, log_dir), all_setups)
    finally:
        for setup in all_setups:
            for server in setup.servers or []:
                server.stop()
        for setup in prepared:
            drop(database_settings(setup))
    (RESULTS / "cluster.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
