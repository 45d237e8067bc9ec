"""SQL for API keys: only hashes of the keys are stored, never the keys."""

from datetime import datetime

from models import only_row

COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, expires_at, revoked_at"


def create_key(cursor, key: dict, now: datetime) -> int:
    """Insert a key's record (name, prefix, key_hash, scopes, expires_at); return its id."""
    cursor.execute(
        "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s)",
        (key["name"], key["prefix"], key["key_hash"], key["scopes"], now, key["expires_at"]),
    )
    return cursor.lastrowid


def find_by_hash(cursor, key_hash: bytes) -> dict | None:
    """Return the record of the key with this hash, or None."""
    cursor.execute(f"SELECT {COLUMNS}, key_hash FROM api_keys WHERE key_hash = %s", (key_hash,))
    return only_row(cursor)


def list_keys(cursor) -> list[dict]:
    """Return every key's record, oldest first."""
    cursor.execute(f"SELECT {COLUMNS} FROM api_keys ORDER BY id")
    return cursor.fetchall()


def any_key_exists(cursor, *, lock: bool = False) -> bool:
    """Return whether any key was ever made in this database (revoked ones included).

    `lock` holds the table's end until the transaction ends, so two processes asking at once
    cannot both find it empty.
    """
    cursor.execute(f"SELECT id FROM api_keys ORDER BY id LIMIT 1{' FOR UPDATE' if lock else ''}")
    return bool(cursor.fetchall())


def revoke_key(cursor, key_id: int, now: datetime) -> bool:
    """Revoke a key that is not revoked yet; return whether it was."""
    cursor.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (now, key_id))
    return cursor.rowcount == 1


def get_key(cursor, key_id: int) -> dict | None:
    """Return one key's record, or None."""
    cursor.execute(f"SELECT {COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
    return only_row(cursor)


def touch_key(cursor, key_id: int, minute: datetime) -> None:
    """Record the minute a key was last used, unless a worker already recorded this minute or a later one."""
    cursor.execute(
        "UPDATE api_keys SET last_used_at = %s WHERE id = %s AND (last_used_at IS NULL OR last_used_at < %s)",
        (minute, key_id, minute),
    )
