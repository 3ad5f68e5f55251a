"""Dispatchers: what drives a ``WebSocketApp``'s reading, as in websocket-client 1.9.2.

``WebSocketApp.run_forever`` has its own loop over the engine's batch receive and uses none
of these classes unless a custom (``rel``-style) dispatcher is given, which is wrapped in
``WrappedDispatcher``. ``Dispatcher`` and ``SSLDispatcher`` stay importable and usable for
code that drives an app by hand: they select() on ``app.sock.sock``, whose ``fileno()`` is
readable exactly while a receive would not block.

A ``rel``-style dispatcher is any object with ``read(sock, callback)`` (call ``callback``
whenever ``sock`` is readable, stop when it returns False), ``timeout(seconds, callback,
*args)`` (call once after ``seconds``, again each time it returns True), ``signal(signum,
callback)`` and ``abort()``.
"""

from __future__ import annotations

import inspect
import selectors
import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ._logging import info
from ._socket import send

if TYPE_CHECKING:
    from ._app import WebSocketApp

# No ``__all__``, as in websocket-client: ``from websocket._dispatcher import *`` binds every
# public name, the imports included (``send``, ``info``, ``selectors``, ``Callable``, ...).

_Number = Union[float, int]


class DispatcherBase:
    """Blocking timers and reconnect waits for the built-in dispatchers."""

    def __init__(self, app: "WebSocketApp", ping_timeout: Optional[_Number]) -> None:
        self.app = app
        self.ping_timeout = ping_timeout

    def timeout(self, seconds: Optional[_Number], callback: Callable[[], Any]) -> None:
        """Sleeps ``seconds`` (if not None), then calls ``callback()``."""
        if seconds is not None:
            time.sleep(seconds)
        callback()

    def reconnect(self, seconds: int, reconnector: Callable[..., Any]) -> None:
        """Waits ``seconds``, then calls ``reconnector(reconnecting=True)``."""
        try:
            info(
                f"reconnect() - retrying in {seconds} seconds "
                f"[{len(inspect.stack())} frames in stack]"
            )
            time.sleep(seconds)
            reconnector(reconnecting=True)
        except KeyboardInterrupt as e:
            info(f"User exited {e}")
            raise

    def send(self, sock: socket.socket, data: Union[str, bytes]) -> int:
        """Writes raw bytes to a real socket."""
        return send(sock, data)


class Dispatcher(DispatcherBase):
    """select() on the app's socket; calls ``read_callback`` when readable and
    ``check_callback`` after every wait, while ``app.keep_running``."""

    def read(
        self,
        sock: Any,
        read_callback: Callable[[], Any],
        check_callback: Callable[[], Any],
    ) -> None:
        ws = self.app.sock
        if ws is None or ws.sock is None:
            return
        sel = selectors.DefaultSelector()
        sel.register(ws.sock, selectors.EVENT_READ)
        try:
            while self.app.keep_running:
                if self._wait(ws.sock, sel) and not read_callback():
                    break
                check_callback()
        finally:
            sel.close()

    def _wait(self, sock: Any, sel: selectors.BaseSelector) -> Any:
        """Waits up to ping_timeout for the socket to become readable."""
        return sel.select(self.ping_timeout)


class SSLDispatcher(Dispatcher):
    """``Dispatcher`` that also asks ``sock.pending()`` before waiting (TLS buffers)."""

    def _wait(self, sock: Any, sel: selectors.BaseSelector) -> Any:
        return self.select(sock, sel)

    def select(self, sock: Any, sel: selectors.BaseSelector) -> Any:
        """Something true when the app's socket can be read, None after ``ping_timeout``
        seconds: as in websocket-client, ``[sock]`` when TLS has bytes pending, else the
        selector key of the first ready socket."""
        ws = self.app.sock
        if ws is None or ws.sock is None:
            return None
        if ws.sock.pending():
            return [ws.sock]
        ready = sel.select(self.ping_timeout)
        return ready[0][0] if ready else None


class WrappedDispatcher:
    """Adapts a ``rel``-style event loop object to what ``WebSocketApp`` needs."""

    def __init__(
        self,
        app: "WebSocketApp",
        ping_timeout: Optional[_Number],
        dispatcher: Any,
        handleDisconnect: Optional[Callable[..., Any]],
    ) -> None:
        self.app = app
        self.ping_timeout = ping_timeout
        self.dispatcher = dispatcher
        self.handleDisconnect = handleDisconnect
        dispatcher.signal(2, dispatcher.abort)  # Ctrl-C stops the user's loop

    def read(
        self,
        sock: Any,
        read_callback: Callable[[], Any],
        check_callback: Callable[[], Any],
    ) -> None:
        self.dispatcher.read(sock, read_callback)
        if self.ping_timeout:
            self.timeout(self.ping_timeout, check_callback)

    def send(self, sock: Any, data: Union[str, bytes]) -> int:
        self.dispatcher.buffwrite(sock, data, send, self.handleDisconnect)
        return len(data)

    def timeout(self, seconds: _Number, callback: Callable[..., Any], *args: Any) -> None:
        self.dispatcher.timeout(seconds, callback, *args)

    def reconnect(self, seconds: int, reconnector: Callable[..., Any]) -> None:
        self.timeout(seconds, reconnector, True)
