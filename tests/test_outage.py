"""Database outage: quick 503s while MariaDB is down, recovery without a restart, no lost writes.

The test runs its own MariaDB server (tests/mariadb_server.py), since it stops it, and serves the
app with its production server and config (uWSGI, uwsgi.ini). Run with `-s` to see the measured figures; they are
also written as JSON to the test's tmp_path.
"""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import mysql.connector
import pytest
import requests

from db import connection_settings
from tests import api
from tests.conftest import Answer, card_payment, config_dict, init_test_db, send_recorded, unique_email
from tests.live import start_server, stop_server
from tests.mariadb_server import MariaDBServer, MariaDBUnavailable

CLIENTS = 4
WARM_UP_SECONDS = 2
OUTAGE_SECONDS = 5
AFTER_RECOVERY_SECONDS = 3
# A request that takes longer than this is a failure; the client gives up at CLIENT_TIMEOUT.
MAX_SECONDS_PER_REQUEST = 3
CLIENT_TIMEOUT = 10
MAX_RECOVERY_SECONDS = 5
# After the first success, every worker's pool should be back within this.
SETTLE_SECONDS = 1
PAUSE_AFTER_503 = 0.05


@dataclass
class Traffic:
    """Steady create/read traffic from a few threads, plus a /health poller, all recorded."""

    url: str
    outcomes: list[Answer] = field(default_factory=list)
    created_payments: dict[int, dict] = field(default_factory=dict)
    created_users: dict[int, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the client threads and the health poller."""
        targets = [self.run_client] * CLIENTS + [self.run_health_poller]
        self.threads = [threading.Thread(target=target, daemon=True) for target in targets]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop every thread and wait for them."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT + 5)

    def request(self, session: requests.Session, kind: str, path: str, **kwargs) -> Answer:
        """Send one request, never raising: a timeout or connection error is recorded as such."""
        outcome = send_recorded(session, kind, f"{self.url}{path}", CLIENT_TIMEOUT, **kwargs)
        with self.lock:
            self.outcomes.append(outcome)
        if outcome.status == 503:
            time.sleep(PAUSE_AFTER_503)
        return outcome

    def run_client(self) -> None:
        """Create a user, then a payment for them, then read the payment back; repeat."""
        session = api.session()
        while not self.stopping.is_set():
            user = self.request(session, "POST /users", "/users", json={"name": "Outage", "email": unique_email()})
            if user.status != 201:
                continue
            self.remember(self.created_users, user.body)
            payment = self.request(session, "POST /payments", "/payments", json=card_payment(user.body["id"]))
            if payment.status != 201:
                continue
            self.remember(self.created_payments, payment.body)
            self.request(session, "GET /payments/<id>", f"/payments/{payment.body['id']}")

    def run_health_poller(self) -> None:
        """Ask /health five times a second."""
        session = api.session()
        while not self.stopping.is_set():
            self.request(session, "GET /health", "/health")
            time.sleep(0.2)

    def remember(self, store: dict, body: dict) -> None:
        """Keep a 201 body by id, to check later that the write survived."""
        with self.lock:
            store[body["id"]] = body

    def snapshot(self) -> list[Answer]:
        """Return the outcomes recorded so far."""
        with self.lock:
            return list(self.outcomes)

    def first_success_after(self, moment: float, timeout: float) -> Answer | None:
        """Wait for the first success of a request sent after `moment` (not /health); None if none came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            successes = [o for o in self.snapshot() if o.ok and o.started >= moment and o.kind != "GET /health"]
            if successes:
                return min(successes, key=lambda o: o.finished)
            time.sleep(0.02)
        return None


def start_dedicated_server() -> MariaDBServer:
    """Start a MariaDB server of the test's own, or fail the test saying what is missing."""
    server = None
    try:
        server = MariaDBServer()
        server.start()
        return server
    except MariaDBUnavailable as error:
        problem = str(error)
    if server is not None:
        server.cleanup()
    pytest.fail(f"Cannot run the outage test: {problem}", pytrace=False)


@contextmanager
def app_on_dedicated_database(tmp_path) -> Iterator[tuple]:
    """Serve the app with its production server (uwsgi.ini) on a dedicated database server.

    Yields (database server, app settings, base URL, server process, server log file).
    """
    server = start_dedicated_server()
    process = None
    try:
        settings = {**config_dict(), "DB_PORT": server.port, "DB_NAME": "payments_outage"}
        init_test_db(settings)
        process, url = start_server(settings, tmp_path / "server.log")
        yield server, settings, url, process, tmp_path / "server.log"
    finally:
        if process is not None:
            stop_server(process)
        server.cleanup()


def test_during_a_database_outage_the_api_answers_503_quickly_and_recovers_by_itself(tmp_path):
    with app_on_dedicated_database(tmp_path) as (server, settings, url, process, log_file):
        traffic = Traffic(url)
        marks = run_outage(server, traffic)
        outcomes = traffic.snapshot()
        lost = _lost_writes(url, traffic)
        figures = _figures(outcomes, marks, traffic, lost, _row_counts(settings))
        health_after = api.get(f"{url}/health", timeout=CLIENT_TIMEOUT).status_code
        server_exit = process.poll()
    (tmp_path / "outage-figures.json").write_text(json.dumps(figures, indent=2))
    print("\nDatabase outage figures:", json.dumps(figures, indent=2))

    assert server_exit is None, "the server exited during the outage"
    _assert_every_response_is_a_success_or_a_quick_problem_503(outcomes)
    _assert_everything_succeeds_before_the_outage(outcomes, marks)
    _assert_everything_is_503_while_the_database_is_down(outcomes, marks)
    assert marks["recovered"], f"no request succeeded within {MAX_RECOVERY_SECONDS + 10} s of the database's return"
    assert figures["recovery_seconds"] <= MAX_RECOVERY_SECONDS, figures
    _assert_everything_succeeds_after_recovery(outcomes, marks)
    assert health_after == 200
    assert lost == [], f"{len(lost)} acknowledged writes are missing or changed: {lost[:5]}"
    _assert_no_worker_restarted_and_no_error_logged(log_file)


def run_outage(server: MariaDBServer, traffic: Traffic) -> dict:
    """Run traffic, stop the database for a while, start it again; return when each step happened."""
    marks = {"traffic": time.monotonic()}
    traffic.start()
    try:
        time.sleep(WARM_UP_SECONDS)
        marks["stop"] = time.monotonic()
        server.stop()
        marks["stopped"] = time.monotonic()
        time.sleep(OUTAGE_SECONDS)
        marks["start"] = time.monotonic()
        server.start()
        marks["started"] = time.monotonic()
        recovered = traffic.first_success_after(marks["started"], MAX_RECOVERY_SECONDS + 10)
        marks["recovered"] = recovered.finished if recovered else None
        time.sleep(AFTER_RECOVERY_SECONDS)
    finally:
        traffic.stop()
    return marks


def _assert_every_response_is_a_success_or_a_quick_problem_503(outcomes: list[Answer]) -> None:
    """No timeout, no connection error, no 500, no slow request, and every 503 a proper problem."""
    failures = [o for o in outcomes if o.error or not (o.ok or o.is_good_503())]
    assert failures == [], f"{len(failures)} bad responses, e.g.:\n" + "\n".join(str(o) for o in failures[:10])
    slow = [o for o in outcomes if o.seconds > MAX_SECONDS_PER_REQUEST]
    assert slow == [], f"{len(slow)} requests took over {MAX_SECONDS_PER_REQUEST} s:\n" + "\n".join(
        str(o) for o in slow[:10]
    )


def _assert_everything_is_503_while_the_database_is_down(outcomes: list[Answer], marks: dict) -> None:
    """Requests sent and answered while the server was down all got 503, /health included."""
    down = _between(outcomes, marks["stopped"], marks["start"])
    assert down, "no request was answered during the outage"
    assert [str(o) for o in down if o.status != 503] == []
    health = [o for o in down if o.kind == "GET /health"]
    assert health and all(o.status == 503 for o in health), [str(o) for o in health]


def _assert_everything_succeeds_before_the_outage(outcomes: list[Answer], marks: dict) -> None:
    """The steady state works: every request answered before the database stopped succeeded."""
    before = [o for o in outcomes if o.finished < marks["stop"]]
    assert before and all(o.ok for o in before), [str(o) for o in before if not o.ok][:10]


def _assert_everything_succeeds_after_recovery(outcomes: list[Answer], marks: dict) -> None:
    """Once the API is back (plus a moment for every worker), every request succeeds."""
    after = [o for o in outcomes if o.started >= marks["recovered"] + SETTLE_SECONDS]
    assert after, "no traffic after the recovery"
    assert [str(o) for o in after if not o.ok] == []
    assert any(o.kind == "GET /health" for o in after)


def _assert_no_worker_restarted_and_no_error_logged(log_file) -> None:
    """The workers that booted at start served the whole run, and nothing was logged as an error."""
    lines = log_file.read_text(errors="replace").splitlines()
    boots = [line for line in lines if "spawned uWSGI worker" in line or "Respawned" in line]
    assert len(boots) == 2, "a worker was restarted:\n" + "\n".join(boots)
    markers = ('"level": "ERROR"', '"level": "CRITICAL"', "HARAKIRI", "DAMN", "Traceback")
    errors = [line for line in lines if any(marker in line for marker in markers)]
    assert errors == [], "\n".join(errors[:10])


def _between(outcomes: list[Answer], start: float, end: float) -> list[Answer]:
    """Return the requests sent at or after `start` and answered by `end`."""
    return [o for o in outcomes if o.started >= start and o.finished <= end]


def _lost_writes(url: str, traffic: Traffic) -> list[str]:
    """Read back every user and payment that got a 201; return those missing or different."""
    lost = []
    session = api.session()
    for path, store in (("/users", traffic.created_users), ("/payments", traffic.created_payments)):
        for item_id, body in store.items():
            response = session.get(f"{url}{path}/{item_id}", timeout=CLIENT_TIMEOUT)
            if response.status_code != 200 or response.json() != body:
                lost.append(f"{path}/{item_id}: {response.status_code}")
    return lost


def _row_counts(settings: dict) -> dict:
    """Count the rows the database holds, to compare with the writes acknowledged."""
    cnx = mysql.connector.connect(**connection_settings(settings))
    try:
        cursor = cnx.cursor()
        counts = {}
        for table in ("users", "payments"):
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
        return counts
    finally:
        cnx.close()


def _figures(outcomes: list[Answer], marks: dict, traffic: Traffic, lost: list, rows: dict) -> dict:
    """Summarise the run: counts, latencies, the recovery time and the writes."""
    during = [o for o in outcomes if o.started >= marks["stop"] and o.finished <= marks["started"]]
    recovered = marks["recovered"]
    return {
        "requests": len(outcomes),
        "successes": sum(o.ok for o in outcomes),
        "responses_503": sum(o.status == 503 for o in outcomes),
        "other_failures": sum(bool(o.error) or not (o.ok or o.status == 503) for o in outcomes),
        "requests_during_outage": len(during),
        "max_latency_during_outage_seconds": round(max((o.seconds for o in during), default=0), 3),
        "max_latency_overall_seconds": round(max((o.seconds for o in outcomes), default=0), 3),
        "database_shutdown_seconds": round(marks["stopped"] - marks["stop"], 3),
        "database_down_seconds": round(marks["started"] - marks["stopped"], 3),
        "database_start_seconds": round(marks["started"] - marks["start"], 3),
        "recovery_seconds": round(recovered - marks["started"], 3) if recovered else None,
        "recovery_seconds_from_start_command": round(recovered - marks["start"], 3) if recovered else None,
        "users_acknowledged": len(traffic.created_users),
        "payments_acknowledged": len(traffic.created_payments),
        "rows_in_database": rows,
        # Rows whose POST got a 503: the connection broke during COMMIT, after the server had committed.
        "committed_but_answered_503": {
            "users": rows["users"] - len(traffic.created_users),
            "payments": rows["payments"] - len(traffic.created_payments),
        },
        "lost_writes": len(lost),
    }
