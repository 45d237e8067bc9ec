"""The /events resource: the history of every payment and user, read-only."""

from flask import Blueprint

from db import autocommit, transaction
from models import event_model, webhook_model
from routes.filters import event_filters, link_params
from schemas.event_schema import dump_event
from schemas.webhook_schema import load_redelivery
from utils.errors import NotFound, NothingToRedeliver
from web.http import accepted, optional_json_body, page_args, page_response, parse_id

bp = Blueprint("events", __name__, url_prefix="/events")


@bp.get("")
def list_events():
    """List events in id order (the order they were written), one keyset page at a time, optionally filtered."""
    limit, after = page_args()
    filters = event_filters()
    with autocommit() as cursor:
        found = event_model.list_events(cursor, filters, after, limit + 1)
    return page_response(found, limit, dump_event, "events.list_events", **link_params(filters))


@bp.post("/<event_id>/redeliver")
def redeliver_event(event_id: str):
    """Queue a new delivery of one event to one webhook endpoint, or to every endpoint it went to."""
    event_id = parse_id(event_id)
    endpoint_id = load_redelivery(optional_json_body())
    with transaction() as cursor:
        if not event_model.event_exists(cursor, event_id):
            raise NotFound("No event has this id.")
        if endpoint_id is None:
            endpoint_ids = webhook_model.endpoints_of_event(cursor, event_id)
        elif webhook_model.get_endpoint(cursor, endpoint_id, for_update=True) is None:
            raise NotFound("No webhook endpoint has this id.")
        else:
            endpoint_ids = [endpoint_id]
        if not endpoint_ids:
            raise NothingToRedeliver()
        delivery_ids = [webhook_model.queue_delivery(cursor, event_id, endpoint) for endpoint in endpoint_ids]
    return accepted({"event_id": event_id, "delivery_ids": delivery_ids})
