"""SQL for Idempotency-Key records."""

from datetime import datetime

from mysql.connector import errorcode
from mysql.connector.errors import IntegrityError

from models import only_row

COLUMNS = "key_hash, request_hash, response_status, response_body, location, created_at"


def claim_key(cursor, key_hash: bytes, request_hash: bytes, now: datetime, legacy_hash: bytes | None = None) -> bool:
    """Record a key as in flight; return False when a record for it (or for its legacy hash) already exists."""
    if legacy_hash is None:
        statement = "INSERT INTO idempotency_keys (key_hash, request_hash, created_at) VALUES (%s, %s, %s)"
        params: tuple = (key_hash, request_hash, now)
    else:  # one statement, so that looking for the legacy record costs no round trip of its own
        statement = (
            "INSERT INTO idempotency_keys (key_hash, request_hash, created_at) SELECT %s, %s, %s FROM DUAL"
            " WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys WHERE key_hash = %s)"
        )
        params = (key_hash, request_hash, now, legacy_hash)
    try:
        cursor.execute(statement, params)
    except IntegrityError as error:
        if error.errno == errorcode.ER_DUP_ENTRY:
            return False
        raise
    return cursor.rowcount == 1


def get_key(cursor, key_hashes: tuple[bytes, ...]) -> dict | None:
    """Return the record of a key stored under any of its hashes (the first hash preferred), or None."""
    placeholders = ", ".join(["%s"] * len(key_hashes))
    cursor.execute(f"SELECT {COLUMNS} FROM idempotency_keys WHERE key_hash IN ({placeholders})", key_hashes)
    records = {bytes(record["key_hash"]): record for record in cursor.fetchall()}
    return next((records[key_hash] for key_hash in key_hashes if key_hash in records), None)


def upgrade_applied_at(cursor, name: str) -> datetime | None:
    """Return when a change of the stored data's format was applied to this database, or None."""
    cursor.execute("SELECT applied_at FROM schema_upgrades WHERE name = %s", (name,))
    row = only_row(cursor)
    return row and row["applied_at"]


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
