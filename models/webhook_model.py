"""SQL for webhook endpoints, their deliveries (the outbox) and every attempt to send one."""

from datetime import datetime

from models import in_list, only_row

ENDPOINT_COLUMNS = (
    "id, url, description, event_types, enabled, disabled_reason, failing_since, created_at, updated_at,"
    " secret, previous_secret, previous_secret_expires_at"
)
DELIVERY_COLUMNS = (
    "webhook_deliveries.id, event_id, events.type AS event_type, status, attempts, next_attempt_at,"
    " webhook_deliveries.created_at, finished_at"
)
ATTEMPT_COLUMNS = "id, delivery_id, attempted_at, status_code, error, duration_ms"
# The endpoint fields a PATCH may change, as columns.
CHANGEABLE = ("url", "description", "event_types", "enabled")


def create_endpoint(cursor, endpoint: dict, now: datetime) -> int:
    """Insert an endpoint (url, description, event_types text, secret ciphertext), enabled; return its id."""
    cursor.execute(
        "INSERT INTO webhook_endpoints (url, description, event_types, enabled, secret, created_at, updated_at)"
        " VALUES (%s, %s, %s, 1, %s, %s, %s)",
        (endpoint["url"], endpoint["description"], endpoint["event_types"], endpoint["secret"], now, now),
    )
    return cursor.lastrowid


def get_endpoint(cursor, endpoint_id: int, *, for_update: bool = False) -> dict | None:
    """Return one endpoint's row (secrets encrypted), or None."""
    lock = " FOR UPDATE" if for_update else ""
    cursor.execute(f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = %s{lock}", (endpoint_id,))
    return only_row(cursor)


def list_endpoints(cursor, after: int, limit: int) -> list[dict]:
    """Return up to `limit` endpoints with ids above `after`, in id order."""
    cursor.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
    )
    return cursor.fetchall()


def update_endpoint(cursor, endpoint_id: int, changes: dict, now: datetime) -> None:
    """Change some of an endpoint's CHANGEABLE columns; enabling it again forgets its failures."""
    assignments = [f"{name} = %s" for name in CHANGEABLE if name in changes]
    values = [changes[name] for name in CHANGEABLE if name in changes]
    if changes.get("enabled"):
        assignments += ["disabled_reason = NULL", "failing_since = NULL"]
    cursor.execute(
        f"UPDATE webhook_endpoints SET {', '.join(assignments)}, updated_at = %s WHERE id = %s",
        (*values, now, endpoint_id),
    )


def set_secret(cursor, endpoint_id: int, secret: bytes, previous: bytes | None, previous_expires_at, now) -> None:
    """Store a new secret, keeping the old one (signed with too) until `previous_expires_at` if given."""
    cursor.execute(
        "UPDATE webhook_endpoints SET secret = %s, previous_secret = %s, previous_secret_expires_at = %s,"
        " updated_at = %s WHERE id = %s",
        (secret, previous, previous_expires_at, now, endpoint_id),
    )


def delete_endpoint(cursor, endpoint_id: int) -> None:
    """Delete an endpoint with its deliveries and their attempts."""
    cursor.execute(
        "DELETE webhook_attempts FROM webhook_attempts JOIN webhook_deliveries"
        " ON webhook_deliveries.id = webhook_attempts.delivery_id WHERE webhook_deliveries.endpoint_id = %s",
        (endpoint_id,),
    )
    cursor.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint_id,))
    cursor.execute("DELETE FROM webhook_endpoints WHERE id = %s", (endpoint_id,))


def queue_delivery(cursor, event_id: int, endpoint_id: int) -> int:
    """Queue one delivery of an event to an endpoint, due now; return its id."""
    cursor.execute(
        "INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at, created_at)"
        " VALUES (%s, %s, 'pending', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
        (event_id, endpoint_id),
    )
    return cursor.lastrowid


def endpoints_of_event(cursor, event_id: int) -> list[int]:
    """Return the ids of the endpoints an event was ever queued for."""
    cursor.execute(
        "SELECT DISTINCT endpoint_id FROM webhook_deliveries WHERE event_id = %s ORDER BY endpoint_id", (event_id,)
    )
    return [row["endpoint_id"] for row in cursor.fetchall()]


def list_deliveries(cursor, endpoint_id: int, after: int, limit: int) -> list[dict]:
    """Return up to `limit` of an endpoint's deliveries with ids above `after`, newest last."""
    cursor.execute(
        f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries JOIN events ON events.id = webhook_deliveries.event_id"
        " WHERE endpoint_id = %s AND webhook_deliveries.id > %s ORDER BY webhook_deliveries.id LIMIT %s",
        (endpoint_id, after, limit),
    )
    return cursor.fetchall()


def attempts_of(cursor, delivery_ids: list[int]) -> list[dict]:
    """Return every attempt of the given deliveries, oldest first."""
    if not delivery_ids:
        return []
    cursor.execute(
        f"SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts WHERE delivery_id IN ({in_list(delivery_ids)}) ORDER BY id",
        delivery_ids,
    )
    return cursor.fetchall()


# --- The delivery worker ---------------------------------------------------------------------------


def claim_due(cursor, worker: str, limit: int, lease_seconds: float) -> list[dict]:
    """Lease up to `limit` due deliveries of enabled endpoints to `worker`; return them with event and endpoint.

    SKIP LOCKED passes over rows another worker is claiming at this moment, so two workers never
    take the same row (on a Galera cluster only workers on the same node see each other's locks;
    of two nodes' claims of one row, the second to commit fails with errno 1213, and nothing of it
    stays); the lease moves `next_attempt_at` past its end, so nobody else takes it
    until then, and a worker that dies leaves it due again when its lease ends. The enabled
    endpoints are read first, without a lock: writes in flight hold shared locks on them (the
    trigger that queues deliveries reads them), and a locking join would skip their deliveries.
    The last read locks too, so that it reads the latest rows, as the locking claim did: a plain
    read under REPEATABLE READ sees the transaction's snapshot, which misses events committed
    since, and would drop their deliveries from the batch while leasing them.
    """
    cursor.execute("SELECT id FROM webhook_endpoints WHERE enabled = 1")
    endpoint_ids = [row["id"] for row in cursor.fetchall()]
    if not endpoint_ids:
        return []
    cursor.execute(
        "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(3)"
        f" AND endpoint_id IN ({in_list(endpoint_ids)}) ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (*endpoint_ids, limit),
    )
    ids = [row["id"] for row in cursor.fetchall()]
    if not ids:
        return []
    cursor.execute(
        "UPDATE webhook_deliveries SET leased_by = %s,"
        f" next_attempt_at = UTC_TIMESTAMP(3) + INTERVAL %s SECOND WHERE id IN ({in_list(ids)})",
        (worker, lease_seconds, *ids),
    )
    cursor.execute(
        "SELECT webhook_deliveries.id, webhook_deliveries.attempts, webhook_deliveries.endpoint_id,"
        " events.id AS event_id, events.type, events.created_at AS event_created_at, events.data,"
        " webhook_endpoints.url, webhook_endpoints.secret, webhook_endpoints.previous_secret,"
        " webhook_endpoints.previous_secret_expires_at, webhook_endpoints.failing_since"
        " FROM webhook_deliveries JOIN events ON events.id = webhook_deliveries.event_id"
        " JOIN webhook_endpoints ON webhook_endpoints.id = webhook_deliveries.endpoint_id"
        f" WHERE webhook_deliveries.id IN ({in_list(ids)}) ORDER BY webhook_deliveries.id LOCK IN SHARE MODE",
        ids,
    )
    return cursor.fetchall()


def record_attempts(cursor, attempts: list[tuple]) -> None:
    """Record attempts, each (delivery_id, attempted_at, status_code, error, duration_ms), in one statement."""
    if attempts:
        rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(attempts))
        cursor.execute(
            f"INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, error, duration_ms) VALUES {rows}",
            [value for attempt in attempts for value in attempt],
        )


def finish_delivered(cursor, delivery_ids: list[int], worker: str) -> None:
    """Mark leased deliveries delivered, those `worker` still holds the lease of."""
    if delivery_ids:
        cursor.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,"
            " finished_at = UTC_TIMESTAMP(3), leased_by = NULL"
            f" WHERE id IN ({in_list(delivery_ids)}) AND leased_by = %s AND status = 'pending'",
            (*delivery_ids, worker),
        )


def finish_attempt(cursor, delivery_id: int, worker: str, status: str, next_attempt_at: datetime | None) -> bool:
    """Set a leased delivery's outcome; return False if `worker` no longer holds its lease."""
    finished = "UTC_TIMESTAMP(3)" if status != "pending" else "NULL"
    cursor.execute(
        f"UPDATE webhook_deliveries SET status = %s, attempts = attempts + 1, finished_at = {finished},"
        " next_attempt_at = COALESCE(%s, next_attempt_at), leased_by = NULL"
        " WHERE id = %s AND leased_by = %s AND status = 'pending'",
        (status, next_attempt_at, delivery_id, worker),
    )
    return cursor.rowcount == 1


def note_success(cursor, endpoint_id: int) -> None:
    """Forget an endpoint's failures after a delivery to it succeeded."""
    cursor.execute(
        "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = %s AND failing_since IS NOT NULL", (endpoint_id,)
    )


def note_failure(cursor, endpoint_id: int, now: datetime, disable_before: datetime) -> bool:
    """Note a failed attempt; disable the endpoint if it has failed since before `disable_before`; return if it was."""
    cursor.execute(
        "UPDATE webhook_endpoints SET failing_since = %s WHERE id = %s AND failing_since IS NULL", (now, endpoint_id)
    )
    cursor.execute(
        "UPDATE webhook_endpoints SET enabled = 0, updated_at = %s,"
        " disabled_reason = 'every delivery failed for too long: fix the receiver and enable the endpoint again'"
        " WHERE id = %s AND enabled = 1 AND failing_since < %s",
        (now, endpoint_id, disable_before),
    )
    return cursor.rowcount == 1
