"""Every error is application/problem+json, and bad input changes nothing."""

import json
import socket

import pytest
import requests
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests import api
from tests.conftest import unique_email

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def assert_problem(response, status: int) -> dict:
    """Check a response is a problem document with the given status; return it."""
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert PROBLEM_KEYS <= set(problem)
    assert problem["status"] == status
    return problem


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"", b'{"name": "a",}', b"\xff\xfe{}", b'{"a": 1} trailing', b"[" * 100000 + b"]" * 100000],
)
def test_malformed_json_is_400(client, body):
    response = client.post("/users", data=body, content_type="application/json")
    assert_problem(response, 400 if len(body) < 64 * 1024 else 413)


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_400(client, body):
    assert_problem(client.post("/payments", data=body, content_type="application/json"), 400)


def test_deeply_nested_json_is_400_not_500(client):
    body = b'{"name":' + b"[" * 20000 + b"]" * 20000 + b"}"
    assert_problem(client.post("/users", data=body, content_type="application/json"), 400)


def test_a_duplicate_key_is_400(client, sql):
    email = unique_email()
    body = f'{{"name": "A", "email": "{email}", "email": "other@example.com"}}'
    assert_problem(client.post("/users", data=body, content_type="application/json"), 400)
    assert sql("SELECT id FROM users WHERE email = %s", (email,)) == []


def test_a_huge_integer_is_rejected_cleanly(client):
    body = '{"user_id": ' + "9" * 5000 + ', "amount": 1}'
    assert_problem(client.post("/payments", data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_415(client, content_type):
    kwargs = {"content_type": content_type} if content_type else {}
    assert_problem(client.post("/users", data=b'{"name": "a"}', **kwargs), 415)


def test_json_with_a_charset_parameter_is_accepted(client):
    body = f'{{"name": "A", "email": "{unique_email()}"}}'
    assert client.post("/users", data=body, content_type="application/json; charset=utf-8").status_code == 201


def test_a_body_over_64_kib_is_413(client):
    body = '{"name": "' + "x" * (65 * 1024) + '"}'
    assert_problem(client.post("/users", data=body, content_type="application/json"), 413)


def test_an_unknown_url_is_a_404_problem(client):
    assert_problem(client.get("/nowhere"), 404)


def test_a_wrong_method_is_405_with_allow(client):
    response = client.delete("/payments")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_a_422_names_fields_but_never_echoes_card_data(client):
    body = {"user_id": 1, "amount": 1, "currency": "INR", "payment_method": "UPI", "card_no": "4111111111111111"}
    body["4111111111111111"] = "key"
    response = client.post("/payments", json=body)
    problem = assert_problem(response, 422)
    assert "4111111111111111" not in response.get_data(as_text=True)
    assert "card_no" in problem["errors"]


@pytest.mark.parametrize(
    "value",
    ["Robert'); DROP TABLE users;--", '" OR "1"="1', "\\", "%_", "ñandú 🦙 名前", "<script>alert(1)</script>"],
)
def test_sql_metacharacters_and_unicode_are_stored_verbatim(client, sql, value):
    response = client.post("/users", json={"name": value, "email": unique_email()})
    assert response.status_code == 201
    user_id = response.get_json()["id"]
    assert sql("SELECT name FROM users WHERE id = %s", (user_id,)) == [{"name": value}]
    assert client.get(f"/users/{user_id}").get_json()["name"] == value


def test_a_lone_surrogate_is_422_not_500(client):
    body = '{"name": "\\ud800", "email": "' + unique_email() + '"}'
    problem = assert_problem(client.post("/users", data=body, content_type="application/json"), 422)
    assert "name" in problem["errors"]


def test_responses_carry_a_request_id_and_nosniff(client):
    response = client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    generated = client.get("/health", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert generated != "bad id with spaces" and len(generated) == 32


@pytest.mark.parametrize("number", ["1e1000000000000000000", "-1E-9999999999999999999", "1e400"])
def test_a_number_with_a_huge_exponent_is_rejected_cleanly(client, number):
    body = '{"name": ' + number + ', "email": "a@example.com"}'
    response = client.post("/users", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "name", ["4111 1111 1111 1111", "4111.1111.1111.1111", "4111/1111/1111/1111", "x4111-1111-1111-1111"]
)
def test_a_card_number_as_an_unknown_field_name_is_masked(client, name):
    response = client.post("/users", json={"name": "A", "email": unique_email(), name: 1})
    assert response.status_code == 422
    assert "1111" not in response.get_data(as_text=True)


def test_an_email_error_never_echoes_a_card_number(client):
    response = client.post("/users", json={"name": "A", "email": "x@[4111.1111.1111.1111]"})
    assert response.status_code == 422
    assert "1111" not in response.get_data(as_text=True)


def test_swagger_ui_files_may_be_cached_for_an_hour_but_api_responses_never(client):
    asset = client.get("/apidocs/assets/swagger-ui.css")
    assert asset.status_code == 200
    assert asset.cache_control.public and asset.cache_control.max_age == 3600
    assert asset.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/apidocs/", "/apispec.json", "/health", "/users?limit=1"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path


def test_json_is_utf8_with_the_documented_field_order(client):
    response = client.post("/users", json={"name": "José Ñandú", "email": unique_email(), "country": "India"})
    assert response.status_code == 201
    assert "José Ñandú".encode() in response.data and b"\\u" not in response.data
    assert list(response.get_json()) == ["id", "name", "email", "phone", "country", "created_at", "updated_at"]


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "deep-nesting"}])
@pytest.mark.parametrize("path", ["/users", "/payments"])
def test_json_nested_past_the_limit_is_400_with_or_without_an_idempotency_key(client, path, headers):
    body = '{"name": "x", "email": "' + unique_email() + '", "x": ' + "[" * 600 + "]" * 600 + "}"
    problem = assert_problem(client.post(path, data=body, content_type="application/json", headers=headers), 400)
    assert "32 levels" in problem["detail"]


def test_json_nested_within_the_limit_is_validated_as_usual(client):
    body = '{"name": "x", "email": "' + unique_email() + '", "x": ' + "[" * 31 + "]" * 31 + "}"
    problem = assert_problem(client.post("/users", data=body, content_type="application/json"), 422)
    assert problem["errors"] == {"x": "is not a known field"}


@pytest.mark.parametrize("method, path", [("post", "/users"), ("post", "/payments"), ("patch", "/users/1")])
def test_a_lone_surrogate_in_a_field_name_is_422_not_500(client, method, path):
    body = '{"\\ud800x": 1}'
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code in (404, 422), response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    if response.status_code == 422:
        assert response.get_json()["errors"]["\ufffdx"] == "is not a known field"


@pytest.mark.parametrize("control", ["\u0085", "\u009b", "\u007f", "\u0000"])
@pytest.mark.parametrize("field", ["name", "country"])
def test_c0_and_c1_control_characters_are_422(client, field, control):
    body = {"name": "Ann", "email": unique_email(), "country": "India", field: f"In{control}dia"}
    problem = assert_problem(client.post("/users", json=body), 422)
    assert problem["errors"] == {field: "must not contain control characters"}


def test_a_card_number_in_fullwidth_digits_is_refused_and_masked(client):
    fullwidth = "４１１１ １１１１ １１１１ １１１１"
    problem = assert_problem(client.post("/users", json={"name": f"card {fullwidth}", "email": unique_email()}), 422)
    assert problem["errors"] == {"name": "must not contain a card number"}
    response = client.post("/users", json={"name": "A", "email": unique_email(), fullwidth: 1})
    assert response.status_code == 422
    assert "１１１１" not in response.get_data(as_text=True)


def test_a_request_id_that_could_hold_a_card_number_is_replaced(client):
    for incoming in ("4111111111111111", "order-4111-1111-1111-1111"):
        returned = client.get("/health", headers={"X-Request-Id": incoming}).headers["X-Request-Id"]
        assert returned != incoming and len(returned) == 32
    assert client.get("/health", headers={"X-Request-Id": "order-20261128"}).headers["X-Request-Id"] == "order-20261128"


def test_options_on_an_unknown_url_is_a_404_problem_with_its_content_type(client):
    assert_problem(client.options("/nowhere"), 404)
    assert "Content-Type" not in client.options("/users").headers


def post_chunked(url: str, body: bytes) -> requests.Response:
    """POST a JSON body with Transfer-Encoding: chunked (no Content-Length), in 8 KiB chunks."""
    chunks = (body[start : start + 8192] for start in range(0, len(body), 8192))
    return api.post(url, data=chunks, headers={"Content-Type": "application/json"}, timeout=10)


@pytest.mark.parametrize("size, status", [(64 * 1024, 201), (64 * 1024 + 1, 413), (70_000, 413)])
def test_a_chunked_body_is_held_to_64_kib_like_any_other(live_server, sql, size, status):
    email = unique_email()
    body = json.dumps({"name": "Chunked", "email": email}).encode()
    response = post_chunked(f"{live_server.url}/users", body + b" " * (size - len(body)))
    assert response.status_code == status, response.text
    assert len(sql("SELECT id FROM users WHERE email = %s", (email,))) == (status == 201)
    if status == 413:
        assert response.headers["Content-Type"] == "application/problem+json"


def one_write_post(email: str, size: int, framing: str) -> bytes:
    """Return a POST /users of a `size`-byte JSON body as the bytes of one write, head and body together."""
    body = json.dumps({"name": "One write", "email": email}).encode()
    body += b" " * (size - len(body))
    head = f"POST /users HTTP/1.1\r\nHost: x\r\nAuthorization: {api.HEADERS['Authorization']}\r\n"
    head += "Content-Type: application/json\r\nConnection: close\r\n"
    if framing == "chunked":
        return f"{head}Transfer-Encoding: chunked\r\n\r\n{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("size, status", [(64 * 1024, 201), (70_000, 413)])
def test_a_body_that_arrives_with_its_headers_is_answered_not_dropped(live_server, sql, framing, size, status):
    # uWSGI's router drops a request when its headers and the body it read with them pass 64 KiB
    # (the limit of its packet to the worker), so its read buffer is kept well under that (uwsgi.ini).
    for _ in range(5):
        email = unique_email()
        answer_status, headers, _ = raw_exchange(live_server.url, one_write_post(email, size, framing))
        assert answer_status == status
        assert len(sql("SELECT id FROM users WHERE email = %s", (email,))) == (status == 201)
        if status == 413:
            assert headers["content-type"] == "application/problem+json"


def raw_exchange(url: str, request: bytes) -> tuple[int, dict, bytes]:
    """Send raw bytes to the server; return the answer's status, headers (lower-cased names) and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := connection.recv(65536)):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in header_lines)}
        while len(body) < int(headers.get("content-length", 0)) and (chunk := connection.recv(65536)):
            body += chunk
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /payments?card=4111111111111111&x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"G@T /payments/4111111111111111 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400),
    ],
    ids=["uri-too-long", "headers-too-large", "bad-method", "bad-content-length"],
)
@pytest.mark.parametrize("server", ["live_server", "gunicorn_server"])
def test_requests_the_server_cannot_parse_get_problem_json_not_html(request, server, request_bytes, status):
    answer_status, headers, body = raw_exchange(request.getfixturevalue(server).url, request_bytes)
    assert answer_status == status
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-content-type-options"] == "nosniff" and len(headers["x-request-id"]) == 32
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert "4111" not in body.decode()


def test_a_long_query_string_is_414_under_a_server_that_passes_no_raw_request_uri(app):
    # gunicorn and uWSGI pass the raw request line's target; other WSGI servers (granian) pass
    # only PATH_INFO and QUERY_STRING, and the query string counts towards the limit all the same.
    environ = EnvironBuilder(path="/payments", query_string="card=4111111111111111&x=" + "a" * 5000).get_environ()
    for name in ("REQUEST_URI", "RAW_URI"):
        environ.pop(name, None)
    body, status, headers = run_wsgi_app(app.wsgi_app, environ)
    assert status.startswith("414 ") and headers["Content-Type"] == "application/problem+json"
    assert "4111" not in b"".join(body).decode()


@pytest.mark.parametrize("server", ["live_server", "gunicorn_server"])
def test_the_servers_log_masks_a_card_number_in_a_request_it_cannot_parse(request, server):
    live = request.getfixturevalue(server)
    status, _, _ = raw_exchange(live.url, b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name 4111111111111111: 1\r\n\r\n")
    assert status == 400
    assert "4111111111111111" not in live.log_file.read_text()


@pytest.mark.parametrize("path", ["/payments", "/users"])
def test_a_lone_surrogate_card_number_with_an_idempotency_key_is_422_not_500(client, path):
    body = '{"user_id": 1, "name": "x", "email": "a@example.com", "card_no": "\\ud800"}'
    headers = {"Idempotency-Key": unique_email()}
    assert_problem(client.post(path, data=body, content_type="application/json", headers=headers), 422)


def test_an_email_error_never_quotes_the_address(client):
    response = client.post("/users", json={"name": "A", "email": "john@my-private-label\u2603x.com"})
    problem = assert_problem(response, 422)
    assert problem["errors"]["email"].startswith("must be a valid email address")
    assert "private" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/users//1", "//payments", "/payments//4111111111111111"])
def test_a_path_with_a_double_slash_is_a_404_problem_not_a_redirect(client, path):
    response = client.get(path, headers={"Host": "evil.example"})
    assert_problem(response, 404)
    assert "Location" not in response.headers and "4111" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "spaced", ["4111    1111    1111    1111", "4111 -- 1111 -- 1111 -- 1111", "4111 - - 1111 - - 1111 - - 1111"]
)
def test_a_card_number_with_wide_separators_is_refused_in_free_text_and_masked(client, spaced):
    problem = assert_problem(client.post("/users", json={"name": f"card {spaced}", "email": unique_email()}), 422)
    assert problem["errors"] == {"name": "must not contain a card number"}
    response = client.post("/users", json={"name": "A", "email": unique_email(), spaced: 1})
    assert response.status_code == 422 and "1111" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "field, value",
    [("currency", "\u0131nr"), ("payment_method", "ca\u017fh")],  # a dotless i, a long s
)
def test_non_ascii_look_alikes_of_codes_and_choices_are_422(client, field, value):
    body = {"user_id": 1, "amount": "1.00", "currency": "INR", "payment_method": "UPI", field: value}
    problem = assert_problem(client.post("/payments", json=body), 422)
    assert field in problem["errors"]


def test_an_email_with_more_than_64_characters_before_the_at_is_422(client):
    problem = assert_problem(client.post("/users", json={"name": "A", "email": "a" * 65 + "@example.com"}), 422)
    assert problem["errors"]["email"].startswith("must be a valid email address")


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate"])
def test_a_compressed_body_is_415(client, encoding):
    body = f'{{"name": "A", "email": "{unique_email()}"}}'
    headers = {"Content-Encoding": encoding}
    assert_problem(client.post("/users", data=body, content_type="application/json", headers=headers), 415)
