"""Serving the labeling app: a listening socket bound before uvicorn starts, so that the port (and
the links) are known first, on loopback unless asked otherwise."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable

from starlette.types import ASGIApp

from ..errors import LabelwiseError

log = logging.getLogger("labelwise")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class BoundServer:
    """A listening socket and the uvicorn server for it; ``port`` is known (and links work) before :meth:`run`."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int | None = None, *, access_log: bool = False):
        import uvicorn

        if not is_loopback(host):
            log.warning(
                "serving on %s: anyone who can reach this machine can open the page, and plain HTTP sends the tokens "
                "unencrypted",
                host,
            )
        self.host = host
        self.sock = _listen(host.strip("[]"), port or 0)
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", access_log=access_log, lifespan="off", ws="none", server_header=False,
            proxy_headers=False, timeout_graceful_shutdown=5,
        )  # fmt: skip
        self.server: uvicorn.Server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host.strip('[]')}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (from the main thread) or :meth:`stop`."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> BoundServer:
        """Serve from a daemon thread; returns once uvicorn has started."""
        self._thread = threading.Thread(target=self.run, name="labelwise-label-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the labeling server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to finish and wait for its thread."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join()


def _listen(host: str, port: int) -> socket.socket:
    name = "127.0.0.1" if host == "localhost" else host  # links say 127.0.0.1; localhost may resolve to ::1 first
    try:
        found = socket.getaddrinfo(name or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = found[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise LabelwiseError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise LabelwiseError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(
    app: ASGIApp,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    on_ready: Callable[[int], None] | None = None,
    access_log: bool = False,
) -> int:
    """Serve ``app`` with uvicorn until interrupted; ``on_ready(port)`` runs once the socket listens (print links there).

    A free port is chosen when ``port`` is 0 or None. Returns the port that was served, after a clean shutdown
    (Ctrl+C included).
    """
    bound = BoundServer(app, host, port, access_log=access_log)
    if on_ready is not None:
        on_ready(bound.port)
    try:
        bound.run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it handled, once it has shut down
        pass
    return bound.port
