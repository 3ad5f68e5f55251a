"""websocket-client's ``_http`` names, for code that imports them.

The engine connects, tunnels through proxies and runs the handshake in Rust, so nothing
in this package calls these. They keep their reference behaviour for direct use:
``proxy_info`` validates and holds proxy options, ``read_headers`` reads an HTTP response
head from a plain socket, ``connect`` opens a direct (optionally TLS) stream socket.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, Dict, List, Optional, Tuple

from ._exceptions import WebSocketAddressException, WebSocketException, WebSocketProxyException
from ._socket import recv_line
from ._url import parse_url

__all__ = ["proxy_info", "connect", "read_headers"]


class proxy_info:
    """Proxy options as websocket-client keeps them (``proxy_host``, ``proxy_port``,
    ``auth``, ``no_proxy``, ``proxy_protocol``, ``proxy_timeout``)."""

    def __init__(self, **options: Any) -> None:
        self.proxy_host: Optional[str] = options.get("http_proxy_host", None)
        if self.proxy_host:
            self.proxy_port: int = options.get("http_proxy_port", 0)
            self.auth: Optional[Tuple[str, str]] = options.get("http_proxy_auth", None)
            self.no_proxy: Optional[List[str]] = options.get("http_no_proxy", None)
            self.proxy_protocol: str = options.get("proxy_type", None) or "http"
            self.proxy_timeout: Optional[float] = options.get("http_proxy_timeout", None)
            if self.proxy_protocol not in ("http", "socks4", "socks4a", "socks5", "socks5h"):
                raise WebSocketProxyException(
                    "Only http, socks4, socks5 proxy protocols are supported"
                )
            if not self.proxy_port:
                raise WebSocketProxyException(
                    f"Cannot use port 0 when proxy_host specified ({self.proxy_host!r})"
                )
        else:
            self.proxy_port = 0
            self.auth = None
            self.no_proxy = None
            self.proxy_protocol = "http"
            self.proxy_timeout = None


def read_headers(sock: socket.socket) -> Tuple[Optional[int], Dict[str, str], Optional[str]]:
    """Reads an HTTP response head: ``(status, headers with lowercased names, reason)``.
    ``set-cookie`` values are joined with ``"; "``."""
    status: Optional[int] = None
    status_message: Optional[str] = None
    headers: Dict[str, str] = {}
    while True:
        line = recv_line(sock).decode("utf-8").strip()
        if not line:
            break
        if status is None:
            parts = line.split(" ", 2)
            status = int(parts[1])
            if len(parts) == 3:
                status_message = parts[2]
            continue
        if ":" not in line:
            raise WebSocketException("Invalid header")
        key, value = line.split(":", 1)
        key = key.strip().lower()
        value = value.strip()
        if key == "set-cookie" and key in headers:
            headers[key] = headers[key] + "; " + value
        else:
            headers[key] = value
    return status, headers, status_message


def connect(
    url: str, options: Any, proxy: proxy_info, sock: Optional[socket.socket]
) -> Tuple[socket.socket, Tuple[str, int, str]]:
    """Opens a direct stream socket to ``url``'s host (TLS-wrapped for wss://, with
    ``options.sslopt``); returns ``(sock, (hostname, port, resource))``. Proxies are only
    reachable through ``WebSocket.connect``, whose engine speaks them natively."""
    hostname, port, resource, is_secure = parse_url(url)
    if sock is not None:
        return sock, (hostname, port, resource)
    if proxy.proxy_host:
        raise WebSocketProxyException(
            "websocket._http.connect does not tunnel; use WebSocket.connect for proxies"
        )
    timeout = getattr(options, "timeout", None)
    try:
        addrs = socket.getaddrinfo(hostname, port, 0, socket.SOCK_STREAM, socket.SOL_TCP)
    except socket.gaierror as e:
        raise WebSocketAddressException(e) from e
    err: Optional[OSError] = None
    for family, socktype, proto, _, address in addrs:
        s = socket.socket(family, socktype, proto)
        s.settimeout(timeout)
        for opt in getattr(options, "sockopt", None) or []:
            s.setsockopt(*opt)
        try:
            s.connect(address)
        except OSError as e:
            s.close()
            err = e
            continue
        if is_secure:
            sslopt = dict(getattr(options, "sslopt", None) or {})
            ctx = sslopt.get("context") or ssl.create_default_context()
            if sslopt.get("cert_reqs") == ssl.CERT_NONE:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if sslopt.get("ca_certs"):
                ctx.load_verify_locations(cafile=sslopt["ca_certs"])
            s = ctx.wrap_socket(s, server_hostname=sslopt.get("server_hostname", hostname))
        return s, (hostname, port, resource)
    raise err if err is not None else WebSocketException(f"cannot connect to {hostname}:{port}")
