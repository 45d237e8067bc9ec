#!/usr/bin/env bash
# Errors walkthrough: every error is application/problem+json (type, title, status, detail).
# Shows 422 with the bad fields named in "errors", 409 for a duplicate email, 404 for unknown ids,
# 415 for a body that is not JSON, 400 for malformed JSON or bad query parameters, 405.
# Usage: scripts/curl/errors.sh           (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "422: invalid fields, each named in \"errors\""
request 422 POST /users '{"name": "", "email": "not-an-email", "phone": "12", "id": 7}'
expect "Content-Type" "$(header Content-Type)" "application/problem+json"
expect "errors.email" "$(json errors.email)" "must be a valid email address: An email address must have an @-sign."
expect "errors.id" "$(json errors.id)" "is read-only"

step "422: required fields missing"
request 422 POST /payments '{}'
expect "errors.amount" "$(json errors.amount)" "is required"

step "422: bad card fields (too short, expired, CVC as a number: a CVC is a string, it may start with 0)"
request 422 POST /payments '{"user_id": 1, "amount": 10, "currency": "INR", "payment_method": "Credit Card", "card_no": "1234 5678", "card_expiry": "2020-01-01", "card_cvc": 123}'
expect "errors.card_expiry" "$(json errors.card_expiry)" "the card has expired"

step "409: an email that is already taken (emails are compared lower-case)"
email="jane.roe+$RUN_ID@example.com"
request 201 POST /users '{"name": "Jane Roe", "email": "'"$email"'"}'
user_id=$(json id)
request 409 POST /users '{"name": "Jane Again", "email": "'"$(printf '%s' "$email" | tr '[:lower:]' '[:upper:]')"'"}'
request 204 DELETE "/users/$user_id"

step "404: unknown ids, and ids that are not positive integers"
request 404 GET /users/999999999999
request 404 GET /payments/abc
request 404 GET /no-such-thing

step "415: a body that is not JSON"
CONTENT_TYPE=text/plain request 415 POST /users 'name=John Doe'

step "400: malformed JSON, JSON that is not an object, bad query parameters"
request 400 POST /users '{"name": "John Doe", "email": '
request 400 POST /payments '["not", "an", "object"]'
request 400 GET "/payments?limit=0"
request 400 GET "/payments?status=paid"

step "405: a method the resource does not have (Allow lists those it has)"
request 405 DELETE /users
