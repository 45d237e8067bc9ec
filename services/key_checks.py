"""The database remembers which card keys its data was written with, and the API refuses others."""

import hmac
import logging

from flask import Flask, current_app

import db
from models import key_check_model, payment_model
from services.key_rotation import COLUMNS as ROTATED_COLUMNS
from services.payments import card_context
from utils.crypto_utils import DecryptionError, Keyring, fingerprint_card, key_check_value
from utils.errors import CardKeysMismatch, ServerMisconfigured
from utils.formatting import utc_now

logger = logging.getLogger(__name__)
VARIABLES = {"card_number": "CARD_NUMBER_KEYS", "card_cvc": "CARD_CVC_KEYS"}
# The newest card payments searched for a ciphertext under each key version the database has not recorded.
DATA_SAMPLE_ROWS = 100


def init_app(app: Flask) -> None:
    """Check the card keys against the database before each process first uses it."""
    db.add_first_use_check(app, refuse_unknown_card_keys)


def refuse_unknown_card_keys(connection) -> None:
    """Before any card data is read or written: refuse keys the database does not know.

    A key mismatch lasts until a restart with other keys, so it is logged once and then answered
    from memory; a missing table is checked again on the next request, as `init-db` fixes it.
    """
    refusal = current_app.extensions.get("card_keys_refusal")
    if refusal is not None:
        raise CardKeysMismatch(refusal)
    cursor = db.dict_cursor(connection)
    try:
        check_card_keys(cursor, current_app.extensions["card_keys"])
    except ServerMisconfigured as error:
        logger.error("%s", error.explanation)
        if isinstance(error, CardKeysMismatch):
            current_app.extensions["card_keys_refusal"] = error.explanation
        raise
    finally:
        cursor.close()


def configured_checks(keys: dict) -> dict[tuple[str, int], bytes]:
    """Return the check value of every configured key by (variable, version); the fingerprint key is version 0."""
    checks = {("CARD_FINGERPRINT_KEY", 0): key_check_value(keys["fingerprint"])}
    for keyring_name, variable in VARIABLES.items():
        for version, key in keys[keyring_name].keys.items():
            checks[(variable, version)] = key_check_value(key)
    return checks


def check_card_keys(cursor, keys: dict) -> None:
    """Refuse keys that differ from the recorded ones, then record keys new to the database.

    Comparing before recording means a refused server writes nothing; comparing again after
    recording catches a server with other keys that recorded its own first.
    """
    checks = configured_checks(keys)
    stored = _stored_checks(cursor)
    _refuse_mismatches(checks, stored)
    new_keys = checks.keys() - stored.keys()
    if new_keys:
        _refuse_keys_the_data_disproves(cursor, keys, new_keys)
        key_check_model.record_checks(cursor, checks, utc_now())
        _refuse_mismatches(checks, key_check_model.stored_checks(cursor))


def _refuse_keys_the_data_disproves(cursor, keys: dict, new_keys: set) -> None:
    """Before recording keys, decrypt the newest card data stored under their versions with them.

    A database written before key checks existed would otherwise record the keys of whichever
    server started first, right or wrong (a fresh .env made by `make run`, say).
    """
    sample = payment_model.latest_ciphertexts(cursor, DATA_SAMPLE_ROWS)
    disproved = []
    for column, keyring_name, context_name in ROTATED_COLUMNS:
        keyring, variable = keys[keyring_name], VARIABLES[keyring_name]
        for version in sorted(version for version in keyring.keys if (variable, version) in new_keys):
            row = next((row for row in sample if row[column] and Keyring.version_of(row[column]) == version), None)
            if row is None:
                continue
            try:
                plaintext = keyring.decrypt(row[column], card_context(context_name, row["card_fingerprint"]))
            except DecryptionError:
                disproved.append(_key_name(variable, version))
                continue
            if keyring_name == "card_number" and ("CARD_FINGERPRINT_KEY", 0) in new_keys:
                if fingerprint_card(plaintext, keys["fingerprint"]) != row["card_fingerprint"]:
                    disproved.append(_key_name("CARD_FINGERPRINT_KEY", 0))
    if disproved:
        names = ", ".join(dict.fromkeys(disproved))  # the fingerprint key can be disproved by more than one row
        raise CardKeysMismatch(
            f"Card keys that do not decrypt the card data already in this database: {names}."
            " Refusing to record them; start the API with the keys (.env) that data was written with."
        )


def _stored_checks(cursor) -> dict[tuple[str, int], bytes]:
    """Return the recorded check values; a database without their table needs `init-db` first."""
    with db.table_required("card_key_checks"):
        return key_check_model.stored_checks(cursor)


def _refuse_mismatches(checks: dict, stored: dict) -> None:
    """Raise CardKeysMismatch naming every configured key whose recorded check value differs."""
    mismatched = [
        _key_name(variable, version)
        for (variable, version), value in checks.items()
        if (variable, version) in stored and not hmac.compare_digest(stored[(variable, version)], value)
    ]
    if mismatched:
        raise CardKeysMismatch(
            f"Card keys other than the ones the card data in this database was written with: {', '.join(mismatched)}."
            " Refusing to read or write it; start the API with the keys (.env) the database was created with."
        )


def _key_name(variable: str, version: int) -> str:
    """Name a key as an operator finds it in .env: the variable, and the version unless it has none (0)."""
    return f"{variable} version {version}" if version else variable
