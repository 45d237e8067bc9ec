"""The /events resource: the history of every payment and user, read-only."""

from flask import Blueprint

from db import autocommit
from models import event_model
from routes.filters import event_filters, link_params
from schemas.event_schema import dump_event
from web.http import page_args, page_response

bp = Blueprint("events", __name__, url_prefix="/events")


@bp.get("")
def list_events():
    """List events in id order (the order they were written), one keyset page at a time, optionally filtered."""
    limit, after = page_args()
    filters = event_filters()
    with autocommit() as cursor:
        found = event_model.list_events(cursor, filters, after, limit + 1)
    return page_response(found, limit, dump_event, "events.list_events", **link_params(filters))
