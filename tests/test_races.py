"""Concurrent requests against the live server: one winner, consistent state."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from db import connect, connection_settings
from tests import api
from tests.conftest import card_payment, rows_of, unique_email


def send_all(requests_to_send: list) -> list[requests.Response]:
    """Send requests at once from parallel threads."""
    with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
        return list(pool.map(lambda send: send(), requests_to_send))


def test_parallel_creates_with_one_email_give_one_201_and_the_rest_409(live_server, sql):
    email = unique_email()
    body = {"name": "Racer", "email": email}
    post = lambda: api.post(f"{live_server.url}/users", json=body, timeout=10)  # noqa: E731
    statuses = sorted(response.status_code for response in send_all([post] * 10))
    assert statuses == [201] + [409] * 9
    assert len(sql("SELECT id FROM users WHERE email = %s", (email,))) == 1


@pytest.mark.parametrize("round_number", range(5))
def test_conflicting_status_changes_have_exactly_one_winner(live_server, sql, round_number):
    user = api.post(f"{live_server.url}/users", json={"name": "R", "email": unique_email()}, timeout=10).json()
    payment = api.post(f"{live_server.url}/payments", json=card_payment(user["id"]), timeout=10).json()
    url = f"{live_server.url}/payments/{payment['id']}"
    targets = ["completed", "cancelled", "failed"] * 3

    def change_to(target):
        return lambda: (target, api.patch(url, json={"status": target}, timeout=10))

    results = send_all([change_to(target) for target in targets])
    winners = {target for target, response in results if response.status_code == 200}
    assert len(winners) == 1, [(t, r.status_code) for t, r in results]
    winner = winners.pop()
    for target, response in results:
        assert response.status_code == (200 if target == winner else 409)
    final = sql("SELECT status, card_cvc_encrypted FROM payments WHERE id = %s", (payment["id"],))
    assert final == [{"status": winner, "card_cvc_encrypted": None}]


def test_parallel_refunds_of_one_payment_refund_it_once(live_server):
    user = api.post(f"{live_server.url}/users", json={"name": "R", "email": unique_email()}, timeout=10).json()
    body = card_payment(user["id"], status="completed")
    payment = api.post(f"{live_server.url}/payments", json=body, timeout=10).json()
    url = f"{live_server.url}/payments/{payment['id']}"
    refund = lambda: api.put(url, json={"status": "refunded"}, timeout=10)  # noqa: E731
    responses = send_all([refund] * 6)
    assert all(response.status_code == 200 for response in responses)
    assert api.get(url, timeout=10).json()["status"] == "refunded"


def wait_for_a_lock_wait(cnx, seconds: float = 10.0) -> None:
    """Return once some transaction on a connection's server waits for a row lock; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not rows_of(cnx, "SELECT trx_id FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"):
        assert time.monotonic() < deadline, "no request ever waited for the row lock"
        # InnoDB refreshes this table only when it was last read over 0.1 s ago.
        time.sleep(0.15)


def test_a_status_change_queued_behind_a_locked_change_gets_409_not_503(live_server, sql):
    # The locked path (SELECT ... FOR UPDATE, then UPDATE) changes a status while a status-only
    # change waits for the row: the waiting one must not hold locks the first one needs (a deadlock).
    user = api.post(f"{live_server.url}/users", json={"name": "R", "email": unique_email()}, timeout=10).json()
    payment = api.post(f"{live_server.url}/payments", json=card_payment(user["id"]), timeout=10).json()
    # Row locks are a server's own (on a cluster, each node's): take it where the live server works.
    holder, watcher = (connect(connection_settings(live_server.settings)) for _ in range(2))
    try:
        holder.start_transaction()
        rows_of(holder, "SELECT id FROM payments WHERE id = %s FOR UPDATE", (payment["id"],))
        with ThreadPoolExecutor(max_workers=1) as pool:
            url = f"{live_server.url}/payments/{payment['id']}"
            waiting = pool.submit(api.patch, url, json={"status": "completed"}, timeout=30)
            wait_for_a_lock_wait(watcher)
            rows_of(holder, "UPDATE payments SET status = 'cancelled' WHERE id = %s", (payment["id"],))
            holder.commit()
            response = waiting.result()
    finally:
        holder.close()
        watcher.close()
    assert response.status_code == 409, response.text
    assert sql("SELECT status FROM payments WHERE id = %s", (payment["id"],)) == [{"status": "cancelled"}]
