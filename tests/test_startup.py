"""gunicorn's output: where the API is (its Listening line and the ready line), and no card number."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.live import ROOT, free_port, server_environment

# The test cards below, grouped or not, as they must never appear in the log.
CARD_DATA = re.compile(r"4111[\s-]*1111[\s-]*1111[\s-]*1111|3782[\s-]*8224[\s-]*6310[\s-]*005")


def test_the_live_server_says_where_it_listens_and_that_the_api_is_ready(live_server):
    output = live_server.log_file.read_text()
    port = live_server.url.rsplit(":", 1)[1]
    assert re.search(rf"Listening at: http://127\.0\.0\.1:{port} \([0-9]+\)", output), output
    ready = f"Payments API ready: {live_server.url} (Swagger UI: {live_server.url}/apidocs)"
    lines = output.splitlines()
    assert ready in lines, output
    hint = lines[lines.index(ready) + 1]
    assert "needs an API key" in hint and hint.endswith("flask --app app create-api-key --name NAME")


def wait_for_line(log_file: Path, process: subprocess.Popen, marker: str, seconds: float = 30) -> str:
    """Wait until the output in `log_file` holds `marker` (or the process exits, or time runs out); return it."""
    deadline = time.monotonic() + seconds
    while marker not in log_file.read_text() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return log_file.read_text()


def test_on_every_interface_the_ready_line_names_localhost_and_the_real_port(database, tmp_path):
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


def send_raw(url: str, request: bytes) -> bytes:
    """Send raw bytes to a live server; return its whole answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("header", "masked"),
    [
        (b"Bad Name 4111 1111 1111 1111", "Bad Name **** **** **** ****"),
        (b"Card no. 3782-822463-10005", "Card no. ****-******-*****"),
        (b"Order 3412345678902 at 2026-11-27", "Order 3412345678902 at 2026-11-27"),
    ],
)
def test_gunicorn_masks_card_numbers_in_a_request_it_cannot_parse_and_nothing_else(live_server, header, masked):
    answer = send_raw(live_server.url, b"GET /health HTTP/1.1\r\nHost: x\r\n" + header + b": 1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    log = live_server.log_file.read_text()
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
