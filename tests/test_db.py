"""The pool, transactions, init-db, health, and refusing to start without keys."""

import secrets
import subprocess
import sys
import threading
import time

import flask
import mysql.connector
import pytest

import db
from app import create_app
from config import parse_servers
from db import init_db
from tests.conftest import SuiteConfig, card_payment, config_dict, rows_of, typed_row, unique_email
from tests.live import ROOT, free_port, server_environment
from utils.errors import ServiceUnavailable


def test_a_transaction_commits_on_success(app, sql):
    email = unique_email()
    with app.app_context(), db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO users (name, email, created_at, updated_at) VALUES ('T', %s, NOW(), NOW())", (email,)
        )
    assert len(sql("SELECT id FROM users WHERE email = %s", (email,))) == 1


def test_a_transaction_rolls_back_and_reraises_on_error(app, sql):
    email = unique_email()
    with app.app_context(), pytest.raises(RuntimeError, match="boom"), db.transaction() as cursor:
        cursor.execute(
            "INSERT INTO users (name, email, created_at, updated_at) VALUES ('T', %s, NOW(), NOW())", (email,)
        )
        raise RuntimeError("boom")
    assert sql("SELECT id FROM users WHERE email = %s", (email,)) == []


def test_a_transaction_ended_by_rollback_keeps_nothing_and_the_block_after_it_runs(app, sql):
    email = unique_email()
    with app.test_request_context(method="POST"):
        with db.transaction() as cursor:
            cursor.execute(
                "INSERT INTO users (name, email, created_at, updated_at) VALUES ('T', %s, NOW(), NOW())", (email,)
            )
            raise db.Rollback
        assert not db.get_db().in_transaction and not flask.g.get("db_committed")
    assert sql("SELECT id FROM users WHERE email = %s", (email,)) == []


def test_a_status_change_to_the_current_status_commits_nothing_so_a_conflict_still_runs_it_again(client, make_payment):
    payment = make_payment()
    assert client.put(f"/payments/{payment['id']}", json={"status": "completed"}).status_code == 200
    with client:
        response = client.put(f"/payments/{payment['id']}", json={"status": "completed"})
        assert response.status_code == 200 and response.get_json()["status"] == "completed"
        # A conflict (1213) lost now, or a server lost, would run the whole request again.
        assert db.may_repeat(mysql.connector.errors.DatabaseError(errno=1213))


def session_status(connection, *names: str) -> dict[str, int]:
    """Return some of a connection's own status counters."""
    cursor = connection.cursor()
    cursor.execute(f"SHOW SESSION STATUS WHERE Variable_name IN ({', '.join(['%s'] * len(names))})", names)
    return {name: int(value) for name, value in cursor.fetchall()}


def test_a_write_request_begins_its_transaction_with_its_first_statement(database, make_user):
    app = create_app(SuiteConfig)  # its own pools: every write below runs on one connection
    client = app.test_client()
    user = make_user()
    for _ in range(3):
        assert client.post("/payments", json=card_payment(user["id"])).status_code == 201
    with app.test_request_context(method="POST"):
        counters = session_status(db.get_db(), "Com_begin", "Com_commit", "Com_insert")
    assert counters["Com_insert"] >= 6 and counters["Com_commit"] >= 3  # a payment and its event, each time
    assert counters["Com_begin"] == 0  # no START TRANSACTION round trip


def test_reads_on_a_write_connection_leave_no_transaction_open(app, sql):
    with app.test_request_context(method="POST"):
        with db.autocommit() as cursor:
            cursor.execute("SELECT COUNT(*) AS n FROM users")
            cursor.fetchall()
        assert not db.get_db().in_transaction  # its snapshot and table locks are released


def test_a_write_connection_commits_a_single_statement_write_at_the_end_of_its_block(app, sql):
    email, failing = unique_email(), unique_email()
    insert = "INSERT INTO users (name, email, created_at, updated_at) VALUES ('T', %s, NOW(), NOW())"
    with app.test_request_context(method="POST"):
        with db.autocommit() as cursor:
            cursor.execute(insert, (email,))
        assert len(sql("SELECT id FROM users WHERE email = %s", (email,))) == 1  # seen by another connection
        with pytest.raises(RuntimeError, match="boom"), db.autocommit() as cursor:
            cursor.execute(insert, (failing,))
            raise RuntimeError("boom")
    assert sql("SELECT id FROM users WHERE email = %s", (failing,)) == []


def test_a_connection_is_never_handed_on_with_a_transaction_open(database):
    app = create_app(SuiteConfig)  # its own pools, so the next request surely gets the same connection
    with app.test_request_context(method="POST"):
        db.dict_cursor(db.get_db()).execute("SELECT COUNT(*) FROM users")  # begins one, never ended
        connection_id = db.get_db().connection_id
    with app.test_request_context(method="POST"):
        assert db.get_db().connection_id == connection_id
        assert not db.get_db().in_transaction


def test_a_connection_whose_rollback_fails_at_the_end_of_a_request_is_not_handed_on(database, sql):
    app = create_app(SuiteConfig)  # its own pools, so the next request would get the same connection
    with app.test_request_context(method="POST"):
        connection = db.get_db()
        db.dict_cursor(connection).execute("SELECT COUNT(*) FROM users")  # begins a transaction
        sql(f"KILL CONNECTION {connection.connection_id}")  # so the rollback at the end fails
    with app.test_request_context(method="POST"):
        assert db.get_db() is not connection
        assert db.get_db().cmd_query("SELECT 1") and db.get_db().get_rows()[0] == [(1,)]


def rows_both_ways(app, statement: str, params: tuple, *, fetchone_first: bool = False) -> tuple:
    """Return (rows, rowcount) from db.dict_cursor and from the driver's own dictionary cursor."""
    results = []
    with app.app_context():
        connection = db.get_db()
        for cursor in (db.dict_cursor(connection), connection.cursor(dictionary=True)):
            cursor.execute(statement, params)
            rows = [cursor.fetchone()] if fetchone_first else []
            rows += cursor.fetchall()
            results.append(([typed_row(row) for row in rows], cursor.rowcount))
            cursor.close()
        assert db.get_db().cmd_query("SELECT 1") and db.get_db().get_rows()[0] == [(1,)]  # nothing left unread
    return results


@pytest.mark.parametrize("fetchone_first", [False, True])
def test_the_dictionary_cursor_returns_exactly_what_the_drivers_own_does(app, make_payment, fetchone_first):
    card = make_payment(description=None)
    upi = {"payment_method": "UPI", "card_no": None, "card_expiry": None, "card_cvc": None, "user_id": card["user_id"]}
    make_payment(**upi, currency="JPY", amount="1500")
    statement = "SELECT * FROM payments WHERE user_id = %s ORDER BY id"

    ours, drivers = rows_both_ways(app, statement, (card["user_id"],), fetchone_first=fetchone_first)

    assert ours == drivers and ours[1] == 2 and len(ours[0]) == 2
    assert rows_both_ways(app, statement, (0,)) == [([], 0), ([], 0)]


def test_a_connection_lost_while_rows_are_fetched_is_a_transient_driver_error(database, sql):
    app = create_app(SuiteConfig)  # its own pool: the connection killed here is never reused
    with app.app_context():
        with pytest.raises(mysql.connector.Error) as raised, db.autocommit() as cursor:
            cursor.execute("SELECT seq FROM seq_1_to_10000000")  # far more rows than the socket buffers hold
            sql(f"KILL CONNECTION {db.get_db().connection_id}")
            cursor.fetchall()

        assert db.is_transient(raised.value), raised.value
        db.mark_broken()


def test_init_db_is_idempotent(runner):
    for _ in range(2):
        result = runner.invoke(args=["init-db"])
        assert result.exit_code == 0, result.output
        assert "Schema applied" in result.output


class UnreachableConfig(SuiteConfig):
    """A server address where nothing listens."""

    DB_PORT = 1
    DB_CONNECT_TIMEOUT = 1


def test_an_unreachable_database_is_503_with_retry_after():
    client = create_app(UnreachableConfig).test_client()
    for path in ("/health", "/users", "/payments/1"):
        response = client.get(path)
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.headers["Retry-After"].isdigit()


class TinyPoolConfig(SuiteConfig):
    """One pooled connection, a short wait."""

    DB_POOL_SIZE = 1
    DB_POOL_WAIT_SECONDS = 0.2


def test_a_request_waits_briefly_for_a_pooled_connection_then_gets_503(database):
    app = create_app(TinyPoolConfig)
    held, release = threading.Event(), threading.Event()

    def hold_the_only_connection():
        with app.app_context():
            db.get_db()
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    held.wait(5)
    try:
        response = app.test_client().get("/health")
        assert response.status_code == 503
        assert response.headers["Retry-After"]
    finally:
        release.set()
        holder.join()
    assert app.test_client().get("/health").status_code == 200


class NoKeysConfig(SuiteConfig):
    """Card keys missing."""

    CARD_NUMBER_KEYS = None


class ShortKeyConfig(SuiteConfig):
    """A fingerprint key that is not 32 bytes."""

    CARD_FINGERPRINT_KEY = "c2hvcnQ="


@pytest.mark.parametrize(
    ("config", "name"), [(NoKeysConfig, "CARD_NUMBER_KEYS"), (ShortKeyConfig, "CARD_FINGERPRINT_KEY")]
)
def test_the_app_refuses_to_start_without_valid_keys(config, name):
    with pytest.raises(SystemExit, match=name):
        create_app(config)


def server_connection_id(app) -> int:
    """Return the server-side id of the connection an app's pool hands out next."""
    with app.app_context():
        connection_id = db.get_db().connection_id
        db.close_db()
    return connection_id


class FourConnectionsConfig(SuiteConfig):
    """A pool of four, on a database of its own so its connections can be counted."""

    DB_POOL_SIZE = 4
    DB_NAME = f"payments_pool_{secrets.token_hex(4)}"


def test_the_pool_opens_connections_only_as_they_are_needed(database, sql):
    settings = config_dict(FourConnectionsConfig)
    init_db(settings)
    try:
        client = create_app(FourConnectionsConfig).test_client()
        for _ in range(5):
            assert client.get("/health").status_code == 200
        opened = sql("SELECT COUNT(*) AS n FROM information_schema.processlist WHERE db = %s", (settings["DB_NAME"],))
        assert opened[0]["n"] == 1
    finally:
        sql(f"DROP DATABASE `{settings['DB_NAME']}`")


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_an_error(database, sql):
    app = create_app(SuiteConfig)
    client = app.test_client()
    assert client.get("/health").status_code == 200
    connection_id = server_connection_id(app)
    sql(f"KILL CONNECTION {int(connection_id)}")
    time.sleep(1.2)  # longer than the pool's idle time before it checks a connection
    assert client.get("/health").status_code == 200
    assert server_connection_id(app) != connection_id


def test_a_failed_connect_of_any_kind_gives_its_slot_back(monkeypatch):
    pool = db.ConnectionPool({"host": "127.0.0.1", "port": 3306}, 2)
    calls = []

    def connect(_settings, _sync_wait):
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("not a driver error")
        return "a connection"

    monkeypatch.setattr(db, "_ready_connection", connect)
    for _ in range(2):
        with pytest.raises(ServiceUnavailable):
            pool.acquire(0.1)
    assert pool.acquire(0.1) == "a connection"


class SharedKeyConfig(SuiteConfig):
    """The CVC keyring reuses the card-number key."""

    CARD_CVC_KEYS = SuiteConfig.CARD_NUMBER_KEYS


def test_one_key_for_two_purposes_is_refused():
    with pytest.raises(SystemExit, match="different keys"):
        create_app(SharedKeyConfig)


def test_gunicorn_itself_exits_with_a_clear_message_on_a_bad_key(database):
    environment = {**server_environment(database, free_port()), "CARD_CVC_KEYS": "1:abc"}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "Cannot start the Payments API: CARD_CVC_KEYS" in result.stderr + result.stdout
    assert "Booting worker" not in result.stderr


@pytest.mark.parametrize(
    "setting, message",
    [
        ("DB_PORT=abc", "DB_PORT must be a whole number from 1 to 65535, not 'abc'"),
        ("DB_POOL_SIZE=0", "DB_POOL_SIZE must be a whole number from 1 to 100, not '0'"),
        ("DB_POOL_WAIT_SECONDS=fast", "DB_POOL_WAIT_SECONDS must be a number from 0 to 60, not 'fast'"),
        ("DB_CONNECT_TIMEOUT=-1", "DB_CONNECT_TIMEOUT must be a whole number from 1 to 300, not '-1'"),
        ("LOG_LEVEL=LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("DB_WSREP_SYNC_WAIT=16", "DB_WSREP_SYNC_WAIT must be a whole number from 0 to 15, not '16'"),
        (
            "DB_HOST=db1:3306,db2:x",
            "DB_HOST must be host[:port], or a list of them separated by commas, not 'db1:3306,db2:x'",
        ),
        ("DB_HOST=db1,,db2", "DB_HOST must be host[:port], or a list of them separated by commas, not 'db1,,db2'"),
    ],
)
def test_a_malformed_setting_stops_the_cli_with_one_clear_line(database, setting, message):
    name, _, value = setting.partition("=")
    environment = {**server_environment(database, free_port()), name: value}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "purge-idempotency-keys"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"Cannot start the Payments API: {message}."
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text, servers",
    [
        ("db1", [("db1", 3306)]),
        ("db1:3311, db2 ,10.0.0.3:3313", [("db1", 3311), ("db2", 3306), ("10.0.0.3", 3313)]),
        ("[::1]:3307,[fe80::1],::1", [("::1", 3307), ("fe80::1", 3306), ("::1", 3306)]),
    ],
)
def test_db_host_names_one_server_or_a_list_with_ports_defaulting_to_db_port(text, servers):
    assert parse_servers(text, 3306) == servers


class DeadFirstServerConfig(SuiteConfig):
    """A server list whose first server does not answer."""

    DB_HOST = f"127.0.0.1:{free_port()},{SuiteConfig.DB_HOST}"


def test_a_server_list_is_tried_in_its_order_and_a_server_that_does_not_answer_is_skipped(database):
    assert create_app(DeadFirstServerConfig).test_client().get("/health").status_code == 200
    cnx = db.connect(db.connection_settings(config_dict(DeadFirstServerConfig)))
    try:
        assert rows_of(cnx, "SELECT DATABASE() AS name") == [{"name": database["DB_NAME"]}]
    finally:
        cnx.close()
