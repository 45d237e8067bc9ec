"""Events: one row per change of a payment or user, written in the change's own transaction.

A change that rolls back takes its event with it, and no event is written without its change. An
event holds the object as the API returned it at that moment (the card masked, never a CVC), the
credential that made the change (its actor) and the request id.
"""

from models import event_model
from services import access
from utils.formatting import utc_now
from utils.json_provider import encode
from utils.logs import current_request_id

PAYMENT_STATUS_EVENTS = {
    "completed": "payment.completed",
    "failed": "payment.failed",
    "cancelled": "payment.cancelled",
    "refunded": "payment.refunded",
}
# The types of changes, which webhook endpoints subscribe to.
SUBSCRIBABLE_TYPES = (
    "payment.created",
    "payment.updated",
    *PAYMENT_STATUS_EVENTS.values(),
    "payment.deleted",
    "user.created",
    "user.updated",
    "user.deleted",
)
# A ping is sent only to the endpoint it tests (POST /webhook-endpoints/<id>/test).
PING = "ping"
TYPES = (*SUBSCRIBABLE_TYPES, PING)
OBJECT_TYPES = ("payment", "user", "webhook_endpoint")


def record(cursor, event_type: str, data: dict) -> int:
    """Write the event of a change made in the cursor's transaction; `data` is the object as the API returns it.

    The database queues its webhook deliveries in the same statement (a trigger on events).
    """
    return _insert(cursor, event_type, event_type.partition(".")[0], data)


def record_ping(cursor, endpoint_id: int) -> int:
    """Write a ping event for one webhook endpoint; return its id."""
    return _insert(cursor, PING, "webhook_endpoint", {"id": endpoint_id, "message": "A test of this endpoint."})


def _insert(cursor, event_type: str, object_type: str, data: dict) -> int:
    """Insert one event with the caller and request id of the current request; return its id."""
    return event_model.insert_event(
        cursor,
        {
            "type": event_type,
            "object_type": object_type,
            "object_id": data["id"],
            "created_at": utc_now(),
            "actor": encode(access.current_caller().actor()),
            "request_id": current_request_id(),
            "data": encode(data),
        },
    )


def payment_change_type(old_status: str, new_status: str) -> str:
    """Return the event type of a payment change: its new status's, or payment.updated when the status stayed."""
    if new_status != old_status and new_status in PAYMENT_STATUS_EVENTS:
        return PAYMENT_STATUS_EVENTS[new_status]
    return "payment.updated"
