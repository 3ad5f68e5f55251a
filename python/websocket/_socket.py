"""Socket defaults and raw socket helpers, as websocket-client 1.9.2's ``_socket``.

``recv``, ``recv_line`` and ``send`` work on a plain (or SSL) ``socket.socket``; they are
exported by the package as ``websocket.recv`` etc. and are not the WebSocket methods.
They turn timeouts into :class:`WebSocketTimeoutException` and EOF into
:class:`WebSocketConnectionClosedException`; other ``OSError``\\ s pass through.
"""

from __future__ import annotations

import errno
import selectors
import socket
from typing import Any, Dict, List, Optional, Tuple, Union

from ._exceptions import WebSocketConnectionClosedException, WebSocketTimeoutException
from ._ssl_compat import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError
from ._utils import _load_native, extract_err_message, extract_error_code

__all__ = [
    "DEFAULT_SOCKET_OPTION",
    "sock_opt",
    "setdefaulttimeout",
    "getdefaulttimeout",
    "recv",
    "recv_line",
    "send",
]

Timeout = Optional[Union[int, float]]


def _default_socket_options() -> List[Tuple[int, int, int]]:
    options = [(socket.SOL_TCP, socket.TCP_NODELAY, 1)]
    if hasattr(socket, "SO_KEEPALIVE"):
        options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            options.append((socket.SOL_TCP, getattr(socket, name), value))
    return options


# Applied to every new connection before the user's ``sockopt``: no Nagle delay, and
# TCP keepalive probes after 30 s idle, every 10 s, 3 tries (where the OS has them).
DEFAULT_SOCKET_OPTION: List[Tuple[int, int, int]] = _default_socket_options()

_default_timeout: Timeout = None

_RETRY_ERRNOS = (errno.EAGAIN, errno.EWOULDBLOCK)


# With the engine, ``timeout`` lives in a field of a compiled base class, which
# ``WebSocket.recv()`` reads per call without a dict look-up (src/bindings/websocket.rs).
_SockOptBase: Any = getattr(_load_native(), "SockOptBase", object)


class sock_opt(_SockOptBase):  # type: ignore[misc]
    """Socket options of a connection: ``sockopt`` (setsockopt tuples), ``sslopt``
    (dict) and ``timeout`` (None until set)."""

    sockopt: List[Tuple[Any, ...]]
    sslopt: Dict[str, Any]
    timeout: Timeout

    def __init__(
        self,
        sockopt: Optional[List[Tuple[Any, ...]]],
        sslopt: Optional[Dict[str, Any]],
    ) -> None:
        self.sockopt = [] if sockopt is None else sockopt
        self.sslopt = {} if sslopt is None else sslopt
        self.timeout = None


def setdefaulttimeout(timeout: Timeout) -> None:
    """Set the timeout (seconds, or None to block) used by new connections."""
    global _default_timeout
    _default_timeout = timeout


def getdefaulttimeout() -> Timeout:
    """The timeout set by :func:`setdefaulttimeout`; None by default."""
    return _default_timeout


def _wait(sock: socket.socket, event: int) -> bool:
    """Wait up to the socket's timeout for ``event``; True when it is ready."""
    selector = selectors.DefaultSelector()
    try:
        selector.register(sock, event)
        return bool(selector.select(sock.gettimeout()))
    finally:
        selector.close()


def _is_retryable(exc: OSError) -> bool:
    return extract_error_code(exc) in _RETRY_ERRNOS


def _recv_once(sock: socket.socket, bufsize: int) -> bytes:
    if sock.gettimeout() == 0:
        return sock.recv(bufsize)
    try:
        return sock.recv(bufsize)
    except SSLWantReadError:
        pass
    except OSError as exc:
        if isinstance(exc, socket.timeout) or not _is_retryable(exc):
            raise
    if not _wait(sock, selectors.EVENT_READ):
        raise WebSocketTimeoutException("Connection timed out waiting for data")
    return sock.recv(bufsize)


def recv(sock: socket.socket, bufsize: int) -> bytes:
    """Up to ``bufsize`` bytes from ``sock``.

    A timeout raises ``WebSocketTimeoutException`` and EOF (or ``sock`` being None)
    ``WebSocketConnectionClosedException``. On a blocking socket with a timeout,
    EAGAIN/``SSLWantReadError`` are retried once the socket is readable.
    """
    if not sock:
        raise WebSocketConnectionClosedException("socket is already closed.")
    try:
        data = _recv_once(sock, bufsize)
    except (socket.timeout, TimeoutError):
        raise WebSocketTimeoutException("Connection timed out")
    except SSLError as exc:
        message = extract_err_message(exc)
        if message is not None and "timed out" in message:
            raise WebSocketTimeoutException(message)
        raise
    if not data:
        raise WebSocketConnectionClosedException("Connection to remote host was lost.")
    return data


def recv_line(sock: socket.socket) -> bytes:
    """Bytes up to and including the next ``\\n``, read one byte at a time so that
    nothing after the line is consumed."""
    line = bytearray()
    while True:
        byte = recv(sock, 1)
        line += byte
        if byte == b"\n":
            return bytes(line)


def _send_once(sock: socket.socket, data: bytes) -> int:
    if sock.gettimeout() == 0:
        return sock.send(data)
    try:
        return sock.send(data)
    except SSLEOFError:
        raise WebSocketConnectionClosedException("socket is already closed.")
    except SSLWantWriteError:
        pass
    except OSError as exc:
        if isinstance(exc, socket.timeout) or not _is_retryable(exc):
            raise
    if not _wait(sock, selectors.EVENT_WRITE):
        return 0
    return sock.send(data)


def send(sock: socket.socket, data: Union[bytes, str]) -> int:
    """Send ``data`` (a str is UTF-8 encoded) with one ``sock.send``; returns the
    count sent, which may be short (0 when a retry after EAGAIN found the socket still
    not writable). A timeout raises ``WebSocketTimeoutException``; a ``None`` socket
    or an SSL EOF ``WebSocketConnectionClosedException``."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if not sock:
        raise WebSocketConnectionClosedException("socket is already closed.")
    try:
        return _send_once(sock, payload)
    except (socket.timeout, TimeoutError) as exc:
        raise WebSocketTimeoutException(extract_err_message(exc))
    except (OSError, SSLError) as exc:
        message = extract_err_message(exc)
        if message is not None and "timed out" in message:
            raise WebSocketTimeoutException(message)
        raise
