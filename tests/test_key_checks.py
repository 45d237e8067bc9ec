"""The database remembers the card keys its data was written with; a server with other keys is refused."""

import logging
import secrets

import pytest

from app import create_app
from config import load_keys
from tests import conftest
from tests.conftest import SuiteConfig, card_payment, config_dict, init_test_db, unique_email
from utils.crypto_utils import generate_key

REFUSED = "/problems/server-misconfigured"
SUITE_KEYS = {("CARD_FINGERPRINT_KEY", 0), ("CARD_NUMBER_KEYS", 1), ("CARD_CVC_KEYS", 1)}


class KeyCheckDatabase(SuiteConfig):
    """A database of its own: these tests record key versions that no other test may meet."""

    DB_NAME = f"payments_key_checks_{secrets.token_hex(4)}"


def app_with(**keys):
    """Return the app on this module's database with some of the suite's card keys replaced."""
    return create_app(type("OtherKeys", (KeyCheckDatabase,), keys))


def run_sql(statement: str) -> list[dict]:
    """Run one statement on this module's database; return its rows."""
    return conftest.run_sql(config_dict(KeyCheckDatabase), statement)


@pytest.fixture(scope="module")
def user(database) -> dict:
    """A user on a fresh database, created with the suite's keys, which the database thereby records."""
    init_test_db(config_dict(KeyCheckDatabase))
    response = app_with().test_client().post("/users", json={"name": "K", "email": unique_email()})
    yield response.get_json()
    run_sql(f"DROP DATABASE `{KeyCheckDatabase.DB_NAME}`")


def count_payments() -> int:
    """Return how many payments the database holds."""
    return run_sql("SELECT COUNT(*) AS n FROM payments")[0]["n"]


def recorded_keys() -> set[tuple[str, int]]:
    """Return the (variable, version) of every recorded check value."""
    return {(row["variable"], row["version"]) for row in run_sql("SELECT variable, version FROM card_key_checks")}


def test_the_first_server_records_a_check_value_of_each_key_and_not_the_key(user):
    assert SUITE_KEYS <= recorded_keys()
    keys = load_keys(config_dict(KeyCheckDatabase))
    plain = [keys["fingerprint"], keys["card_number"].keys[1], keys["card_cvc"].keys[1]]
    for row in run_sql("SELECT check_value FROM card_key_checks"):
        assert len(row["check_value"]) == 32 and not any(key in bytes(row["check_value"]) for key in plain)


def test_a_server_with_another_fingerprint_key_is_refused_writes_nothing_and_logs_once(user, caplog):
    other = app_with(CARD_FINGERPRINT_KEY=generate_key()).test_client()
    before = count_payments()

    for response in (other.post("/payments", json=card_payment(user["id"])), other.get("/health")):
        assert response.status_code == 500
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["type"] == REFUSED

    assert count_payments() == before
    logged = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(logged) == 1 and "written with: CARD_FINGERPRINT_KEY." in logged[0]


def test_a_refused_server_does_not_record_its_new_key_versions(user):
    other = app_with(
        CARD_NUMBER_KEYS=f"{SuiteConfig.CARD_NUMBER_KEYS},3:{generate_key()}", CARD_FINGERPRINT_KEY=generate_key()
    ).test_client()

    assert other.get("/health").status_code == 500
    assert ("CARD_NUMBER_KEYS", 3) not in recorded_keys()


def test_another_card_number_key_under_a_version_the_database_knows_is_refused(user):
    other = app_with(CARD_NUMBER_KEYS=f"1:{generate_key()}").test_client()

    response = other.post("/payments", json=card_payment(user["id"]))

    assert response.status_code == 500 and response.get_json()["type"] == REFUSED


def test_a_new_key_version_is_recorded_and_then_the_old_one_can_go(user):
    new_key = generate_key()
    rotating = app_with(CARD_NUMBER_KEYS=f"{SuiteConfig.CARD_NUMBER_KEYS},2:{new_key}").test_client()
    assert rotating.post("/payments", json=card_payment(user["id"])).status_code == 201
    assert ("CARD_NUMBER_KEYS", 2) in recorded_keys()

    rotated = app_with(CARD_NUMBER_KEYS=f"2:{new_key}").test_client()
    assert rotated.post("/payments", json=card_payment(user["id"])).status_code == 201


def test_flask_commands_refuse_keys_the_database_does_not_know(user):
    runner = app_with(CARD_CVC_KEYS=f"1:{generate_key()}").test_cli_runner()

    for command in (["init-db"], ["rotate-keys"], ["purge-idempotency-keys"]):
        result = runner.invoke(args=command)
        assert result.exit_code == 1, command
        assert "written with: CARD_CVC_KEYS version 1." in result.output, command
        assert "Traceback" not in result.output


def test_a_database_without_the_table_is_refused_until_init_db_adds_it(user):
    app = app_with()
    client = app.test_client()
    run_sql("DROP TABLE card_key_checks")
    app.extensions.pop("db_checked", None)

    response = client.get(f"/users/{user['id']}")
    assert response.status_code == 500 and response.get_json()["type"] == REFUSED

    assert app.test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    assert client.get(f"/users/{user['id']}").status_code == 200
    assert SUITE_KEYS <= recorded_keys()


@pytest.mark.parametrize(
    ("other_keys", "refused"),
    [
        ({"CARD_NUMBER_KEYS": f"1:{generate_key()}"}, "CARD_NUMBER_KEYS version 1"),
        ({"CARD_CVC_KEYS": f"1:{generate_key()}"}, "CARD_CVC_KEYS version 1"),
        ({"CARD_FINGERPRINT_KEY": generate_key()}, "CARD_FINGERPRINT_KEY"),
    ],
)
def test_keys_a_database_has_not_recorded_must_decrypt_the_card_data_it_holds(user, other_keys, refused):
    assert app_with().test_client().post("/payments", json=card_payment(user["id"])).status_code == 201
    run_sql("DELETE FROM card_key_checks")  # as in a database written before the table existed

    result = app_with(**other_keys).test_cli_runner().invoke(args=["init-db"])

    assert result.exit_code == 1
    assert f"do not decrypt the card data already in this database: {refused}." in result.output
    assert recorded_keys() == set()
    assert app_with().test_cli_runner().invoke(args=["init-db"]).exit_code == 0
    assert SUITE_KEYS <= recorded_keys()
