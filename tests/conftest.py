"""Fixtures: a throwaway database on the configured server, the app, and a live server."""

import re
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import mysql.connector
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

from app import create_app
from config import TestConfig
from db import connect, connection_settings, init_db
from services import api_keys
from tests import api
from tests.galera import rotated
from tests.live import start_server, stop_server
from tests.webhook_receiver import Receiver, start_worker, stop_worker
from utils.cards import luhn_valid
from utils.formatting import utc_now

TEST_DB_NAME = f"payments_test_{secrets.token_hex(4)}"
# Letters only: a long digit run in an address could pass Luhn and be refused as a card number.
HEX_TO_LETTERS = str.maketrans("0123456789", "ghijklmnop")
# How every response writes a time: UTC, to the second, with a Z.
ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class SuiteConfig(TestConfig):
    """TestConfig on this run's own database."""

    DB_NAME = TEST_DB_NAME


def config_dict(config_class: type = SuiteConfig) -> dict:
    """Return a config class's settings as a dict."""
    return {name: getattr(config_class, name) for name in dir(config_class) if name.isupper()}


class AuthorizedClient(FlaskClient):
    """Flask's test client, sending the suite's API key unless a test sends its own Authorization."""

    def open(self, *args, **kwargs):
        """Send a request with the suite's key by default."""
        headers = Headers(kwargs.pop("headers", None) or {})
        if "Authorization" not in headers:
            headers.update(api.HEADERS)
        return super().open(*args, headers=headers, **kwargs)


SUITE_API_KEY = api_keys.new_key()


def store_api_key(settings: dict, key: str, scopes: tuple[str, ...] = api_keys.SCOPES, name: str = "test") -> str:
    """Store an API key in a settings' database, as `create-api-key` does; return it."""
    cnx = connect(connection_settings(settings))
    try:
        api_keys.store_key(cnx.cursor(), key, name, scopes, None, utc_now())
    finally:
        cnx.close()
    return key


def make_api_key(settings: dict, scopes: tuple[str, ...] = api_keys.SCOPES, name: str = "test") -> str:
    """Make a fresh API key in a settings' database; return it."""
    return store_api_key(settings, api_keys.new_key(), scopes, name)


def init_test_db(settings: dict) -> None:
    """Apply the schema to a settings' database and store the suite's API key there, so that clients work."""
    init_db(settings)
    store_api_key(settings, SUITE_API_KEY, name="test suite")


@pytest.fixture(scope="session")
def database():
    """Create this run's database, apply the schema and make the suite's API key; drop the database at the end."""
    settings = config_dict()
    init_test_db(settings)
    api.HEADERS["Authorization"] = f"Bearer {SUITE_API_KEY}"
    Flask.test_client_class = AuthorizedClient
    yield settings
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{TEST_DB_NAME}`")
    cnx.close()


@pytest.fixture(scope="session")
def app(database):
    """The application, configured for the test database."""
    return create_app(SuiteConfig)


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's commands."""
    return app.test_cli_runner()


def rows_of(cnx, statement: str, params: tuple = ()) -> list[dict]:
    """Run one statement on a connection; return its rows as dicts (none for a write)."""
    cursor = cnx.cursor(dictionary=True)
    try:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.with_rows else []
    finally:
        cursor.close()


def run_sql(settings: dict, statement: str, *params) -> list[dict]:
    """Run one statement on a settings' database over a fresh, autocommitted connection; return its rows."""
    cnx = connect(connection_settings(settings))
    try:
        return rows_of(cnx, statement, params)
    finally:
        cnx.close()


def typed_row(row: dict) -> dict:
    """Return a row as {column: (type, repr)}, so that 1 and Decimal("1"), or "1.0" and "1.00", differ."""
    return {name: (type(value), repr(value)) for name, value in row.items()}


@pytest.fixture
def sql(database):
    """Run SQL statements on the test database over one fresh connection of the test's own; return the rows."""
    cnx = connect(connection_settings(database))  # on a cluster, it reads what other nodes committed
    yield lambda statement, params=(): rows_of(cnx, statement, params)
    cnx.close()


@pytest.fixture
def no_webhook_endpoints(sql):
    """Delete every webhook endpoint, delivery and attempt before and after the test."""
    clear = ("DELETE FROM webhook_attempts", "DELETE FROM webhook_deliveries", "DELETE FROM webhook_endpoints")
    for statement in clear:
        sql(statement)
    yield
    for statement in clear:
        sql(statement)


@pytest.fixture
def receiver():
    """A receiver listening on loopback."""
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def workers(database, tmp_path):
    """Start delivery workers on the test database (`workers(**settings)`); every one is stopped at the end."""
    started = []

    def start(settings: dict | None = None, **overrides):
        log_file = tmp_path / f"worker-{len(started)}.log"
        process = start_worker(settings or database, log_file, **overrides)
        process.log_file = log_file  # what the worker logged, for tests that read it
        started.append(process)
        return process

    yield start
    for process in started:
        stop_worker(process, signal.SIGKILL)


WELL_KNOWN_TEST_CARDS = {"4111111111111111", "5555555555554444"}


def foreign_card_numbers(text: str) -> list[str]:
    """Return card-like numbers (12-19 digits passing Luhn) in text, other than the well-known test cards."""
    found = []
    for run in re.findall(r"\d(?:[ -]?\d){11,18}", text):
        digits = re.sub(r"\D", "", run)
        if digits not in WELL_KNOWN_TEST_CARDS and luhn_valid(digits):
            found.append(run)
    return found


@dataclass
class Answer:
    """One request to a live server, named by its kind ("POST /users"), and what came back."""

    kind: str
    started: float
    finished: float
    status: int | None = None
    error: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    body: object = None

    @property
    def seconds(self) -> float:
        """Return how long the request took."""
        return self.finished - self.started

    @property
    def ok(self) -> bool:
        """Return whether the request got the success status its kind expects."""
        return self.status == (201 if self.kind.startswith("POST") else 200)

    def is_good_503(self) -> bool:
        """Return whether this is a 503 problem+json with a Retry-After in seconds."""
        return (
            self.status == 503
            and self.content_type.startswith("application/problem+json")
            and (self.retry_after or "").isdigit()
            and isinstance(self.body, dict)
            and self.body.get("status") == 503
        )

    def __str__(self) -> str:
        """Summarise the answer for assertion messages."""
        return f"{self.kind} -> {self.status or self.error} in {self.seconds:.2f}s ({self.body!r:.120})"


def send_recorded(client, kind: str, url: str, timeout: float, **kwargs) -> Answer:
    """Send one request with `client` (requests or a Session); never raise: an error is recorded."""
    started = time.monotonic()
    try:
        response = client.request(kind.split()[0], url, timeout=timeout, **kwargs)
    except requests.RequestException as error:
        return Answer(kind, started, time.monotonic(), error=f"{type(error).__name__}: {error}")
    finished = time.monotonic()
    try:
        body = response.json()
    except ValueError:
        body = response.text[:500]
    headers = response.headers
    return Answer(
        kind, started, finished, response.status_code, None, headers.get("Content-Type", ""),
        headers.get("Retry-After"), body,
    )  # fmt: skip


def unique_email() -> str:
    """Return an email address no other test uses."""
    return f"user-{secrets.token_hex(6).translate(HEX_TO_LETTERS)}@example.com"


@pytest.fixture
def make_user(client):
    """Create a user through the API; return its JSON."""

    def make(**fields) -> dict:
        body = {"name": "Test User", "email": unique_email(), "phone": "1234567890", "country": "India", **fields}
        response = client.post("/users", json=body)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


def card_payment(user_id: int, /, **fields) -> dict:
    """Return a valid card payment body for a user (the seed's sample, pending)."""
    return {
        "user_id": user_id,
        "amount": 500.0,
        "payment_method": "Credit Card",
        "card_no": "4111111111111111",
        "card_expiry": "2099-12-01",
        "card_cvc": "123",
        "currency": "INR",
        "description": "Payment for services",
        **fields,
    }


@pytest.fixture
def make_payment(client, make_user):
    """Create a payment through the API (a new user's, unless given); return its JSON."""

    def make(**fields) -> dict:
        user_id = fields.pop("user_id", None) or make_user()["id"]
        response = client.post("/payments", json=card_payment(user_id, **fields))
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return make


@dataclass(frozen=True)
class LiveServer:
    """A running server: its base URL, the file its logs go to, and its database settings."""

    url: str
    log_file: Path
    settings: dict


@pytest.fixture(scope="session")
def live_server(database, tmp_path_factory):
    """Serve the app with its production server (uWSGI, uwsgi.ini) on a free port.

    Given a list of servers (a cluster), it favours the second, while the tests' own connections
    favour the first: what the live server writes is then checked on another node.
    """
    log_file = tmp_path_factory.mktemp("live-server") / "server.log"
    settings = {**database, "DB_HOST": rotated(database["DB_HOST"], 1)}
    process, url = start_server(settings, log_file)
    try:
        yield LiveServer(url, log_file, settings)
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def gunicorn_server(database, tmp_path_factory):
    """Serve the app with the alternative server, gunicorn under gunicorn.conf.py, on a free port."""
    log_file = tmp_path_factory.mktemp("gunicorn-server") / "server.log"
    process, url = start_server(database, log_file, server="gunicorn")
    try:
        yield LiveServer(url, log_file, database)
    finally:
        stop_server(process)


@pytest.fixture(scope="module")
def fuzz_user(app):
    """A user that fuzzing tests write to (module-scoped: hypothesis reuses it across examples)."""
    response = app.test_client().post("/users", json={"name": "Fuzz", "email": unique_email()})
    return response.get_json()


@pytest.fixture(scope="module")
def fuzz_payment(app, fuzz_user):
    """A pending card payment that fuzzing tests update."""
    response = app.test_client().post("/payments", json=card_payment(fuzz_user["id"]))
    return response.get_json()
