"""The Postman collection passes when newman runs it against a live server."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests import api
from tests.conftest import foreign_card_numbers
from tests.live import ROOT

COLLECTION = ROOT / "postman" / "payments-api.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
INSTALL = ROOT / "scripts" / "install_newman.sh"
# The live server allows plain HTTP to 127.0.0.1 (TestConfig); nothing listens on the discard port.
RECEIVER = "http://127.0.0.1:9/hooks"
SCHEMA = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


def output_of(result: subprocess.CompletedProcess) -> str:
    """Return a run's exit status and output (colour codes removed), for an assertion message."""
    text = f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture(scope="session")
def newman() -> Path:
    """Install newman as package-lock.json pins it (a no-op when current); fail, never skip, without it."""
    result = subprocess.run(["bash", str(INSTALL)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, "scripts/install_newman.sh failed: " + output_of(result)
    assert NEWMAN.exists(), f"{NEWMAN} is missing after scripts/install_newman.sh"
    return NEWMAN


def requests_of(item: dict) -> list[dict]:
    """Return every request item under a collection or folder, in order."""
    if "request" in item:
        return [item]
    return [request for child in item["item"] for request in requests_of(child)]


def test_newman_runs_the_collection_green_against_a_live_server(newman, live_server, tmp_path):
    report = tmp_path / "newman-report.json"
    command = [str(newman), "run", str(COLLECTION), "-e", str(ENVIRONMENT)]
    command += ["--env-var", f"baseUrl={live_server.url}", "--env-var", f"apiKey={api.suite_key()}"]
    command += ["--env-var", f"webhookUrl={RECEIVER}"]
    command += ["--bail", "--color", "off"]
    command += ["--reporters", "cli,json", "--reporter-json-export", str(report)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, output_of(result)

    run = json.loads(report.read_text())["run"]
    assert run["failures"] == [], output_of(result)
    expected_requests = len(requests_of(json.loads(COLLECTION.read_text())))
    assert run["stats"]["requests"] == {"total": expected_requests, "pending": 0, "failed": 0}
    assert run["stats"]["assertions"]["failed"] == 0
    assert run["stats"]["assertions"]["total"] >= 3 * expected_requests


def test_the_collection_is_v2_1_with_a_test_script_on_every_request():
    collection = json.loads(COLLECTION.read_text())
    assert collection["info"]["schema"] == SCHEMA
    for item in requests_of(collection):
        scripts = ["\n".join(event["script"]["exec"]) for event in item.get("event", []) if event["listen"] == "test"]
        assert any("pm.test(" in script for script in scripts), f"{item['name']!r} has no pm.test"
        assert item["request"]["description"], f"{item['name']!r} has no description"


def test_the_collection_covers_every_endpoint_and_method():
    seen = set()
    for item in requests_of(json.loads(COLLECTION.read_text())):
        url = item["request"]["url"]
        path = "/" + "/".join(url["path"]) if isinstance(url, dict) else None
        if path:
            path = re.sub(r"/(\{\{\w+\}\}|\d+)", "/{id}", path)
            seen.add((item["request"]["method"], path))
    for path, methods in {
        "/health": ("GET",),
        "/users": ("GET", "POST"),
        "/users/{id}": ("GET", "PUT", "PATCH", "DELETE"),
        "/users/{id}/payments": ("GET",),
        "/payments": ("GET", "POST"),
        "/payments/{id}": ("GET", "PUT", "PATCH", "DELETE"),
        "/users/{id}/tokens": ("POST",),
        "/payments/{id}/events": ("GET",),
        "/events": ("GET",),
        "/events/{id}/redeliver": ("POST",),
        "/webhook-endpoints": ("GET", "POST"),
        "/webhook-endpoints/{id}": ("GET", "PATCH", "DELETE"),
        "/webhook-endpoints/{id}/rotate-secret": ("POST",),
        "/webhook-endpoints/{id}/deliveries": ("GET",),
        "/webhook-endpoints/{id}/test": ("POST",),
    }.items():
        for method in methods:
            assert (method, path) in seen, f"no request for {method} {path}"


def test_the_environment_names_the_local_server():
    environment = json.loads(ENVIRONMENT.read_text())
    values = {value["key"]: value["value"] for value in environment["values"]}
    assert values == {"baseUrl": "http://localhost:8080", "apiKey": ""}  # the user pastes a key


def test_no_card_number_but_the_well_known_test_cards_appears_in_the_collection():
    assert foreign_card_numbers(COLLECTION.read_text()) == []
