"""`flask rotate-keys`: re-encrypt under the newest key, resumably, reporting bad values."""

import secrets
import threading

import mysql.connector
import pytest

from app import create_app
from db import connection_settings
from services.payments import card_context
from tests.conftest import SuiteConfig, card_payment, config_dict, init_test_db, run_sql, unique_email
from utils.crypto_utils import generate_key

OLD_KEYS = {"CARD_NUMBER_KEYS": f"1:{generate_key()}", "CARD_CVC_KEYS": f"1:{generate_key()}"}
NEW_NUMBER_KEY, NEW_CVC_KEY = generate_key(), generate_key()


def config_with(**overrides) -> type:
    """Return a config class on the rotation test's own database."""
    return type("RotationConfig", (RotationDatabase,), overrides)


class RotationDatabase(SuiteConfig):
    """A database of its own, so rotating does not touch other tests' rows."""

    DB_NAME = f"payments_rotation_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def rotation_db(database):
    """Create the rotation database and drop it afterwards."""
    settings = config_dict(RotationDatabase)
    init_test_db(settings)
    yield settings
    cnx = mysql.connector.connect(**connection_settings(settings, with_database=False))
    cnx.cursor().execute(f"DROP DATABASE IF EXISTS `{RotationDatabase.DB_NAME}`")
    cnx.close()


def seed_payments(client, count: int) -> list[dict]:
    """Create payments, half of them pending (they keep their CVC)."""
    user = client.post("/users", json={"name": "R", "email": unique_email()}).get_json()
    payments = []
    for index in range(count):
        status = "pending" if index % 2 else "completed"
        response = client.post("/payments", json=card_payment(user["id"], status=status))
        assert response.status_code == 201
        payments.append(response.get_json())
    return payments


def stored_values(settings: dict) -> list[dict]:
    """Return every payment's ciphertexts and fingerprint."""
    statement = "SELECT id, card_fingerprint, card_no_encrypted, card_cvc_encrypted FROM payments ORDER BY id"
    return run_sql(settings, statement)


def assert_all_decrypt_with_only_the_new_keys(settings: dict) -> None:
    """Check every stored value is under version 2 and decrypts with the old keys removed."""
    app = create_app(config_with(CARD_NUMBER_KEYS=f"2:{NEW_NUMBER_KEY}", CARD_CVC_KEYS=f"2:{NEW_CVC_KEY}"))
    keys = app.extensions["card_keys"]
    for row in stored_values(settings):
        assert row["card_no_encrypted"][0] == 2
        number = keys["card_number"].decrypt(row["card_no_encrypted"], card_context("card_no", row["card_fingerprint"]))
        assert number == "4111111111111111"
        if row["card_cvc_encrypted"] is not None:
            cvc = keys["card_cvc"].decrypt(row["card_cvc_encrypted"], card_context("card_cvc", row["card_fingerprint"]))
            assert cvc == "123"


def rotating_app():
    """Return an app configured with the old and new keys (new ones encrypt)."""
    return create_app(
        config_with(
            CARD_NUMBER_KEYS=f"{OLD_KEYS['CARD_NUMBER_KEYS']},2:{NEW_NUMBER_KEY}",
            CARD_CVC_KEYS=f"{OLD_KEYS['CARD_CVC_KEYS']},2:{NEW_CVC_KEY}",
        )
    )


def test_rotation_reencrypts_everything_and_old_keys_can_be_removed(rotation_db):
    seed_payments(create_app(config_with(**OLD_KEYS)).test_client(), 12)
    result = rotating_app().test_cli_runner().invoke(args=["rotate-keys", "--batch-size", "5"])
    assert result.exit_code == 0, result.output
    assert "up to id" in result.output and "failed" in result.output
    assert_all_decrypt_with_only_the_new_keys(rotation_db)
    again = rotating_app().test_cli_runner().invoke(args=["rotate-keys"])
    assert "Done: 0 values re-encrypted" in again.output


def test_rotation_resumes_after_an_id(rotation_db):
    payments = seed_payments(create_app(config_with(**OLD_KEYS)).test_client(), 4)
    runner = rotating_app().test_cli_runner()
    result = runner.invoke(args=["rotate-keys", "--after", str(payments[1]["id"])])
    assert result.exit_code == 0, result.output
    versions = {row["id"]: row["card_no_encrypted"][0] for row in stored_values(rotation_db)}
    assert [versions[p["id"]] for p in payments] == [1, 1, 2, 2]
    assert runner.invoke(args=["rotate-keys"]).exit_code == 0
    assert_all_decrypt_with_only_the_new_keys(rotation_db)


# Flips one byte inside a stored card number ciphertext, so that its tag check fails.
TAMPER_CARD_NUMBER = (
    "UPDATE payments SET card_no_encrypted = INSERT(card_no_encrypted, 21, 1,"
    " IF(SUBSTRING(card_no_encrypted, 21, 1) = 'X', 'Y', 'X')) WHERE id = %s"
)


def test_a_value_failing_its_tag_is_reported_and_the_rest_rotated(rotation_db):
    payments = seed_payments(create_app(config_with(**OLD_KEYS)).test_client(), 3)
    run_sql(rotation_db, TAMPER_CARD_NUMBER, payments[0]["id"])
    result = rotating_app().test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 1
    assert f"payment {payments[0]['id']}: card_no_encrypted failed" in result.output
    versions = {row["id"]: row["card_no_encrypted"][0] for row in stored_values(rotation_db)}
    assert versions[payments[1]["id"]] == versions[payments[2]["id"]] == 2
    run_sql(rotation_db, "DELETE FROM payments WHERE id = %s", payments[0]["id"])


def test_rotation_runs_while_the_api_serves_and_erased_cvcs_stay_erased(rotation_db):
    old_client = create_app(config_with(**OLD_KEYS)).test_client()
    payments = [p for p in seed_payments(old_client, 40) if p["status"] == "pending"]
    api = rotating_app().test_client()

    def complete_payments():
        for payment in payments:
            assert api.patch(f"/payments/{payment['id']}", json={"status": "completed"}).status_code == 200

    serving = threading.Thread(target=complete_payments)
    serving.start()
    result = rotating_app().test_cli_runner().invoke(args=["rotate-keys", "--batch-size", "3"])
    serving.join()
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in stored_values(rotation_db)}
    assert all(rows[p["id"]]["card_cvc_encrypted"] is None for p in payments)
    assert_all_decrypt_with_only_the_new_keys(rotation_db)


def test_a_tampered_value_under_the_current_key_is_reported_too(rotation_db):
    app = create_app(config_with(**OLD_KEYS))
    payments = seed_payments(app.test_client(), 2)
    run_sql(rotation_db, TAMPER_CARD_NUMBER, payments[0]["id"])
    result = app.test_cli_runner().invoke(args=["rotate-keys"])
    assert result.exit_code == 1
    assert f"payment {payments[0]['id']}: card_no_encrypted failed" in result.output
    run_sql(rotation_db, "DELETE FROM payments WHERE id = %s", payments[0]["id"])


def test_a_batch_size_of_zero_is_refused(rotation_db):
    result = rotating_app().test_cli_runner().invoke(args=["rotate-keys", "--batch-size", "0"])
    assert result.exit_code == 2
