"""SQL for events: inserted with the change they record, read in id order, purged only past retention."""

from datetime import datetime

from models import in_list, parse_datetime, parsed_rows, select_list

COLUMNS = ("id", "type", "object_type", "object_id", "created_at", "actor", "request_id", "data")
TEXT_PARSERS = {"created_at": parse_datetime}
PAGE_COLUMNS = select_list(COLUMNS, TEXT_PARSERS)
# Each filter of GET /events and the condition it adds.
FILTER_CONDITIONS = {
    "type": "type = %s",
    "object_type": "object_type = %s",
    "object_id": "object_id = %s",
    "created_after": "created_at > %s",
    "created_before": "created_at < %s",
}
PURGE_BATCH = 5_000


def insert_event(cursor, event: dict) -> int:
    """Insert one event (type, object_type, object_id, created_at, actor, request_id, data as JSON text)."""
    cursor.execute(
        "INSERT INTO events (type, object_type, object_id, created_at, actor, request_id, data)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        tuple(event[name] for name in COLUMNS[1:]),
    )
    return cursor.lastrowid


def event_exists(cursor, event_id: int) -> bool:
    """Return whether an event with this id exists."""
    cursor.execute("SELECT id FROM events WHERE id = %s", (event_id,))
    return bool(cursor.fetchall())


def list_events(cursor, filters: dict, after: int, limit: int) -> list[dict]:
    """Return up to `limit` events matching `filters` with ids above `after`, in id order."""
    conditions = [FILTER_CONDITIONS[name] for name in FILTER_CONDITIONS if name in filters]
    values = [after, *(filters[name] for name in FILTER_CONDITIONS if name in filters), limit]
    where = " AND ".join(["id > %s", *conditions])
    cursor.execute(f"SELECT {PAGE_COLUMNS} FROM events WHERE {where} ORDER BY id LIMIT %s", values)
    return parsed_rows(cursor, TEXT_PARSERS)


def purge_events(cursor, before: datetime) -> int:
    """Delete one batch of events created before `before`, with their webhook deliveries; return how many went.

    Run it in a transaction, so an event and its deliveries go together. The delete trigger lets
    a row go only when the session names a cutoff after it, so a stray DELETE elsewhere is still
    refused.
    """
    cursor.execute("SELECT id FROM events WHERE created_at < %s ORDER BY id LIMIT %s FOR UPDATE", (before, PURGE_BATCH))
    ids = [row["id"] for row in cursor.fetchall()]
    if not ids:
        return 0
    marks = in_list(ids)
    cursor.execute(
        "DELETE webhook_attempts FROM webhook_attempts JOIN webhook_deliveries"
        f" ON webhook_deliveries.id = webhook_attempts.delivery_id WHERE webhook_deliveries.event_id IN ({marks})",
        ids,
    )
    cursor.execute(f"DELETE FROM webhook_deliveries WHERE event_id IN ({marks})", ids)
    cursor.execute("SET @events_purge_before = %s", (before,))
    try:
        cursor.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
        return cursor.rowcount
    finally:
        cursor.execute("SET @events_purge_before = NULL")
