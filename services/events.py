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
TYPES = (
    "payment.created",
    "payment.updated",
    *PAYMENT_STATUS_EVENTS.values(),
    "payment.deleted",
    "user.created",
    "user.updated",
    "user.deleted",
)
OBJECT_TYPES = ("payment", "user")


def record(cursor, event_type: str, data: dict) -> None:
    """Write the event of a change made in the cursor's transaction; `data` is the object as the API returns it."""
    event_model.insert_event(
        cursor,
        {
            "type": event_type,
            "object_type": event_type.partition(".")[0],
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
