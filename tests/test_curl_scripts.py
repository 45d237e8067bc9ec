"""The curl walkthroughs in scripts/curl/ run green against a live server."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import api
from tests.conftest import foreign_card_numbers
from tests.live import ROOT

CURL_DIR = ROOT / "scripts" / "curl"
# The live server allows plain HTTP to 127.0.0.1 (TestConfig); nothing listens on the discard port.
RECEIVER = "http://127.0.0.1:9/hooks"
# all.sh runs the others once more, on the same database: reruns must pass too.
WALKTHROUGHS = ("health.sh", "users.sh", "payments.sh", "errors.sh", "access.sh", "events.sh", "webhooks.sh", "all.sh")


def run_script(script: Path, base_url: str, api_key: str | None = None) -> subprocess.CompletedProcess:
    """Run a bash script against base_url with an API key (the suite's by default), with the tests' Python."""
    key = api.suite_key() if api_key is None else api_key
    env = {**os.environ, "BASE_URL": base_url, "PYTHON": sys.executable, "API_KEY": key, "WEBHOOK_URL": RECEIVER}
    return subprocess.run(
        ["bash", str(script)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def output_of(result: subprocess.CompletedProcess) -> str:
    """Return a run's exit status and output, for an assertion message."""
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


@pytest.mark.parametrize("script", WALKTHROUGHS)
def test_the_curl_walkthrough_runs_green_against_a_live_server(script, live_server):
    result = run_script(CURL_DIR / script, live_server.url)
    assert result.returncode == 0, output_of(result)
    assert "FAILED" not in result.stderr, output_of(result)


def test_an_unexpected_status_stops_a_script_with_a_clear_message(live_server, tmp_path):
    script = tmp_path / "wrong.sh"
    lines = ["set -euo pipefail", f'source "{CURL_DIR}/lib.sh"', "request 200 GET /users/999999999999", "echo REACHED"]
    script.write_text("\n".join(lines) + "\n")
    result = run_script(script, live_server.url)
    assert result.returncode == 1
    assert "FAILED: GET /users/999999999999 answered HTTP 404; expected 200." in result.stderr
    assert "REACHED" not in result.stdout


def test_a_script_without_an_api_key_says_how_to_make_one(live_server):
    result = run_script(CURL_DIR / "users.sh", live_server.url, api_key="")
    assert result.returncode == 1
    assert "API_KEY is not set. Make a key with: flask --app app create-api-key" in result.stderr


def test_the_printed_commands_show_the_variable_not_the_key(live_server):
    result = run_script(CURL_DIR / "access.sh", live_server.url)
    assert result.returncode == 0, output_of(result)
    assert '-H "Authorization: Bearer $API_KEY"' in result.stdout
    assert api.suite_key() not in result.stdout + result.stderr


def test_an_unreachable_server_is_reported_clearly():
    result = run_script(CURL_DIR / "health.sh", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "Is the API running?" in result.stderr


@pytest.mark.parametrize("script", sorted(path.name for path in CURL_DIR.glob("*.sh")))
def test_every_script_is_strict_and_says_what_it_shows(script):
    text = (CURL_DIR / script).read_text()
    if script != "lib.sh":
        assert text.startswith("#!/usr/bin/env bash\n# "), "a shebang, then a comment saying what it shows"
        assert "set -euo pipefail" in text
    assert "jq" not in re.findall(r"\b\w+\b", text), "parse JSON with python3, not jq"


def test_no_card_number_but_the_well_known_test_cards_appears_in_the_scripts():
    for path in CURL_DIR.glob("*.sh"):
        assert foreign_card_numbers(path.read_text()) == [], path.name
