"""The webhook delivery worker (`flask --app app deliver-webhooks`): claims due deliveries, signs, sends, records.

Deliveries are rows of the transactional outbox (schema.sql), written with their event. The
worker leases a few at a time (FOR UPDATE SKIP LOCKED), sends each from a small thread pool
following the Standard Webhooks specification, and records every attempt: a 2xx within the
timeout is delivered; anything else is retried on the schedule below, then marked failed. Any
number of workers, on any hosts, share the work. A worker that dies leaves its deliveries to be
sent again when their lease ends, with the same `webhook-id`: delivery is at least once.
"""

import http.client
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import mysql.connector
from mysql.connector import errorcode
from standardwebhooks.webhooks import Webhook

from db import MySQLInterfaceError, connect, connection_settings, dict_cursor
from models import webhook_model
from services.webhooks import UrlRefused, check_address, decrypt_secret, url_host
from utils.crypto_utils import Keyring
from utils.formatting import utc_now

logger = logging.getLogger("payments.webhooks")

# Seconds before each retry (SPEC §9), scaled by WEBHOOK_RETRY_SCALE; after the last, a delivery fails.
RETRY_SCHEDULE = (5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.2
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "payments-api-webhooks/1"
DATABASE_ERRORS = (mysql.connector.Error, MySQLInterfaceError)
# Deliveries claimed per sending thread at once: fewer, larger transactions under a burst of writes.
BATCH_PER_THREAD = 4


@dataclass(frozen=True)
class Outcome:
    """What one attempt to send a delivery came to."""

    status_code: int | None
    error: str | None
    started: datetime
    duration_ms: int

    @property
    def delivered(self) -> bool:
        """Whether the receiver took it: a 2xx within the timeout."""
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def retry_delay(attempts: int, scale: float) -> float | None:
    """Return the seconds to wait after the `attempts`-th failed attempt, or None when no retry is left."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[attempts - 1] * scale * random.uniform(1 - JITTER, 1 + JITTER)


def message_body(delivery: dict) -> bytes:
    """Return a delivery's body, {"type", "timestamp", "data"}, with the event's data as stored."""
    timestamp = f"{delivery['event_created_at']:%Y-%m-%dT%H:%M:%SZ}"
    return f'{{"type":"{delivery["type"]}","timestamp":"{timestamp}","data":{delivery["data"]}}}'.encode()


def signature_header(delivery: dict, keys: Keyring, body: bytes, sent_at: datetime) -> str:
    """Sign with the endpoint's secret, and with its previous one while that has not expired."""
    secrets = [delivery["secret"]]
    expires_at = delivery["previous_secret_expires_at"]
    if delivery["previous_secret"] is not None and expires_at is not None and expires_at > utc_now():
        secrets.append(delivery["previous_secret"])
    message_id = str(delivery["event_id"])
    return " ".join(Webhook(decrypt_secret(keys, stored)).sign(message_id, sent_at, body) for stored in secrets)


class GuardedConnectionMixin:
    """Refuse, before a byte is sent, a connection whose peer address a webhook must not reach."""

    allowed: bool = False

    def connect(self) -> None:
        """Connect, then check the address actually connected to (whatever DNS said before)."""
        create = socket.create_connection

        def guarded(address, timeout, source_address=None):
            sock = create(address, timeout, source_address)
            if not self.allowed:
                try:
                    check_address(sock.getpeername()[0])
                except UrlRefused:
                    sock.close()
                    raise
            return sock

        self._create_connection = guarded
        super().connect()


class GuardedHTTPConnection(GuardedConnectionMixin, http.client.HTTPConnection):
    """Plain HTTP, for receivers the operator allows it for."""


class GuardedHTTPSConnection(GuardedConnectionMixin, http.client.HTTPSConnection):
    """HTTPS with the system's certificate authorities."""


def send(url: str, body: bytes, headers: dict, *, timeout: float, allow_http: bool, allowed_hosts: Collection[str]):
    """POST a webhook; return (status code, error): never follows a redirect, never reads more than 64 KiB."""
    host, port = url_host(url, allow_http=allow_http)
    parts = urlsplit(url)
    if parts.scheme == "https":
        connection = GuardedHTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = GuardedHTTPConnection(host, port, timeout=timeout)
    connection.allowed = host in allowed_hosts
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return response.status, None
    finally:
        connection.close()


def describe_failure(error: Exception, timeout: float) -> str:
    """Say why an attempt failed, in words that never quote what the receiver sent."""
    if isinstance(error, UrlRefused):
        return f"refused: the URL {error}"
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or type(error).__name__}"[:255]
    if isinstance(error, socket.gaierror):
        return "the host name does not resolve"
    return f"{type(error).__name__}: {error}"[:255]


class DeliveryWorker:
    """One worker process: a loop that claims due deliveries, sends them at once, and records each outcome."""

    def __init__(self, config: dict, keys: Keyring, *, name: str | None = None):
        self.config = config
        self.keys = keys
        self.name = name or f"{socket.gethostname()[:40]}:{os.getpid()}"
        self.threads = config["WEBHOOK_WORKER_THREADS"]
        self.timeout = config["WEBHOOK_TIMEOUT_SECONDS"]
        self.batch_size = BATCH_PER_THREAD * self.threads
        # Long enough to send a whole batch to receivers that all time out, and record it.
        self.lease_seconds = (BATCH_PER_THREAD + 1) * self.timeout + 5
        self.stopping = threading.Event()
        self._connection = None

    def stop(self, *_args) -> None:
        """Ask the loop to stop: it sends nothing new, and records what it is sending before it returns."""
        self.stopping.set()

    def run(self) -> None:
        """Deliver until stopped."""
        logger.info("webhook worker %s started", self.name)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="webhook") as pool:
            while not self.stopping.is_set():
                batch = self._with_database(self._claim)
                if batch is None:
                    continue
                if not batch:
                    self.stopping.wait(self.config["WEBHOOK_POLL_SECONDS"])
                    continue
                self._deliver(pool, batch)
        self._close()
        logger.info("webhook worker %s stopped", self.name)

    def _deliver(self, pool: ThreadPoolExecutor, batch: list[dict]) -> None:
        """Send a claimed batch at once, then record every outcome in one transaction."""
        outcomes = list(zip(batch, pool.map(self._attempt, batch), strict=True))
        # Waits out a database outage; when stopping, gives up (the leases end, those are sent again).
        while self._with_database(lambda cursor: self._record(cursor, outcomes)) is None:
            if self.stopping.is_set():
                return

    def _attempt(self, delivery: dict) -> Outcome:
        """Sign and send one delivery; never raises."""
        started = datetime.now(UTC)
        clock = time.monotonic()
        status_code, error = None, None
        try:
            body = message_body(delivery)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": str(delivery["event_id"]),
                "webhook-timestamp": str(int(started.timestamp())),
                "webhook-signature": signature_header(delivery, self.keys, body, started),
            }
            status_code, error = send(
                delivery["url"],
                body,
                headers,
                timeout=self.timeout,
                allow_http=self.config["WEBHOOK_ALLOW_HTTP"],
                allowed_hosts=self.config["WEBHOOK_ALLOWED_HOSTS"],
            )
        except Exception as failure:  # noqa: BLE001 - any failure of one attempt is recorded, not raised
            error = describe_failure(failure, self.timeout)
        elapsed = time.monotonic() - clock
        if error is None and elapsed > self.timeout:
            error = f"no answer within {self.timeout:g} s"
        if error is None and not 200 <= status_code < 300:
            error = f"the receiver answered {status_code}"
        return Outcome(status_code, error, started.replace(tzinfo=None), round(elapsed * 1000))

    def _claim(self, cursor) -> list[dict]:
        """Lease a batch of due deliveries in one short transaction."""
        self._connection.start_transaction()
        batch = webhook_model.claim_due(cursor, self.name, self.batch_size, self.lease_seconds)
        self._connection.commit()
        return batch

    def _record(self, cursor, outcomes: list[tuple[dict, Outcome]]) -> bool:
        """Record a batch's attempts and each delivery's new state, then the endpoints' failure streaks."""
        delivered, retried, statuses = [], [], []
        for delivery, outcome in outcomes:
            if outcome.delivered:
                delivered.append(delivery["id"])
                statuses.append("delivered")
            else:
                status, next_at = self._next_state(delivery["attempts"] + 1)
                retried.append((delivery["id"], status, next_at))
                statuses.append(status)
        self._connection.start_transaction()
        webhook_model.record_attempts(
            cursor,
            [
                (delivery["id"], outcome.started, outcome.status_code, outcome.error, outcome.duration_ms)
                for delivery, outcome in outcomes
            ],
        )
        webhook_model.finish_delivered(cursor, delivered, self.name)
        for delivery_id, status, next_at in retried:
            webhook_model.finish_attempt(cursor, delivery_id, self.name, status, next_at)
        self._connection.commit()
        for (delivery, outcome), status in zip(outcomes, statuses, strict=True):
            self._note_endpoint(cursor, delivery, outcome)
            self._log(delivery, outcome, status, delivery["attempts"] + 1)
        return True

    def _next_state(self, attempts: int) -> tuple[str, datetime | None]:
        """Return a failed delivery's status after `attempts` attempts, and when to try next."""
        delay = retry_delay(attempts, self.config["WEBHOOK_RETRY_SCALE"])
        if delay is None:
            return "failed", None
        return "pending", datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=delay)

    def _note_endpoint(self, cursor, delivery: dict, outcome: Outcome) -> None:
        """Keep the endpoint's failure streak, disabling it when it has failed for too long."""
        if outcome.delivered:
            if delivery["failing_since"] is not None:
                webhook_model.note_success(cursor, delivery["endpoint_id"])
            return
        now = utc_now()
        disable_before = now - timedelta(days=self.config["WEBHOOK_DISABLE_AFTER_DAYS"])
        if webhook_model.note_failure(cursor, delivery["endpoint_id"], now, disable_before):
            logger.warning("webhook endpoint %s disabled: its deliveries failed for too long", delivery["endpoint_id"])

    @staticmethod
    def _log(delivery: dict, outcome: Outcome, status: str, attempts: int) -> None:
        """Log one attempt, by ids: never the URL (it may hold a token) nor anything the receiver sent."""
        level = logging.INFO if outcome.delivered else logging.WARNING
        logger.log(
            level,
            "webhook delivery %s (event %s, endpoint %s) attempt %s: %s%s",
            delivery["id"],
            delivery["event_id"],
            delivery["endpoint_id"],
            attempts,
            status,
            "" if outcome.delivered else f" ({outcome.error})",
        )

    def _with_database(self, work: Callable):
        """Run `work(cursor)` on the worker's connection; after a lost conflict or a database failure, return None."""
        try:
            if self._connection is None:
                # db.connect skips a Galera node that answers but is not ready, and sets the causality wait.
                settings = connection_settings(self.config)
                self._connection = connect(settings, self.config["DB_WSREP_SYNC_WAIT"])
            cursor = dict_cursor(self._connection)
            try:
                return work(cursor)
            finally:
                cursor.close()
        except DATABASE_ERRORS as error:
            if getattr(error, "errno", None) == errorcode.ER_LOCK_DEADLOCK:
                self._lost_conflict()
                return None
            logger.warning(
                "webhook worker: database unavailable (%s); retrying", getattr(error, "errno", None) or error
            )
            self._close()
            self.stopping.wait(1.0)
            return None

    def _lost_conflict(self) -> None:
        """Roll back a transaction that lost a conflict, keeping the connection, and pause a moment before the next.

        On a Galera cluster, SKIP LOCKED sees only its own node's locks: workers on two nodes can
        claim the same rows at once, and the one certified second fails with errno 1213 (so a
        delivery is still never taken twice). Its transaction is already rolled back everywhere:
        the database is fine, and the loop claims (or records) again at once.
        """
        logger.debug("webhook worker %s lost a conflict with another worker; trying again", self.name)
        try:
            self._connection.rollback()
        except DATABASE_ERRORS:
            self._close()
        self.stopping.wait(random.uniform(0, 0.02))  # so that the rivals do not meet again at once

    def _close(self) -> None:
        """Drop the worker's connection (rolling back whatever it had open)."""
        if self._connection is not None:
            try:
                self._connection.close()
            except DATABASE_ERRORS:
                pass
            self._connection = None
