"""The servers' own behaviour: where the API is, bad keys, SIGTERM, lost and stuck workers, no card number logged.

The production server is uWSGI under uwsgi.ini (the Procfile's); gunicorn under gunicorn.conf.py
is the alternative, and keeps its own tests here.
"""

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import mysql.connector
import pytest
import requests

from db import connection_settings
from tests import api
from tests.conftest import card_payment, unique_email
from tests.live import ROOT, SERVER_COMMANDS, free_port, server_environment, start_server, stop_server
from web.serve import listening_socket

# The test cards below, grouped or not, as they must never appear in the log.
CARD_DATA = re.compile(r"4111[\s-]*1111[\s-]*1111[\s-]*1111|3782[\s-]*8224[\s-]*6310[\s-]*005")


def test_the_live_server_says_where_the_api_is_and_how_to_get_a_key(live_server):
    lines = live_server.log_file.read_text().splitlines()
    url = f"http://localhost:{live_server.url.rsplit(':', 1)[1]}"
    ready = f"Payments API ready: {url} (Swagger UI: {url}/apidocs)"
    assert ready in lines, lines
    hint = next(line for line in lines[lines.index(ready) :] if line.startswith("Every request"))
    assert "needs an API key" in hint and hint.endswith("flask --app app create-api-key --name NAME")


def run_production_server(env: dict) -> subprocess.CompletedProcess:
    """Run the production server as `make run` does, for a start that is expected to stop; return its result."""
    command = SERVER_COMMANDS["uwsgi"](0)  # its port is env["PORT"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_bad_keys_stop_the_server_before_any_worker_starts(database, tmp_path):
    env = {**server_environment(database, free_port()), "CARD_NUMBER_KEYS": "1:not-a-key"}
    result = run_production_server(env)
    assert result.returncode != 0
    assert "Cannot start the Payments API: CARD_NUMBER_KEYS" in result.stdout + result.stderr
    assert "spawned uWSGI worker" not in result.stdout + result.stderr


def test_every_client_connection_the_server_accepts_has_nagles_algorithm_off():
    # uWSGI's router never sets TCP_NODELAY itself: without it a response larger than the router's
    # buffer went out in pieces that each waited for the client's delayed ACK (docs/performance.md).
    with listening_socket(0) as listener:
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.parametrize(
    "port, message",
    [
        ("abc", "PORT must be a TCP port number (1-65535), not 'abc'"),
        ("70000", "PORT must be a TCP port number"),
        ("８０８０", "PORT must be a TCP port number (1-65535), not '８０８０'"),
    ],
)
def test_a_port_that_is_not_a_port_number_stops_the_server_with_a_message(database, port, message):
    result = run_production_server({**server_environment(database, free_port()), "PORT": port})
    assert result.returncode == 1 and message in result.stderr


def test_a_port_in_use_stops_the_server_with_a_message_and_leaves_the_other_server_serving(live_server):
    port = live_server.url.rsplit(":", 1)[1]
    result = run_production_server(server_environment(live_server.settings, int(port)))
    assert result.returncode == 1
    assert f"Cannot listen on port {port}: Address already in use" in result.stderr
    assert api.get(f"{live_server.url}/payments?limit=1").status_code == 200


def wait_for_line(log_file: Path, process: subprocess.Popen, marker: str, seconds: float = 30) -> str:
    """Wait until the output in `log_file` holds `marker` (or the process exits, or time runs out); return it."""
    deadline = time.monotonic() + seconds
    while marker not in log_file.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return log_file.read_text()


class HeldUser:
    """A user row locked by a transaction of the test's own: a payment for that user waits until it is released."""

    def __init__(self, settings: dict, user_id: int):
        self.connection = mysql.connector.connect(**connection_settings(settings))
        cursor = self.connection.cursor()
        cursor.execute("START TRANSACTION")
        cursor.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
        cursor.fetchall()

    def release(self) -> None:
        """End the transaction, so the waiting payment goes on."""
        self.connection.rollback()
        self.connection.close()


def post_in_background(url: str, user_id: int, results: list, path: str = "/payments") -> threading.Thread:
    """POST a card payment from a thread; its response (or the exception) lands in `results`."""

    def send():
        try:
            results.append(api.post(url + path, json=card_payment(user_id), timeout=30))
        except OSError as error:
            results.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@pytest.fixture
def own_server(database, tmp_path):
    """Start a server of the test's own (uwsgi.ini plus options); stopped at the end if still running."""
    started = []

    def start(*options: str):
        process, url = start_server(database, tmp_path / "server.log", options=options)
        started.append(process)
        return process, url, tmp_path / "server.log"

    yield start
    for process in started:
        if process.poll() is None:
            stop_server(process)


def new_user(url: str) -> int:
    """Create a user through the API and return its id."""
    return api.post(f"{url}/users", json={"name": "Held", "email": unique_email()}, timeout=10).json()["id"]


def test_sigterm_lets_the_request_in_flight_finish_then_the_server_exits(own_server, database):
    process, url, _ = own_server()
    user_id, results = new_user(url), []
    held = HeldUser(database, user_id)
    thread = post_in_background(url, user_id, results)
    time.sleep(1)  # the payment is now waiting for the user's row
    process.send_signal(signal.SIGTERM)
    time.sleep(1)
    held.release()
    thread.join(timeout=30)
    assert process.wait(timeout=30) == 0
    assert results and getattr(results[0], "status_code", results[0]) == 201


def test_a_killed_worker_is_replaced_and_the_api_keeps_answering(own_server):
    process, url, log_file = own_server()
    workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    subprocess.run(["kill", "-KILL", workers[0]], check=True)
    wait_for_line(log_file, process, "Respawned uWSGI worker")
    assert all(api.get(f"{url}/health", timeout=10).status_code == 200 for _ in range(20))
    assert "Respawned uWSGI worker" in log_file.read_text()


def test_a_stuck_request_is_ended_its_worker_replaced_and_its_card_number_never_logged(own_server, database):
    process, url, log_file = own_server("--harakiri", "2", "--http-timeout", "3")
    user_id, results = new_user(url), []
    held = HeldUser(database, user_id)
    try:
        for path in ("/payments?ref=4111111111111111", "/payments?ref=4111%201111%201111%201111"):
            post_in_background(url, user_id, results, path).join(timeout=30)
    finally:
        held.release()
    assert [type(result) for result in results] == [type(results[0])] * 2
    assert not any(hasattr(result, "status_code") for result in results), results
    log = wait_for_line(log_file, process, "Respawned uWSGI worker")
    assert "HARAKIRI" in log and "Respawned uWSGI worker" in log
    assert not CARD_DATA.search(log) and "4111%20" not in log
    assert api.get(f"{url}/health", timeout=10).status_code == 200


def send_raw(url: str, request: bytes) -> bytes:
    """Send raw bytes to a live server; return its whole answer (empty if it closed the connection at once)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def test_a_request_line_past_the_servers_buffer_is_closed_unanswered_and_not_logged(live_server):
    answer = send_raw(live_server.url, b"GET /payments?card=4111111111111111&x=" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    assert answer == b""
    assert not CARD_DATA.search(live_server.log_file.read_text())


def uwsgi_packet(variables: dict[str, str]) -> bytes:
    """Return a request in the uwsgi protocol, the one uWSGI's router speaks to its workers."""
    body = b"".join(
        len(part).to_bytes(2, "little") + part for pair in variables.items() for part in map(str.encode, pair)
    )
    return bytes([0]) + len(body).to_bytes(2, "little") + bytes([0]) + body


DELIVER_AS_NOBODY = """
import socket, sys
address, packet = sys.argv[1], bytes.fromhex(sys.argv[2])
host, _, port = address.rpartition(":")
family, where = (socket.AF_INET, (host, int(port))) if host else (socket.AF_UNIX, address)
with socket.socket(family) as connection:
    connection.connect(where)
    connection.sendall(packet)
    print(connection.recv(65536))
"""


def test_no_other_user_can_reach_the_workers_socket_to_make_them_run_a_file(live_server, tmp_path):
    # The uwsgi protocol lets whoever reaches the workers name a Python file for them to run.
    address = re.search(r"uwsgi socket 0 bound to \w+ address (\S+)", live_server.log_file.read_text())[1]
    marker = tmp_path / "ran"
    script = tmp_path / "other.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\ndef application(environ, start_response): pass\n")
    packet = uwsgi_packet({
        "REQUEST_METHOD": "GET", "PATH_INFO": "/other", "SCRIPT_NAME": "/other", "UWSGI_APPID": "other",
        "UWSGI_FILE": str(script), "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_NAME": "x", "SERVER_PORT": "1",
    })  # fmt: skip
    result = subprocess.run(
        ["/usr/bin/python3", "-c", DELIVER_AS_NOBODY, address, packet.hex()],
        user="nobody", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert not marker.exists()
    assert "PermissionError" in result.stderr, result.stdout


def test_gunicorn_says_where_it_listens_and_that_the_api_is_ready(gunicorn_server):
    output = gunicorn_server.log_file.read_text()
    port = gunicorn_server.url.rsplit(":", 1)[1]
    assert re.search(rf"Listening at: http://127\.0\.0\.1:{port} \([0-9]+\)", output), output
    ready = f"Payments API ready: {gunicorn_server.url} (Swagger UI: {gunicorn_server.url}/apidocs)"
    lines = output.splitlines()
    assert ready in lines, output
    hint = lines[lines.index(ready) + 1]
    assert "needs an API key" in hint and hint.endswith("flask --app app create-api-key --name NAME")


def test_on_every_interface_gunicorns_ready_line_names_localhost_and_the_real_port(database, tmp_path):
    port, log_file = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"0.0.0.0:{port}"]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [*command, "app:create_app()"], cwd=ROOT, env=server_environment(database, port), stdout=log, stderr=log
        )
    try:
        output = wait_for_line(log_file, process, "Payments API ready")
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert f"Listening at: http://0.0.0.0:{port} ({process.pid})" in output, output
    url = f"http://localhost:{port}"
    assert f"Payments API ready: {url} (Swagger UI: {url}/apidocs)" in output.splitlines(), output


@pytest.mark.parametrize(
    ("header", "masked"),
    [
        (b"Bad Name 4111 1111 1111 1111", "Bad Name **** **** **** ****"),
        (b"Card no. 3782-822463-10005", "Card no. ****-******-*****"),
        (b"Order 3412345678902 at 2026-11-27", "Order 3412345678902 at 2026-11-27"),
    ],
)
def test_gunicorn_masks_card_numbers_in_a_request_it_cannot_parse_and_nothing_else(gunicorn_server, header, masked):
    answer = send_raw(gunicorn_server.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + header + b": 1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    log = gunicorn_server.log_file.read_text()
    assert f"Invalid HTTP header name: '{masked}'" in log, log[-2000:]
    assert not CARD_DATA.search(log)


def test_the_procfile_runs_the_api_and_the_webhook_worker_and_sigterm_stops_both(database, tmp_path):
    port, log_file = free_port(), tmp_path / "honcho.log"
    honcho = Path(sys.executable).with_name("honcho")
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(honcho), "start", "--no-colour", "--port", str(port)],
            cwd=ROOT,
            env={**server_environment(database, port), "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        wait_for_line(log_file, process, "Payments API ready")
        output = wait_for_line(log_file, process, "delivering; stop it with SIGTERM")
        assert f"Payments API ready: http://localhost:{port}" in output, output
        assert "Webhook worker" in output, output
    finally:
        process.terminate()
        process.wait(timeout=30)
    output = log_file.read_text()
    assert "web.1 stopped" in output and "worker.1 stopped" in output, output
    assert "webhook worker" in output and 'stopped"}' in output, output
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_clients_that_keep_their_connections_open_are_all_served_by_fewer_workers(live_server):
    # Two workers, three keep-alive clients: a worker that held one client's connection would
    # leave the third waiting for that client to go away.
    sessions = [requests.Session() for _ in range(3)]
    try:
        for _ in range(10):
            for session in sessions:
                response = session.get(f"{live_server.url}/health", headers=api.HEADERS, timeout=2)
                assert response.status_code == 200
    finally:
        for session in sessions:
            session.close()


def test_a_request_waiting_on_a_lock_holds_up_no_other_client_while_a_worker_is_free(own_server, database):
    # Two workers, one held by a payment that waits for a locked row: every new client must still
    # be answered by the other, not queued behind the waiting request by the worker that took it.
    process, url, _ = own_server()
    user_id, results = new_user(url), []
    held = HeldUser(database, user_id)
    try:
        thread = post_in_background(url, user_id, results)
        time.sleep(1)  # the payment is now waiting for the user's row
        for _ in range(8):
            with requests.Session() as client:
                assert client.get(f"{url}/health", timeout=5).status_code == 200
    finally:
        held.release()
    thread.join(timeout=30)
    assert getattr(results[0], "status_code", results[0]) == 201
