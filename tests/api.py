"""HTTP to a live server as an authorised client: `requests` with the suite's API key on every request."""

import requests

# Set once per run by the `database` fixture in conftest.py, which makes the key.
HEADERS: dict[str, str] = {}


def suite_key() -> str:
    """Return the suite's API key."""
    return HEADERS["Authorization"].removeprefix("Bearer ")


def request(method: str, url: str, **kwargs) -> requests.Response:
    """Send one request with the suite's Authorization header (a header given here wins)."""
    headers = {**HEADERS, **(kwargs.pop("headers", None) or {})}
    return requests.request(method, url, headers=headers, **kwargs)


def get(url: str, **kwargs) -> requests.Response:
    """GET with the suite's key."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs) -> requests.Response:
    """POST with the suite's key."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs) -> requests.Response:
    """PUT with the suite's key."""
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs) -> requests.Response:
    """PATCH with the suite's key."""
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs) -> requests.Response:
    """DELETE with the suite's key."""
    return request("DELETE", url, **kwargs)


def session() -> requests.Session:
    """Return a Session that sends the suite's key."""
    new = requests.Session()
    new.headers.update(HEADERS)
    return new
