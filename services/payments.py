"""The payment lifecycle: status transitions, frozen fields, and card data protection."""

from typing import Any

from schemas.payment_schema import CARD_FIELDS, CARD_METHODS, amount_problem, check_card_changes
from utils.cards import card_brand
from utils.crypto_utils import fingerprint_card
from utils.errors import InvalidTransition, ValidationFailed

TRANSITIONS = {
    "pending": {"completed", "failed", "cancelled"},
    "completed": {"refunded"},
}
CARD_COLUMNS = (
    "card_no_encrypted",
    "card_last4",
    "card_brand",
    "card_fingerprint",
    "card_expiry",
    "card_cvc_encrypted",
)


def card_context(column: str, fingerprint: str) -> bytes:
    """Return the associated data binding a ciphertext to its column and card."""
    return f"payments.{column}|{fingerprint}".encode()


def protect_card(card_no: str, keys: dict) -> dict:
    """Return the stored columns for a card number: ciphertext, last four, brand, fingerprint."""
    fingerprint = fingerprint_card(card_no, keys["fingerprint"])
    return {
        "card_no_encrypted": keys["card_number"].encrypt(card_no, card_context("card_no", fingerprint)),
        "card_last4": card_no[-4:],
        "card_brand": card_brand(card_no),
        "card_fingerprint": fingerprint,
    }


def encrypt_cvc(cvc: str, fingerprint: str, keys: dict) -> bytes:
    """Encrypt a CVC, bound to its column and to the card it belongs to."""
    return keys["card_cvc"].encrypt(cvc, card_context("card_cvc", fingerprint))


def new_payment_record(payment: dict, keys: dict) -> dict:
    """Turn a loaded payment into its stored columns; the CVC is kept only while pending."""
    record = {name: value for name, value in payment.items() if name not in CARD_FIELDS}
    record.update(dict.fromkeys(CARD_COLUMNS))
    if payment["payment_method"] in CARD_METHODS:
        record.update(protect_card(payment["card_no"], keys))
        record["card_expiry"] = payment["card_expiry"]
        if payment["status"] == "pending":
            record["card_cvc_encrypted"] = encrypt_cvc(payment["card_cvc"], record["card_fingerprint"], keys)
    return record


def statuses_leading_to(target: str) -> tuple[str, ...]:
    """Return the statuses a payment may move to `target` from."""
    return tuple(status for status, targets in TRANSITIONS.items() if target in targets)


def check_transition(current: str, target: str) -> None:
    """Refuse a status change the lifecycle does not allow (same status is no change)."""
    if target != current and target not in TRANSITIONS.get(current, ()):
        raise InvalidTransition(f"A {current} payment cannot become {target}.")


def plan_update(row: dict, changes: dict, keys: dict) -> dict[str, Any]:
    """Return the columns an update changes on a locked payment row (empty: nothing changes)."""
    target = changes.get("status", row["status"])
    check_transition(row["status"], target)
    if row["status"] == "pending":
        columns = _pending_columns(row, changes, keys)
    else:
        _check_frozen_fields(row, changes, keys)
        columns = {name: changes[name] for name in ("status", "description") if name in changes}
    if target != "pending":
        # PCI DSS 3.3.1.2: the CVC is not kept after authorization, not even encrypted.
        columns["card_cvc_encrypted"] = None
    return {name: value for name, value in columns.items() if row.get(name) != value}


def _check_frozen_fields(row: dict, changes: dict, keys: dict) -> None:
    """Once a payment leaves pending, only status and description may change."""
    for name, value in changes.items():
        if name in ("status", "description"):
            continue
        if name == "card_cvc":
            # It was erased on leaving pending, so it cannot be compared, and must not be stored again.
            unchanged = False
        elif name == "card_no":
            unchanged = fingerprint_card(value, keys["fingerprint"]) == row["card_fingerprint"]
        else:
            unchanged = row.get(name) == value
        if not unchanged:
            raise InvalidTransition(f"{name} cannot change once the payment is {row['status']}.")


def _pending_columns(row: dict, changes: dict, keys: dict) -> dict[str, Any]:
    """Validate the merged state of a pending payment and return its changed columns."""
    columns = {name: value for name, value in changes.items() if name not in CARD_FIELDS}
    merged = {**row, **columns}
    problem = amount_problem(merged["amount"], merged["currency"])
    if problem and ("amount" in changes or "currency" in changes):
        raise ValidationFailed(errors={"amount": problem})
    if merged["payment_method"] not in CARD_METHODS:
        check_card_changes({"payment_method": merged["payment_method"], **_card_fields(changes)}, (), None)
        return {**columns, **dict.fromkeys(CARD_COLUMNS)}
    return {**columns, **_card_columns(row, changes, merged["payment_method"], keys)}


def _card_fields(changes: dict) -> dict:
    """Return only the card fields of a change."""
    return {name: changes[name] for name in CARD_FIELDS if name in changes}


def _card_columns(row: dict, changes: dict, method: str, keys: dict) -> dict[str, Any]:
    """Return the card columns of a pending card payment after a change."""
    # A new card (or a switch to a card method) needs its own expiry and CVC.
    needs_new_card = "card_no" in changes or row["payment_method"] not in CARD_METHODS
    required = CARD_FIELDS if needs_new_card else ()
    check_card_changes({"payment_method": method, **_card_fields(changes)}, required, row["card_brand"])
    columns: dict[str, Any] = {}
    if "card_no" in changes:
        columns.update(protect_card(changes["card_no"], keys))
    fingerprint = columns.get("card_fingerprint", row["card_fingerprint"])
    if "card_expiry" in changes:
        columns["card_expiry"] = changes["card_expiry"]
    if "card_cvc" in changes:
        columns["card_cvc_encrypted"] = encrypt_cvc(changes["card_cvc"], fingerprint, keys)
    return columns
