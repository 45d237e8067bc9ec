"""The /webhook-endpoints resource: where webhooks go, their secrets, their deliveries, a test ping."""

from datetime import timedelta

from flask import Blueprint, current_app, jsonify, url_for

from db import autocommit, transaction
from models import webhook_model
from schemas.webhook_schema import (
    dump_delivery,
    dump_endpoint,
    load_endpoint_changes,
    load_new_endpoint,
    load_rotation,
)
from services import events, webhooks
from utils.errors import EndpointDisabled, NotFound
from utils.formatting import utc_now
from web.http import accepted, created, json_body, no_content, optional_json_body, page_args, page_response, parse_id

bp = Blueprint("webhooks", __name__, url_prefix="/webhook-endpoints")


def _secret_keys():
    """Return the keys that encrypt the endpoints' secrets."""
    return current_app.extensions["webhook_secret_keys"]


def _locked_endpoint(cursor, endpoint_id: int) -> dict:
    """Return an endpoint's row locked for this transaction, or raise 404."""
    endpoint = webhook_model.get_endpoint(cursor, endpoint_id, for_update=True)
    if endpoint is None:
        raise NotFound("No webhook endpoint has this id.")
    return endpoint


@bp.post("")
def create_endpoint():
    """Create an endpoint and return it with its signing secret, shown this once."""
    endpoint = load_new_endpoint(json_body())
    secret = webhooks.new_secret()
    with transaction() as cursor:
        endpoint_id = webhook_model.create_endpoint(
            cursor, {**endpoint, "secret": webhooks.encrypt_secret(_secret_keys(), secret)}, utc_now()
        )
        endpoint = webhook_model.get_endpoint(cursor, endpoint_id)
    return created({**dump_endpoint(endpoint), "secret": secret}, url_for(".get_endpoint", endpoint_id=endpoint_id))


@bp.get("")
def list_endpoints():
    """List endpoints in id order, one keyset page at a time."""
    limit, after = page_args()
    with autocommit() as cursor:
        found = webhook_model.list_endpoints(cursor, after, limit + 1)
    return page_response(found, limit, dump_endpoint, "webhooks.list_endpoints")


@bp.get("/<endpoint_id>")
def get_endpoint(endpoint_id: str):
    """Return one endpoint (without its secret)."""
    with autocommit() as cursor:
        endpoint = webhook_model.get_endpoint(cursor, parse_id(endpoint_id))
    if endpoint is None:
        raise NotFound("No webhook endpoint has this id.")
    return jsonify(dump_endpoint(endpoint))


@bp.patch("/<endpoint_id>")
def update_endpoint(endpoint_id: str):
    """Change an endpoint's url, event types, description, or whether it is enabled."""
    endpoint_id = parse_id(endpoint_id)
    changes = load_endpoint_changes(json_body())
    with transaction() as cursor:
        _locked_endpoint(cursor, endpoint_id)
        webhook_model.update_endpoint(cursor, endpoint_id, changes, utc_now())
        endpoint = webhook_model.get_endpoint(cursor, endpoint_id)
    return jsonify(dump_endpoint(endpoint))


@bp.delete("/<endpoint_id>")
def delete_endpoint(endpoint_id: str):
    """Delete an endpoint and its deliveries; nothing more is sent to it."""
    endpoint_id = parse_id(endpoint_id)
    with transaction() as cursor:
        _locked_endpoint(cursor, endpoint_id)
        webhook_model.delete_endpoint(cursor, endpoint_id)
    return no_content()


@bp.post("/<endpoint_id>/rotate-secret")
def rotate_secret(endpoint_id: str):
    """Give an endpoint a new secret, shown this once; the old one may keep signing for a while."""
    endpoint_id = parse_id(endpoint_id)
    keep_for = load_rotation(optional_json_body())
    secret, now = webhooks.new_secret(), utc_now()
    with transaction() as cursor:
        endpoint = _locked_endpoint(cursor, endpoint_id)
        previous = endpoint["secret"] if keep_for else None
        expires_at = now + timedelta(seconds=keep_for) if keep_for else None
        new = webhooks.encrypt_secret(_secret_keys(), secret)
        webhook_model.set_secret(cursor, endpoint_id, new, previous, expires_at, now)
        endpoint = webhook_model.get_endpoint(cursor, endpoint_id)
    return jsonify({**dump_endpoint(endpoint), "secret": secret, "previous_secret_expires_at": expires_at})


@bp.get("/<endpoint_id>/deliveries")
def list_deliveries(endpoint_id: str):
    """List an endpoint's deliveries, oldest first, each with its attempts."""
    endpoint_id = parse_id(endpoint_id)
    limit, after = page_args()
    with autocommit() as cursor:
        if webhook_model.get_endpoint(cursor, endpoint_id) is None:
            raise NotFound("No webhook endpoint has this id.")
        found = webhook_model.list_deliveries(cursor, endpoint_id, after, limit + 1)
        attempts = webhook_model.attempts_of(cursor, [delivery["id"] for delivery in found[:limit]])
    by_delivery: dict[int, list[dict]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    return page_response(
        found,
        limit,
        lambda delivery: dump_delivery(delivery, by_delivery.get(delivery["id"], [])),
        "webhooks.list_deliveries",
        endpoint_id=endpoint_id,
    )


@bp.post("/<endpoint_id>/test")
def send_test(endpoint_id: str):
    """Queue a ping event to this endpoint alone."""
    endpoint_id = parse_id(endpoint_id)
    with transaction() as cursor:
        if not _locked_endpoint(cursor, endpoint_id)["enabled"]:
            raise EndpointDisabled()
        event_id = events.record_ping(cursor, endpoint_id)
        delivery_id = webhook_model.queue_delivery(cursor, event_id, endpoint_id)
    return accepted({"event_id": event_id, "delivery_ids": [delivery_id]})
