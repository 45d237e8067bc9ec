#!/usr/bin/env bash
# Access control walkthrough: no key is 401, a user token minted with the API key acts for one
# user only (its own user 200, another user 404, listing users 403), and a wrong token is 401.
# Usage: API_KEY=<key> scripts/curl/access.sh   (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "Without a key: 401, with a Bearer challenge"
NO_AUTH=1 request 401 GET /payments
expect "WWW-Authenticate" "$(header WWW-Authenticate)" 'Bearer realm="payments-api"'

step "Two users, made with the API key"
request 201 POST /users '{"name": "Token Holder", "email": "token.holder+'"$RUN_ID"'@example.com"}'
holder_id=$(json id)
request 201 POST /users '{"name": "Someone Else", "email": "someone.else+'"$RUN_ID"'@example.com"}'
other_id=$(json id)

step "Mint a user token for the first user (scope tokens:write): 201"
request 201 POST "/users/$holder_id/tokens" '{"scopes": ["users:read", "payments:read", "payments:write"], "expires_in": 600}'
expect "scopes" "$(json scopes)" '["users:read", "payments:read", "payments:write"]'
token=$(json token)

step "With the token: its own user is 200"
API_KEY=$token request 200 GET "/users/$holder_id"
expect "id" "$(json id)" "$holder_id"

step "With the token: a payment for its user (user_id may be left out)"
API_KEY=$token request 201 POST /payments '{"amount": "25.00", "currency": "INR", "payment_method": "UPI"}'
expect "user_id" "$(json user_id)" "$holder_id"

step "With the token: another user is 404, as if it did not exist"
API_KEY=$token request 404 GET "/users/$other_id"

step "With the token: listing users is 403"
API_KEY=$token request 403 GET /users
expect "WWW-Authenticate" "$(header WWW-Authenticate)" 'Bearer error="insufficient_scope", scope="users:read"'

step "A tampered token is 401"
API_KEY="${token}x" request 401 GET "/users/$holder_id"
expect "WWW-Authenticate" "$(header WWW-Authenticate)" 'Bearer realm="payments-api", error="invalid_token"'
