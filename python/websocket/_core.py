"""``WebSocket`` and ``create_connection``: websocket-client 1.9.2's synchronous API over the
Rust protocol core (``websocket._native``), through one of two drivers (``websocket._driver``).

With the native driver the engine owns the socket: it reads in the background while Python
is busy (answering pings and close frames at once), queues complete messages, and every
blocking call releases the GIL. With the Python-socket driver the bytes move through a
Python socket object (gevent, eventlet, an SSLSocket of the caller, a socket assigned to
``ws.sock``). This module translates options, picks the driver, keeps the reference's
attributes and quirks, and routes calls through Python-visible methods only when a subclass
overrides them.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple, Type, Union
from urllib.parse import urljoin

from . import _logging
from . import _native
from . import _driver
from . import _socket_driver
from ._abnf import ABNF, STATUS_NORMAL, continuous_frame, frame_buffer
from ._dispatcher import DispatcherBase, WrappedDispatcher  # noqa: F401
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketProtocolException,
    WebSocketTimeoutException,
)
from ._handshake import (
    SUPPORTED_REDIRECT_STATUSES,
    compression_offer,
    handshake,
    handshake_response,
    request_options,
    response_headers,
)
from ._http import connect, proxy_info
from ._logging import debug, error, isEnabledForError, isEnabledForTrace, trace  # noqa: F401
from ._proxy import resolve_proxy
from ._socket import getdefaulttimeout, recv, send, sock_opt
from ._ssl_compat import ssl
from ._ssl_options import tls_options
from ._url import parse_url
from ._utils import NoLock

__all__ = ["WebSocket", "create_connection"]

# The Python-socket driver connects through these module names, as websocket-client does:
# code that replaces them (tests mocking the socket layer) gets its own used (see _driver).
_HELPERS = (connect, handshake)


def _helpers_replaced() -> bool:
    return (connect, handshake) != _HELPERS


class _Redirect(NamedTuple):
    status: int
    location: Optional[str]


def _normalize_close_reason(reason: Union[str, bytes, None]) -> bytes:
    """A close reason as the UTF-8 bytes of a close frame's payload."""
    if reason is None:
        return b""
    if isinstance(reason, str):
        return reason.encode("utf-8")
    if isinstance(reason, bytes):
        return reason
    return bytes(reason)


_MODE_MESSAGES, _MODE_FRAGMENTS, _MODE_RAW = 0, 1, 2
# The payload of close() with its defaults.
_NORMAL_CLOSE = struct.pack("!H", STATUS_NORMAL)


class _SocketView:
    """What ``WebSocket.sock`` is on the native driver: a stand-in for the socket, which
    the engine owns.

    ``fileno()`` is a handle that is readable exactly while a ``recv*`` call would not block
    (and always writable), so ``select()``/``poll()`` on ``ws.sock`` keep working; address
    and option calls go to the real socket. ``send``/``sendall`` write bytes the caller
    formatted (whole frames, as ``ABNF.format()`` makes them) in order with the engine's
    own frames, never inside one; ``recv`` hands over the server's frames as bytes.
    """

    __slots__ = ("_ws", "_conn")

    def __init__(self, ws: "WebSocket", conn: Any) -> None:
        self._ws = ws
        self._conn = conn

    def _real(self, fn: Callable[[socket.socket], Any]) -> Any:
        s = socket.socket(fileno=self._conn.fileno())
        try:
            return fn(s)
        finally:
            s.detach()

    def fileno(self) -> int:
        return int(self._conn.readiness_fd())

    def getpeername(self) -> Any:
        return self._real(lambda s: s.getpeername())

    def getsockname(self) -> Any:
        return self._real(lambda s: s.getsockname())

    def setsockopt(self, *args: Any) -> None:
        self._real(lambda s: s.setsockopt(*args))

    def getsockopt(self, *args: Any) -> Any:
        return self._real(lambda s: s.getsockopt(*args))

    @property
    def family(self) -> int:
        return int(self._real(lambda s: s.family))

    @property
    def type(self) -> int:
        return int(self._real(lambda s: s.type))

    def gettimeout(self) -> Optional[float]:
        return self._ws.gettimeout()

    def settimeout(self, timeout: Optional[float]) -> None:
        self._ws.settimeout(timeout)

    def pending(self) -> int:
        """Whether a receive would return at once (1) or wait (0): what is buffered in
        this process, like ``SSLSocket.pending()``."""
        return 1 if self._conn.has_item() else 0

    def send(self, data: bytes) -> int:
        """Writes ``data`` (pre-formatted frames) in full, in order with the engine's own
        frames; returns its length."""
        data = bytes(data)
        self._conn.send_raw(data, self._ws.gettimeout())
        return len(data)

    def sendall(self, data: bytes) -> None:
        self.send(data)

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes of the server's frame stream (frames the engine had
        already decoded are handed over re-encoded, compressed ones inflated); b"" at EOF.
        Meant for code that parses frames itself; mixing it with ``recv_*`` of the
        WebSocket splits the stream between them."""
        return bytes(self._conn.recv_raw(bufsize, self._ws.gettimeout()))

    def shutdown(self, how: int = socket.SHUT_RDWR) -> None:
        self._conn.shutdown()

    def close(self) -> None:
        self._ws.shutdown()

    def __repr__(self) -> str:
        return f"<websocket socket view fd={self._conn.fileno()} ssl={self._conn.is_ssl}>"


_SockOpt = sock_opt


def _overrides(cls: type, *names: str) -> bool:
    return any(getattr(cls, n) is not getattr(WebSocket, n) for n in names)


class WebSocket(_native.WebSocketBase):
    """Low-level WebSocket interface, websocket-client compatible.

    >>> import websocket
    >>> ws = websocket.WebSocket()
    >>> ws.connect("ws://echo.websocket.events")
    >>> ws.recv()
    'echo.websocket.events sponsored by Lob.com'
    >>> ws.send("Hello, Server")
    19
    >>> ws.recv()
    'Hello, Server'
    >>> ws.close()

    Parameters are the reference's: ``get_mask_key`` (a function of n returning n bytes
    used as the mask; slower, for tests), ``sockopt`` (setsockopt tuples), ``sslopt``
    (ssl options dict), ``fire_cont_frame`` (return every fragment from ``recv_data``),
    ``enable_multithread`` (the send/recv locks), ``skip_utf8_validation``, ``dispatcher``.
    """

    # Kept in fields of the compiled base (WebSocketBase), which recv() reads.
    sock_opt: _SockOpt

    # Set per class by __init_subclass__: which calls may skip Python-level overrides.
    _native_recv = True
    _native_send = True
    _raw_frames = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._raw_frames = _overrides(cls, "recv_frame")
        cls._native_recv = not _overrides(cls, "recv_frame", "recv_data_frame", "recv_data")
        cls._native_send = not _overrides(cls, "send_frame")

    def __init__(
        self,
        get_mask_key: Optional[Callable[[int], bytes]] = None,
        sockopt: Optional[list] = None,  # type: ignore[type-arg]
        sslopt: Optional[Dict[str, Any]] = None,
        fire_cont_frame: bool = False,
        enable_multithread: bool = True,
        skip_utf8_validation: bool = False,
        dispatcher: Any = None,
        **_: Any,
    ) -> None:
        self.sock_opt = sock_opt(sockopt, sslopt)
        self.handshake_response: Optional[handshake_response] = None
        self._sock: Any = None
        self.connected = False
        self.get_mask_key = get_mask_key
        self.fire_cont_frame = fire_cont_frame
        self.skip_utf8_validation = skip_utf8_validation
        self.dispatcher = dispatcher
        self.close_frame: Optional[ABNF] = None
        #: The permessage-deflate parameters in force after ``connect`` (a dict), or None.
        self.compression: Optional[Dict[str, Any]] = None
        self._conn: Any = None
        self._user_socket: Any = None
        #: Which driver runs the connection: "native" or "python" (None before connecting).
        self.driver: Optional[str] = None
        self._frame_buffer: Optional[frame_buffer] = None
        self._cont_frame: Optional[continuous_frame] = None
        # The reference's send and read locks (``lock``, ``readlock``) are made on first use:
        # most connections never take them (the engine orders frames itself), and two locks
        # are a tenth of an idle connection's memory.
        self._multithread = enable_multithread
        # The class's flags (set by __init_subclass__) copied onto the instance: the hot
        # paths read them per call, and CPython 3.11 reads an instance's own value faster
        # than a class attribute through the instance.
        self._native_recv = self._native_recv
        self._native_send = self._native_send
        self._fast_recv = self._native_recv  # read by WebSocketBase.recv
        self._fast_send = self._native_send  # and .send

    def _make_lock(self, name: str) -> Any:
        lock = threading.Lock() if self._multithread else NoLock()
        return self.__dict__.setdefault(name, lock)  # atomic: one lock wins a race

    @property
    def lock(self) -> Any:
        """The send lock (a ``threading.Lock``, or a no-op with ``enable_multithread=False``)."""
        return self.__dict__.get("_lock") or self._make_lock("_lock")

    @lock.setter
    def lock(self, value: Any) -> None:
        self.__dict__["_lock"] = value

    @property
    def readlock(self) -> Any:
        """The receive lock, made like ``lock``."""
        return self.__dict__.get("_readlock") or self._make_lock("_readlock")

    @readlock.setter
    def readlock(self, value: Any) -> None:
        self.__dict__["_readlock"] = value

    # The reference's frame assembly helpers; only used by subclasses that read raw frames.
    @property
    def frame_buffer(self) -> frame_buffer:
        if self._frame_buffer is None:
            self._frame_buffer = frame_buffer(self._recv, self.skip_utf8_validation)
        return self._frame_buffer

    @property
    def cont_frame(self) -> continuous_frame:
        if self._cont_frame is None:
            self._cont_frame = continuous_frame(self.fire_cont_frame, self.skip_utf8_validation)
        return self._cont_frame

    @property
    def sock(self) -> Any:
        """The connection's socket: on the Python-socket driver the socket object itself
        (``socket.socket``, ``ssl.SSLSocket``, a green socket); on the native driver a view
        of the socket the engine owns (see ``_SocketView``); None when not connected.

        Assigning a socket object (already past its opening handshake, as in
        websocket-client's own tests: ``ws.sock = s; ws.connected = True``) makes the
        WebSocket read and write frames through it with the Python-socket driver.
        """
        return self._sock

    @sock.setter
    def sock(self, value: Any) -> None:
        if value is None or isinstance(value, _SocketView) or (self._conn is not None and value is getattr(self._conn, "sock", None)):
            self._sock = value
            return
        self._conn = _socket_driver.adopt(value, self._protocol_options(), **self._driver_hooks())
        self.driver = "python"
        self._sock = value

    def _protocol_options(self) -> Dict[str, Any]:
        mode = _MODE_RAW if self._raw_frames else (_MODE_FRAGMENTS if self.fire_cont_frame else _MODE_MESSAGES)
        return {"mode": mode, "skip_utf8_validation": self.skip_utf8_validation, "max_size": None}

    def _driver_hooks(self) -> Dict[str, Any]:
        """How the Python-socket driver moves bytes for this WebSocket: through this
        module's ``send``/``recv`` (or the dispatcher's ``send``), as websocket-client does."""
        dispatcher = self.dispatcher
        sender = None
        if dispatcher is not None and callable(getattr(dispatcher, "send", None)):
            sender = dispatcher.send
        # This module's namespace: the driver calls the "send" and "recv" it holds at each
        # write and read (the socket itself while they are websocket._socket's).
        return {"send": sender, "names": globals()}

    def __iter__(self) -> Iterator[Union[str, bytes]]:
        """Allow iteration over websocket, implying sequential `recv` executions."""
        while True:
            yield self.recv()

    def __next__(self) -> Union[str, bytes]:
        return self.recv()

    def next(self) -> Union[str, bytes]:
        return self.__next__()

    def fileno(self) -> int:
        """An fd that ``select()`` reports readable exactly when ``recv`` would not block."""
        if self._sock is None:
            raise WebSocketException("socket is already closed.")
        return int(self._sock.fileno())

    def set_mask_key(self, func: Callable[[int], bytes]) -> None:
        """Sets the function that makes mask keys (``func(4) -> 4 bytes``); for testing."""
        self.get_mask_key = func

    def gettimeout(self) -> Optional[float]:
        """The timeout, in seconds, of connect, send and recv (None: wait forever)."""
        return self.sock_opt.timeout

    def settimeout(self, timeout: Optional[float]) -> None:
        """Sets the timeout of every later blocking call (None: wait forever); on the
        Python-socket driver the socket's own timeout too, as websocket-client does."""
        self.sock_opt.timeout = timeout
        if self.driver == "python" and self._conn is not None:
            self._conn.settimeout(timeout)

    timeout = property(gettimeout, settimeout)

    def getsubprotocol(self) -> Optional[str]:
        """The subprotocol the server chose (lowercased), or None."""
        return self.handshake_response.subprotocol if self.handshake_response else None

    subprotocol = property(getsubprotocol)

    def getstatus(self) -> Optional[int]:
        """The handshake's HTTP status (101), or None before connecting."""
        return self.handshake_response.status if self.handshake_response else None

    status = property(getstatus)

    def getheaders(self) -> Optional[Dict[str, str]]:
        """The handshake response headers, names lowercased, or None."""
        return self.handshake_response.headers if self.handshake_response else None

    headers = property(getheaders)

    def is_ssl(self) -> bool:
        """Whether the connection runs over TLS."""
        if self.driver == "python":
            return ssl is not None and isinstance(self._sock, ssl.SSLSocket)
        return bool(self._conn is not None and self._conn.is_ssl)

    # ---- connecting ---------------------------------------------------------------------

    def connect(self, url: str, **options: Any) -> None:
        """Connects to ``url`` (ws:// or wss://) and runs the opening handshake.

        Options: header (list or dict), cookie, origin, suppress_origin, host,
        suppress_host, subprotocols, timeout, redirect_limit (3), connection, socket,
        sockopt/sslopt (constructor), max_size (largest message accepted, beyond the
        reference), and the proxy options http_proxy_host, http_proxy_port,
        http_proxy_auth=(user, password), http_no_proxy, proxy_type (http, socks4,
        socks4a, socks5, socks5h) and http_proxy_timeout (see ``websocket._proxy``);
        WebSocketProxyException when the proxy refuses. Raises WebSocketBadStatusException for a
        non-101 answer, WebSocketException for a bad handshake, WebSocketAddressException
        when the host does not resolve, OSError (ConnectionRefusedError...) from connect,
        ssl.SSLError subclasses for TLS failures, TimeoutError when the TCP connect times
        out (as websocket-client), WebSocketTimeoutException when the handshake does.

        ``compression`` (beyond the reference; default False): True offers
        permessage-deflate (RFC 7692) as ``permessage-deflate; client_max_window_bits``; a
        dict sets the offer's parameters ``client_max_window_bits`` (True: the server may
        choose, or 8-15), ``server_max_window_bits`` (8-15), ``client_no_context_takeover``
        and ``server_no_context_takeover`` (bools). Messages are then compressed and
        inflated transparently; ``self.compression`` holds the agreed parameters (None if
        the server declined). A bad answer to the offer raises WebSocketException; an
        unknown parameter or a window outside 8-15 raises ValueError.

        ``driver`` (beyond the reference; default ``getdefaultdriver()``, ``"auto"``): which
        driver moves the bytes, ``"native"`` (the Rust engine) or ``"python"`` (Python
        socket objects: gevent, eventlet, a caller's SSLSocket); see ``websocket._driver``.
        """
        self.sock_opt.timeout = options.get("timeout", self.sock_opt.timeout)
        redirects_left = int(options.get("redirect_limit", 3))
        user_socket = options.pop("socket", None)
        try:
            while True:
                result = self._open(url, user_socket, options)
                if not isinstance(result, _Redirect):
                    break
                status, location = result
                if not location:
                    raise WebSocketException(f"Redirect status {status} without a Location header")
                if redirects_left <= 0:
                    raise WebSocketException("Redirect limit exhausted")
                redirects_left -= 1
                url = self._redirect_target(url, location)
                try:
                    parse_url(url)
                except ValueError as e:
                    raise WebSocketException(f"Invalid redirect target {location!r}: {e}") from None
                user_socket = None
        except BaseException:
            self._sock = None
            self._conn = None
            self.connected = False
            raise
        conn, response = result
        self._conn = conn
        # The Python driver's connection closes the caller's socket itself (it is its socket).
        self._user_socket = user_socket if self.driver == "native" else None
        self._sock = conn.sock if self.driver == "python" else _SocketView(self, conn)
        self.handshake_response = response
        self.compression = conn.compression
        self.connected = True
        self.close_frame = None

    @staticmethod
    def _redirect_target(url: str, location: str) -> str:
        if "://" in location:
            return location
        http_base = "http" + url[2:] if url.startswith("ws") else url
        joined = urljoin(http_base, location)
        return "ws" + joined[4:] if joined.startswith("http") else joined

    def _open(self, url: str, user_socket: Any, options: Dict[str, Any]) -> Any:
        """One connection attempt: ``(connection, handshake_response)``, or a redirect."""
        hostname, port, resource, is_secure = parse_url(url)
        timeout = self.sock_opt.timeout
        sslopt = self.sock_opt.sslopt
        self.driver = driver = _driver.choose(
            options.get("driver"), user_socket, sslopt if is_secure else None, helpers_replaced=_helpers_replaced()
        )
        # A subclass reading raw frames would get compressed payloads: no offer then.
        offer = None if self._raw_frames else compression_offer(options.get("compression"))
        protocol = self._protocol_options()
        protocol["max_size"] = options.get("max_size")
        if driver == "python":
            return self._open_python(url, user_socket, dict(options, compression=offer), protocol)
        # A given socket is used as is: no proxy, no TLS (as the reference).
        proxy = None if user_socket is not None else resolve_proxy(hostname, is_secure, options, timeout)
        native_opts = request_options(hostname, options, offer)  # a new dict, filled in here
        native_opts.update(protocol)
        sockopt = self.sock_opt.sockopt
        native_opts["timeout"] = timeout
        native_opts["sockopt"] = list(sockopt) if sockopt else []
        native_opts["tls"] = tls_options(sslopt, hostname) if is_secure else None
        native_opts["socket_fd"] = user_socket.fileno() if user_socket is not None else None
        native_opts["proxy"] = proxy
        conn = _native.Connection.open(hostname, port, resource, is_secure, native_opts)
        if isinstance(conn, tuple):
            return _Redirect(*conn)
        response = handshake_response(conn.status, response_headers(conn.take_headers()), conn.subprotocol)
        return conn, response

    def _open_python(self, url: str, user_socket: Any, options: Dict[str, Any], protocol: Dict[str, Any]) -> Any:
        """The Python-socket driver's attempt, websocket-client's way: ``connect()`` opens
        the socket (or takes ``user_socket``), ``handshake()`` runs over it; both are this
        module's names, looked up now. On failure the socket is closed."""
        hostname, port, resource, is_secure = parse_url(url)
        # Bad options fail before anything is opened.
        _native.build_request(hostname, port, resource, is_secure, request_options(hostname, options, options.get("compression")))
        sock, addrs = connect(url, self.sock_opt, proxy_info(**options), user_socket)
        try:
            response = handshake(sock, url, *addrs, **options)
        except BaseException:
            sock.close()
            raise
        if response.status in SUPPORTED_REDIRECT_STATUSES:
            sock.close()
            return _Redirect(response.status, response.headers.get("location"))
        compression = getattr(response, "compression", None)
        conn = _socket_driver.SocketConnection(
            sock,
            _native.Protocol(dict(protocol, compression=compression)),
            response.status,
            None,
            response.subprotocol,
            compression,
            manage_timeout=user_socket is None or self.sock_opt.timeout is not None,
            **self._driver_hooks(),
        )
        conn.set_skip_utf8(bool(protocol.get("skip_utf8_validation")))
        return conn, response

    # ---- sending ------------------------------------------------------------------------

    def _require_conn(self) -> Any:
        conn = self._conn
        if conn is None:
            raise WebSocketConnectionClosedException("socket is already closed.")
        return conn

    # send() is WebSocketBase's (src/bindings/websocket.rs): one frame through the engine
    # for the common case, the others come here.

    def _send_slow(self, payload: Union[bytes, bytearray, str], opcode: int = ABNF.OPCODE_TEXT) -> int:
        """``send()`` with ``get_mask_key`` set, a ``send_frame`` override, or a ``str``
        sent with a non-text opcode (encoded as latin-1, as in the reference)."""
        if self._native_send and self.get_mask_key is None:
            if isinstance(payload, str) and opcode != ABNF.OPCODE_TEXT:
                payload = payload.encode("latin-1")
            return int(self._require_conn().send(payload, opcode, True, 0, None, self.sock_opt.timeout))
        return self.send_frame(ABNF.create_frame(payload, opcode))

    def send_text(self, text_data: str) -> int:
        """Sends a TEXT frame; returns its length on the wire."""
        return self.send(text_data, ABNF.OPCODE_TEXT)

    def send_bytes(self, data: Union[bytes, bytearray]) -> int:
        """Sends a BINARY frame; returns its length on the wire."""
        return self.send(data, ABNF.OPCODE_BINARY)

    def send_binary(self, payload: bytes) -> int:
        """Sends a BINARY frame; returns its length on the wire."""
        return self.send(payload, ABNF.OPCODE_BINARY)

    def send_frame(self, frame: ABNF) -> int:
        """Sends an ``ABNF`` frame as is (fin, rsv bits, opcode); returns its wire length.

        The frame is masked with ``get_mask_key`` when one is set, otherwise with a random
        key. Frames from several threads never interleave.
        """
        conn = self._conn
        if conn is None:
            return self._send_frame_unconnected(frame)
        data = frame.data
        if isinstance(data, str):
            data = data.encode("utf-8" if frame.opcode == ABNF.OPCODE_TEXT else "latin-1")
        key: Optional[bytes] = None
        if self.get_mask_key is not None:
            raw = self.get_mask_key(4)
            key = raw.encode("latin-1") if isinstance(raw, str) else bytes(raw)
        rsv = (frame.rsv1 and 4) | (frame.rsv2 and 2) | (frame.rsv3 and 1)
        if self.driver == "python":  # the driver holds its own write lock
            return int(conn.send(data, frame.opcode, bool(frame.fin), rsv, key, self.sock_opt.timeout))
        with self.lock:
            return int(conn.send(data, frame.opcode, bool(frame.fin), rsv, key, self.sock_opt.timeout))

    def _send_frame_unconnected(self, frame: ABNF) -> int:
        """websocket-client's send_frame, for code that replaces ``_send`` on a WebSocket
        that has no connection: the frame formatted here, written through ``_send`` under
        ``lock``."""
        if self.get_mask_key:
            frame.get_mask_key = self.get_mask_key
        data = frame.format()
        length = len(data)
        if isEnabledForTrace():
            trace(f"++Sent raw: {repr(data)}")
            trace(f"++Sent decoded: {frame.__str__()}")
        with self.lock:
            while data:
                data = data[self._send(data):]
        return length

    def _send(self, data: Union[str, bytes]) -> int:
        """Raw bytes out, as websocket-client writes them: through the dispatcher when one
        was given, else this module's ``send`` on ``self.sock``."""
        if self._sock is None:
            raise WebSocketConnectionClosedException("socket is already closed.")
        if self.dispatcher:
            return int(self.dispatcher.send(self._sock, data))
        return send(self._sock, data)

    def ping(self, payload: Union[str, bytes, bytearray] = "") -> None:
        """Sends a ping (str payloads are UTF-8 encoded)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.send(payload, ABNF.OPCODE_PING)

    def pong(self, payload: Union[str, bytes, bytearray] = "") -> None:
        """Sends a pong (str payloads are UTF-8 encoded)."""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        self.send(payload, ABNF.OPCODE_PONG)

    # ---- receiving ----------------------------------------------------------------------

    # recv() is WebSocketBase's (src/bindings/websocket.rs): the next message, ``str`` for
    # text, ``bytes`` for binary, ``""`` after a close, read straight from the engine when
    # the class reads through it; the other cases come here.

    def _recv_slow(self) -> Union[str, bytes]:
        """``recv()`` before connecting, with ``fire_cont_frame``, or for a subclass that
        reads frames itself (``recv_frame``/``recv_data*`` overridden): under the read
        lock, through ``recv_data``."""
        with self.readlock:
            if self._native_recv and not self.fire_cont_frame:
                try:
                    opcode, data = self._require_conn().recv_data(self.sock_opt.timeout, True, False)
                except WebSocketConnectionClosedException:
                    self.shutdown()
                    raise
                if opcode == ABNF.OPCODE_CLOSE:
                    self._on_peer_close(data)
            else:
                opcode, data = self.recv_data()
        if opcode == ABNF.OPCODE_TEXT:
            return data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        if opcode == ABNF.OPCODE_BINARY:
            return data  # type: ignore[no-any-return]
        return ""

    def recv_data(self, control_frame: bool = False) -> Tuple[int, Any]:
        """The next message as ``(opcode, bytes)``; control frames too if ``control_frame``."""
        opcode, frame = self.recv_data_frame(control_frame)
        return opcode, frame.data

    def recv_data_frame(self, control_frame: bool = False) -> Tuple[int, ABNF]:
        """The next message as ``(opcode, ABNF)``, fragments joined (each fragment when
        ``fire_cont_frame``). A close frame is always returned (the engine has answered
        it); pings and pongs only with ``control_frame``."""
        if self._raw_frames:
            return self._recv_data_frame_python(control_frame)
        conn = self._require_conn()
        # fire_cont_frame: every fragment (first opcode, then CONT), as the reference.
        recv = conn.recv_frame if self.fire_cont_frame else conn.recv_message
        try:
            opcode, fin, rsv, data = recv(control_frame, self.sock_opt.timeout)
        except WebSocketConnectionClosedException:
            self.shutdown()
            raise
        frame = ABNF(int(fin), rsv >> 2 & 1, rsv >> 1 & 1, rsv & 1, opcode, 0, data)
        if opcode == ABNF.OPCODE_CLOSE:
            self._on_peer_close(data)
        return opcode, frame

    def recv_frame(self) -> ABNF:
        """The next frame as an ``ABNF``, as it arrived: fragments one by one, control
        frames included. The engine has already answered pings (an extra pong is harmless)
        and checked the frame (protocol errors raise here). A subclass that overrides
        ``recv_frame`` gets frames unchecked and does the rest itself, as in the reference.
        """
        conn = self._require_conn()
        try:
            opcode, fin, rsv, data = conn.recv_frame(True, self.sock_opt.timeout)
        except WebSocketConnectionClosedException:
            self.shutdown()
            raise
        return ABNF(int(fin), rsv >> 2 & 1, rsv >> 1 & 1, rsv & 1, opcode, 0, data)

    def _recv_data_frame_python(self, control_frame: bool) -> Tuple[int, ABNF]:
        """The reference's assembly loop, over raw frames from (overridden) ``recv_frame``."""
        while True:
            frame = self.recv_frame()
            if _logging.isEnabledForTrace():
                _logging.trace(f"++Rcv decoded: {frame.__str__()}")
            if not frame:
                raise WebSocketProtocolException(f"Not a valid frame {frame}")
            frame.validate(self.skip_utf8_validation)
            if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY, ABNF.OPCODE_CONT):
                self.cont_frame.validate(frame)
                self.cont_frame.add(frame)
                if self.cont_frame.is_fire(frame):
                    return self.cont_frame.extract(frame)
            elif frame.opcode == ABNF.OPCODE_CLOSE:
                self.send_close()
                return frame.opcode, frame
            elif frame.opcode == ABNF.OPCODE_PING:
                if len(frame.data) < 126:
                    self.pong(frame.data)
                else:
                    raise WebSocketProtocolException("Ping message is too long")
                if control_frame:
                    return frame.opcode, frame
            elif frame.opcode == ABNF.OPCODE_PONG:
                if control_frame:
                    return frame.opcode, frame

    def _on_peer_close(self, data: bytes) -> None:
        self.connected = False
        self.close_frame = ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0, data)

    def _recv(self, bufsize: int) -> bytes:
        """Raw bytes from the socket, for ``frame_buffer`` (a subclass reading frames
        itself): the socket object's on the Python-socket driver, the server's frame stream
        on the native one."""
        if self._sock is None:
            raise WebSocketConnectionClosedException("socket is already closed.")
        try:
            if self.driver == "python":
                return recv(self._sock, bufsize)
            data = self._sock.recv(bufsize)
            if not data:
                raise WebSocketConnectionClosedException("Connection to remote host was lost.")
            return data  # type: ignore[no-any-return]
        except WebSocketConnectionClosedException:
            self.shutdown()
            raise

    # ---- closing ------------------------------------------------------------------------

    def send_close(self, status: int = STATUS_NORMAL, reason: bytes = b"") -> None:
        """Sends a close frame without waiting for the answer; ``connected`` becomes False."""
        if status < 0 or status >= ABNF.LENGTH_16:
            raise ValueError("code is invalid range")
        self.connected = False
        payload = struct.pack("!H", status) + _normalize_close_reason(reason)
        if not self._native_send or self._conn is None or "send" in self.__dict__:
            # Through send(), as websocket-client does, when send is replaced (a subclass,
            # an instance attribute) or there is no connection.
            self.send(payload, ABNF.OPCODE_CLOSE)
            return
        self._conn.send_close(payload, self.sock_opt.timeout)

    def close(self, status: int = STATUS_NORMAL, reason: bytes = b"", timeout: Optional[float] = 3) -> None:
        """Close handshake: sends a close frame, waits up to ``timeout`` seconds for the
        server's, then closes the socket. Raises ValueError for a status outside 0-65535;
        network errors are swallowed, as in the reference."""
        if status < 0 or status >= ABNF.LENGTH_16:
            raise ValueError("code is invalid range")
        conn = self._conn
        if self.connected and (conn is None or not self._native_send or "send" in self.__dict__):
            # send() replaced (a subclass, an instance attribute) or no connection: the close
            # frame goes through it, as in websocket-client; errors are swallowed there too.
            try:
                self.send(struct.pack("!H", status) + _normalize_close_reason(reason), ABNF.OPCODE_CLOSE)
            except Exception:
                pass
        if conn is not None and self.connected:
            self.connected = False
            if status == STATUS_NORMAL and not reason:
                payload = _NORMAL_CLOSE
            else:
                payload = struct.pack("!H", status) + _normalize_close_reason(reason)
            try:
                peer = conn.close(payload, timeout)
            except Exception:  # every error is swallowed here, as websocket-client does
                peer = None
            if peer is not None:
                self.close_frame = ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0, peer)
                if len(peer) >= 2:
                    code = struct.unpack("!H", peer[0:2])[0]
                    if 3000 <= code <= 4999:
                        _logging.debug(f"close status: {code!r}")
                    elif code != STATUS_NORMAL:
                        _logging.error(f"close status: {code!r}")
        self.shutdown()

    def abort(self) -> None:
        """Shuts the socket down, waking up every thread blocked in recv or send."""
        if self._conn is not None:
            abort = getattr(self._conn, "abort", None)
            (abort or self._conn.shutdown)()

    def shutdown(self) -> None:
        """Closes the socket at once, without a close handshake."""
        conn = self._conn
        if conn is not None:
            conn.shutdown()
        self._conn = None
        self._sock = None
        self.connected = False
        if self._user_socket is not None:
            # As the reference, which uses the caller's socket itself: close it too.
            self._user_socket.close()
            self._user_socket = None


def create_connection(url: str, timeout: Optional[float] = None, class_: Type[WebSocket] = WebSocket, **options: Any) -> WebSocket:
    """Connects to ``url`` and returns a connected ``class_`` instance (``WebSocket``).

    ``timeout`` (seconds) applies to connect, handshake, send and recv; None uses
    ``getdefaulttimeout()``. Every ``WebSocket`` option and ``connect`` option is accepted
    (see ``WebSocket.connect``); unknown options are ignored, as in the reference.
    """
    sockopt = options.pop("sockopt", [])
    sslopt = options.pop("sslopt", {})
    fire_cont_frame = options.pop("fire_cont_frame", False)
    enable_multithread = options.pop("enable_multithread", True)
    skip_utf8_validation = options.pop("skip_utf8_validation", False)
    websock = class_(
        sockopt=sockopt,
        sslopt=sslopt,
        fire_cont_frame=fire_cont_frame,
        enable_multithread=enable_multithread,
        skip_utf8_validation=skip_utf8_validation,
        **options,
    )
    websock.settimeout(timeout if timeout is not None else getdefaulttimeout())
    websock.connect(url, **options)
    return websock
