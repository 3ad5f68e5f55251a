"""``WebSocketApp``: websocket-client 1.9.2's callback API over the Rust engine.

``run_forever`` runs on the calling thread and needs no other thread: it waits in the
engine's batch receive (which releases the GIL), then calls the callbacks for everything that
was queued, one at a time and in arrival order, in a single stretch of Python code. Pings
from the server are answered by the engine at once, even while a callback runs; the app's
own keepalive pings (``ping_interval``) and the pong deadline (``ping_timeout``) are timed in
the same loop.

Differences from websocket-client 1.9.2, all deliberate (see docs/migration.md):

* A close frame from the server is a close, not an error: only ``on_close(ws, code, reason)``
  is called and ``run_forever`` returns False (1.9.x also calls ``on_error`` and, with
  ``reconnect``, reconnects). ``reconnect`` applies to dropped connections and to closes with
  a code other than 1000 (1001 going away, 1012 service restart...), not to a 1000 close.
* ``on_error`` is called for every dropped connection, also after a reconnect (1.9.2 only for
  the first one); failed reconnect attempts are logged, not reported, as in 1.9.2.
* A callback that accepts fewer positional parameters is called with those it accepts
  (``def on_close(ws):`` works).
* An exception raised by ``on_error`` itself is logged; the app keeps running.
* ``run_forever(http_proxy_host=..., http_proxy_port=...)`` works without ``proxy_type``.
* ``ping_timeout`` fires only when no pong at all came back in time; a pong that was queued
  behind a slow callback counts as in time.
* No ping thread: ``ping_thread`` and ``stop_ping`` stay None.
"""

from __future__ import annotations

import functools
import inspect
import socket
import struct
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._abnf import ABNF, STATUS_NORMAL
from ._core import WebSocket
from ._dispatcher import Dispatcher, DispatcherBase, SSLDispatcher, WrappedDispatcher  # noqa: F401
from ._exceptions import (
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketTimeoutException,
)
from ._logging import debug, error, info, warning
from ._socket import getdefaulttimeout
from ._ssl_compat import SSLError  # noqa: F401  (websocket-client's _app names it)
from ._url import parse_url

__all__ = ["WebSocketApp", "set_reconnect"]

RECONNECT = 0

# How many queued items one batch receive hands over.
_BATCH = 256
# Longest wait in the engine before the loop looks at keep_running again.
_POLL = 0.2
# Close-handshake wait when tearing down a connection that failed.
_FAILED_CLOSE_TIMEOUT = 1.0

_OP_CONT = ABNF.OPCODE_CONT
_OP_TEXT = ABNF.OPCODE_TEXT
_OP_BINARY = ABNF.OPCODE_BINARY
_OP_CLOSE = ABNF.OPCODE_CLOSE
_OP_PING = ABNF.OPCODE_PING
_OP_PONG = ABNF.OPCODE_PONG

# How a connection ended.
_CLOSED, _STOPPED, _FAILED = 0, 1, 2

Callback = Callable[..., Any]
HeaderType = Union[List[str], Dict[str, str], Callable[[], Union[List[str], Dict[str, str]]]]


def set_reconnect(reconnectInterval: int) -> None:
    """Sets the default ``reconnect`` delay (seconds) of ``run_forever``; 0 turns it off."""
    global RECONNECT
    RECONNECT = reconnectInterval


def _positional_capacity(callback: Callback) -> Optional[int]:
    """How many positional arguments ``callback`` takes; None when unlimited or unknown."""
    try:
        sig = inspect.signature(callback)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def _parse_close(data: Optional[bytes]) -> Tuple[Optional[int], Optional[str]]:
    """(code, reason) of a close frame's payload; (None, None) when it carries no code."""
    if not data or len(data) < 2:
        return None, None
    code = struct.unpack("!H", data[:2])[0]
    reason = data[2:].decode("utf-8", errors="replace") if len(data) > 2 else None
    return code, reason


def _close_message(code: Optional[int], reason: Optional[str]) -> str:
    if code is None:
        msg = "Connection closed"
    elif code == STATUS_NORMAL:
        msg = "Connection closed normally (code 1000)"
    else:
        msg = f"Connection closed (code {code})"
    return f"{msg}: {reason}" if reason else msg


def _batch_receiver(conn: Any, fragments: bool) -> Callable[[int, float, bool], List[Tuple[int, bool, Any]]]:
    """``conn.recv_batch`` delivering whole messages, or every fragment as it came when
    ``fragments`` (fire_cont_frame, for on_cont_message)."""
    if fragments:
        return functools.partial(conn.recv_batch, fragments=True)
    return conn.recv_batch  # type: ignore[no-any-return]


def _stack_depth() -> int:
    depth = 0
    frame = sys._getframe(1)
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth


class WebSocketApp:
    """Callback interface in the style of JavaScript's WebSocket object.

    ``url``: ws:// or wss:// URL. ``header``: extra handshake headers, a list of
    ``"Name: value"`` lines, a dict, or a callable returning either, called again before
    every (re)connect. Callbacks, all called as ``callback(app, ...)`` on the thread running
    ``run_forever``; each may also be assigned later (``app.on_open = f``):

    * ``on_open(ws)``: connected. ``on_reconnect(ws)``: connected again after a drop (when
      unset, ``on_open`` is called instead).
    * ``on_message(ws, message)``: ``str`` for text (``bytes`` when
      ``skip_utf8_validation``), ``bytes`` for binary.
    * ``on_data(ws, data, opcode, fin)``: before ``on_message``/``on_cont_message``.
    * ``on_cont_message(ws, data, fin)``: each continuation frame; setting it delivers the
      fragments of a message one by one (the first one through ``on_message``).
    * ``on_ping(ws, payload)`` (already answered), ``on_pong(ws, payload)``.
    * ``on_error(ws, exception)``: a connection error, or an exception raised by another
      callback (the connection stays open).
    * ``on_close(ws, close_status_code, close_msg)``: once per run; the code and reason of
      the server's close frame, or None.

    A callback that takes fewer positional parameters gets the first ones only. Other
    parameters: ``keep_running`` (ignored), ``get_mask_key``, ``cookie``, ``subprotocols``,
    ``socket`` (a connected socket to use instead of opening one).
    """

    def __init__(
        self,
        url: str,
        header: Optional[HeaderType] = None,
        on_open: Optional[Callback] = None,
        on_reconnect: Optional[Callback] = None,
        on_message: Optional[Callback] = None,
        on_error: Optional[Callback] = None,
        on_close: Optional[Callback] = None,
        on_ping: Optional[Callback] = None,
        on_pong: Optional[Callback] = None,
        on_cont_message: Optional[Callback] = None,
        keep_running: bool = True,
        get_mask_key: Optional[Callable[[int], bytes]] = None,
        cookie: Optional[str] = None,
        subprotocols: Optional[List[str]] = None,
        on_data: Optional[Callback] = None,
        socket: Optional[socket.socket] = None,
    ) -> None:
        self.url = url
        self.header: HeaderType = header if header is not None else []
        self.cookie = cookie
        self.on_open = on_open
        self.on_reconnect = on_reconnect
        self.on_message = on_message
        self.on_data = on_data
        self.on_error = on_error
        self.on_close = on_close
        self.on_ping = on_ping
        self.on_pong = on_pong
        self.on_cont_message = on_cont_message
        self.keep_running = False
        self.get_mask_key = get_mask_key
        self.sock: Optional[WebSocket] = None
        self.last_ping_tm = 0.0
        self.last_pong_tm = 0.0
        self.ping_thread: Optional[threading.Thread] = None  # always None: no ping thread
        self.stop_ping: Optional[threading.Event] = None  # always None
        self.ping_interval: Union[float, int] = 0.0
        self.ping_timeout: Optional[Union[float, int]] = None
        self.ping_payload: Union[str, bytes] = ""
        self.subprotocols = subprotocols
        self.prepared_socket = socket
        self.has_errored = False
        self.has_done_teardown = False
        self.has_done_teardown_lock = threading.Lock()
        self.last_close_frame: Optional[ABNF] = None
        # Serializes close() against the loop's teardown, so on_close sees what close() got.
        self._close_lock = threading.RLock()
        # Set by close(): ends a reconnect wait at once.
        self._stop_event = threading.Event()
        self._running = False
        # id(callback) -> (callback, positional capacity); filled on first call.
        self._arity: Dict[int, Tuple[Callback, Optional[int]]] = {}

    # ---- sending and closing (any thread) -----------------------------------------------

    def send(self, data: Union[bytes, str], opcode: int = ABNF.OPCODE_TEXT) -> None:
        """Sends ``data`` as one message (``bytes`` go out as text unless ``opcode`` says
        otherwise). Raises WebSocketConnectionClosedException when not connected."""
        sock = self.sock
        if sock is None or sock.send(data, opcode) == 0:
            raise WebSocketConnectionClosedException("Connection is already closed.")

    def send_text(self, text_data: str) -> None:
        """Sends a text message."""
        self.send(text_data, ABNF.OPCODE_TEXT)

    def send_bytes(self, data: Union[bytes, bytearray]) -> None:
        """Sends a binary message."""
        self.send(data, ABNF.OPCODE_BINARY)  # type: ignore[arg-type]

    def close(self, **kwargs: Any) -> None:
        """Closes the connection (``status``, ``reason``, ``timeout`` as in
        ``WebSocket.close``) and makes ``run_forever`` return. Safe from any thread and from
        callbacks."""
        self.keep_running = False
        self._stop_event.set()
        with self._close_lock:
            sock = self.sock
            if sock is not None:
                try:
                    sock.close(**kwargs)
                finally:
                    if sock.close_frame is not None:
                        self.last_close_frame = sock.close_frame
                    if self.sock is sock:
                        self.sock = None

    # websocket-client's ping thread, for code that drives it directly. run_forever does not
    # use it: its loop sends the keepalive pings itself (ping_thread stays None there).

    def _start_ping_thread(self) -> None:
        """Starts a daemon thread that sends ``ping_payload`` every ``ping_interval``
        seconds while ``keep_running`` (websocket-client's keepalive thread)."""
        self.last_ping_tm = self.last_pong_tm = 0.0
        self.stop_ping = threading.Event()
        self.ping_thread = threading.Thread(target=self._send_ping, daemon=True)
        self.ping_thread.start()

    def _stop_ping_thread(self) -> None:
        """Stops the thread ``_start_ping_thread`` started (waiting up to 3 s for it)."""
        if self.stop_ping:
            self.stop_ping.set()
        if self.ping_thread and self.ping_thread.is_alive():
            self.ping_thread.join(3)
            if self.ping_thread.is_alive():
                warning("Ping thread failed to terminate within 3 seconds, forcing cleanup. Thread may be blocked.")
        self.ping_thread = None
        self.stop_ping = None

    def _send_ping(self) -> None:
        """The ping thread's body: a ping every ``ping_interval`` seconds until stopped."""
        stop = self.stop_ping
        if stop is None or self.keep_running is False:
            return
        while not stop.wait(self.ping_interval) and self.keep_running is True:
            sock = self.sock
            if sock:
                self.last_ping_tm = time.time()
                try:
                    debug("Sending ping")
                    sock.ping(self.ping_payload)
                except Exception as e:
                    debug(f"Failed to send ping: {e}")

    def ready(self) -> bool:
        """Whether the connection is open."""
        sock = self.sock
        return bool(sock is not None and sock.connected)

    # ---- running ------------------------------------------------------------------------

    def run_forever(
        self,
        sockopt: Optional[list] = None,  # type: ignore[type-arg]
        sslopt: Optional[Dict[str, Any]] = None,
        ping_interval: Union[float, int] = 0,
        ping_timeout: Optional[Union[float, int]] = None,
        ping_payload: Union[str, bytes] = "",
        http_proxy_host: Optional[str] = None,
        http_proxy_port: Optional[Union[int, str]] = None,
        http_no_proxy: Optional[list] = None,  # type: ignore[type-arg]
        http_proxy_auth: Optional[tuple] = None,  # type: ignore[type-arg]
        http_proxy_timeout: Optional[float] = None,
        skip_utf8_validation: bool = False,
        host: Optional[str] = None,
        origin: Optional[str] = None,
        dispatcher: Any = None,
        suppress_origin: bool = False,
        suppress_host: bool = False,
        proxy_type: Optional[str] = None,
        reconnect: Optional[int] = None,
        *,
        compression: Union[bool, Dict[str, Any]] = False,
        max_size: Optional[int] = None,
        driver: Optional[str] = None,
    ) -> bool:
        """Connects and calls the callbacks until the connection ends.

        ``ping_interval`` (seconds, 0 = off) sends a ping with ``ping_payload`` that often;
        ``ping_timeout`` ends a connection whose pong does not come back in time (it must be
        smaller than ``ping_interval``). ``reconnect`` (seconds; default ``set_reconnect``'s
        value): after a dropped connection, wait that long and connect again, until
        ``close()``. ``dispatcher``: a ``rel``-style event loop; ``run_forever`` then
        returns at once and that loop drives the app. The other parameters are
        ``WebSocket``'s connect options, and so are the keyword-only ones beyond the
        reference: ``compression`` (True or a dict of RFC 7692 parameters: offer
        permessage-deflate; ``app.sock.compression`` then holds what the server accepted),
        ``max_size`` (messages over that many bytes end the connection with 1009) and
        ``driver`` ("auto", "native" or "python": see ``websocket._driver``).

        Returns False after a close (by the server or ``close()``), True after an error
        (Ctrl-C included). Raises WebSocketException for bad ping arguments, a bad
        dispatcher, or when the app is already running.
        """
        if reconnect is None:
            reconnect = RECONNECT
        if ping_timeout is not None and ping_timeout <= 0:
            raise WebSocketException("Ensure ping_timeout > 0")
        if ping_interval is not None and ping_interval < 0:
            raise WebSocketException("Ensure ping_interval >= 0")
        if ping_timeout and ping_interval and ping_interval <= ping_timeout:
            raise WebSocketException("Ensure ping_interval > ping_timeout")
        if self.sock or self._running:
            raise WebSocketException("socket is already opened")
        if dispatcher and not all(
            callable(getattr(dispatcher, m, None)) for m in ("read", "timeout", "signal", "abort")
        ):
            raise WebSocketException(
                "dispatcher must be a rel-style event loop with read(sock, callback), "
                "timeout(seconds, callback, *args), signal(signum, callback) and abort()"
            )

        self.ping_interval = ping_interval or 0
        self.ping_timeout = ping_timeout
        self.ping_payload = ping_payload
        self.has_done_teardown = False
        self.has_errored = False
        self.keep_running = True
        self.last_close_frame = None
        self._stop_event.clear()
        self._running = True

        options: Dict[str, Any] = {
            "http_proxy_host": http_proxy_host,
            "http_proxy_port": http_proxy_port,
            "http_no_proxy": http_no_proxy,
            "http_proxy_auth": http_proxy_auth,
            "http_proxy_timeout": http_proxy_timeout,
            "host": host,
            "origin": origin,
            "suppress_origin": suppress_origin,
            "suppress_host": suppress_host,
            "compression": compression,
            "max_size": max_size,
            "driver": driver,
        }
        if proxy_type is not None:
            options["proxy_type"] = proxy_type
        run = _Run(self, sockopt or [], sslopt or {}, skip_utf8_validation, dispatcher, options, reconnect)
        if dispatcher:
            return run.start_dispatched()
        return run.run()

    def create_dispatcher(
        self,
        ping_timeout: Optional[Union[float, int]],
        dispatcher: Optional[Any] = None,
        is_ssl: bool = False,
        handleDisconnect: Optional[Callable[..., Any]] = None,
    ) -> Union[Dispatcher, SSLDispatcher, WrappedDispatcher]:
        """The reference's dispatcher objects (``run_forever`` does not need them)."""
        if dispatcher:
            return WrappedDispatcher(self, ping_timeout, dispatcher, handleDisconnect)
        timeout = ping_timeout or 10
        if is_ssl:
            return SSLDispatcher(self, timeout)
        return Dispatcher(self, timeout)

    # ---- callbacks ----------------------------------------------------------------------

    def _capacity(self, callback: Callback) -> Optional[int]:
        """``_positional_capacity``, cached per callback."""
        entry = self._arity.get(id(callback))
        if entry is None or entry[0] is not callback:
            if len(self._arity) > 64:
                self._arity.clear()
            entry = (callback, _positional_capacity(callback))
            self._arity[id(callback)] = entry
        return entry[1]

    def _invoke(self, callback: Callback, args: Tuple[Any, ...]) -> None:
        n = self._capacity(callback)
        if n is None or n > len(args):
            callback(self, *args)
        else:
            callback(*((self,) + args)[:n])

    def _callback(self, callback: Optional[Callback], *args: Any) -> None:
        """Calls ``callback(self, *args)``; an exception is logged and passed to on_error."""
        if not callback:
            return
        try:
            self._invoke(callback, args)
        except Exception as e:
            self._callback_failed(callback, e)

    def _callback_failed(self, callback: Callback, e: Exception) -> None:
        error(f"error from callback {callback}: {e}")
        on_error = self.on_error
        if on_error and callback is not on_error:
            try:
                self._invoke(on_error, (e,))
            except Exception as e2:
                error(f"error from callback {on_error}: {e2}")

    def _get_close_args(self, close_frame: Optional[ABNF]) -> List[Optional[Union[int, str]]]:
        """[code, reason] of a close frame, [None, None] without one."""
        if close_frame is None or not self.on_close:
            return [None, None]
        return list(self._parse_close_frame(close_frame))

    def _parse_close_frame(self, close_frame: Optional[ABNF]) -> Tuple[Optional[int], Optional[str]]:
        """(code, reason) of a close frame: its data as bytes (a str is UTF-8 encoded), the
        reason decoded with errors replaced; (None, None) when it carries no code."""
        if not close_frame or not getattr(close_frame, "data", None):
            return None, None
        data = close_frame.data
        return _parse_close(data.encode("utf-8") if isinstance(data, str) else bytes(data))


class _Run:
    """One ``run_forever`` call: connects, delivers, reconnects and tears down.

    Not stored on the app (no reference cycle); with a custom dispatcher the user's event
    loop keeps it alive through the callbacks it registered.
    """

    def __init__(
        self,
        app: WebSocketApp,
        sockopt: list,  # type: ignore[type-arg]
        sslopt: Dict[str, Any],
        skip_utf8_validation: bool,
        dispatcher: Any,
        options: Dict[str, Any],
        reconnect: int,
    ) -> None:
        self.app = app
        self.sockopt = sockopt
        self.sslopt = sslopt
        self.skip_utf8 = skip_utf8_validation
        self.decode = not skip_utf8_validation
        self.dispatcher = dispatcher
        self.options = options
        self.reconnect = reconnect
        # Monotonic time by which the pong of the last unanswered ping is due.
        self.pong_deadline: Optional[float] = None
        self.ws: Optional[WebSocket] = None
        self.wrapped: Optional[WrappedDispatcher] = None
        self.view: Any = None

    # ---- connecting ---------------------------------------------------------------------

    def connect(self) -> WebSocket:
        app = self.app
        app.last_close_frame = None
        ws = WebSocket(
            app.get_mask_key,
            sockopt=self.sockopt,
            sslopt=self.sslopt,
            fire_cont_frame=app.on_cont_message is not None,
            skip_utf8_validation=self.skip_utf8,
            enable_multithread=True,
            dispatcher=self.dispatcher,
        )
        ws.settimeout(getdefaulttimeout())
        with app._close_lock:
            app.sock = ws
        try:
            header = app.header() if callable(app.header) else app.header
            ws.connect(
                app.url,
                header=header,
                cookie=app.cookie,
                subprotocols=app.subprotocols,
                socket=app.prepared_socket,
                **self.options,
            )
        except BaseException:
            with app._close_lock:
                if app.sock is ws:
                    app.sock = None
            ws.shutdown()
            raise
        info("Websocket connected")
        app.last_ping_tm = app.last_pong_tm = 0.0
        self.pong_deadline = None
        self.ws = ws
        return ws

    def opened(self, reconnecting: bool) -> None:
        app = self.app
        if reconnecting and app.on_reconnect:
            app._callback(app.on_reconnect)
        else:
            app._callback(app.on_open)

    # ---- the loop (no dispatcher) -------------------------------------------------------

    def run(self) -> bool:
        app = self.app
        reconnecting = False
        ws: Optional[WebSocket] = None
        try:
            while True:
                ws = None
                try:
                    ws = self.connect()
                except Exception as e:
                    outcome = self.ended(None, _FAILED, e, report=not reconnecting)
                else:
                    if app.keep_running:
                        self.opened(reconnecting)
                    kind, detail = self.serve(ws)
                    outcome = self.ended(ws, kind, detail)
                    del detail
                if outcome is not None:
                    return outcome
                if not self.wait_reconnect():
                    return self.finish(ws, False)
                reconnecting = True
        except KeyboardInterrupt as e:
            app.has_errored = True
            app._callback(app.on_error, e)
            return self.finish(ws, True)
        except SystemExit as e:
            app.has_errored = True
            app._callback(app.on_error, e)
            self.finish(ws, True)
            raise
        finally:
            self.finish(ws, True)
            self.ws = None

    def serve(self, ws: WebSocket) -> Tuple[int, Any]:
        """Delivers until the connection ends; returns how it ended and the detail (the
        close payload, or the exception)."""
        app = self.app
        conn = ws._conn
        if conn is None:
            if not app.keep_running:
                return _STOPPED, None
            return _FAILED, WebSocketConnectionClosedException("Connection to remote host was lost.")
        recv_batch = _batch_receiver(conn, ws.fire_cont_frame)
        decode = self.decode
        interval = app.ping_interval
        monotonic = time.monotonic
        next_ping = monotonic() + interval if interval else None
        while True:
            if not app.keep_running:
                return _STOPPED, None
            wait = _POLL
            if next_ping is not None:
                now = monotonic()
                if now >= next_ping:
                    self.send_ping(ws)
                    now = monotonic()
                    next_ping = now + interval
                wait = min(wait, next_ping - now)
            if self.pong_deadline is not None:
                left = self.pong_deadline - monotonic()
                if left <= 0:
                    if not conn.has_item():
                        return _FAILED, WebSocketTimeoutException("ping/pong timed out")
                    left = 0.0
                wait = min(wait, left)
            try:
                items = recv_batch(_BATCH, max(wait, 0.0), decode)
            except WebSocketTimeoutException:
                continue
            except Exception as e:
                if not app.keep_running:
                    return _STOPPED, None
                return _FAILED, e
            ended = self.deliver(items)
            if ended is not None:
                return ended

    def deliver(self, items: List[Tuple[int, bool, Any]]) -> Optional[Tuple[int, Any]]:
        """Calls the callbacks for a batch of items, in order; returns how the connection
        ended when an item ends it, else None."""
        app = self.app
        callback = app._callback
        # on_message(app, message) is called here directly while no on_data is set: going
        # through _callback/_invoke for each message was most of the cost of a small message
        # (bench/RESULTS.md, push100app). Looked up again per message, as callbacks may
        # replace each other.
        direct = app.on_message
        if direct is not None:
            n = app._capacity(direct)
            if n is not None and n < 2:
                direct = None
        for opcode, fin, data in items:
            if not app.keep_running:
                return _STOPPED, None
            if opcode == _OP_TEXT or opcode == _OP_BINARY:
                if not fin and opcode == _OP_TEXT and self.decode:
                    try:
                        data = data.decode("utf-8")
                    except UnicodeDecodeError:
                        pass  # a character split across fragments: hand over the bytes
                on_message = app.on_message
                if on_message is direct and on_message is not None and not app.on_data:
                    try:
                        on_message(app, data)
                    except Exception as e:
                        app._callback_failed(on_message, e)
                    continue
                if app.on_data:
                    callback(app.on_data, data, opcode, True)
                callback(app.on_message, data)
            elif opcode == _OP_CONT:
                if app.on_cont_message:
                    callback(app.on_data, data, opcode, int(fin))
                    callback(app.on_cont_message, data, int(fin))
                else:
                    callback(app.on_data, data, opcode, True)
                    callback(app.on_message, data)
            elif opcode == _OP_PING:
                callback(app.on_ping, data)
            elif opcode == _OP_PONG:
                app.last_pong_tm = time.time()
                self.pong_deadline = None
                callback(app.on_pong, data)
            elif opcode == _OP_CLOSE:
                return _CLOSED, data
        return None

    def send_ping(self, ws: WebSocket) -> None:
        app = self.app
        app.last_ping_tm = time.time()
        if app.ping_timeout and self.pong_deadline is None:
            self.pong_deadline = time.monotonic() + app.ping_timeout
        try:
            debug("Sending ping")
            ws.ping(app.ping_payload)
        except Exception as e:
            debug(f"Failed to send ping: {e}")

    def wait_reconnect(self) -> bool:
        """Waits ``reconnect`` seconds; False when the app was closed meanwhile."""
        app = self.app
        info(f"reconnect() - retrying in {self.reconnect} seconds [{_stack_depth()} frames in stack]")
        deadline = time.monotonic() + self.reconnect
        while app.keep_running:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            if app._stop_event.wait(min(left, _POLL)):
                return False
        return False

    # ---- endings ------------------------------------------------------------------------

    def ended(self, ws: Optional[WebSocket], kind: int, detail: Any, report: bool = True) -> Optional[bool]:
        """Handles the end of a connection. Returns None when it is to be reconnected,
        else the value for ``run_forever`` (after the teardown)."""
        app = self.app
        if kind == _STOPPED:
            return self.finish(ws, False)
        if kind == _CLOSED:
            code, reason = _parse_close(detail)
            msg = _close_message(code, reason)
            if ws is not None:
                ws.connected = False
                ws.close_frame = ABNF(1, 0, 0, 0, _OP_CLOSE, 0, detail)
            if self.reconnect and app.keep_running and code not in (None, STATUS_NORMAL):
                info(f"{msg} - reconnect")
                self.drop(ws)
                return None
            info(f"{msg} - goodbye")
            return self.finish(ws, False, detail)
        app.has_errored = True
        if report:
            app._callback(app.on_error, detail)
        if self.reconnect and app.keep_running:
            info(f"{detail} - reconnect")
            self.drop(ws)
            return None
        error(f"{detail} - goodbye")
        return self.finish(ws, True)

    def drop(self, ws: Optional[WebSocket]) -> None:
        """Closes a dead connection before a reconnect (no on_close, as the reference)."""
        app = self.app
        with app._close_lock:
            if app.sock is ws:
                app.sock = None
        if ws is not None:
            try:
                ws.close(timeout=_FAILED_CLOSE_TIMEOUT)
            except Exception as e:
                debug(f"closing the dropped connection failed: {e}")
        app.last_ping_tm = app.last_pong_tm = 0.0
        self.pong_deadline = None

    def finish(self, ws: Optional[WebSocket], failed: bool, close_data: Optional[bytes] = None) -> bool:
        """The teardown, once per run: closes the connection and calls on_close. Returns
        ``failed`` (the value for run_forever)."""
        app = self.app
        with app.has_done_teardown_lock:
            if app.has_done_teardown:
                return failed
            app.has_done_teardown = True
        app.keep_running = False
        app.last_ping_tm = app.last_pong_tm = 0.0
        self.pong_deadline = None
        try:
            with app._close_lock:
                sock = app.sock
                app.sock = None
                # ws: a connection that close() raced with (closed before it was set up)
                for s in (sock,) if ws is None or ws is sock or not ws.connected else (sock, ws):
                    if s is None:
                        continue
                    try:
                        if failed:
                            s.close(timeout=_FAILED_CLOSE_TIMEOUT)
                        else:
                            s.close()
                    except Exception as e:
                        debug(f"closing the connection failed: {e}")
            if failed:
                app._callback(app.on_close, None, None)
                return failed
            frame: Optional[ABNF] = None
            if close_data is not None:
                frame = ABNF(1, 0, 0, 0, _OP_CLOSE, 0, close_data)
            elif app.last_close_frame is not None:
                frame = app.last_close_frame
            else:
                for s in (sock, ws):
                    if s is not None and s.close_frame is not None:
                        frame = s.close_frame
                        break
            if frame is not None:
                app.last_close_frame = frame
            code, reason = app._get_close_args(frame)
            app._callback(app.on_close, code, reason)
            return failed
        finally:
            app._running = False

    # ---- with a rel-style dispatcher ----------------------------------------------------

    def start_dispatched(self) -> bool:
        app = self.app
        self.wrapped = WrappedDispatcher(app, app.ping_timeout, self.dispatcher, None)
        self.initialize(False)
        return app.has_errored

    def initialize(self, reconnecting: bool = False) -> bool:
        """Connects and registers with the dispatcher; also the reconnect timer's callback
        (returns False so a timer does not repeat)."""
        app = self.app
        wrapped = self.wrapped
        assert wrapped is not None
        if not app.keep_running:
            self.finish(None, False)
            return False
        try:
            ws = self.connect()
        except Exception as e:
            self.dispatched_end(None, _FAILED, e, report=not reconnecting)
            return False
        self.opened(reconnecting)
        if not app.keep_running:
            self.finish(ws, False)
            return False
        # Keep the socket view (and so its readiness fd) alive while the user's loop may
        # still watch its fd, even after the connection was closed.
        self.view = ws.sock
        wrapped.read(self.view, lambda: self.on_readable(ws), lambda: self.check(ws))
        if app.ping_interval:
            wrapped.timeout(app.ping_interval, lambda: self.ping_tick(ws))
        return False

    def dispatched_end(self, ws: Optional[WebSocket], kind: int, detail: Any, report: bool = True) -> None:
        if self.ended(ws, kind, detail, report) is None and self.wrapped is not None:
            info(f"reconnect() - retrying in {self.reconnect} seconds [{_stack_depth()} frames in stack]")
            self.wrapped.reconnect(self.reconnect, self.initialize)

    def on_readable(self, ws: WebSocket) -> bool:
        """The dispatcher's read callback: delivers what is queued; False to unregister."""
        app = self.app
        if ws is not self.ws or app.has_done_teardown:
            return False
        if not app.keep_running:
            self.dispatched_end(ws, _STOPPED, None)
            return False
        conn = ws._conn
        try:
            if conn is None:
                raise WebSocketConnectionClosedException("Connection to remote host was lost.")
            items = _batch_receiver(conn, ws.fire_cont_frame)(_BATCH, 0.0, self.decode)
        except WebSocketTimeoutException:
            return True
        except Exception as e:
            self.ws = None
            self.dispatched_end(ws, _STOPPED if not app.keep_running else _FAILED, e)
            return False
        ended = self.deliver(items)
        if ended is None and not app.keep_running:
            ended = (_STOPPED, None)
        if ended is not None:
            self.ws = None
            self.dispatched_end(ws, ended[0], ended[1])
            return False
        return True

    def check(self, ws: WebSocket) -> bool:
        """The dispatcher's ping_timeout timer; True to run again."""
        if ws is not self.ws or not self.app.keep_running:
            return False
        deadline = self.pong_deadline
        conn = ws._conn
        if deadline is not None and time.monotonic() >= deadline and conn is not None and not conn.has_item():
            self.ws = None
            self.dispatched_end(ws, _FAILED, WebSocketTimeoutException("ping/pong timed out"))
            return False
        return True

    def ping_tick(self, ws: WebSocket) -> bool:
        """The dispatcher's ping_interval timer; True to run again."""
        if ws is not self.ws or not self.app.keep_running:
            return False
        self.send_ping(ws)
        return True

