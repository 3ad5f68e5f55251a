"""Proxy options of ``connect`` / ``create_connection`` / ``run_forever``, resolved once for
both drivers: the native engine and the Python-socket driver speak HTTP CONNECT and
SOCKS4/4a/5/5h through the Rust core (no python-socks).

Options, as in websocket-client 1.9.2: ``http_proxy_host``, ``http_proxy_port`` (required
with a host), ``http_proxy_auth=(user, password)``, ``http_no_proxy`` (list of hosts),
``proxy_type`` (``http`` by default), ``http_proxy_timeout``. Without ``http_proxy_host``
the ``http_proxy`` / ``https_proxy`` environment variables apply, minus ``no_proxy``
(see :func:`websocket._url.get_proxy_info_ex`).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ._exceptions import WebSocketProxyException
from ._url import get_proxy_info_ex

__all__ = ["PROXY_TYPES", "resolve_proxy"]

PROXY_TYPES = ("http", "socks4", "socks4a", "socks5", "socks5h")

# python-socks' default, which websocket-client's SOCKS path inherits.
SOCKS_DEFAULT_TIMEOUT = 60.0

_DEFAULT_PORTS = {"http": 80}  # websocket-client's default for an env proxy without port
_SOCKS_DEFAULT_PORT = 1080


def _proxy_type(value: Any) -> str:
    """``proxy_type``; None means ``http`` (websocket-client's run_forever passes None and
    then fails, a bug not reproduced here)."""
    if value is None:
        return "http"
    name = str(value).lower()
    if name not in PROXY_TYPES:
        raise WebSocketProxyException(
            f"Only http, socks4, socks4a, socks5, socks5h proxy protocols are supported, not {value!r}"
        )
    return name


def resolve_proxy(
    hostname: str, is_secure: bool, options: Dict[str, Any], timeout: Optional[float]
) -> Optional[Dict[str, Any]]:
    """The proxy to tunnel through to reach ``hostname``, or None.

    ``timeout`` is the connection's timeout; the proxy exchange is bounded by
    ``http_proxy_timeout``, else by ``timeout``, else (SOCKS only) by 60 s, the
    reference's python-socks default. Raises WebSocketProxyException for a proxy host
    without port or an unknown ``proxy_type``.
    """
    explicit = options.get("http_proxy_host")
    proxy_type = _proxy_type(options.get("proxy_type")) if explicit else "http"
    port_opt = options.get("http_proxy_port") or 0
    host, port, auth, kind = get_proxy_info_ex(
        hostname,
        is_secure,
        explicit,
        port_opt,
        options.get("http_proxy_auth"),
        options.get("http_no_proxy"),
        proxy_type,
    )
    if not host:
        return None
    if not port:
        port = _DEFAULT_PORTS.get(kind, _SOCKS_DEFAULT_PORT)
    try:
        port = int(port)
        if not 0 < port < 65536:
            raise ValueError
    except (TypeError, ValueError):
        raise WebSocketProxyException(f"invalid proxy port {port!r}") from None
    engine_auth = None
    if auth:
        user = auth[0] if len(auth) > 0 else None
        password = auth[1] if len(auth) > 1 else None
        engine_auth = (str(user or ""), str(password or ""))
    proxy_timeout = options.get("http_proxy_timeout")
    if proxy_timeout is None:
        proxy_timeout = timeout
    if proxy_timeout is None and kind != "http":
        proxy_timeout = SOCKS_DEFAULT_TIMEOUT
    return {
        "type": kind,
        "host": str(host),
        "port": port,
        "auth": engine_auth,
        "timeout": proxy_timeout,
    }
