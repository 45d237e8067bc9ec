"""The pool, transactions, init-db, health, and refusing to start without keys."""

import threading

import pytest

import db
from app import create_app
from tests.conftest import SuiteConfig, unique_email


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
