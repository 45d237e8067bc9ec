#!/usr/bin/env bash
# Events walkthrough: a payment's life (created, updated, completed, deleted) read back as its
# history, oldest first, with the card masked; then GET /events filtered by type and object.
# Usage: API_KEY=<key> scripts/curl/events.sh   (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "A user and a card payment for them"
request 201 POST /users '{"name": "History Holder", "email": "history.holder+'"$RUN_ID"'@example.com"}'
user_id=$(json id)
request 201 POST /payments '{"user_id": '"$user_id"', "amount": "42.00", "currency": "INR", "payment_method": "Credit Card", "card_no": "4111111111111111", "card_expiry": "2099-12-01", "card_cvc": "123"}'
payment_id=$(json id)

step "Change its description, complete it, delete it"
request 200 PATCH "/payments/$payment_id" '{"description": "Order 1001"}'
request 200 PATCH "/payments/$payment_id" '{"status": "completed"}'
request 204 DELETE "/payments/$payment_id"

step "Its history, oldest first, still there after the delete (scope events:read)"
request 200 GET "/payments/$payment_id/events"
expect "first event" "$(json 0.type)" "payment.created"
expect "second event" "$(json 1.type)" "payment.updated"
expect "third event" "$(json 2.type)" "payment.completed"
expect "last event" "$(json 3.type)" "payment.deleted"
expect "the card, masked" "$(json 3.data.card_no)" "XXXX-XXXX-XXXX-1111"
expect_no_cvc

step "GET /events: the user's events, filtered by object"
request 200 GET "/events?object_type=user&object_id=$user_id"
expect "event" "$(json 0.type)" "user.created"
expect "its user" "$(json 0.data.id)" "$user_id"

step "GET /events: a type that does not exist is 400"
request 400 GET "/events?type=payment.exploded"
