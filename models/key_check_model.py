"""SQL for the check values of the card keys the database's data was written with."""

from datetime import datetime


def record_checks(cursor, checks: dict[tuple[str, int], bytes], now: datetime) -> None:
    """Store the check values of keys the database has none for; leave the ones it has as they are."""
    cursor.executemany(
        "INSERT INTO card_key_checks (variable, version, check_value, created_at) VALUES (%s, %s, %s, %s)"
        " ON DUPLICATE KEY UPDATE variable = variable",
        [(variable, version, value, now) for (variable, version), value in checks.items()],
    )


def stored_checks(cursor) -> dict[tuple[str, int], bytes]:
    """Return every stored check value by (variable, version)."""
    cursor.execute("SELECT variable, version, check_value FROM card_key_checks")
    return {(row["variable"], row["version"]): bytes(row["check_value"]) for row in cursor.fetchall()}
