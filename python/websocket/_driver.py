"""Which driver moves a connection's bytes, and what a driver offers ``WebSocket``.

Two drivers run the same Rust protocol core:

* ``"native"``: the Rust engine owns the socket (TCP, TLS with rustls, proxies); a Python
  thread blocked in a receive releases the GIL, and one background thread answers pings and
  close frames at once, even while Python is busy or not reading.
* ``"python"``: every connect, read, write, TLS wrap and wait goes through Python socket
  objects (``websocket._socket_driver``): gevent and eventlet see every wait, TLS is Python's
  ``ssl`` with websocket-client's ``sslopt`` meaning, and no thread is started. Pings are
  answered when the application reads, as in websocket-client.

``"auto"`` (the default) picks ``"python"`` when gevent or eventlet has patched ``socket``,
when ``socket=`` is an object the engine cannot own (an ``ssl.SSLSocket``, a wrapper, a
mock: anything but a plain stream socket), when ``sslopt`` asks for what only OpenSSL does
(``ciphers``, ``ecdh_curve``, TLS below 1.2), for a socket assigned to ``ws.sock``, and
when ``websocket._core.connect``/``handshake`` were replaced (code that mocks the socket
layer, as websocket-client's own tests do); ``"native"`` otherwise. The ``driver=`` option of ``create_connection``/``connect``/``run_forever`` and
:func:`setdefaultdriver` choose explicitly.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, List, Optional, Tuple, Union

from typing import Protocol

import _socket

from ._ssl_compat import ssl

__all__ = ["DRIVERS", "Connection", "setdefaultdriver", "getdefaultdriver", "socket_is_patched", "choose"]

DRIVERS = ("auto", "native", "python")

_default_driver = "auto"

# sslopt keys that only Python's ssl (OpenSSL) can honour.
_OPENSSL_ONLY = ("ciphers", "ecdh_curve")


class Connection(Protocol):
    """What ``WebSocket`` and ``WebSocketApp`` call on a connection, whichever driver runs it
    (``_native.Connection`` or ``_socket_driver.SocketConnection``). Receives return
    ``(opcode, fin, rsv, data)`` tuples or ``(opcode, data)``; they raise the
    ``websocket._exceptions`` classes; a timeout of None waits forever."""

    status: int
    subprotocol: Optional[str]
    compression: Optional[Dict[str, Any]]
    is_ssl: bool
    close_sent: bool
    peer_close: Optional[bytes]
    text_decoding_checked: bool

    def send(
        self,
        payload: Any,
        opcode: int = ...,
        fin: bool = ...,
        rsv: int = ...,
        mask_key: Optional[bytes] = ...,
        timeout: Optional[float] = ...,
    ) -> int: ...
    def send_close(self, payload: bytes, timeout: Optional[float] = ...) -> bool: ...
    def recv_frame(self, control: bool = ..., timeout: Optional[float] = ...) -> Tuple[int, bool, int, bytes]: ...
    def recv_message(self, control: bool = ..., timeout: Optional[float] = ...) -> Tuple[int, bool, int, bytes]: ...
    def recv_data(self, timeout: Optional[float] = ..., decode: bool = ..., control: bool = ...) -> Tuple[int, Any]: ...
    def recv_text_or_binary(self, timeout: Optional[float] = ...) -> Union[str, bytes, None]: ...
    def recv_next(self) -> Union[str, bytes, None]: ...
    def recv_batch(
        self, max: int = ..., timeout: Optional[float] = ..., decode: bool = ..., fragments: bool = ...
    ) -> List[Tuple[int, bool, Union[str, bytes]]]: ...
    def close(self, payload: bytes, timeout: Optional[float] = ...) -> Optional[bytes]: ...
    def shutdown(self) -> None: ...
    def has_item(self) -> bool: ...
    def readiness_fd(self) -> int: ...
    def fileno(self) -> int: ...
    def set_mode(self, mode: int) -> None: ...
    def set_skip_utf8(self, skip: bool) -> None: ...
    def set_max_size(self, max: Optional[int] = ...) -> None: ...
    def take_headers(self) -> List[Tuple[str, str]]: ...
    def send_raw(self, data: bytes, timeout: Optional[float] = ...) -> None: ...


def _check(name: Any) -> str:
    if name is None:
        return _default_driver
    if name not in DRIVERS:
        raise ValueError(f"driver must be one of {', '.join(repr(d) for d in DRIVERS)}, not {name!r}")
    return str(name)


def setdefaultdriver(name: str) -> None:
    """Sets the driver of new connections: ``"auto"`` (the default), ``"native"`` or
    ``"python"`` (see ``websocket._driver``)."""
    global _default_driver
    _default_driver = _check(name)


def getdefaultdriver() -> str:
    """The driver :func:`setdefaultdriver` set; ``"auto"`` by default."""
    return _default_driver


def socket_is_patched() -> bool:
    """Whether gevent or eventlet (or anything else) has replaced ``socket.socket``: the
    standard class lives in the ``socket`` module, theirs elsewhere."""
    return getattr(socket.socket, "__module__", "socket") != "socket"


def engine_can_own(sock: Any) -> bool:
    """Whether the native engine can take over ``sock``: a plain stream socket of the C
    type, not an SSLSocket, not a wrapper or a green socket."""
    if not isinstance(sock, _socket.socket):
        return False
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        return False
    try:
        return sock.type == socket.SOCK_STREAM and sock.fileno() >= 0
    except OSError:
        return False


def choose(
    requested: Any, user_socket: Any = None, sslopt: Optional[Dict[str, Any]] = None, helpers_replaced: bool = False
) -> str:
    """``"native"`` or ``"python"`` for a new connection (see the module's docstring).
    ``helpers_replaced``: ``websocket._core.connect`` or ``.handshake`` was replaced (by
    code that mocks the socket layer, as websocket-client's tests do): only the Python
    driver calls them."""
    name = _check(requested)
    if name != "auto":
        return name
    if socket_is_patched() or helpers_replaced:
        return "python"
    if user_socket is not None and not engine_can_own(user_socket):
        return "python"
    if sslopt and (any(sslopt.get(k) is not None for k in _OPENSSL_ONLY) or _old_protocol(sslopt.get("ssl_version"))):
        return "python"
    return "native"


def _old_protocol(version: Any) -> bool:
    """An ``ssl_version`` protocol constant below TLS 1.2 (rustls' floor)."""
    if ssl is None or version is None:
        return False
    modern = {getattr(ssl, n, None) for n in ("PROTOCOL_TLS", "PROTOCOL_TLS_CLIENT", "PROTOCOL_TLSv1_2")}
    return isinstance(version, ssl._SSLMethod) and version not in modern
