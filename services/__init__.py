"""Domain and service logic between the routes and the models: the payment lifecycle, idempotency, card keys."""
