"""Webhook endpoints: their signing secrets, and which URLs and addresses a webhook may go to.

A URL must be https (or http where WEBHOOK_ALLOW_HTTP allows it) and every address its host
resolves to must be public: no loopback, private, link-local, multicast or otherwise reserved
address (OWASP API7:2023, server-side request forgery). The delivery worker checks again the
address it actually connects to, so a name that resolves elsewhere by then (DNS rebinding) is
refused too. WEBHOOK_ALLOWED_HOSTS names hosts exempt from the address rule, for a private
network or a receiver on this machine.
"""

import base64
import ipaddress
import secrets
import socket
from collections.abc import Collection
from urllib.parse import urlsplit

from utils.crypto_utils import Keyring

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SECRET_CONTEXT = b"webhook_endpoints.secret"
MAX_URL_LENGTH = 2048


class UrlRefused(ValueError):
    """A webhook URL, or the address it reaches, breaks the rules; the message says which."""


def new_secret() -> str:
    """Return a fresh signing secret in the Standard Webhooks form: whsec_ and base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def encrypt_secret(keys: Keyring, secret: str) -> bytes:
    """Encrypt a signing secret for storage."""
    return keys.encrypt(secret, SECRET_CONTEXT)


def decrypt_secret(keys: Keyring, stored: bytes) -> str:
    """Decrypt a stored signing secret."""
    return keys.decrypt(stored, SECRET_CONTEXT)


def check_url(url: str, *, allow_http: bool, allowed_hosts: Collection[str]) -> str:
    """Return the URL if a webhook may be sent to it, resolving its host now; raise UrlRefused otherwise."""
    host, port = url_host(url, allow_http=allow_http)
    if host not in allowed_hosts:
        for address in resolve(host, port):
            check_address(address)
    return url


def url_host(url: str, *, allow_http: bool) -> tuple[str, int]:
    """Return the (lower-cased host, port) of a well-formed webhook URL; raise UrlRefused otherwise."""
    if len(url) > MAX_URL_LENGTH or not url.isascii() or any(char.isspace() or not char.isprintable() for char in url):
        raise UrlRefused(f"must be an absolute URL of at most {MAX_URL_LENGTH} printable ASCII characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused("must be a well-formed URL") from error
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise UrlRefused("must be an https URL" if not allow_http else "must be an http or https URL")
    if not parts.hostname:
        raise UrlRefused("must name a host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("must not hold a user name or password")
    if parts.fragment:
        raise UrlRefused("must not have a #fragment")
    return parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[str]:
    """Return every address a host name resolves to (an address resolves to itself); raise UrlRefused if none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UrlRefused(f"names a host that does not resolve ({host})") from error
    return sorted({info[4][0] for info in found})


def check_address(address: str) -> None:
    """Refuse an address a webhook must not reach: anything but a public unicast address."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast:
        raise UrlRefused(f"reaches {ip}, an internal address (loopback, private, link-local or reserved)")
