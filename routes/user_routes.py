"""The /users resource."""

from flask import Blueprint, current_app, jsonify, url_for

from db import autocommit, transaction
from models import payment_model, user_model
from routes.filters import payment_filters
from schemas.payment_schema import dump_payment
from schemas.token_schema import load_token_request
from schemas.user_schema import dump_user, load_new_user, load_user_changes
from services import access, events, tokens
from services.idempotency import idempotent, remember_response
from utils.errors import InsufficientScope, NotFound
from utils.formatting import utc_now
from web.http import created, json_body, no_content, page_args, page_response, parse_id

bp = Blueprint("users", __name__, url_prefix="/users")


def visible_user_id(text: str) -> int:
    """Parse a user id from the URL; a user token sees its own user only, any other is 404."""
    user_id = parse_id(text)
    if not access.may_see_user(user_id):
        raise NotFound("No user has this id.")
    return user_id


@bp.get("")
def list_users():
    """List users in id order, one keyset page at a time."""
    limit, after = page_args()
    with autocommit() as cursor:
        users = user_model.list_users(cursor, after, limit + 1)
    return page_response(users, limit, dump_user, "users.list_users")


@bp.post("")
@idempotent
def create_user():
    """Create a user."""
    user = load_new_user(json_body())
    with transaction() as cursor:
        user = dump_user(user_model.create_user(cursor, user, utc_now()))
        events.record(cursor, "user.created", user)
        response = created(user, url_for("users.get_user", user_id=user["id"]))
        remember_response(cursor, response)
    return response


@bp.get("/<user_id>")
def get_user(user_id: str):
    """Return one user."""
    with autocommit() as cursor:
        user = user_model.get_user(cursor, visible_user_id(user_id))
    if user is None:
        raise NotFound("No user has this id.")
    return jsonify(dump_user(user))


@bp.route("/<user_id>", methods=["PUT", "PATCH"])
def update_user(user_id: str):
    """Change the fields given of a user."""
    user_id = visible_user_id(user_id)
    changes = load_user_changes(json_body())
    with transaction() as cursor:
        user = user_model.get_user(cursor, user_id, for_update=True)
        if user is None:
            raise NotFound("No user has this id.")
        changes = {name: value for name, value in changes.items() if user[name] != value}
        if changes:
            user = {**user, **changes, "updated_at": utc_now()}
            user_model.update_user(cursor, user_id, changes, user["updated_at"])
            events.record(cursor, "user.updated", dump_user(user))
    return jsonify(dump_user(user))


@bp.delete("/<user_id>")
def delete_user(user_id: str):
    """Delete a user who has no payments."""
    user_id = parse_id(user_id)
    with transaction() as cursor:
        user = user_model.get_user(cursor, user_id, for_update=True)
        if user is None:
            raise NotFound("No user has this id.")
        user_model.delete_user(cursor, user_id)
        events.record(cursor, "user.deleted", dump_user(user))
    access.forget_user(user_id)
    return no_content()


@bp.get("/<user_id>/payments")
def list_user_payments(user_id: str):
    """List one user's payments in id order, one keyset page at a time."""
    user_id = visible_user_id(user_id)
    limit, after = page_args()
    filters = payment_filters(allowed=("status", "card_fingerprint"))
    with autocommit() as cursor:
        if user_model.get_user(cursor, user_id) is None:
            raise NotFound("No user has this id.")
        payments = payment_model.list_payments(cursor, {**filters, "user_id": user_id}, after, limit + 1)
    return page_response(payments, limit, dump_payment, "users.list_user_payments", user_id=user_id, **filters)


@bp.post("/<user_id>/tokens")
def create_token(user_id: str):
    """Mint a short-lived token that acts for this user only, with some of the caller's scopes."""
    user_id = parse_id(user_id)
    wanted = load_token_request(json_body())
    lacking = access.may_grant(wanted["scopes"])
    if lacking is not None:
        raise InsufficientScope(lacking, f"A credential can grant only scopes it holds; it lacks {lacking!r}.")
    with autocommit() as cursor:
        if not user_model.user_exists(cursor, user_id):
            raise NotFound("No user has this id.")
    keys = current_app.extensions["jwt_keys"]
    response = jsonify(tokens.mint(keys, user_id, wanted["scopes"], wanted["expires_in"], utc_now()))
    response.status_code = 201
    return response
