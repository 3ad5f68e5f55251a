"""The opening handshake over a Python socket object: websocket-client 1.9.2's ``_handshake``
helpers, with their names and signatures, on the Rust core.

The request (its exact header order), the response check (upgrade headers, accept key,
subprotocol, permessage-deflate agreement) and the meaning of the status (upgrade, redirect,
refusal) are the core's (``_native.build_request``, ``_native.handshake_answer``): the
native engine runs the same code, so no rule is written twice. This module reads and writes
the bytes, for the Python-socket driver and for code that calls these helpers directly.
"""

from __future__ import annotations

import base64
import hashlib  # noqa: F401  (websocket-client's _handshake names it; the check is the core's)
import hmac  # noqa: F401
import os
import socket  # noqa: F401
import time
from http import HTTPStatus
from typing import Any, Dict, List, Optional, Tuple, Union

from . import _native
from ._cookiejar import SimpleCookieJar
from ._exceptions import (
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketTimeoutException,
)
from ._http import read_headers
from ._logging import dump, error
from . import _socket
from ._socket import recv, send
from ._ssl_compat import ssl

__all__ = ["handshake_response", "handshake", "SUPPORTED_REDIRECT_STATUSES"]

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

# The upgrade headers a 101 must carry (websocket-client's table; the core checks them).
_HEADERS_TO_CHECK = {
    "upgrade": "websocket",
    "connection": "upgrade",
}

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
    #: Beyond websocket-client: the permessage-deflate parameters agreed, or None.
    compression: Optional[Dict[str, Any]] = None

    def __init__(self, status: int, headers: Dict[str, Any], subprotocol: Optional[str]) -> None:
        self.status = status
        self.headers = headers
        self.subprotocol = subprotocol
        CookieJar.add(headers.get("set-cookie"))


def _normalize_headers(
    header: Union[None, List[str], Dict[str, Optional[str]]],
) -> Tuple[List[str], Optional[str], Optional[str]]:
    """User headers as ``Name: value`` lines, plus the Sec-WebSocket-Key/Version a header
    dict sets (those lines then stay where the user put them, as in the reference)."""
    if not header:
        return [], None, None
    if isinstance(header, dict):
        key = header.get("Sec-WebSocket-Key")
        version = header.get("Sec-WebSocket-Version")
        lines = [f"{k}: {v}" for k, v in header.items() if v is not None]
        return lines, key, (str(version) if version is not None else None)
    return [str(h) for h in header], None, None


def compression_offer(value: Any) -> Optional[Dict[str, Any]]:
    """The ``compression`` option as the core takes it: None (no offer) or a dict of
    permessage-deflate parameters (``True`` is the default offer, ``{}``)."""
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"compression must be a bool or a dict, not {type(value).__name__}")


def request_options(hostname: str, options: Dict[str, Any], compression: Any = None) -> Dict[str, Any]:
    """The request keys of the core's handshake from ``connect`` options (header list or
    dict, cookie merged after the cookie jar's, origin, host, subprotocols, connection),
    and the permessage-deflate offer."""
    headers, key, version = _normalize_headers(options.get("header"))
    server_cookie = CookieJar.get(hostname)
    user_cookie = options.get("cookie")
    # (Joined only when there is a cookie: most connections have none.)
    cookie = "; ".join(c for c in (server_cookie, user_cookie) if c) if server_cookie or user_cookie else None
    subprotocols = options.get("subprotocols")
    return {
        "header": headers,
        "key": key,
        "key_in_headers": key is not None,
        "version": version,
        "version_in_headers": version is not None,
        "cookie": cookie or None,
        "origin": options.get("origin"),
        "suppress_origin": bool(options.get("suppress_origin", False)),
        "host": options.get("host"),
        "suppress_host": bool(options.get("suppress_host", False)),
        "subprotocols": list(subprotocols) if subprotocols else None,
        "connection": options.get("connection"),
        "compression": compression,
    }


# Lowercased header names, shared by every connection's headers dict (a connection keeps its
# handshake's headers as long as it is open); bounded, as the names come from servers.
_LOWER_NAMES: Dict[str, str] = {}
_LOWER_NAMES_MAX = 512


def _lower_name(name: str) -> str:
    k = _LOWER_NAMES.get(name)
    if k is None:
        k = name.lower()
        if len(_LOWER_NAMES) < _LOWER_NAMES_MAX:
            _LOWER_NAMES[name] = k
    return k


def response_headers(pairs: List[Tuple[str, str]]) -> Dict[str, str]:
    """Lowercased names; duplicates overwrite, except set-cookie joined with '; '."""
    headers: Dict[str, str] = {}
    for name, value in pairs:
        k = _lower_name(name)
        if k == "set-cookie" and k in headers:
            headers[k] = headers[k] + "; " + value
        else:
            headers[k] = value
    return headers


def _pack_hostname(hostname: str) -> str:
    """IPv6 literals in brackets, as in a Host header."""
    if ":" in hostname:
        return f"[{hostname}]"
    return hostname


def _get_handshake_headers(resource: str, url: str, host: str, port: int, options: Dict[str, Any]) -> Tuple[List[str], str]:
    """The request lines (ending with two empty strings, for ``"\\r\\n".join``) and the
    Sec-WebSocket-Key the answer must match."""
    secure = url.split(":", 1)[0] == "wss"
    request, key = _native.build_request(host, port, resource, secure, request_options(host, options))
    return request.decode("latin-1").split("\r\n"), key


def _get_resp_headers(sock: Any, success_statuses: Tuple[Any, ...] = SUCCESS_STATUSES) -> Tuple[int, Dict[str, Any]]:
    """Reads the response head; ``(status, headers)``. A status outside
    ``success_statuses`` raises WebSocketBadStatusException with the body when a
    Content-Length announces one."""
    status, resp_headers, status_message = read_headers(sock)
    if status not in success_statuses:
        content_len = resp_headers.get("content-length")
        response_body: Optional[bytes] = None
        if content_len:
            try:
                remaining = int(content_len)
            except ValueError:
                raise WebSocketException(f"Invalid content-length header: {content_len!r}")
            response_body = b""
            from . import _socket  # looked up at call time, as websocket-client does

            while remaining > 0:
                chunk = _socket.recv(sock, min(remaining, 16384))
                response_body += chunk
                remaining -= len(chunk)
        raise _bad_status(status, status_message, resp_headers, response_body)
    assert status is not None
    return status, resp_headers


def _bad_status(status: Any, reason: Optional[str], headers: Dict[str, Any], body: Optional[bytes]) -> WebSocketBadStatusException:
    text = body.decode("utf-8", errors="replace") if body else None
    return WebSocketBadStatusException(
        f"Handshake status {status} {reason} -+-+- {headers} -+-+- {text}", status, reason, headers, body
    )


def _validate(headers: Dict[str, Any], key: str, subprotocols: Optional[List[str]]) -> Tuple[bool, Optional[str]]:
    """Checks a 101 answer's headers (lowercased names) against the request: ``(True,
    subprotocol)`` or ``(False, None)``. Stricter than websocket-client where RFC 6455 4.1
    is: a subprotocol the client did not offer fails also when it offered none."""
    try:
        _, subprotocol, _ = _native.handshake_answer(101, list(headers.items()), key, subprotocols or None)
    except WebSocketException as e:
        if subprotocols or "subprotocol" in str(e):
            error(f"Invalid subprotocol: {subprotocols}")
        return False, None
    return True, subprotocol


def _create_sec_websocket_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("utf-8")


def _timeout_of(sock: Any) -> Optional[float]:
    t = getattr(sock, "gettimeout", lambda: None)()
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def _settimeout(sock: Any, deadline: Optional[float]) -> None:
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise WebSocketTimeoutException("Connection timed out")
    sock.settimeout(left)


def _can_peek(sock: Any) -> bool:
    """A plain socket (gevent's and eventlet's included) read through this module's own
    ``recv``: its queued bytes can be looked at without taking them."""
    if recv is not _socket.recv or not isinstance(sock, socket.socket) or sock.gettimeout() == 0:
        return False
    return not (ssl is not None and isinstance(sock, ssl.SSLSocket))


def _peek(sock: Any, bufsize: int) -> bytes:
    """What has arrived, left in the socket; errors as ``recv``'s."""
    try:
        data = sock.recv(bufsize, socket.MSG_PEEK)
    except (socket.timeout, TimeoutError):
        raise WebSocketTimeoutException("Connection timed out") from None
    if not data:
        raise WebSocketConnectionClosedException("Connection to remote host was lost.")
    return data  # type: ignore[no-any-return]


def _read_head(sock: Any, deadline: Optional[float]) -> Tuple[int, str, List[Tuple[str, str]], int]:
    """The response head, parsed, without reading a byte past it (what follows is the
    server's first frames). A plain socket is peeked at and then read up to the blank line:
    two reads for a usual head. Other socket objects (an SSLSocket cannot peek) get reads
    of at most the bytes that could still complete the blank line (4, then fewer), as
    websocket-client reads its head a byte at a time."""
    buf = b""
    peek = _can_peek(sock)
    while True:
        parsed = _native.parse_response_head(buf) if buf else None
        if parsed is not None:
            return parsed
        _settimeout(sock, deadline)
        if not peek:
            buf += recv(sock, _native.head_bytes_wanted(buf))
            continue
        seen = _peek(sock, 16384)
        tail = buf[-3:]
        end = (tail + seen).find(b"\r\n\r\n")
        take = len(seen) if end < 0 else end + 4 - len(tail)
        while take > 0:
            got = recv(sock, take)
            buf += got
            take -= len(got)


def handshake(sock: Any, url: str, hostname: str, port: int, resource: str, **options: Any) -> handshake_response:
    """Runs the opening handshake over ``sock``: the core's request (``header``, ``cookie``,
    ``origin``, ``host``, ``subprotocols``, ``connection``... and, beyond websocket-client,
    a ``compression`` offer: True or a dict, see ``WebSocket.connect``), then the answer's
    head, read without reading past it (at most the bytes that could still complete its
    blank line per read), within one deadline of the socket's timeout.

    A redirect is returned as is (its status and headers) for the caller to follow;
    another refusal raises WebSocketBadStatusException with the body a Content-Length
    announces; a 101 that fails the core's checks raises WebSocketException("Invalid
    WebSocket Header..."). The returned ``handshake_response`` also carries
    ``compression``: the permessage-deflate parameters agreed (a dict), or None.
    """
    offer = compression_offer(options.get("compression"))
    secure = url.split(":", 1)[0] == "wss"
    request, key = _native.build_request(hostname, port, resource, secure, request_options(hostname, options, offer))
    timeout = _timeout_of(sock)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        data = request
        while data:
            _settimeout(sock, deadline)
            n = send(sock, data)
            data = data[n:]
        status, reason, pairs, _ = _read_head(sock, deadline)
        headers = response_headers(pairs)
        answer = _native.handshake_answer(status, pairs, key, options.get("subprotocols") or None, offer)
        if answer[0] == "redirect":
            return handshake_response(status, headers, None)
        if answer[0] == "refused":
            body = b""
            try:
                while len(body) < answer[1]:
                    _settimeout(sock, deadline)
                    body += recv(sock, min(answer[1] - len(body), 16384))
            except (WebSocketException, OSError):
                pass
            raise _bad_status(status, reason, headers, body or None)
    finally:
        if deadline is not None:
            sock.settimeout(timeout)
    response = handshake_response(status, headers, answer[1])
    response.compression = answer[2]
    return response
