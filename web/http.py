"""Request parsing and response building shared by the blueprints."""

import json
import re
from decimal import Decimal, DecimalException

from flask import Response, g, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from schemas.fields import MAX_ID
from utils.errors import BadRequest, NotFound, UnsupportedMediaType

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The API's bodies are flat objects; deeper nesting is refused before any code walks it recursively.
MAX_NESTING = 32
_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
_CURSOR = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """Build a JSON object, refusing a key given twice (its meaning would be ambiguous)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _keep_constant(name: str) -> float:
    """Keep NaN and Infinity as floats so field validation can name the field."""
    return float(name)


def json_body() -> dict:
    """Return the request's JSON object, or raise 415 (not JSON) or 400 (not a JSON object)."""
    if "json_body" in g:
        return g.json_body
    mimetype = request.mimetype
    if not (mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise UnsupportedMediaType()
    if request.content_encoding not in (None, "", "identity"):
        raise UnsupportedMediaType("The request body must not be compressed (no Content-Encoding).")
    try:
        body = json.loads(
            _body_bytes().decode("utf-8"),
            parse_float=Decimal,
            parse_constant=_keep_constant,
            object_pairs_hook=_reject_duplicate_keys,
        )
    except (ValueError, RecursionError, DecimalException) as error:
        raise BadRequest(f"The body is not valid JSON: {_json_error_reason(error)}") from error
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    if _nesting_depth(body) > MAX_NESTING:
        raise BadRequest(f"The body nests arrays or objects more than {MAX_NESTING} levels deep.")
    g.json_body = body
    return body


def optional_json_body() -> dict:
    """Return the request's JSON object, or an empty one when the request has no body at all."""
    if not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return {}
    return json_body()


def _body_bytes() -> bytes:
    """Return the request body, refusing one over MAX_CONTENT_LENGTH (413) however it is sent.

    A chunked body has no Content-Length, and Werkzeug stops reading it at the limit without
    saying whether more followed, so the first 64 KiB of a larger body would pass for all of it.
    """
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return data


def _nesting_depth(value: object) -> int:
    """Return how deeply arrays and objects nest in a parsed JSON value (1 for a flat object)."""
    depth, level = 0, [value]
    while level:
        depth += 1
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
    return depth


def _json_error_reason(error: Exception) -> str:
    """Describe a JSON parsing failure without quoting the body."""
    if isinstance(error, RecursionError):
        return "nested too deeply."
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text."
    if isinstance(error, DecimalException):
        return "a number is out of range."
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}."
    return str(error).split(":")[0] + "."


def parse_id(text: str) -> int:
    """Return a positive integer id from a URL segment, or raise 404."""
    if not _ID.fullmatch(text) or int(text) > MAX_ID:
        raise NotFound()
    return int(text)


def query_int(name: str, default: int, low: int, high: int) -> int:
    """Read an integer query parameter within bounds, or raise 400."""
    text = request.args.get(name)
    if text is None:
        return default
    if not _CURSOR.fullmatch(text) or not low <= int(text) <= high:
        raise BadRequest(f"Query parameter {name!r} must be an integer from {low} to {high}.")
    return int(text)


def page_args() -> tuple[int, int]:
    """Return (limit, after) of a keyset-paginated list request."""
    return query_int("limit", DEFAULT_LIMIT, 1, MAX_LIMIT), query_int("after", 0, 0, MAX_ID)


def page_response(items: list[dict], limit: int, dump, endpoint: str, **params) -> Response:
    """Return one page as a JSON array, with a `Link: rel="next"` header when more rows exist."""
    response = jsonify([dump(item) for item in items[:limit]])
    if len(items) > limit:
        next_url = url_for(endpoint, _external=True, **params, limit=limit, after=items[limit - 1]["id"])
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


def created(body: dict, location: str) -> Response:
    """Return a 201 response with its Location header."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def accepted(body: dict) -> Response:
    """Return a 202 response: the work is queued, not done."""
    response = jsonify(body)
    response.status_code = 202
    return response


def no_content() -> Response:
    """Return an empty 204 response, with no Content-Type since there is no content."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
