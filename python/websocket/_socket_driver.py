"""The Python-socket driver: a connection whose every byte moves through a Python socket
object, with the Rust core (``_native.Protocol``) doing everything between the bytes.

It is what makes this package a drop-in where the native engine cannot own the socket:
under gevent or eventlet (their patched sockets, locks and sleeps make every wait here
cooperative), with an ``ssl.SSLSocket`` or any other socket object given as ``socket=`` or
assigned to ``ws.sock``, and with ``sslopt`` options only Python's ``ssl`` can honour. It
starts no thread. See ``websocket._driver`` for when it is chosen.

Reads never go past the frame in progress (``Protocol.bytes_wanted``): bytes of the next
frame stay in the socket (or in the SSL object, where ``pending()`` reports them), exactly
as with websocket-client, so code that polls ``ws.sock`` or the WebSocket's ``fileno()``
before reading frame by frame keeps working. Pings are answered when the application
reads, as in websocket-client; the native driver answers them at once.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, Union

from . import _native
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketTimeoutException,
)
from ._socket import recv as _sock_recv
from ._socket import send as _sock_send
from ._ssl_compat import ssl
from ._utils import extract_err_message

__all__ = ["SocketConnection", "adopt"]

# Largest single read while a large payload comes in.
_MAX_READ = 256 * 1024
# How long the close frame that fails a connection may take to go out.
_FAIL_CLOSE_TIMEOUT = 1.0

_LOST = "Connection to remote host was lost."
_SHUT_DOWN = "Connection was shut down locally (shutdown() or abort())."
_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# What a read on a socket with a timeout of 0 raises when nothing is there.
_WOULD_BLOCK: Tuple[Type[BaseException], ...] = (BlockingIOError,) + ((ssl.SSLWantReadError,) if ssl is not None else ())
_WOULD_BLOCK_WRITE: Tuple[Type[BaseException], ...] = (BlockingIOError,) + ((ssl.SSLWantWriteError,) if ssl is not None else ())
_SSLError: Tuple[Type[BaseException], ...] = (ssl.SSLError,) if ssl is not None else ()
_SSLEOFError: Tuple[Type[BaseException], ...] = (ssl.SSLEOFError,) if ssl is not None else ()


# What a socket's recv / send may raise that websocket._socket's functions handle (see
# _recv_failed, _send_failed).
_RECV_FAILURES: Tuple[Type[BaseException], ...] = (socket.timeout, TimeoutError) + _WOULD_BLOCK + _SSLError
_SEND_FAILURES: Tuple[Type[BaseException], ...] = (socket.timeout, TimeoutError) + _WOULD_BLOCK_WRITE + _SSLError


def _recv_failed(sock: Any, bufsize: int, exc: BaseException) -> bytes:
    """What ``websocket._socket.recv`` makes of ``exc``, raised by ``sock.recv(bufsize)``
    (the driver calls the socket itself, one Python frame less per read): a timeout raises
    WebSocketTimeoutException; EAGAIN or SSLWantReadError on a socket with a timeout takes
    its path (wait until readable, read again); anything else is raised as it is."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        raise WebSocketTimeoutException("Connection timed out") from None
    if isinstance(exc, _WOULD_BLOCK):
        if sock.gettimeout() == 0:
            raise exc
        return _sock_recv(sock, bufsize)
    message = extract_err_message(exc)
    if message is not None and "timed out" in message:
        raise WebSocketTimeoutException(message) from None
    raise exc


def _send_failed(sock: Any, data: Any, exc: BaseException) -> int:
    """What ``websocket._socket.send`` makes of ``exc``, raised by ``sock.send(data)``: a
    timeout raises WebSocketTimeoutException; EAGAIN or SSLWantWriteError on a socket with
    a timeout takes its path (wait until writable, try once more); SSLEOFError raises
    WebSocketConnectionClosedException; anything else is raised as it is."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        raise WebSocketTimeoutException(extract_err_message(exc)) from None
    if isinstance(exc, _WOULD_BLOCK_WRITE):
        if sock.gettimeout() == 0:
            raise exc
        return _sock_send(sock, data)
    if isinstance(exc, _SSLEOFError):
        raise WebSocketConnectionClosedException("socket is already closed.") from None
    message = extract_err_message(exc)
    if message is not None and "timed out" in message:
        raise WebSocketTimeoutException(message) from None
    raise exc


def _new_lock() -> Any:
    """A ``threading.Lock``; under gevent's patching its ``BoundedSemaphore``, which is what
    gevent's Lock is, less the Python-level ``acquire`` wrapper that checks arguments we
    never pass (bench/RESULTS.md: the two locks of a round trip cost 5,400 instructions
    through it)."""
    factory = threading.Lock
    if getattr(factory, "__module__", None) == "gevent.thread":
        return importlib.import_module("gevent.lock").BoundedSemaphore(1)
    return factory()


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else time.monotonic() + timeout


class SocketConnection:
    """One connection over a socket object; the methods are those of the native
    ``_native.Connection`` (see ``websocket._driver.Connection``), so ``WebSocket`` and
    ``WebSocketApp`` drive either the same way."""

    def __init__(
        self,
        sock: Any,
        protocol: Any,
        status: int = 101,
        headers: Optional[List[Tuple[str, str]]] = None,
        subprotocol: Optional[str] = None,
        compression: Optional[Dict[str, Any]] = None,
        manage_timeout: bool = True,
        send: Optional[Callable[[Any, bytes], int]] = None,
        names: Optional[Mapping[str, Any]] = None,
        lock: Any = None,
        readlock: Any = None,
    ) -> None:
        self.sock = sock
        self._proto = protocol
        self.status = status
        self._headers = headers or []
        self.subprotocol = subprotocol
        self.compression = compression
        # Whether timeouts are set on the socket: always on sockets this driver opened;
        # on a socket object from the caller only when the WebSocket has a timeout (else
        # the socket's own one stays, as websocket-client leaves it).
        self._manage_timeout = manage_timeout and hasattr(sock, "settimeout")
        self._timeout_set: Any = object()
        # How bytes move: through the socket's own recv and send, with websocket._socket's
        # handling of what they raise; or through the functions ``names`` (a module's
        # namespace: websocket._core's, where websocket-client's tests patch ``send`` and
        # ``recv``) holds at each call when they are not websocket._socket's; writes
        # through ``send`` when given (a dispatcher's).
        self._send = send
        self._names = names
        # What a write that timed out part-way left unsent (see _write).
        self._pending = b""
        self._rlock = readlock if readlock is not None else _new_lock()
        self._wlock = lock if lock is not None else _new_lock()
        # One item per read or write in progress on the socket (list.append and pop are
        # atomic); shutdown() leaves the socket's close to the last of them (see there).
        self._busy: List[int] = []
        self._closing = False
        # abort() or shutdown() was called here: a read that ends now says so.
        self._stopped = False
        self._skip_utf8 = False
        self.is_ssl = isinstance(sock, ssl.SSLSocket) if ssl is not None else False

    # ---- what the handshake left ------------------------------------------------------

    def take_headers(self) -> List[Tuple[str, str]]:
        headers, self._headers = self._headers, []
        return headers

    @property
    def close_sent(self) -> bool:
        return bool(self._proto.close_sent)

    @property
    def peer_close(self) -> Optional[bytes]:
        return self._proto.peer_close  # type: ignore[no-any-return]

    @property
    def text_decoding_checked(self) -> bool:
        return not self._skip_utf8

    def set_mode(self, mode: int) -> None:
        self._proto.set_mode(mode)

    def set_skip_utf8(self, skip: bool) -> None:
        self._skip_utf8 = skip
        self._proto.set_skip_utf8(skip)

    def set_max_size(self, max: Optional[int] = None) -> None:
        self._proto.set_max_size(max)

    def settimeout(self, timeout: Optional[float]) -> None:
        """The WebSocket's timeout changed: the socket gets it too (as in websocket-client)."""
        if hasattr(self.sock, "settimeout"):
            self.sock.settimeout(timeout)
            self._timeout_set = timeout

    def fileno(self) -> int:
        return int(self.sock.fileno())

    def readiness_fd(self) -> int:
        """The socket itself: bytes of the next frame are never read ahead of time."""
        return int(self.sock.fileno())

    def has_item(self) -> bool:
        return bool(self._proto.has_item())

    # ---- waiting on the socket --------------------------------------------------------

    def _arm(self, deadline: Optional[float], timeout: Optional[float], first: bool) -> None:
        """Sets the socket's timeout (the driver manages it) to what is left of
        ``deadline``, or to ``timeout`` without one; past the deadline, a first attempt
        still gets a non-blocking try (a timeout of 0 polls), a later one raises. The
        socket is only called when the value changes."""
        if deadline is None:
            value = timeout
        else:
            value = deadline - time.monotonic()
            if value <= 0:
                if not first:
                    raise WebSocketTimeoutException("Connection timed out")
                value = 0.0
        if value != self._timeout_set:
            self.sock.settimeout(value)
            self._timeout_set = value

    def _write(self, data: bytes, timeout: Optional[float]) -> None:
        """Writes all of ``data`` (the write lock held by the caller), each attempt with
        the whole ``timeout``, like a socket timeout. A frame is never cut by another: what
        a write that timed out (or was interrupted) left goes first at the next write, then
        ``data``, which was encoded already (the compressor moved past it)."""
        if self._pending:
            data, self._pending = self._pending + data, b""
        if not data:
            return
        send = self._send
        if send is None:
            names = self._names
            send = _sock_send if names is None else names["send"]
        sock = self.sock
        # What is left to write: the socket takes a memoryview of it (no copy after a
        # partial write); another function gets bytes.
        left: Any = data
        busy = self._busy
        busy.append(1)
        try:
            while True:
                try:
                    if self._manage_timeout and timeout != self._timeout_set:
                        self._arm(None, timeout, True)
                    if send is _sock_send:
                        try:
                            n = sock.send(left)
                        except _SEND_FAILURES as exc:
                            n = _send_failed(sock, left, exc)
                    else:
                        n = send(sock, left if type(left) is bytes else bytes(left))
                except _RESETS as e:
                    raise WebSocketConnectionClosedException(f"{_LOST} ({e})") from None
                except _WOULD_BLOCK_WRITE:
                    n = 0
                except OSError:
                    self._check_shut_down()
                    raise
                if not n:
                    raise WebSocketTimeoutException("Connection timed out")
                if n >= len(left):
                    left = b""
                    return
                left = memoryview(left)[n:]
        finally:
            if left:
                self._pending = bytes(left)
            busy.pop()
            if self._closing and not busy:
                self._close_socket()

    def _read(self, want: int, deadline: Optional[float], timeout: Optional[float], first: bool = True) -> bytes:
        """One read of at most ``want`` bytes: the rest of the frame in progress, as
        ``bytes_wanted()`` or ``next_payload()`` said (the read lock held)."""
        if want <= 0:
            # Nothing more is expected, yet no item nor failure is there to take.
            raise WebSocketConnectionClosedException(_LOST)
        names = self._names
        recv = _sock_recv if names is None else names["recv"]
        sock = self.sock
        busy = self._busy
        busy.append(1)
        try:
            if self._manage_timeout and (deadline is not None or timeout != self._timeout_set):
                self._arm(deadline, timeout, first)
            if want > _MAX_READ:
                want = _MAX_READ
            if recv is _sock_recv:
                try:
                    data = sock.recv(want)
                except _RECV_FAILURES as exc:
                    data = _recv_failed(sock, want, exc)
                if not data:
                    raise WebSocketConnectionClosedException(_LOST)
            else:
                data = recv(sock, want)
        except _RESETS as e:
            raise WebSocketConnectionClosedException(f"{_LOST} ({e})") from None
        except _WOULD_BLOCK:
            raise WebSocketTimeoutException("Connection timed out") from None
        except WebSocketConnectionClosedException:
            # EOF: ours when we shut the socket down.
            self._check_shut_down()
            raise
        except OSError:
            self._check_shut_down()
            raise
        finally:
            busy.pop()
            if self._closing and not busy:
                self._close_socket()
        return data  # type: ignore[no-any-return]

    def _fill(self, want: int, deadline: Optional[float], timeout: Optional[float], first: bool = True) -> None:
        """One read (see _read) fed to the protocol; replies it calls for are written at once."""
        out = self._proto.receive_data(self._read(want, deadline, timeout, first))
        if out:
            with self._wlock:
                self._write(out, timeout)

    def _failed(self) -> None:
        """After a take raised: the close frame owed for a protocol failure, then the
        connection is dropped (RFC 6455 7.1.7)."""
        frame = self._proto.fail()
        if frame is None:
            return
        try:
            with self._wlock:
                self._write(frame, _FAIL_CLOSE_TIMEOUT)
        except (WebSocketException, OSError):
            pass
        self.shutdown()

    def _wait(self, take: Callable[[], Any], timeout: Optional[float]) -> Any:
        with self._rlock:
            return self._wait_locked(take, timeout)

    def _wait_locked(self, take: Callable[[], Any], timeout: Optional[float]) -> Any:
        """``take()`` until it hands something over, reading between attempts (the read
        lock held); a failure it raises first sends the close code owed."""
        deadline = _deadline(timeout)
        first = True
        while True:
            try:
                item = take()
            except WebSocketException:
                self._failed()
                raise
            if item is not None:
                return item
            self._fill(self._proto.bytes_wanted(), deadline, timeout, first)
            first = False

    # ---- receiving ----------------------------------------------------------------------

    def recv_data(self, timeout: Optional[float] = None, decode: bool = True, control: bool = False) -> Tuple[int, Any]:
        proto = self._proto
        with self._rlock:
            # A message already here is taken without building the waiting loop's closure.
            if proto.has_item():
                try:
                    item = proto.next_data(decode, control)
                except WebSocketException:
                    self._failed()
                    raise
                if item is not None:
                    return item  # type: ignore[no-any-return]
            return self._wait_locked(lambda: proto.next_data(decode, control), timeout)  # type: ignore[no-any-return]

    def recv_text_or_binary(self, timeout: Optional[float] = None) -> Union[str, bytes, None]:
        """The next message's payload (``str`` for text), or None once the peer's close
        frame is here (see ``peer_close``): ``WebSocket.recv()``'s call."""
        # recv_data's loop, written out with the core's one-call step (payload, None, or
        # how many bytes to read): under gevent every Python frame and call per message
        # counts (bench/RESULTS.md).
        proto = self._proto
        with self._rlock:
            try:
                item = proto.next_payload()
                if type(item) is int:
                    # The first read gets the whole timeout; later ones what is left of it.
                    deadline = None if timeout is None else time.monotonic() + timeout
                    first = True
                    while True:
                        # A read fed to the core, its next payload taken in the same call
                        # (replies to write come back first, alone in a tuple).
                        item = proto.feed_payload(self._read(item, None if first else deadline, timeout, first))
                        if type(item) is tuple:
                            with self._wlock:
                                self._write(item[0], timeout)
                            item = proto.next_payload()
                        if type(item) is not int:
                            break
                        first = False
            except WebSocketException:
                # A failure the core raised sends the close code owed (none for the
                # driver's own timeouts and closed sockets).
                self._failed()
                raise
        return item  # type: ignore[no-any-return]

    # Without a timeout (WebSocket.recv() with the default one): the native method's name.
    recv_next = recv_text_or_binary

    def recv_message(self, control: bool = False, timeout: Optional[float] = None) -> Tuple[int, bool, int, bytes]:
        return self._wait(lambda: self._proto.next_message(control), timeout)  # type: ignore[no-any-return]

    def recv_frame(self, control: bool = False, timeout: Optional[float] = None) -> Tuple[int, bool, int, bytes]:
        return self._wait(lambda: self._proto.next_frame(control), timeout)  # type: ignore[no-any-return]

    def recv_batch(
        self, max: int = 256, timeout: Optional[float] = None, decode: bool = True, fragments: bool = False
    ) -> List[Tuple[int, bool, Union[str, bytes]]]:
        proto = self._proto
        return self._wait(lambda: proto.next_batch(max, decode, fragments) or None, timeout)  # type: ignore[no-any-return]

    # ---- sending ----------------------------------------------------------------------

    def send(
        self,
        payload: Any,
        opcode: int = 1,
        fin: bool = True,
        rsv: int = 0,
        mask_key: Optional[bytes] = None,
        timeout: Optional[float] = None,
    ) -> int:
        with self._wlock:
            frame = self._proto.send(payload, opcode, fin, rsv, mask_key)
            self._write(frame, timeout)
        return len(frame)

    def send_close(self, payload: bytes, timeout: Optional[float] = None) -> bool:
        with self._wlock:
            frame = self._proto.send_close(payload)
            if frame is None:
                return False
            self._write(frame, timeout)
        return True

    def send_raw(self, data: bytes, timeout: Optional[float] = None) -> None:
        """Bytes the caller formatted itself, in order with every other frame."""
        with self._wlock:
            self._write(bytes(data), timeout)

    # ---- closing ------------------------------------------------------------------------

    def close(self, payload: bytes, timeout: Optional[float] = None) -> Optional[bytes]:
        """The close handshake: our close frame unless sent, then up to ``timeout`` seconds
        for the peer's (data arriving meanwhile is dropped), then the socket is shut down.
        Returns the peer's close payload, if it came."""
        deadline = _deadline(timeout)
        try:
            self.send_close(payload, timeout)
            sent = True
        except Exception:
            # Our close frame did not go out (whatever the socket object raised): the peer
            # cannot answer it.
            sent = False
        peer = self._proto.peer_close
        if peer is None and sent:
            first = True
            try:
                with self._rlock:
                    while self._proto.peer_close is None and (want := self._proto.bytes_wanted()) > 0:
                        self._proto.discard()
                        self._fill(want, deadline, timeout, first)
                        first = False
            except (WebSocketException, OSError):
                pass
            peer = self._proto.peer_close
        self.shutdown()
        return peer  # type: ignore[no-any-return]

    def abort(self) -> None:
        """Shuts the socket down both ways: wakes every thread blocked on it."""
        self._stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError, ValueError):
            pass

    def shutdown(self) -> None:
        """Shuts the socket down both ways, which wakes whoever waits on it (a read then
        raises WebSocketConnectionClosedException), and closes it, at once when nobody
        reads or writes it, else when the last of them is done: under a hub a waiting
        greenlet runs again only at the hub's next turn, and a socket closed before that
        would leave it waiting for good (eventlet) or fail it with the hub's EBADF error
        (gevent). A socket already closed (its ``_closed``, as websocket-client checks) is
        left alone."""
        sock = self.sock
        if getattr(sock, "_closed", False) is True:
            return
        self._stopped = True
        self._closing = True
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except AttributeError:
            # Not a socket: nothing wakes its waiters, closing it might.
            self._close_socket()
            return
        except Exception:
            pass
        if not self._busy:
            self._close_socket()

    def _io_done(self) -> None:
        """A read or write of the socket ended: the close shutdown() left, if any."""
        self._busy.pop()
        if self._closing and not self._busy:
            self._close_socket()

    def _check_shut_down(self) -> None:
        """An OSError from the socket after shutdown(): the connection is closed (gevent
        wakes a greenlet waiting on a socket that another one shuts down with its EBADF
        error, "File descriptor was closed in another greenlet")."""
        if self._stopped:
            raise WebSocketConnectionClosedException(_SHUT_DOWN) from None

    def _close_socket(self) -> None:
        try:
            self.sock.close()
        except Exception:
            pass


def adopt(sock: Any, protocol: Dict[str, Any], **kw: Any) -> SocketConnection:
    """A connection over a socket whose handshake happened elsewhere (assigned to
    ``ws.sock``): no compression, the socket's timeout left as it is. ``kw``: the
    ``SocketConnection`` keywords (send, names, lock, readlock)."""
    conn = SocketConnection(sock, _native.Protocol(dict(protocol, compression=None)), manage_timeout=False, **kw)
    conn.set_skip_utf8(bool(protocol.get("skip_utf8_validation")))
    return conn

