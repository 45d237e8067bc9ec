#!/usr/bin/env bash
# Payments walkthrough: create a user and a card payment (the README's sample body), read it back
# with the card masked and no CVC, retry the create with the same Idempotency-Key, list payments
# with filters and follow the Link header from page to page, move the payment pending -> completed,
# see that completed -> pending is refused (409), and delete a payment.
# Usage: scripts/curl/payments.sh         (BASE_URL=http://host:port to target another server)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "Create a user to pay with"
request 201 POST /users '{"name": "John Doe", "email": "john.doe+'"$RUN_ID"'@example.com", "phone": "1234567890", "country": "India"}'
user_id=$(json id)

# The README's sample payment, with this run's user, a card expiry far in the future (an expired card
# is refused), and no status, so it starts pending. 4111 1111 1111 1111 is a well-known test card.
payment='{
  "user_id": '"$user_id"',
  "amount": 500.0,
  "payment_method": "Credit Card",
  "card_no": "4111111111111111",
  "card_expiry": "2099-12-01",
  "card_cvc": "123",
  "currency": "INR",
  "description": "Payment for services"
}'
key="payment-$RUN_ID"

step "Create a card payment with an Idempotency-Key: 201, card masked, CVC never returned"
request 201 POST /payments "$payment" -H "Idempotency-Key: $key"
payment_id=$(json id)
first_body=$BODY
fingerprint=$(json card_fingerprint)
expect "Location" "$(header Location)" "/payments/$payment_id"
expect "card_no" "$(json card_no)" "XXXX-XXXX-XXXX-1111"
expect "amount" "$(json amount)" "500.00"
expect "status" "$(json status)" "pending"
expect_no_cvc

step "Retry it with the same key and body: the first answer again, nothing new is created"
request 201 POST /payments "$payment" -H "Idempotency-Key: $key"
expect "Idempotent-Replayed" "$(header Idempotent-Replayed)" "true"
expect "same body as the first answer" "$BODY" "$first_body"

step "The same key with another body is refused: 422"
request 422 POST /payments "${payment/500.0/600.0}" -H "Idempotency-Key: $key"

step "Get the payment: the card is masked, the CVC absent"
request 200 GET "/payments/$payment_id"
expect "card_no" "$(json card_no)" "XXXX-XXXX-XXXX-1111"
expect "card_brand" "$(json card_brand)" "visa"
expect_no_cvc

step "Two more payments: a Mastercard test card (spaces and MM/YY accepted), and a wallet payment in JPY"
request 201 POST /payments '{"user_id": '"$user_id"', "amount": "19.99", "currency": "usd", "payment_method": "Debit Card", "card_no": "5555 5555 5555 4444", "card_expiry": "12/99", "card_cvc": "321"}'
expect "card_no" "$(json card_no)" "XXXX-XXXX-XXXX-4444"
request 201 POST /payments '{"user_id": '"$user_id"', "amount": 1500, "currency": "JPY", "payment_method": "Wallet", "description": "Green tea"}'
wallet_id=$(json id)
expect "amount (JPY has no decimals)" "$(json amount)" "1500"

step "List this user's payments two at a time, following the Link header"
url="/payments?user_id=$user_id&limit=2"
pages=0
while [ -n "$url" ]; do
  request 200 GET "$url"
  expect_no_cvc
  pages=$((pages + 1))
  url=$(next_link)
done
expect "pages of 2 for 3 payments" "$pages" "2"

step "The same list through the user: GET /users/{id}/payments"
request 200 GET "/users/$user_id/payments"

step "Filter by status and by card fingerprint (every payment made with the same card)"
request 200 GET "/payments?user_id=$user_id&status=pending"
request 200 GET "/payments?card_fingerprint=$fingerprint&user_id=$user_id"
expect "payment made with that card" "$(json 0.id)" "$payment_id"

step "Complete the payment: PATCH status pending -> completed (the stored CVC is erased)"
request 200 PATCH "/payments/$payment_id" '{"status": "completed"}'
expect "status" "$(json status)" "completed"

step "A completed payment cannot go back to pending: 409"
request 409 PATCH "/payments/$payment_id" '{"status": "pending"}'

step "Refund it: completed -> refunded"
request 200 PATCH "/payments/$payment_id" '{"status": "refunded"}'
expect "status" "$(json status)" "refunded"

step "A user with payments cannot be deleted (payments are financial records): 409"
request 409 DELETE "/users/$user_id"

step "Delete the wallet payment: 204, then it is gone: 404"
request 204 DELETE "/payments/$wallet_id"
request 404 GET "/payments/$wallet_id"
