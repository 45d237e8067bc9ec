"""Events as the API returns them, and the filters of the event list."""

import json


def dump_event(event: dict) -> dict:
    """Return the public representation of an event row: the object as it was, who changed it, in which request."""
    return {
        "id": event["id"],
        "type": event["type"],
        "created_at": event["created_at"],
        "data": json.loads(event["data"]),
        "actor": json.loads(event["actor"]),
        "request_id": event["request_id"],
    }
