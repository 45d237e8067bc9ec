"""The /payments resource."""

from flask import Blueprint, current_app, jsonify, url_for

from db import Rollback, autocommit, transaction
from models import event_model, payment_model
from routes.filters import payment_filters
from schemas.event_schema import dump_event
from schemas.payment_schema import dump_payment, load_new_payment, load_payment_changes
from services import access, events
from services.idempotency import idempotent, remember_response
from services.payments import new_payment_record, plan_update, statuses_leading_to
from utils.errors import NotFound, ValidationFailed
from utils.formatting import utc_now
from web.http import created, json_body, no_content, page_args, page_response, parse_id

bp = Blueprint("payments", __name__, url_prefix="/payments")


def card_keys() -> dict:
    """Return the app's card keys."""
    return current_app.extensions["card_keys"]


@bp.get("")
def list_payments():
    """List payments in id order, one keyset page at a time, optionally filtered."""
    limit, after = page_args()
    filters = payment_filters()
    acting = access.acting_user_id()
    if acting is not None and filters.setdefault("user_id", acting) != acting:
        return page_response([], limit, dump_payment, "payments.list_payments", **filters)
    with autocommit() as cursor:
        payments = payment_model.list_payments(cursor, filters, after, limit + 1)
    return page_response(payments, limit, dump_payment, "payments.list_payments", **filters)


@bp.post("")
@idempotent
def create_payment():
    """Create a payment; card number and CVC are encrypted before they are stored."""
    record = new_payment_record(load_new_payment(payment_body()), card_keys())
    with transaction() as cursor:
        payment = dump_payment(payment_model.create_payment(cursor, record, utc_now()))
        events.record(cursor, "payment.created", payment)
        response = created(payment, url_for("payments.get_payment", payment_id=payment["id"]))
        remember_response(cursor, response)
    return response


def payment_body() -> dict:
    """Return a create request's body; a user token's payment is for its own user, whose id may be left out."""
    body, acting = json_body(), access.acting_user_id()
    if acting is None:
        return body
    if body.get("user_id") is None:
        return {**body, "user_id": acting}
    if body["user_id"] != acting:
        refuse_other_users(load_new_payment(body))
    return body


def refuse_other_users(fields: dict) -> None:
    """Refuse a user token's payment for another user exactly as one for a user who does not exist."""
    acting = access.acting_user_id()
    if acting is not None and fields.get("user_id", acting) != acting:
        raise ValidationFailed(errors={"user_id": "must name an existing user"})


def visible(payment: dict | None) -> dict:
    """Return a payment the caller may see; a missing one, or another user's for a user token, is 404."""
    if payment is None or not access.may_see_user(payment["user_id"]):
        raise NotFound("No payment has this id.")
    return payment


@bp.get("/<payment_id>")
def get_payment(payment_id: str):
    """Return one payment, its card masked."""
    with autocommit() as cursor:
        payment = visible(payment_model.get_payment(cursor, parse_id(payment_id)))
    return jsonify(dump_payment(payment))


@bp.route("/<payment_id>", methods=["PUT", "PATCH"])
def update_payment(payment_id: str):
    """Change the fields given of a payment, following its status lifecycle."""
    payment_id = parse_id(payment_id)
    changes = load_payment_changes(json_body())
    if set(changes) == {"status"}:
        payment = move_status(payment_id, changes["status"])
        if payment is not None:
            return jsonify(dump_payment(payment))
    with transaction() as cursor:
        payment = visible(payment_model.lock_payment(cursor, payment_id))
        refuse_other_users(changes)
        columns = plan_update(payment, changes, card_keys())
        if not columns:
            raise Rollback  # nothing to change: commit nothing, so a lost conflict still runs it again
        old_status, payment = payment["status"], {**payment, **columns, "updated_at": utc_now()}
        payment_model.update_payment(cursor, payment_id, columns, payment["updated_at"])
        events.record(cursor, events.payment_change_type(old_status, payment["status"]), dump_payment(payment))
    return jsonify(dump_payment(payment))


def move_status(payment_id: int, target: str) -> dict | None:
    """Make an allowed status change in one conditional UPDATE; return the payment, or None if it did not apply.

    No read before the write, unlike the locked read-modify-write. None (unknown payment, same
    status, a transition the lifecycle refuses) leaves the answer to the locked path.
    """
    sources, payment = statuses_leading_to(target), None
    if not sources:
        return None
    with transaction() as cursor:
        if not payment_model.move_status(cursor, payment_id, target, sources, utc_now(), access.acting_user_id()):
            raise Rollback  # a commit would mark the request as having changed data: never run again
        payment = payment_model.get_payment(cursor, payment_id)  # the UPDATE holds its row lock: it is there
        events.record(cursor, events.PAYMENT_STATUS_EVENTS[target], dump_payment(payment))
    return payment


@bp.delete("/<payment_id>")
def delete_payment(payment_id: str):
    """Delete a payment; its history stays."""
    payment_id = parse_id(payment_id)
    with transaction() as cursor:
        payment = visible(payment_model.lock_payment(cursor, payment_id))
        payment_model.delete_payment(cursor, payment_id)
        events.record(cursor, "payment.deleted", dump_payment(payment))
    return no_content()


@bp.get("/<payment_id>/events")
def list_payment_events(payment_id: str):
    """Return the history of one payment, oldest first, still there after the payment is deleted."""
    payment_id = parse_id(payment_id)
    limit, after = page_args()
    with autocommit() as cursor:
        found = event_model.list_events(cursor, {"object_type": "payment", "object_id": payment_id}, after, limit + 1)
    if not found and not after:
        raise NotFound("No payment has this id.")
    return page_response(found, limit, dump_event, "payments.list_payment_events", payment_id=payment_id)
