"""The same refusals under any server: request line and header limits, request methods, chunked bodies.

gunicorn refuses a request line over 4094 bytes (414), a header over 8190 bytes or more than 100
of them (431) and a method that is not an HTTP token (400) itself, and decodes a chunked body
for the app. uWSGI, the production server, passes up to its buffer (64 KiB, uwsgi.ini) of request
line and headers to the app, passes any method on, and leaves a chunked body undecoded. This
middleware holds every request to gunicorn's limits and decodes a chunked body under uWSGI, so
the answers are the same problem documents whichever server runs the API.
"""

import io
import json
import re

REQUEST_LINE_LIMIT = 4094
HEADER_FIELD_LIMIT = 8190
HEADER_FIELDS_LIMIT = 100
CHUNK_TIMEOUT_S = 10
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
DETAILS = {
    400: "The request is not valid HTTP/1.1: its request line or a header could not be parsed.",
    403: "The request is forbidden.",
    414: "The request line (method, path and query string) is too long.",
    417: "The request's Expect header cannot be met.",
    431: "The request's headers are too large.",
    501: "The request's Transfer-Encoding is not supported.",
}
REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def problem_document(status: int, reason: str) -> bytes:
    """Return the problem document for a request refused before the app (it quotes nothing of the request)."""
    detail = DETAILS.get(status, "An unexpected error occurred.")
    return json.dumps({"type": "about:blank", "title": reason, "status": status, "detail": detail}).encode()


class ServerLimits:
    """Wrap the WSGI app: refuse what gunicorn would refuse, and decode a chunked body under uWSGI."""

    def __init__(self, wsgi_app, max_body: int):
        self.wsgi_app, self.max_body = wsgi_app, max_body

    def __call__(self, environ: dict, start_response):
        """Answer a refused request with a problem document, else pass it on with its body readable."""
        status = refused_status(environ)
        if status is None and _undecoded_chunked_body(environ):
            status = _decode_chunked_body(environ, self.max_body)
        if status is None:
            return self.wsgi_app(environ, start_response)
        body = problem_document(status, REASONS[status])
        headers = [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {REASONS[status]}", headers)
        return [body]


def refused_status(environ: dict) -> int | None:
    """Return 400, 414 or 431 for a request over gunicorn's limits, else None."""
    if not _TOKEN.fullmatch(environ.get("REQUEST_METHOD", "")):
        return 400
    if not environ.get("CONTENT_LENGTH", "0").isdigit():
        return 400
    uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or _target(environ)
    line = len(environ["REQUEST_METHOD"]) + len(uri) + len(environ.get("SERVER_PROTOCOL", "")) + 2
    if line > REQUEST_LINE_LIMIT:
        return 414
    headers = {name: value for name, value in environ.items() if name.startswith("HTTP_")}
    headers.update((name, environ[name]) for name in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(name))
    if not all(map(_TOKEN.fullmatch, headers)):
        return 400
    if len(headers) > HEADER_FIELDS_LIMIT or _longest_field(headers) > HEADER_FIELD_LIMIT:
        return 431
    return None


def _longest_field(headers: dict) -> int:
    """Return a bound on the longest "name: value" header line: their total while that is within the limit."""
    total = sum(map(len, headers)) + sum(map(len, headers.values())) + 2 * len(headers)
    if total <= HEADER_FIELD_LIMIT:
        return total
    return max(len(name) + len(value) + 2 for name, value in headers.items())


def _target(environ: dict) -> str:
    """Return the request target rebuilt from its path and query string (servers that pass no raw one)."""
    query = environ.get("QUERY_STRING")
    return environ.get("PATH_INFO", "") + (f"?{query}" if query else "")


def _undecoded_chunked_body(environ: dict) -> bool:
    """Return whether the request has a chunked body that the server left for the app to decode."""
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    return chunked and "uwsgi.version" in environ and not environ.get("wsgi.input_terminated")


def _decode_chunked_body(environ: dict, max_body: int) -> int | None:
    """Read a chunked body through uWSGI, up to one byte past the body limit; 400 if it is not valid chunking.

    The body becomes an ordinary one with a Content-Length, so Werkzeug's limit (413) applies to it.
    """
    import uwsgi  # only importable inside a uWSGI worker

    body = bytearray()
    try:
        while len(body) <= max_body:
            chunk = uwsgi.chunked_read(CHUNK_TIMEOUT_S)
            if not chunk:
                break
            body += chunk
    except OSError:
        return 400
    environ.pop("HTTP_TRANSFER_ENCODING")
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["wsgi.input"] = io.BytesIO(bytes(body))
    return None
