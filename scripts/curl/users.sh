#!/usr/bin/env bash
# Users walkthrough: create a user (the README's sample), list users, get one, update it with
# PUT and with PATCH (both change only the fields given), delete it, and see that it is gone.
# Usage: scripts/curl/users.sh            (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

email="john.doe+$RUN_ID@example.com"

step "Create a user: 201, with a Location header"
request 201 POST /users '{"name": "John Doe", "email": "'"$email"'", "phone": "1234567890", "country": "India"}'
user_id=$(json id)
expect "Location" "$(header Location)" "/users/$user_id"
expect "email" "$(json email)" "$email"

step "List users: a JSON array, oldest first (at most 5 here, after=0 is the start)"
request 200 GET "/users?limit=5"

step "Get the user"
request 200 GET "/users/$user_id"
expect "name" "$(json name)" "John Doe"

step "Update with PUT: only the fields given change"
request 200 PUT "/users/$user_id" '{"name": "John Q. Doe", "phone": "+91 98765-43210"}'
expect "name" "$(json name)" "John Q. Doe"
expect "country (unchanged)" "$(json country)" "India"

step "Update with PATCH: the same, one field here"
request 200 PATCH "/users/$user_id" '{"country": "France"}'
expect "country" "$(json country)" "France"
expect "name (unchanged)" "$(json name)" "John Q. Doe"

step "Delete the user: 204, no body"
request 204 DELETE "/users/$user_id"

step "It is gone: 404"
request 404 GET "/users/$user_id"
