"""Start the API under uWSGI (uwsgi.ini) on $PORT, with Nagle's algorithm off for every client.

uWSGI's HTTP router never sets TCP_NODELAY, so a response larger than its buffer went out in
pieces, each after the first held back until the client's delayed ACK: 40 ms for a 90 KB page.
An accepted connection takes the options of its listening socket, so this binds the port with
TCP_NODELAY set and hands it to uWSGI as file descriptor 3 (`http = fd://3` in uwsgi.ini).

    .venv/bin/python -m web.serve [more uWSGI options]
"""

import os
import socket
import sys
from pathlib import Path

HTTP_FD = 3
BACKLOG = 1024
DEFAULT_PORT = "8080"
UWSGI_INI = Path(__file__).resolve().parent.parent / "uwsgi.ini"


def listening_socket(port: int) -> socket.socket:
    """Return a TCP socket listening on every interface at `port`, TCP_NODELAY set for its connections."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(BACKLOG)
    return listener


def main(options: list[str]) -> None:
    """Listen on $PORT (8080 when unset), then become uWSGI serving the API on that socket."""
    given = os.environ.get("PORT") or DEFAULT_PORT
    if not (given.isascii() and given.isdigit() and 0 < int(given) < 65536):
        sys.exit(f"PORT must be a TCP port number (1-65535), not {given!r}")
    port = int(given)
    try:
        listener = listening_socket(port)
    except OSError as error:
        sys.exit(f"Cannot listen on port {port}: {error.strerror}")
    if listener.fileno() != HTTP_FD:
        os.dup2(listener.fileno(), HTTP_FD)
    os.set_inheritable(HTTP_FD, True)  # Python opens sockets close-on-exec; uWSGI must inherit this one
    os.environ["PORT"] = str(port)  # uwsgi.ini names the ready line and the workers' socket after it
    uwsgi = str(Path(sys.executable).parent / "uwsgi")
    os.execv(uwsgi, [uwsgi, "--ini", str(UWSGI_INI), *options])


if __name__ == "__main__":
    main(sys.argv[1:])
