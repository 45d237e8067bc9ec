"""Logs are JSON lines with request ids, and never hold a card number or a CVC."""

import json
import logging
import re
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import mysql.connector

from app import create_app
from db import connection_settings
from services import access
from tests import api
from tests.conftest import SuiteConfig, card_payment, make_api_key, rows_of, unique_email
from utils.logs import JsonFormatter, log_info, request_id_var

CARD, CVC = "378282246310005", "7391"
CARD_DATA = re.compile(r"3782[\s-]*8224[\s-]*6310[\s-]*005|(?<![\w.])7391(?![\w.])")


def exercise_card_paths(base_url: str, session) -> None:
    """Create, update, replay and fail requests that all carry the card number and CVC."""
    user = session.post(f"{base_url}/users", json={"name": "Log", "email": unique_email()}).json()
    body = card_payment(user["id"], card_no=CARD, card_cvc=CVC)
    created = session.post(f"{base_url}/payments", json=body, headers={"Idempotency-Key": unique_email()}).json()
    session.post(f"{base_url}/payments", json={**body, "card_cvc": "12"})
    session.post(f"{base_url}/payments", json={**body, "payment_method": "UPI"})
    session.post(f"{base_url}/payments", data=json.dumps(body)[:-5], headers={"Content-Type": "application/json"})
    session.post(f"{base_url}/payments", data=json.dumps(body), headers={"Content-Type": "text/plain"})
    session.patch(
        f"{base_url}/payments/{created['id']}", json={"card_no": CARD, "card_cvc": CVC, "card_expiry": "2099-01"}
    )
    session.patch(f"{base_url}/payments/{created['id']}", json={"status": "completed"})
    session.patch(f"{base_url}/payments/{created['id']}", json={"card_no": CARD, "card_cvc": CVC})
    session.post(f"{base_url}/payments", json={**body, "user_id": 999999999})
    session.post(f"{base_url}/payments", json={**body, CARD: CVC})


class ClientSession:
    """Adapts the Flask test client to the calls exercise_card_paths makes."""

    def __init__(self, client):
        self.client = client

    def _send(self, method, url, **kwargs):
        if "data" in kwargs:
            kwargs["content_type"] = kwargs.pop("headers")["Content-Type"]
        response = getattr(self.client, method)(url, **kwargs)
        return SimpleNamespace(status_code=response.status_code, json=response.get_json)

    def post(self, url, **kwargs):
        return self._send("post", url, **kwargs)

    def patch(self, url, **kwargs):
        return self._send("patch", url, **kwargs)


def test_the_live_servers_logs_are_json_with_request_ids_and_no_card_data(live_server):
    exercise_card_paths(live_server.url, api.session())
    lines = [line for line in live_server.log_file.read_text().splitlines() if line.strip()]
    request_lines = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry.get("path") == "/payments" and entry.get("request_id") for entry in request_lines)
    assert not [line for line in lines if CARD_DATA.search(line)]


def test_no_log_record_at_any_level_holds_card_data(client, caplog):
    caplog.set_level(logging.DEBUG)
    exercise_card_paths("", ClientSession(client))
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + json.dumps(vars(record), default=str)
        assert not CARD_DATA.search(text), record.name


def test_an_unexpected_error_is_a_500_problem_logged_once_with_the_request_id(database, caplog, monkeypatch):
    monkeypatch.setitem(access.ENDPOINT_SCOPES, "boom", "users:read")
    app = create_app(SuiteConfig)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/test-only/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/test-only/boom", headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "req-500" in response.get_json()["detail"] and "Traceback" not in response.get_data(as_text=True)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].request_id == "req-500" and errors[0].exc_info


def test_a_card_number_in_a_url_is_not_logged(client, caplog):
    caplog.set_level(logging.INFO)
    assert client.get("/payments/4111111111111111").status_code == 404
    assert client.get("/users/1/payments?card_fingerprint=4111111111111111").status_code in (400, 404)
    assert not [r for r in caplog.records if "4111111111111111" in r.getMessage() + json.dumps(vars(r), default=str)]


def test_a_request_id_is_stamped_only_while_its_request_runs(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/health", headers={"X-Request-Id": "req-inside"})
    logging.getLogger("payments_api.test").info("after the request")
    access = [record for record in caplog.records if record.name == "payments_api.access"]
    assert [record.request_id for record in access] == ["req-inside"]
    assert not hasattr(caplog.records[-1], "request_id")


def credentials_in_use(base_url: str, database: dict) -> tuple[list[str], list[str]]:
    """Use a fresh key and a user token for good and bad requests; return the secrets and every response body."""
    key = make_api_key(database, name="leak scan")
    headers = {"Authorization": f"Bearer {key}"}
    user = api.post(f"{base_url}/users", json={"name": "Leak", "email": unique_email()}, headers=headers).json()
    minted = api.post(f"{base_url}/users/{user['id']}/tokens", json={"scopes": ["payments:read"]}, headers=headers)
    token = minted.json()["token"]
    bodies = []
    for credential in (key, token, key[:-1] + "x", token[:-2], f"{key} {token}"):
        for method, url in (("get", "/payments"), ("post", "/payments"), ("get", f"/payments?key={key}")):
            response = api.request(method, f"{base_url}{url}", headers={"Authorization": f"Bearer {credential}"})
            bodies.append(f"{response.headers}{response.text}")
    bodies.append(api.get(f"{base_url}/payments", headers={"Authorization": f"Basic {key}"}).text)
    # A secret is its random part: a key's prefix and a token's header are public.
    return [key.removeprefix("payapi_sk_")[:40], token.split(".")[2], token.split(".")[1]], bodies


def database_text(database: dict) -> str:
    """Return every row of every table of a database as text."""
    cnx = mysql.connector.connect(**connection_settings(database))
    try:
        listed = rows_of(cnx, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = [next(iter(row.values())) for row in listed]
        return json.dumps({table: rows_of(cnx, f"SELECT * FROM `{table}`") for table in tables}, default=repr)
    finally:
        cnx.close()


def test_no_api_key_or_token_is_in_the_logs_the_responses_or_the_database(live_server, database):
    secrets, bodies = credentials_in_use(live_server.url, database)
    log = live_server.log_file.read_text()
    stored = database_text(database)
    for secret in secrets:
        assert secret not in log
        assert not [body for body in bodies if secret in body]
        assert secret not in stored


def test_a_record_orjson_cannot_write_still_becomes_one_json_line():
    record = logging.makeLogRecord({"name": "t", "msg": "bad \udcff text", "levelno": 20, "levelname": "INFO"})
    record.big = 2**70
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "bad \udcff text" and entry["big"] == 2**70


def test_a_line_is_compact_json_with_its_extra_fields():
    record = logging.makeLogRecord({"name": "t", "msg": "request", "levelno": 20, "levelname": "INFO"})
    record.path, record.status = "/users/ü", 200
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) | {"time": None} == {
        "time": None,
        "level": "INFO",
        "logger": "t",
        "message": "request",
        "path": "/users/ü",
        "status": 200,
    }


def records_of(logger_name: str, log) -> list[logging.LogRecord]:
    """Return the records `log(logger)` sends to a logger's handler."""
    logger = logging.getLogger(logger_name)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        log(logger)
    finally:
        logger.removeHandler(handler)
    return records


def standard_and_quick_records(fields: dict, request_id: str) -> tuple[logging.LogRecord, logging.LogRecord]:
    """Return the records `logger.info(extra=fields)` and `log_info` make while serving a request."""
    token = request_id_var.set(request_id)
    try:
        standard = records_of("payments_api.t", lambda logger: logger.info("request", extra=fields))[0]
        quick = records_of("payments_api.t", lambda logger: log_info(logger, "request", fields))[0]
    finally:
        request_id_var.reset(token)
    return standard, quick


def test_a_quick_record_is_what_logger_info_with_extra_would_make():
    standard, quick = standard_and_quick_records({"method": "GET", "status": 200}, "req-quick")
    assert vars(quick).keys() == vars(standard).keys()
    same = {"created", "msecs", "relativeCreated", "lineno", "funcName"}
    assert {k: v for k, v in vars(quick).items() if k not in same} == {
        k: v for k, v in vars(standard).items() if k not in same
    }
    assert abs(quick.created - standard.created) < 1 and quick.funcName == "<lambda>"
    classic = logging.Formatter("%(asctime)s [%(process)d] [%(threadName)s] %(levelname)s %(module)s: %(message)s")
    assert classic.format(quick).split(" ", 2)[2] == classic.format(standard).split(" ", 2)[2]


def test_a_quick_record_is_not_made_below_the_loggers_level():
    logger = logging.getLogger("payments_api.quiet")
    logger.setLevel(logging.WARNING)
    try:
        assert records_of("payments_api.quiet", lambda logger: log_info(logger, "request", {})) == []
    finally:
        logger.setLevel(logging.NOTSET)


def test_a_lines_time_is_the_records_time_to_the_millisecond_as_iso_8601_writes_it():
    for created in (0.0, 1.9995, 1.9999995, 3987863.9999995, 1700000000.1234567, 4102444799.9999):
        record = logging.makeLogRecord({"name": "t", "msg": "m", "levelno": 20, "levelname": "INFO"})
        record.created = created
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(JsonFormatter().format(record))["time"] == expected


def test_a_quick_records_line_lists_its_fields_as_logger_info_would():
    fields = {"method": "GET", "path": "/payments/1", "status": 200, "duration_ms": 1.5, "a": 1, "z": 2}
    standard, quick = standard_and_quick_records(fields, "req-order")
    formatter = JsonFormatter()
    assert list(json.loads(formatter.format(quick))) == list(json.loads(formatter.format(standard)))
    assert list(json.loads(formatter.format(quick)))[4:] == ["request_id", *fields]


def test_a_quick_records_milliseconds_belong_to_its_second(monkeypatch):
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_999_999_950)  # rounds up to the next second
    record = records_of("payments_api.t", lambda logger: log_info(logger, "request", {}))[0]
    assert record.msecs == int((record.created - int(record.created)) * 1000)
