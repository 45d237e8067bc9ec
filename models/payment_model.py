"""SQL for payments: plain functions over a cursor, dicts out. Reads for the API never select ciphertexts."""

from datetime import datetime
from decimal import Decimal

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from models import only_row, parse_date, parse_datetime, parsed_rows, select_list
from utils.errors import ValidationFailed

PUBLIC = (
    "id",
    "user_id",
    "amount",
    "currency",
    "payment_method",
    "card_last4",
    "card_brand",
    "card_fingerprint",
    "card_expiry",
    "status",
    "description",
    "created_at",
    "updated_at",
)
TEXT_PARSERS = {
    "amount": Decimal,
    "card_expiry": parse_date,
    "created_at": parse_datetime,
    "updated_at": parse_datetime,
}
COLUMNS = ", ".join(PUBLIC)
PAGE_COLUMNS = select_list(PUBLIC, TEXT_PARSERS)
STORED = (
    "user_id",
    "amount",
    "currency",
    "payment_method",
    "card_no_encrypted",
    "card_last4",
    "card_brand",
    "card_fingerprint",
    "card_expiry",
    "card_cvc_encrypted",
    "status",
    "description",
)
FILTERS = ("user_id", "status", "card_fingerprint")
UPDATABLE = frozenset(STORED)


def create_payment(cursor, record: dict, now: datetime) -> dict:
    """Insert a payment from its stored columns and return the public row."""
    placeholders = ", ".join(["%s"] * (len(STORED) + 2))
    try:
        cursor.execute(
            f"INSERT INTO payments ({', '.join(STORED)}, created_at, updated_at) VALUES ({placeholders})",
            (*(record[name] for name in STORED), now, now),
        )
    except IntegrityError as error:
        raise _domain_error(error) from error
    return {"id": cursor.lastrowid, **record, "created_at": now, "updated_at": now}


def get_payment(cursor, payment_id: int) -> dict | None:
    """Return one payment's public columns, or None."""
    cursor.execute(f"SELECT {COLUMNS} FROM payments WHERE id = %s", (payment_id,))
    return only_row(cursor)


def lock_payment(cursor, payment_id: int) -> dict | None:
    """Return a payment with every stored column, locked until the transaction ends."""
    cursor.execute(
        f"SELECT id, {', '.join(STORED)}, created_at, updated_at FROM payments WHERE id = %s FOR UPDATE", (payment_id,)
    )
    return only_row(cursor)


def list_payments(cursor, filters: dict, after: int, limit: int) -> list[dict]:
    """Return up to `limit` payments matching `filters` with ids above `after`, in id order."""
    conditions = [f"{name} = %s" for name in FILTERS if name in filters]
    where = " AND ".join(["id > %s", *conditions])
    values = [after, *(filters[name] for name in FILTERS if name in filters), limit]
    cursor.execute(f"SELECT {PAGE_COLUMNS} FROM payments WHERE {where} ORDER BY id LIMIT %s", values)
    return parsed_rows(cursor, TEXT_PARSERS)


def update_payment(cursor, payment_id: int, columns: dict, now: datetime) -> None:
    """Apply column changes to a payment."""
    unknown = set(columns) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = ", ".join(f"{name} = %s" for name in columns)
    try:
        cursor.execute(
            f"UPDATE payments SET {assignments}, updated_at = %s WHERE id = %s",
            (*columns.values(), now, payment_id),
        )
    except IntegrityError as error:
        raise _domain_error(error) from error


def move_status(
    cursor, payment_id: int, target: str, sources: tuple[str, ...], now: datetime, owner: int | None = None
) -> bool:
    """Move a payment in one of `sources` (`owner`'s, if given) to `target`, erasing its CVC; return whether it moved.

    The UPDATE checks the current status and changes it under the row lock it takes, so of two
    conflicting transitions exactly one matches. For a target other than pending only.
    """
    placeholders = ", ".join(["%s"] * len(sources))
    owned, owner_params = ("", ()) if owner is None else (" AND user_id = %s", (owner,))
    # Through the primary key: by payments_status (which matches (status, id) as well), the UPDATE
    # would lock that index entry before waiting for the row, and deadlock with a locked change
    # that holds the row and then moves the entry.
    cursor.execute(
        "UPDATE payments FORCE INDEX (PRIMARY) SET status = %s, card_cvc_encrypted = NULL, updated_at = %s"
        f" WHERE id = %s AND status IN ({placeholders}){owned}",
        (target, now, payment_id, *sources, *owner_params),
    )
    return cursor.rowcount == 1


def _domain_error(error: IntegrityError) -> Exception:
    """Turn a known integrity failure into the API's error for it."""
    if error.errno == errorcode.ER_NO_REFERENCED_ROW_2:
        return ValidationFailed(errors={"user_id": "must name an existing user"})
    return error


def delete_payment(cursor, payment_id: int) -> bool:
    """Delete a payment; return whether one was deleted."""
    cursor.execute("DELETE FROM payments WHERE id = %s", (payment_id,))
    return cursor.rowcount == 1


def encrypted_batch(cursor, after: int, limit: int) -> list[dict]:
    """Return the next rows holding card ciphertexts, with ids above `after`, in id order."""
    cursor.execute(
        "SELECT id, card_fingerprint, card_no_encrypted, card_cvc_encrypted FROM payments"
        " WHERE id > %s AND (card_no_encrypted IS NOT NULL OR card_cvc_encrypted IS NOT NULL)"
        " ORDER BY id LIMIT %s",
        (after, limit),
    )
    return cursor.fetchall()


def latest_ciphertexts(cursor, limit: int) -> list[dict]:
    """Return the fingerprint and ciphertexts of the newest card payments, newest first."""
    cursor.execute(
        "SELECT card_fingerprint, card_no_encrypted, card_cvc_encrypted FROM payments"
        " WHERE card_no_encrypted IS NOT NULL ORDER BY id DESC LIMIT %s",
        (limit,),
    )
    return cursor.fetchall()


def replace_ciphertext(cursor, payment_id: int, column: str, old: bytes, new: bytes) -> bool:
    """Swap one ciphertext for another unless the row changed meanwhile; return whether it did."""
    if column not in ("card_no_encrypted", "card_cvc_encrypted"):
        raise ValueError(f"not a ciphertext column: {column}")
    cursor.execute(f"UPDATE payments SET {column} = %s WHERE id = %s AND {column} = %s", (new, payment_id, old))
    return cursor.rowcount == 1
