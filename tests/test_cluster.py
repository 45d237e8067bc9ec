"""The API on a 3-node Galera cluster: failover, causal reads, ids, and races between API processes on different nodes.

API process N (its production server, uwsgi.ini) lists node N first, then the others, so each
favours its own node. The cluster comes from scripts/galera.sh: started here if it is not running
(and then stopped and deleted at the end), as scripts/test_cluster.sh does for `make test`.
Webhook delivery workers run on every node the same way, against the loopback receiver of
tests/webhook_receiver.py, which verifies every signature.
"""

import json
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import pytest

from tests import api, galera
from tests.conftest import TEST_DB_NAME, Answer, card_payment, config_dict, init_test_db, send_recorded, unique_email
from tests.live import free_port, start_server, stop_server
from tests.webhook_receiver import all_arrived

pytestmark = pytest.mark.cluster

TIMEOUT = 30  # above the seconds a cluster may pause its writes while it notices that a node died
ROUNDS = 5
LOAD_SECONDS = 3  # of load before node 1 is killed, while it is down, and after it is back


@pytest.fixture(scope="module")
def cluster():
    """The running cluster; started (and afterwards stopped and deleted) here if it was not running."""
    was_running = galera.running_nodes() == len(galera.NODES)
    galera.galera("start")
    yield
    if not was_running:
        galera.galera("stop", "--purge")


@pytest.fixture(scope="module")
def cluster_db(cluster, database):
    """This run's database on the cluster, with the suite's API key; dropped at the end."""
    settings = {**config_dict(), "DB_HOST": galera.HOSTS, "DB_NAME": f"{TEST_DB_NAME}_galera"}
    init_test_db(settings)
    yield settings
    galera.drop_database(settings)


@pytest.fixture(scope="module")
def apis(cluster_db, tmp_path_factory):
    """One API process per node, each listing its own node first; their base URLs, in node order."""
    processes, urls = [], []
    try:
        for node in galera.NODES:
            log_file = tmp_path_factory.mktemp(f"api-on-node{node}") / "server.log"
            process, url = start_server({**cluster_db, "DB_HOST": galera.starting_at(node)}, log_file)
            processes.append(process)
            urls.append(url)
        yield urls
    finally:
        for process in processes:
            stop_server(process)


def send_all(calls: list) -> list:
    """Run calls at once from parallel threads; return their results in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def on_every_node(settings: dict, statement: str, *params) -> list[list[dict]]:
    """Return a query's rows on each node, in node order."""
    return [galera.rows_on_node(settings, node, statement, params) for node in galera.NODES]


def new_user(url: str) -> dict:
    """Create a user through one API process; return it."""
    response = api.post(f"{url}/users", json={"name": "Cluster", "email": unique_email()}, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()


def new_payment(url: str, **fields) -> dict:
    """Create a card payment for a new user through one API process; return it."""
    response = api.post(f"{url}/payments", json=card_payment(new_user(url)["id"], **fields), timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_api_process_skips_a_server_in_its_list_that_does_not_answer(cluster_db, tmp_path):
    settings = {**cluster_db, "DB_HOST": f"127.0.0.1:{free_port()},{galera.starting_at(2)}"}
    process, url = start_server(settings, tmp_path / "server.log")
    try:
        user = new_user(url)
        fetched = api.get(f"{url}/users/{user['id']}", timeout=TIMEOUT)
    finally:
        stop_server(process)
    assert fetched.status_code == 200 and fetched.json() == user
    assert (
        on_every_node(cluster_db, "SELECT email FROM users WHERE id = %s", user["id"])
        == [[{"email": user["email"]}]] * 3
    )


def test_a_payment_written_through_one_node_is_read_at_once_through_the_others(apis):
    for writer in range(len(apis)):
        for _ in range(ROUNDS):
            payment = new_payment(apis[writer])
            readers = [url for index, url in enumerate(apis) if index != writer]
            reads = [api.get(f"{url}/payments/{payment['id']}", timeout=TIMEOUT) for url in readers]
            assert [(read.status_code, read.json()) for read in reads] == [(200, payment)] * len(readers)


def test_ids_made_on_every_node_are_unique_and_keyset_pages_list_each_once(apis):
    made = [new_user(url)["id"] for _ in range(4) for url in apis]
    assert len(set(made)) == len(made)
    seen, url = [], f"{apis[2]}/users?limit=5&after={min(made) - 1}"
    while url:
        page = api.get(url, timeout=TIMEOUT)
        assert page.status_code == 200, page.text
        seen += [user["id"] for user in page.json()]
        url = page.links.get("next", {}).get("url")
        url = url and (url if url.startswith("http") else f"{apis[2]}{url}")
    assert seen == sorted(set(seen)) and set(made) <= set(seen)


def test_one_email_sent_at_once_through_every_node_gives_one_201_and_409s(apis, cluster_db):
    for _ in range(ROUNDS):
        body = {"name": "Racer", "email": unique_email()}
        calls = [partial(api.post, f"{url}/users", json=body, timeout=TIMEOUT) for url in apis * 2]
        statuses = sorted(response.status_code for response in send_all(calls))
        assert statuses == [201] + [409] * (len(calls) - 1)
        rows = on_every_node(cluster_db, "SELECT COUNT(*) AS n FROM users WHERE email = %s", body["email"])
        assert rows == [[{"n": 1}]] * 3


def test_conflicting_status_changes_through_different_nodes_have_exactly_one_winner(apis, cluster_db):
    for _ in range(ROUNDS):
        payment = new_payment(apis[0])
        targets = ["completed", "cancelled", "failed"] * 2
        path = f"/payments/{payment['id']}"
        calls = [
            partial(api.patch, apis[i % 3] + path, json={"status": t}, timeout=TIMEOUT) for i, t in enumerate(targets)
        ]
        results = list(zip(targets, send_all(calls), strict=True))
        winners = {target for target, response in results if response.status_code == 200}
        assert len(winners) == 1, [(target, response.status_code) for target, response in results]
        winner = winners.pop()
        for target, response in results:
            assert response.status_code == (200 if target == winner else 409), response.text
        final = on_every_node(
            cluster_db, "SELECT status, card_cvc_encrypted FROM payments WHERE id = %s", payment["id"]
        )
        assert final == [[{"status": winner, "card_cvc_encrypted": None}]] * 3


def test_one_idempotency_key_sent_at_once_through_every_node_creates_one_payment(apis, cluster_db):
    for _ in range(ROUNDS):
        user = new_user(apis[0])
        body, headers = card_payment(user["id"]), {"Idempotency-Key": secrets.token_hex(16)}
        post = partial(api.post, json=body, headers=headers, timeout=TIMEOUT)
        calls = [partial(post, f"{url}/payments") for url in apis * 2]
        responses = send_all(calls)
        originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
        assert len(originals) == 1, [(r.status_code, r.headers.get("Idempotent-Replayed")) for r in responses]
        for response in responses:
            assert response.status_code in (201, 409), response.text
            if response.status_code == 201:
                assert response.json() == originals[0].json()
        rows = on_every_node(cluster_db, "SELECT id FROM payments WHERE user_id = %s", user["id"])
        assert rows == [[{"id": originals[0].json()["id"]}]] * 3


def test_refunds_of_one_payment_sent_at_once_through_every_node_all_succeed_and_refund_it_once(apis, cluster_db):
    payment = new_payment(apis[0], status="completed")
    path = f"/payments/{payment['id']}"
    calls = [partial(api.put, url + path, json={"status": "refunded"}, timeout=TIMEOUT) for url in apis * 2]
    assert [response.status_code for response in send_all(calls)] == [200] * len(calls)
    events = on_every_node(
        cluster_db,
        "SELECT COUNT(*) AS n FROM events WHERE object_type = 'payment' AND object_id = %s AND type = %s",
        payment["id"],
        "payment.refunded",
    )
    assert events == [[{"n": 1}]] * 3


@dataclass
class Load:
    """Steady writes and reads through every API process from a few threads each, every answer recorded."""

    urls: list[str]
    answers: list[tuple[str, Answer]] = field(default_factory=list)  # (the API process's URL, its answer)
    users: dict[int, set[str]] = field(default_factory=dict)  # acknowledged users: id -> {email}
    payments: dict[int, set[str]] = field(default_factory=dict)  # acknowledged payments: id -> statuses it may have
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> "Load":
        """Start two client threads per API process."""
        self.threads = [threading.Thread(target=self.run, args=(url,), daemon=True) for url in self.urls * 2]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        """Stop the clients and wait for them."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(TIMEOUT + 5)

    def send(self, session, url: str, kind: str, path: str, **kwargs) -> Answer:
        """Send one request to an API process; record what came back (a timeout or a refused connection too)."""
        answer = send_recorded(session, kind, url + path, TIMEOUT, **kwargs)
        with self.lock:
            self.answers.append((url, answer))
        return answer

    def run(self, url: str) -> None:
        """Create a user, a payment, complete it and read it back; again until stopped."""
        session = api.session()
        while not self.stopping.is_set():
            user = self.send(session, url, "POST /users", "/users", json={"name": "Load", "email": unique_email()})
            if user.status != 201:
                continue
            self.users[user.body["id"]] = {user.body["email"]}
            payment = self.send(session, url, "POST /payments", "/payments", json=card_payment(user.body["id"]))
            if payment.status != 201:
                continue
            path = f"/payments/{payment.body['id']}"
            change = self.send(session, url, "PATCH /payments/<id>", path, json={"status": "completed"})
            # A 503 says nothing about whether the change was made: it may have committed as the node died.
            self.payments[payment.body["id"]] = {"completed"} if change.ok else {"pending", "completed"}
            self.send(session, url, "GET /payments/<id>", path)

    def snapshot(self) -> list[tuple[str, Answer]]:
        """Return the answers so far."""
        with self.lock:
            return list(self.answers)


def test_a_node_killed_under_load_and_restarted_loses_no_acknowledged_write(apis, cluster_db):
    with Load(apis) as load:
        time.sleep(LOAD_SECONDS)
        killed_at = time.monotonic()
        galera.galera("kill", "1")
        time.sleep(LOAD_SECONDS)
        galera.galera("restart", "1")
        time.sleep(LOAD_SECONDS)
    answers = load.snapshot()
    print("\nNode-kill load figures:", json.dumps(load_figures(answers, killed_at), indent=2))

    bad = [str(a) for _, a in answers if a.error or not (a.ok or a.is_good_503())]
    assert bad == [], f"{len(bad)} answers were neither a success nor a 503 with Retry-After:\n" + "\n".join(bad[:10])
    for url in apis:  # each API process went on serving after node 1 died (the first node of the first process)
        assert any(a.ok and a.started > killed_at and a.kind == "POST /payments" for u, a in answers if u == url)
    assert_on_every_node(cluster_db, "SELECT id, email AS value FROM users WHERE id IN ({})", load.users)
    assert_on_every_node(cluster_db, "SELECT id, status AS value FROM payments WHERE id IN ({})", load.payments)
    for table in ("users", "payments", "events"):
        counts = on_every_node(cluster_db, f"SELECT COUNT(*) AS n, MAX(id) AS last FROM {table}")
        assert counts[0] == counts[1] == counts[2], (table, counts)


def assert_on_every_node(settings: dict, query: str, acknowledged: dict[int, set[str]]) -> None:
    """Check that every node holds each acknowledged row, with one of the values it may have."""
    assert acknowledged, "nothing was acknowledged"
    ids = sorted(acknowledged)
    statement = query.format(", ".join(["%s"] * len(ids)))
    for node, rows in zip(galera.NODES, on_every_node(settings, statement, *ids), strict=True):
        found = {row["id"]: row["value"] for row in rows}
        wrong = {i: found.get(i) for i in ids if found.get(i) not in acknowledged[i]}
        assert wrong == {}, f"node {node} lacks or changed {len(wrong)} of {len(ids)} acknowledged rows: {wrong}"


def load_figures(answers: list[tuple[str, Answer]], killed_at: float) -> dict:
    """Summarise the answers: counts by status, and the slowest request before and after the kill."""
    statuses = Counter(str(a.status or a.error) for _, a in answers)
    before = [a.seconds for _, a in answers if a.finished < killed_at]
    after = [a.seconds for _, a in answers if a.started >= killed_at]
    return {
        "answers": len(answers),
        "by_status": dict(statuses),
        "slowest_before_kill_s": round(max(before, default=0), 3),
        "slowest_after_kill_s": round(max(after, default=0), 3),
    }


# --- Webhook workers on different nodes --------------------------------------------------------


@pytest.fixture
def endpoint(apis, receiver):
    """The receiver subscribed to every event (through node 1's API process); unsubscribed at the end."""
    response = api.post(
        f"{apis[0]}/webhook-endpoints", json={"url": receiver.url, "event_types": ["*"]}, timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()
    receiver.secrets.append(endpoint["secret"])
    yield endpoint
    api.delete(f"{apis[0]}/webhook-endpoints/{endpoint['id']}", timeout=TIMEOUT)


def worker_on_node(workers, cluster_db: dict, node: int, **overrides):
    """Start a delivery worker whose DB_HOST lists `node` first, like the API processes."""
    return workers({**cluster_db, "DB_HOST": galera.starting_at(node)}, **overrides)


def queued_event_ids(cluster_db: dict, endpoint: dict) -> list[str]:
    """Return the event id of every delivery queued for an endpoint, as a webhook-id, read on node 3."""
    rows = galera.rows_on_node(
        cluster_db, 3, "SELECT event_id FROM webhook_deliveries WHERE endpoint_id = %s", (endpoint["id"],)
    )
    return sorted(str(row["event_id"]) for row in rows)


def delivery_statuses(cluster_db: dict, endpoint: dict) -> list[list[dict]]:
    """Return how many of an endpoint's deliveries each node holds in each status."""
    return on_every_node(
        cluster_db,
        "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = %s GROUP BY status",
        endpoint["id"],
    )


def test_webhook_workers_on_every_node_deliver_every_event_once_signed(apis, cluster_db, endpoint, receiver, workers):
    # A timeout no busy machine reaches, so that nothing is sent twice for want of an answer.
    started = [worker_on_node(workers, cluster_db, node, WEBHOOK_TIMEOUT_SECONDS=10) for node in galera.NODES]
    with Load(apis):
        time.sleep(LOAD_SECONDS * 2)
    expected = queued_event_ids(cluster_db, endpoint)
    assert len(expected) > 50
    assert receiver.wait_for(all_arrived(expected), 60)
    time.sleep(1)  # anything sent twice would arrive by now

    assert sorted(receiver.ids()) == expected
    assert all(item.verified_by == endpoint["secret"] for item in receiver.received)
    assert delivery_statuses(cluster_db, endpoint) == [[{"status": "delivered", "n": len(expected)}]] * 3
    for worker in started:
        log = worker.log_file.read_text()
        assert ": delivered" in log  # every worker took a share
        assert "database unavailable" not in log, log


def test_a_webhook_workers_node_killed_mid_run_leaves_no_event_undelivered(
    apis, cluster_db, endpoint, receiver, workers
):
    started = [worker_on_node(workers, cluster_db, node, WEBHOOK_TIMEOUT_SECONDS=1) for node in galera.NODES]
    with Load(apis):
        time.sleep(LOAD_SECONDS)
        logged_before_kill = len(started[0].log_file.read_text())
        galera.galera("kill", "1")
        time.sleep(LOAD_SECONDS)
        galera.galera("restart", "1")
        time.sleep(LOAD_SECONDS)
    expected = queued_event_ids(cluster_db, endpoint)
    assert receiver.wait_for(all_arrived(expected), 60)
    assert receiver.wait_for(lambda _: all_delivered(cluster_db, endpoint, len(expected)), 30)
    received = Counter(receiver.ids())
    print("\nWebhooks after a node kill:", json.dumps(webhook_figures(received, started)))

    assert sorted(received) == expected  # every event at least once, and nothing else
    assert all(item.verified_by == endpoint["secret"] for item in receiver.received)
    for webhook_id in (webhook_id for webhook_id, times in received.items() if times > 1):
        assert len({item.body for item in receiver.received if item.webhook_id == webhook_id}) == 1
    assert delivery_statuses(cluster_db, endpoint) == [[{"status": "delivered", "n": len(expected)}]] * 3
    # The worker whose node died went on, through another node.
    assert started[0].poll() is None
    assert ": delivered" in started[0].log_file.read_text()[logged_before_kill:]


def all_delivered(cluster_db: dict, endpoint: dict, count: int) -> bool:
    """Return whether node 2 holds `count` deliveries of the endpoint, all delivered."""
    statement = "SELECT status, COUNT(*) AS n FROM webhook_deliveries WHERE endpoint_id = %s GROUP BY status"
    return galera.rows_on_node(cluster_db, 2, statement, (endpoint["id"],)) == [{"status": "delivered", "n": count}]


def webhook_figures(received: Counter, started: list) -> dict:
    """Summarise a run: events received, how many more than once, and what each worker delivered."""
    return {
        "events": len(received),
        "received_more_than_once": sum(1 for times in received.values() if times > 1),
        "delivered_by_worker": [worker.log_file.read_text().count(": delivered") for worker in started],
    }
