"""SQL for Idempotency-Key records."""

from datetime import datetime

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from models import only_row

COLUMNS = "key_hash, request_hash, response_status, response_body, location, created_at"


def claim_key(cursor, key_hash: bytes, request_hash: bytes, now: datetime) -> bool:
    """Record a key as in flight; return False when a record for it already exists."""
    try:
        cursor.execute(
            "INSERT INTO idempotency_keys (key_hash, request_hash, created_at) VALUES (%s, %s, %s)",
            (key_hash, request_hash, now),
        )
    except IntegrityError as error:
        if error.errno == errorcode.ER_DUP_ENTRY:
            return False
        raise
    return True


def get_key(cursor, key_hash: bytes) -> dict | None:
    """Return the record of a key, or None."""
    cursor.execute(f"SELECT {COLUMNS} FROM idempotency_keys WHERE key_hash = %s", (key_hash,))
    return only_row(cursor)


def reclaim_key(cursor, record: dict, request_hash: bytes, now: datetime) -> bool:
    """Take over an expired or abandoned record, unless another request changed it first."""
    cursor.execute(
        "UPDATE idempotency_keys SET request_hash = %s, response_status = NULL, response_body = NULL,"
        " location = NULL, created_at = %s WHERE key_hash = %s AND created_at = %s AND response_status <=> %s",
        (request_hash, now, record["key_hash"], record["created_at"], record["response_status"]),
    )
    return cursor.rowcount == 1


def complete_key(cursor, key_hash: bytes, claimed_at: datetime, status: int, body: str, location: str | None) -> bool:
    """Store the response of the request holding the claim made at `claimed_at`; False if it lost it."""
    cursor.execute(
        "UPDATE idempotency_keys SET response_status = %s, response_body = %s, location = %s"
        " WHERE key_hash = %s AND created_at = %s AND response_status IS NULL",
        (status, body, location, key_hash, claimed_at),
    )
    return cursor.rowcount == 1


def release_key(cursor, key_hash: bytes, claimed_at: datetime) -> None:
    """Forget the in-flight claim made at `claimed_at`, so the key can be retried."""
    cursor.execute(
        "DELETE FROM idempotency_keys WHERE key_hash = %s AND created_at = %s AND response_status IS NULL",
        (key_hash, claimed_at),
    )


def purge_keys(cursor, before: datetime) -> int:
    """Delete records created before `before`; return how many."""
    cursor.execute("DELETE FROM idempotency_keys WHERE created_at < %s", (before,))
    return cursor.rowcount
