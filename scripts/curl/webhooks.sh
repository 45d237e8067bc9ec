#!/usr/bin/env bash
# Webhooks walkthrough: subscribe an endpoint (its secret is shown once), see a change queue a
# delivery, send a test ping, redeliver an event, rotate the secret, disable, refuse an internal
# address, delete. The server's delivery worker (make run starts one) sends what is queued.
# Usage: API_KEY=<key> scripts/curl/webhooks.sh   (BASE_URL=http://host:port to target another server;
#        WEBHOOK_URL=<url> for the receiver, default https://example.com/hooks)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
url=${WEBHOOK_URL:-https://example.com/hooks}

step "Subscribe an endpoint to user and payment completions (scope webhooks:manage)"
request 201 POST /webhook-endpoints '{"url": "'"$url"'", "event_types": ["user.created", "payment.completed"], "description": "curl walkthrough"}'
endpoint_id=$(json id)
expect "the secret, shown this once" "$(json secret | cut -c1-6)" "whsec_"
request 200 GET "/webhook-endpoints/$endpoint_id"
expect "no secret when read back" "$(printf '%s' "$BODY" | grep -c '"secret"' || true)" "0"

step "A new user: its user.created event is queued for the endpoint"
request 201 POST /users '{"name": "Hook Watcher", "email": "hook.watcher+'"$RUN_ID"'@example.com"}'
request 200 GET "/webhook-endpoints/$endpoint_id/deliveries"
expect "the delivery's event" "$(json 0.event_type)" "user.created"
event_id=$(json 0.event_id)

step "Send it a test ping, and redeliver the user's event"
request 202 POST "/webhook-endpoints/$endpoint_id/test"
request 202 POST "/events/$event_id/redeliver" '{"endpoint_id": '"$endpoint_id"'}'
request 200 GET "/webhook-endpoints/$endpoint_id/deliveries"
expect "the ping" "$(json 1.event_type)" "ping"
expect "the redelivery, the same event" "$(json 2.event_id)" "$event_id"

step "Rotate the secret; the old one keeps signing for an hour"
request 200 POST "/webhook-endpoints/$endpoint_id/rotate-secret" '{"keep_previous_for": 3600}'

step "Disable it: a ping is refused while it is disabled"
request 200 PATCH "/webhook-endpoints/$endpoint_id" '{"enabled": false}'
request 409 POST "/webhook-endpoints/$endpoint_id/test"

step "An endpoint at an internal address is refused"
request 422 POST /webhook-endpoints '{"url": "https://169.254.169.254/latest/meta-data", "event_types": ["*"]}'

step "Delete it, with its deliveries"
request 204 DELETE "/webhook-endpoints/$endpoint_id"
request 404 GET "/webhook-endpoints/$endpoint_id"
