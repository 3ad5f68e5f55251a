"""Exception hierarchy of the ``websocket`` package.

Every error this package raises on purpose derives from :class:`WebSocketException`.
The classes, their module path and their ``str()`` output match websocket-client 1.9.2,
so ``except websocket.WebSocketTimeoutException`` style code keeps working unchanged.

Like websocket-client, this module defines no ``__all__``: ``from ._exceptions import *``
therefore also exports the ``Any`` and ``Optional`` typing names, which some code picks
up from ``websocket`` (``websocket.Any``).
"""

# No ``from __future__ import annotations`` and no other typing import here: with no
# ``__all__``, every public module-level name is star-exported, and websocket-client's
# module exports exactly the exception classes plus ``Any`` and ``Optional``.
from typing import Any, Optional


class WebSocketException(Exception):
    """Base class of every WebSocket error raised by this package."""


class WebSocketProtocolException(WebSocketException):
    """The peer broke the WebSocket protocol (bad frame, bad opcode, ...)."""


class WebSocketPayloadException(WebSocketException):
    """A payload is invalid, for instance a TEXT message that is not UTF-8."""


class WebSocketConnectionClosedException(WebSocketException):
    """The connection is closed, or was lost through a network error."""


class WebSocketTimeoutException(WebSocketException):
    """A socket read or write timed out.

    Deliberately not a subclass of :class:`TimeoutError`, as in websocket-client.
    """


class WebSocketProxyException(WebSocketException):
    """The proxy refused or failed the tunnel."""


class WebSocketBadStatusException(WebSocketException):
    """The server answered the opening handshake with an unexpected HTTP status.

    ``str(exc)`` is ``message``; the status line, headers and body are kept as attributes.
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        status_message: Optional[str] = None,
        resp_headers: "Optional[dict[Any, Any]]" = None,
        resp_body: Optional[bytes] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.status_message = status_message
        self.resp_headers = resp_headers
        self.resp_body = resp_body


class WebSocketAddressException(WebSocketException):
    """The host name of the URL could not be resolved."""
