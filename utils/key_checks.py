"""The database remembers which card keys its data was written with, and the API refuses others."""

import hmac

from mysql.connector import errorcode
from mysql.connector.errors import ProgrammingError

from models import key_check_model
from utils.crypto_utils import key_check_value
from utils.errors import CardKeysMismatch, ServerMisconfigured
from utils.formatting import utc_now


def configured_checks(keys: dict) -> dict[tuple[str, int], bytes]:
    """Return the check value of every configured key by (variable, version); the fingerprint key is version 0."""
    checks = {("CARD_FINGERPRINT_KEY", 0): key_check_value(keys["fingerprint"])}
    for variable, keyring in (("CARD_NUMBER_KEYS", keys["card_number"]), ("CARD_CVC_KEYS", keys["card_cvc"])):
        for version, key in keyring.keys.items():
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
    if checks.keys() - stored.keys():
        key_check_model.record_checks(cursor, checks, utc_now())
        _refuse_mismatches(checks, key_check_model.stored_checks(cursor))


def _stored_checks(cursor) -> dict[tuple[str, int], bytes]:
    """Return the recorded check values; a database without their table needs `init-db` first."""
    try:
        return key_check_model.stored_checks(cursor)
    except ProgrammingError as error:
        if error.errno != errorcode.ER_NO_SUCH_TABLE:
            raise
        raise ServerMisconfigured(
            "The table card_key_checks is missing: the database's schema is older than the server."
            " Run `flask --app app init-db` (`make run` does), which adds it and changes nothing else."
        ) from error


def _refuse_mismatches(checks: dict, stored: dict) -> None:
    """Raise CardKeysMismatch naming every configured key whose recorded check value differs."""
    mismatched = [
        f"{variable} version {version}" if version else variable
        for (variable, version), value in checks.items()
        if (variable, version) in stored and not hmac.compare_digest(stored[(variable, version)], value)
    ]
    if mismatched:
        raise CardKeysMismatch(
            f"Card keys other than the ones the card data in this database was written with: {', '.join(mismatched)}."
            " Refusing to read or write it; start the API with the keys (.env) the database was created with."
        )
