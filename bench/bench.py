"""The benchmark: load data, serve the API under gunicorn.conf.py, drive it with wrk, report.

Run it through bench/run.sh (`make bench`). Settings come from the environment, see run.sh.
"""

import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import mysql.connector

from bench import (
    events_growth,
    explain,
    load_data,
    profile,
    report,
    roundtrips,
    server_compare,
    servers,
    webhook_lag,
    wrk,
)
from config import Config
from db import connection_settings, init_db
from services import api_keys
from utils.crypto_utils import generate_key
from utils.formatting import utc_now

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DB_NAME_PREFIX = "payments_bench"
MARKER_TABLE = "bench_marker"


def _env_int(name: str, default: int) -> int:
    """Read an integer setting from the environment."""
    return int(os.environ.get(name) or default)


@dataclass
class Plan:
    """The sizes and durations of one benchmark run."""

    quick: bool
    users: int
    payments: int
    small: int
    pending: int
    runs: int
    duration: int
    latency_duration: int
    latency_runs: int
    connections: int
    threads: int
    workers: int
    profile_seconds: int
    server_rounds: int
    server_duration: int
    keep_db: bool
    api_port: int
    ceiling_port: int
    db_name: str
    reference_port: int = 8185
    yardstick_port: int = 8183
    events: int = 10_000_000
    small_events: int = 10_000
    webhook_seconds: int = 10

    @classmethod
    def from_env(cls, quick: bool | None = None) -> "Plan":
        """Build the plan from the environment: QUICK=1 for a smoke test, each figure overridable."""
        quick = os.environ.get("QUICK") == "1" if quick is None else quick
        return cls(
            quick=quick,
            users=_env_int("USERS", 5_000 if quick else 100_000),
            payments=_env_int("PAYMENTS", 60_000 if quick else 1_000_000),
            small=_env_int("SMALL_PAYMENTS", 10_000),
            pending=_env_int("PENDING", 25_000 if quick else 300_000),
            runs=_env_int("RUNS", 2 if quick else 5),
            duration=_env_int("DURATION", 3 if quick else 10),
            latency_duration=_env_int("LATENCY_DURATION", 2 if quick else 4),
            latency_runs=_env_int("LATENCY_RUNS", 2 if quick else 3),
            connections=_env_int("CONNECTIONS", 16),
            threads=_env_int("THREADS", 2),
            workers=servers.production().workers,
            profile_seconds=_env_int("PROFILE_SECONDS", 0 if os.environ.get("PROFILE") == "0" else 3 if quick else 8),
            server_rounds=_env_int("SERVER_ROUNDS", 0 if os.environ.get("SERVERS") == "0" else 1 if quick else 2),
            server_duration=_env_int("SERVER_DURATION", 3 if quick else 5),
            keep_db=os.environ.get("KEEP_DB") == "1",
            api_port=_env_int("BENCH_API_PORT", 8181),
            ceiling_port=_env_int("BENCH_CEILING_PORT", 8182),
            reference_port=_env_int("BENCH_REFERENCE_PORT", 8185),
            yardstick_port=_env_int("BENCH_YARDSTICK_PORT", 8183),
            db_name=os.environ.get("BENCH_DB_NAME") or DB_NAME_PREFIX,
            webhook_seconds=_env_int("WEBHOOK_SECONDS", 5 if quick else 15),
            events=_env_int("EVENTS", 200_000 if quick else 10_000_000),
            small_events=_env_int("SMALL_EVENTS", 10_000),
        )

    @property
    def pending_low(self) -> int:
        """Return the first id of the block of pending payments the PUT runs complete."""
        return self.payments // 2

    @property
    def pending_high(self) -> int:
        """Return the last id of that block."""
        return self.pending_low + self.pending - 1

    @property
    def deep_after(self) -> int:
        """Return the `after=` of the deep page: 150 rows before the end of the loaded data."""
        return self.payments - 150

    def check(self) -> None:
        """Refuse sizes that would make the run meaningless or touch another database."""
        if not self.db_name.startswith(DB_NAME_PREFIX) or not self.db_name.replace("_", "").isalnum():
            raise SystemExit(f"BENCH_DB_NAME must start with {DB_NAME_PREFIX} (letters, digits, underscores).")
        if not (150 < self.small < self.pending_low and self.pending_high < self.payments):
            raise SystemExit("Need 150 < SMALL_PAYMENTS < PAYMENTS/2 and PENDING < PAYMENTS/2.")


REFERENCE = "reference"
CEILING = "ceiling"
# The lag phase's receiver listens on loopback, over plain HTTP.
LOOPBACK_WEBHOOKS = {"WEBHOOK_ALLOW_HTTP": True, "WEBHOOK_ALLOWED_HOSTS": frozenset({"127.0.0.1"})}


def endpoint_loads(plan: Plan) -> dict[str, tuple[str, wrk.Load | None]]:
    """Return the endpoints measured, in the order of a round: key -> (label, wrk load); PUT's load is made per run.

    Each of the reference app's rows runs right after the API's row it stands beside.
    """
    point_read = wrk.Load("/", "random_path.lua", ("/payments/", 1, plan.payments))
    post = wrk.Load("/", "post_payment.lua", (plan.users,))
    return {
        "get_user": ("GET /users/<id>", wrk.Load("/", "random_path.lua", ("/users/", 1, plan.users))),
        "get_payment": ("GET /payments/<id>", point_read),
        REFERENCE: ("reference: minimal Flask + pooled point select (`bench/reference_app.py`)", point_read),
        "list_first": ("GET /payments?limit=100 (first page)", wrk.Load("/payments?limit=100")),
        "reference_list": ("reference: the page's SELECT", wrk.Load("/payments?limit=100")),
        "list_deep": (
            f"GET /payments?limit=100&after={plan.deep_after:,} (deep page)",
            wrk.Load(f"/payments?limit=100&after={plan.deep_after}"),
        ),
        "list_user": (
            "GET /payments?user_id=<id>",
            wrk.Load("/", "random_path.lua", ("/payments?limit=100&user_id=", 1, plan.users)),
        ),
        "post": ("POST /payments", post),
        "reference_post": ("reference: two AES-GCM encryptions, payment and event INSERT, COMMIT", post),
        "put": ("PUT /payments/<id> pending→completed", None),
        "reference_put": ("reference: conditional UPDATE, SELECT, event INSERT, COMMIT", None),
    }


def is_reference(key: str) -> bool:
    """Say whether an endpoint key is one of the reference app's rows."""
    return key.startswith(REFERENCE)


PUTS = ("put", "reference_put")


class Benchmark:
    """One run: its database, its servers, its figures."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.started = datetime.now(UTC)
        self.dir = RESULTS / self.started.strftime("%Y%m%d-%H%M%S")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.keys = {
            "CARD_NUMBER_KEYS": "1:" + generate_key(),
            "CARD_CVC_KEYS": "1:" + generate_key(),
            "CARD_FINGERPRINT_KEY": generate_key(),
            "JWT_SIGNING_KEYS": "1:" + generate_key(),
            "WEBHOOK_SECRET_KEYS": "1:" + generate_key(),
        }
        base = {name: getattr(Config, name) for name in dir(Config) if name.isupper()}
        self.settings = {**base, **self.keys, "DB_NAME": plan.db_name, **LOOPBACK_WEBHOOKS}
        self.servers: list[servers.Server] = []
        self.reference: servers.Server | None = None
        self.db_created = False
        self.auth: dict[str, str] = {}
        self.put_next = plan.pending_low
        self.put_overflow = 0
        self.figures: dict = {"plan": asdict(plan), "timings": {}}

    # --- database -------------------------------------------------------------------------

    def _admin(self):
        """Open a connection to the server without selecting a database."""
        return mysql.connector.connect(**connection_settings(self.settings, with_database=False))

    def create_database(self) -> None:
        """Create the benchmark database; replace it only if an earlier run of this script made it."""
        cnx = self._admin()
        try:
            cursor = cnx.cursor()
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s", (self.plan.db_name,)
            )
            if cursor.fetchone()[0]:
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                    (self.plan.db_name, MARKER_TABLE),
                )
                if not cursor.fetchone()[0]:
                    raise SystemExit(
                        f"Database {self.plan.db_name} exists and was not made by the benchmark; not touching it."
                    )
                cursor.execute(f"DROP DATABASE `{self.plan.db_name}`")
            init_db(self.settings)
            self.db_created = True
            self.make_api_key()
            cursor.execute(f"CREATE TABLE `{self.plan.db_name}`.{MARKER_TABLE} (created_at DATETIME NOT NULL)")
            cursor.execute(f"INSERT INTO `{self.plan.db_name}`.{MARKER_TABLE} VALUES (UTC_TIMESTAMP())")
        finally:
            cnx.close()

    def make_api_key(self) -> None:
        """Make the API key every request of the run carries, with every scope."""
        cnx = mysql.connector.connect(**connection_settings(self.settings))
        try:
            key = api_keys.create_key(cnx.cursor(), "benchmark", api_keys.SCOPES, None, utc_now())
        finally:
            cnx.close()
        self.auth = {"Authorization": f"Bearer {key}"}
        wrk.HEADERS.update(self.auth)

    def drop_database(self) -> None:
        """Drop the benchmark database (it holds only generated data), unless KEEP_DB=1."""
        if not self.db_created:
            return
        if self.plan.keep_db:
            print(f"bench: kept database {self.plan.db_name} (KEEP_DB=1)", flush=True)
            return
        cnx = self._admin()
        try:
            cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{self.plan.db_name}`")
            print(f"bench: dropped database {self.plan.db_name}", flush=True)
        finally:
            cnx.close()

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Run one statement on the benchmark database and return its rows."""
        cnx = mysql.connector.connect(**connection_settings(self.settings))
        try:
            cursor = cnx.cursor()
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.with_rows else []
        finally:
            cnx.close()

    def load(self, low: int, high: int) -> None:
        """Insert payments low..high with the card pool made earlier."""
        processes = os.cpu_count() or 2
        plan = load_data.payment_plan(
            self.plan.users, self.plan.payments, self.plan.pending_low, self.plan.pending_high
        )
        seconds = load_data.timed(
            f"inserted payments {low:,}..{high:,}",
            load_data.insert_payments,
            self.settings,
            self.cards,
            low,
            high,
            plan,
            processes,
        )
        self.figures["timings"][f"payments {low}-{high}"] = seconds

    def load_base(self) -> None:
        """Encrypt the card pool, insert the users and the first `small` payments."""
        processes = os.cpu_count() or 2
        started = time.perf_counter()
        self.cards = load_data.make_cards(self.plan.users, self.settings, processes)
        seconds = time.perf_counter() - started
        print(f"bench: encrypted {len(self.cards):,} distinct cards in {seconds:.1f} s", flush=True)
        self.figures["timings"]["cards"] = seconds
        start = load_data.payment_plan(self.plan.users, self.plan.payments, 0, 0)["start"]
        self.figures["timings"]["users"] = load_data.timed(
            f"inserted {self.plan.users:,} users", load_data.insert_users, self.settings, self.plan.users, start
        )
        self.load(1, self.plan.small)
        load_data.analyze(self.settings)

    # --- servers --------------------------------------------------------------------------

    def server_env(self) -> dict:
        """Return the environment a server gets: the configured database server, our database and keys."""
        env = {**os.environ, **self.keys, "DB_NAME": self.plan.db_name}
        env |= {"WEBHOOK_ALLOW_HTTP": "true", "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"}
        for name in ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD"):
            env[name] = str(self.settings[name])
        return env

    def start(self, name: str, app: str, port: int, ready: str, flavour: servers.Flavour) -> servers.Server:
        """Start a server and remember it for the cleanup."""
        server = servers.Server(name, app, port, self.server_env(), self.dir, flavour)
        self.servers.append(server)
        server.start(ready)
        return server

    def stop(self, server: servers.Server) -> None:
        """Stop a server."""
        server.stop()
        self.servers.remove(server)

    def cleanup(self) -> None:
        """Stop every server, then drop the database."""
        for server in list(self.servers):
            server.stop()
        self.servers.clear()
        self.drop_database()

    # --- loads ----------------------------------------------------------------------------

    def loads(self) -> dict[str, tuple[str, wrk.Load]]:
        """Return the endpoints measured: key -> (label, wrk load)."""
        return endpoint_loads(self.plan)

    def run_load(self, key: str, server: servers.Server, duration: int, connections: int | None = None):
        """Run wrk once against an endpoint (PUT takes the next unused pending ids)."""
        plan = self.plan
        load = self.loads()[key][1]
        if key in PUTS:
            load = wrk.Load("/", "put_status.lua", (self.put_next, plan.pending_high, plan.threads))
        threads = plan.threads if connections is None or connections >= plan.threads else 1
        result = wrk.run(key, server.base_url, load, duration, connections or plan.connections, threads, self.dir)
        if key in PUTS:
            self.took_pending_ids(result)
        return result

    def took_pending_ids(self, result: wrk.Result) -> None:
        """Move past the pending ids a PUT run used; count its requests past the block (repeats of its last id)."""
        self.put_next = min(result.extra["put_next"], self.plan.pending_high + 1)
        self.put_overflow += result.extra.get("put_overflow", 0)

    def server_for(self, key: str, api: servers.Server) -> servers.Server:
        """Return the server an endpoint is measured on: the API, or the reference app for its rows."""
        return self.reference if is_reference(key) else api

    def ceiling(self, server: servers.Server, duration: int, label: str = "ceiling"):
        """Run wrk once against a bare Flask route."""
        plan = self.plan
        return wrk.run(label, server.base_url, wrk.Load("/hello"), duration, plan.connections, plan.threads, self.dir)

    def yardstick(self, server: servers.Server, duration: int):
        """Run wrk once against the fixed yardstick: bare Flask under gunicorn's defaults."""
        return self.ceiling(server, duration, "yardstick")

    # --- phases ---------------------------------------------------------------------------

    def list_latency(self, api: servers.Server, rows: int) -> dict:
        """Time the first and a deep list page at one connection (no queueing), alternating."""
        plan = self.plan
        paths = {"first": "/payments?limit=100", "deep": f"/payments?limit=100&after={rows - 150}"}
        runs = {name: [] for name in paths}
        for name, path in paths.items():  # warm-up
            wrk.run(f"warm list {name}", api.base_url, wrk.Load(path), 1, 1, 1, self.dir)
        for _ in range(plan.latency_runs):
            for name, path in paths.items():
                result = wrk.run(
                    f"list {name} @ {rows}", api.base_url, wrk.Load(path), plan.latency_duration, 1, 1, self.dir
                )
                runs[name].append(result)
        return {
            name: {
                "rows": rows,
                "after": 0 if name == "first" else rows - 150,
                "p50_ms": statistics.median(r.p50_ms for r in results),
                "p99_ms": statistics.median(r.p99_ms for r in results),
                "rps": statistics.median(r.rps for r in results),
                "errors": sum(r.errors for r in results),
            }
            for name, results in runs.items()
        }

    def load_events(self, count: int, first_object: int) -> None:
        """Insert `count` events by SQL (10 per object, from first_object on)."""
        seconds = events_growth.insert_events(self.settings, count, first_object)
        print(f"bench: inserted {count:,} events in {seconds:.1f} s", flush=True)
        self.figures["timings"][f"events +{count}"] = seconds

    def events_latency(self, api: servers.Server, events: int) -> dict:
        """Time `GET /events?object_id=<random object>` (10 events each) at one connection, as list_latency does."""
        plan = self.plan
        load = wrk.Load("/", "random_path.lua", ("/events?limit=100&object_id=", 1, events // 10))
        wrk.run(f"warm events @ {events}", api.base_url, load, 1, 1, 1, self.dir)
        pages_read = self.pages_read_from_disk()
        runs = [
            wrk.run(f"events @ {events}", api.base_url, load, plan.latency_duration, 1, 1, self.dir)
            for _ in range(plan.latency_runs)
        ]
        pages_read = self.pages_read_from_disk() - pages_read
        return {
            "events": events,
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "rps": statistics.median(r.rps for r in runs),
            "errors": sum(r.errors for r in runs),
            "disk_reads_per_request": pages_read / max(1, sum(r.requests for r in runs)),
        }

    def pages_read_from_disk(self) -> int:
        """Return how many pages the database server has read from disk, missing its buffer pool, since it started."""
        return int(self.query("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_reads'")[0][1])

    def warm_up(self, api: servers.Server, ceiling: servers.Server, yardstick: servers.Server) -> None:
        """Give every worker its pool connections and the buffer pool its pages."""
        self.yardstick(yardstick, 2)
        self.ceiling(ceiling, 2)
        for key in self.loads():
            self.run_load(key, self.server_for(key, api), 2)

    def rounds(self, api: servers.Server, ceiling: servers.Server, yardstick: servers.Server) -> None:
        """Interleave yardstick and endpoint runs: Y E1 Y E2 ... Y; each ratio uses the Y on either side.

        The production server's own bare Flask route is one more row, so that each endpoint's
        share of what that server can reach at all follows from the same run.
        """
        results = {key: [] for key in [*self.loads(), CEILING]}
        yardsticks = []
        for number in range(1, self.plan.runs + 1):
            self.figures.setdefault("loadavg", []).append(Path("/proc/loadavg").read_text().split()[0])
            print(f"bench: round {number}/{self.plan.runs} (load average {self.figures['loadavg'][-1]})", flush=True)
            before = self.yardstick(yardstick, self.plan.duration)
            yardsticks.append(before)
            for key in results:
                if key == CEILING:
                    result = self.ceiling(ceiling, self.plan.duration)
                else:
                    result = self.run_load(key, self.server_for(key, api), self.plan.duration)
                after = self.yardstick(yardstick, self.plan.duration)
                yardsticks.append(after)
                result.extra["ratio"] = result.rps / statistics.mean((before.rps, after.rps))
                results[key].append(result)
                print(
                    f"bench:   {key:12} {result.rps:8,.0f} req/s  {result.extra['ratio']:.2f} × yardstick"
                    f"  p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  errors {result.errors}",
                    flush=True,
                )
                before = after
        self.figures["runs"] = {key: [asdict(r) for r in rs] for key, rs in results.items()}
        self.figures["yardstick_runs"] = [asdict(r) for r in yardsticks]

    def memory(self, api: servers.Server, ceiling: servers.Server) -> None:
        """Record the resident memory of every worker after the runs."""
        self.figures["memory"] = {
            "api": [servers.memory_kib(pid) for pid in api.worker_pids()],
            "api_master": servers.memory_kib(api.process.pid),
            "ceiling": [servers.memory_kib(pid) for pid in ceiling.worker_pids()],
        }

    def verify_writes(self, put_first: int) -> None:
        """Check that the PUTs were real transitions and count the rows POST created."""
        statuses = self.query(
            "SELECT status, card_cvc_encrypted IS NULL, COUNT(*) FROM payments WHERE id >= %s AND id < %s"
            " GROUP BY status, card_cvc_encrypted IS NULL",
            (put_first, self.put_next),
        )
        created = self.query("SELECT COUNT(*) FROM payments WHERE id > %s", (self.plan.payments,))[0][0]
        self.figures["writes"] = {
            "put_ids_used": self.put_next - put_first,
            "put_statuses": [
                {"status": status, "cvc_erased": bool(erased), "count": count} for status, erased, count in statuses
            ],
            "post_rows_created": created,
            "put_overflow": self.put_overflow,
            **{f"{key}_2xx": self._successes(key) for key in ("put", "post", "reference_put", "reference_post")},
        }

    def _successes(self, key: str) -> int:
        """Return the 2xx answers of an endpoint's measured runs."""
        return sum(run["requests"] - run["non_2xx"] for run in self.figures["runs"][key])

    def count_round_trips(self) -> None:
        """Count the database round trips per request of each endpoint, in-process (the app imported at start)."""
        from app import create_app

        config = type("BenchConfig", (Config,), {**self.settings, "LOG_LEVEL": "WARNING"})
        first_put = self.put_next
        self.put_next += 25
        body = {
            "user_id": 1,
            "amount": "12.50",
            "currency": "INR",
            "payment_method": "Credit Card",
            "card_no": "4111111111111111",
            "card_expiry": "2099-12-01",
            "card_cvc": "123",
        }
        stamp = f"{self.started:%H%M%S}"
        requests = {
            "get_user": lambda n: {"path": "/users/1"},
            "get_payment": lambda n: {"path": "/payments/1"},
            "list_first": lambda n: {"path": "/payments?limit=100"},
            "list_deep": lambda n: {"path": f"/payments?limit=100&after={self.plan.deep_after}"},
            "list_user": lambda n: {"path": "/payments?user_id=1"},
            "post": lambda n: {"path": "/payments", "method": "POST", "json": body},
            "post_idempotent": lambda n: {
                "path": "/payments",
                "method": "POST",
                "json": body,
                "headers": {"Idempotency-Key": f"rt-{stamp}-{n}"},
            },
            "put": lambda n: {"path": f"/payments/{first_put + n}", "method": "PUT", "json": {"status": "completed"}},
        }
        self.figures["round_trips"] = roundtrips.measure(create_app(config), requests, self.auth)
        self.figures["round_trip_costs"] = roundtrips.costs(self.settings)
        self.figures["table_sizes"] = {
            name: {"rows": rows, "mib": size / 2**20}
            for name, rows, size in self.query(
                "SELECT table_name, table_rows, data_length + index_length FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name IN ('users', 'payments')"
            )
        }

    def idempotent_post(self, api: servers.Server) -> None:
        """Send one POST with an Idempotency-Key, so the key table has a real row to explain."""
        body = json.dumps(
            {
                "user_id": 1,
                "amount": "10.00",
                "currency": "INR",
                "payment_method": "UPI",
                "description": "idempotency sample",
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"bench-{self.started:%Y%m%d%H%M%S}"}
        headers.update(self.auth)
        request = urllib.request.Request(api.base_url + "/payments", data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def profile_endpoints(self, api: servers.Server) -> None:
        """Profile each endpoint under load with py-spy."""
        seconds = self.plan.profile_seconds
        findings = {}
        for key in self.loads():
            if is_reference(key):
                continue
            output = self.dir / f"pyspy-{key}.txt"
            load = self.loads()[key][1]
            if key == "put":
                # Enough ids for any rate this machine reaches; the unused ones stay pending.
                load = wrk.Load("/", "put_status.lua", (self.put_next, self.plan.pending_high, self.plan.threads))
            cmd = wrk.command(api.base_url, load, seconds + 3, self.plan.connections, self.plan.threads)
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as driver:
                try:
                    time.sleep(1.5)
                    profile.record(api.process.pid, seconds, 200, output)
                    out, _ = driver.communicate(timeout=seconds + 60)
                finally:
                    if driver.poll() is None:
                        driver.kill()
            result = wrk.parse(key, out)
            if key == "put":
                self.took_pending_ids(result)
            findings[key] = profile.summarise(output, api.process.pid, 200, result.rps * seconds)
            findings[key]["rps_while_profiled"] = result.rps
        self.figures["profile"] = findings

    def compare_servers(self) -> None:
        """Compare the candidate production servers (bench/server_compare.py)."""
        self.figures["servers"] = server_compare.compare(self, self.plan.server_rounds, self.plan.server_duration)

    def uncommitted(self) -> list[str]:
        """Return the tracked files (outside bench/) changed in the work tree since the commit."""
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return [line[3:] for line in status.stdout.splitlines()]

    def machine(self) -> dict:
        """Describe the machine and software the run used."""
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        memory = next(
            line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
        )
        variables = dict(
            self.query(
                "SHOW VARIABLES WHERE Variable_name IN ('version', 'innodb_buffer_pool_size',"
                " 'innodb_flush_log_at_trx_commit', 'innodb_flush_method', 'sync_binlog', 'log_bin')"
            )
        )
        gunicorn_version = subprocess.run([str(servers.GUNICORN), "--version"], capture_output=True, text=True).stdout
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        return {
            "nproc": os.cpu_count(),
            "cpu": model,
            "memory_gib": int(memory) / 1024 / 1024,
            "kernel": platform.release(),
            "python": platform.python_version(),
            "mysql_connector": mysql.connector.__version__,
            "c_extension": bool(getattr(mysql.connector, "HAVE_CEXT", False)),
            "gunicorn": gunicorn_version.strip(),
            "wrk": (wrk_version.stdout + wrk_version.stderr).splitlines()[0].strip(),
            "db": variables,
            "db_server": f"{self.settings['DB_HOST']}:{self.settings['DB_PORT']}",
            "uncommitted": self.uncommitted(),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
        }

    # --- the whole run --------------------------------------------------------------------

    def optional(self, name: str, function, *args) -> None:
        """Run a phase whose failure should not lose the run: record the error and go on."""
        try:
            function(*args)
        except Exception as error:  # noqa: BLE001 - reported in the results, the run goes on
            print(f"bench: {name} failed: {error!r}", flush=True)
            self.figures.setdefault("failed", {})[name] = repr(error)

    def save(self) -> None:
        """Write the figures gathered so far (a checkpoint, and the input of `python -m bench.report`)."""
        self.figures["started"] = self.started.isoformat(timespec="seconds")
        self.figures["elapsed_s"] = (datetime.now(UTC) - self.started).total_seconds()
        (self.dir / "figures.json").write_text(json.dumps(self.figures, indent=2, default=str))

    def run(self) -> None:
        """Run every phase and write the report."""
        plan = self.plan
        print(f"bench: results in {self.dir}", flush=True)
        import app  # noqa: F401 - fail now, not after 20 minutes, if the app cannot be imported

        self.create_database()
        self.figures["machine"] = self.machine()
        self.load_base()
        production = servers.production()
        api = self.start("api", "app:create_app()", plan.api_port, "/health", production)
        ceiling = self.start("ceiling", "bench.ceiling_app:create_app()", plan.ceiling_port, "/hello", production)
        yardstick = self.start(
            "yardstick", "bench.ceiling_app:create_app()", plan.yardstick_port, "/hello", servers.YARDSTICK
        )
        self.reference = self.start(
            "reference", "bench.reference_app:create_app()", plan.reference_port, "/payments/1", production
        )
        print(f"bench: list latency at {plan.small:,} payments", flush=True)
        self.figures["latency_small"] = self.list_latency(api, plan.small)
        self.load_events(plan.small_events, 1)
        self.figures["events_small"] = self.events_latency(api, plan.small_events)
        self.load(plan.small + 1, plan.payments)
        load_data.analyze(self.settings)
        print(f"bench: list latency at {plan.payments:,} payments", flush=True)
        self.figures["latency_large"] = self.list_latency(api, plan.payments)
        print(f"bench: loading events up to {plan.events:,}", flush=True)
        self.load_events(plan.events - plan.small_events, plan.small_events // 10 + 1)
        load_data.analyze(self.settings)
        self.figures["events_large"] = self.events_latency(api, plan.events)
        self.warm_up(api, ceiling, yardstick)
        put_first = self.put_next
        self.rounds(api, ceiling, yardstick)
        self.memory(api, ceiling)
        self.stop(self.reference)
        self.stop(yardstick)
        self.save()
        if plan.profile_seconds:
            print("bench: profiling each endpoint with py-spy", flush=True)
            self.optional("profile", self.profile_endpoints, api)
        self.verify_writes(put_first)
        self.optional("webhook lag", self.webhook_lag, api)
        self.optional("round trips", self.count_round_trips)
        self.optional("query plans", self.explain, api)
        self.stop(api)
        self.stop(ceiling)
        self.save()
        if plan.server_rounds:
            print("bench: the candidate production servers, beside the yardstick", flush=True)
            self.optional("server comparison", self.compare_servers)
        self.figures["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        self.save()
        target = ROOT / "bench" / ("RESULTS.md" if not plan.quick else "results/RESULTS-quick.md")
        target.write_text(report.render(self.figures, self.loads()))
        print(f"bench: wrote {target.relative_to(ROOT)} ({self.figures['elapsed_s'] / 60:.1f} min)", flush=True)

    def webhook_lag(self, api: servers.Server) -> dict:
        """Write payments at full speed with a receiver subscribed to every event; record the delivery lag."""
        print("bench: webhook delivery lag under full-speed writes", flush=True)
        load = self.loads()["post"][1]
        self.figures["webhooks"] = webhook_lag.measure(
            self.settings, api.base_url, self.auth, load, self.plan, self.dir
        )
        return self.figures["webhooks"]

    def explain(self, api: servers.Server) -> None:
        """Explain the query shapes, with a real Idempotency-Key row in the table."""
        self.idempotent_post(api)
        self.figures["explain"] = explain.explain_all(self.settings)


def _terminate(signum, _frame):
    """Turn SIGTERM/SIGHUP into a normal exit so the cleanup runs."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Run the benchmark, always stopping the servers and dropping the database at the end."""
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    plan = Plan.from_env()
    plan.check()
    benchmark = Benchmark(plan)
    try:
        benchmark.run()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        benchmark.cleanup()


if __name__ == "__main__":
    sys.exit(main())
