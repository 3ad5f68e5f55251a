"""Public pieces of websocket-client's ``_handshake`` module.

The opening handshake itself (request, response check) is done by the Rust engine; this
module keeps the names that user code imports: :class:`handshake_response`, the redirect
statuses and the process-global cookie jar that the handshake fills from ``Set-Cookie``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Dict, Optional, Tuple

from ._cookiejar import SimpleCookieJar

__all__ = ["handshake_response", "SUPPORTED_REDIRECT_STATUSES"]

# The WebSocket protocol version sent in Sec-WebSocket-Version.
VERSION = 13

# Statuses that are followed through their Location header (up to redirect_limit).
SUPPORTED_REDIRECT_STATUSES: Tuple[HTTPStatus, ...] = (
    HTTPStatus.MOVED_PERMANENTLY,
    HTTPStatus.FOUND,
    HTTPStatus.SEE_OTHER,
    HTTPStatus.TEMPORARY_REDIRECT,
    HTTPStatus.PERMANENT_REDIRECT,
)
# Every status that does not make the handshake fail with WebSocketBadStatusException.
SUCCESS_STATUSES: Tuple[HTTPStatus, ...] = SUPPORTED_REDIRECT_STATUSES + (
    HTTPStatus.SWITCHING_PROTOCOLS,
)

# Cookies with a Domain attribute from every handshake response of the process; their
# values are sent back in the Cookie header of later handshakes to matching hosts.
CookieJar = SimpleCookieJar()


class handshake_response:
    """The outcome of an opening handshake.

    ``status`` is the HTTP status, ``headers`` the response headers with lowercased
    names, ``subprotocol`` the negotiated subprotocol (lowercased) or None. Creating one
    stores the response's ``set-cookie`` value in the global :data:`CookieJar`.
    """

    status: int
    headers: Dict[str, Any]
    subprotocol: Optional[str]

    def __init__(
        self, status: int, headers: Dict[str, Any], subprotocol: Optional[str]
    ) -> None:
        self.status = status
        self.headers = headers
        self.subprotocol = subprotocol
        CookieJar.add(headers.get("set-cookie"))
