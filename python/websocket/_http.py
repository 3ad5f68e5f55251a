"""Opening the socket of a connection through Python's ``socket`` and ``ssl`` modules:
websocket-client 1.9.2's ``_http`` helpers, with their names and signatures.

The Python-socket driver (``websocket._socket_driver``) connects with these: DNS, TCP
connect, proxies and the TLS wrap all go through Python socket objects, so gevent and
eventlet see every wait, and ``sslopt`` means exactly what it means to Python's ``ssl``
(``ciphers``, ``ecdh_curve``, a full ``context``). The proxy exchanges (HTTP CONNECT,
SOCKS4/4a/5/5h) are the Rust core's (``_native.ProxyNegotiation``): this module only moves
their bytes, so python-socks is not needed. The native engine does all of this in Rust and
uses none of it.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any, Dict, List, Optional, Tuple

from . import _native
from ._exceptions import (
    WebSocketAddressException,
    WebSocketException,
    WebSocketProxyException,
    WebSocketTimeoutException,
)
from ._logging import debug, dump, trace
from ._socket import DEFAULT_SOCKET_OPTION, recv, recv_line, send
from ._ssl_compat import HAVE_SSL, ssl
from ._proxy import resolve_proxy
from ._url import get_proxy_info, parse_url

__all__ = ["proxy_info", "connect", "read_headers"]

# SOCKS is spoken by the Rust core; python-socks is never needed (kept for code that
# checks the flag before using a SOCKS proxy).
HAVE_PYTHON_SOCKS = True

PROXY_TYPES = ("http", "socks4", "socks4a", "socks5", "socks5h")
# python-socks' default, which websocket-client's SOCKS path inherits.
SOCKS_DEFAULT_TIMEOUT = 60.0


class ProxyError(WebSocketProxyException):
    """A proxy refused or broke the exchange (python-socks' name, for code catching it)."""


class ProxyTimeoutError(ProxyError, TimeoutError):
    """The proxy exchange timed out (also a TimeoutError, as python-socks' is)."""


class ProxyConnectionError(ProxyError, OSError):
    """The proxy could not be reached (also an OSError, as python-socks' is)."""


class ProxyType:
    """python-socks' proxy type names."""

    SOCKS4 = "socks4"
    SOCKS5 = "socks5"
    HTTP = "http"


class proxy_info:
    """Proxy options as websocket-client keeps them: ``proxy_host``, ``proxy_port``,
    ``auth``, ``no_proxy``, ``proxy_protocol``, ``proxy_timeout``.

    ``proxy_type=None`` means ``http`` (websocket-client 1.9.2 rejects None, which broke
    ``run_forever(http_proxy_host=...)``); an unknown type raises ``ProxyError``."""

    def __init__(self, **options: Any) -> None:
        self.proxy_host: Optional[str] = options.get("http_proxy_host", None)
        if self.proxy_host:
            self.proxy_port: Any = options.get("http_proxy_port", 0)
            self.auth: Optional[Tuple[str, str]] = options.get("http_proxy_auth", None)
            self.no_proxy: Optional[List[str]] = options.get("http_no_proxy", None)
            self.proxy_protocol: str = str(options.get("proxy_type", None) or "http").lower()
            self.proxy_timeout: Optional[float] = options.get("http_proxy_timeout", None)
            if self.proxy_protocol not in PROXY_TYPES:
                raise ProxyError("Only http, socks4, socks5 proxy protocols are supported")
        else:
            self.proxy_port = 0
            self.auth = None
            self.no_proxy = None
            self.proxy_protocol = "http"
            self.proxy_timeout = None


def _negotiate(sock: Any, kind: str, host: str, port: int, auth: Any) -> None:
    """Runs the Rust core's proxy negotiation over ``sock``: its requests go out with
    ``send``, the proxy's answers are read without reading past them (what follows belongs
    to the tunnel). Failures raise WebSocketProxyException."""
    target = _native.proxy_target(kind, host)
    if target is None:
        # The proxy does not resolve names: resolve here (cooperatively under gevent).
        family = socket.AF_INET if _native.proxy_needs_ipv4(kind) else 0
        try:
            infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, socket.SOL_TCP)
        except socket.gaierror as e:
            raise WebSocketAddressException(e) from e
        if not infos:
            raise WebSocketProxyException(f"SOCKS4 proxies need an IPv4 address and {host} has none")
        target = str(infos[0][4][0])
    user_auth = None
    if auth:
        user_auth = (str(auth[0] or ""), str(auth[1] if len(auth) > 1 and auth[1] else ""))
    negotiation = _native.ProxyNegotiation(kind, target, int(port), user_auth)
    if kind == "http":
        dump("request header", negotiation.http_request)
    try:
        while not negotiation.done:
            out = negotiation.data_to_send()
            while out:
                n = send(sock, out)
                out = out[n:]
            negotiation.receive(recv(sock, negotiation.bytes_wanted()))
    except WebSocketTimeoutException as e:
        raise ProxyTimeoutError(f"{kind.upper()} proxy: timed out") from e
    except (OSError, WebSocketException) as e:
        if isinstance(e, WebSocketProxyException):
            raise
        raise WebSocketProxyException(f"{kind.upper()} proxy: {e}") from e
    if kind == "http":
        dump("response header", negotiation.http_response_head.decode("latin-1").rstrip())


def _resolve(host: str, port: int) -> List[Any]:
    numeric = _numeric_addrinfo(host, port)
    if numeric is not None:
        return numeric
    try:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.SOL_TCP)
    except (socket.gaierror, TypeError, ValueError) as e:
        raise WebSocketAddressException(e) from e


def open_stream(
    hostname: str,
    port: int,
    is_secure: bool,
    proxy: Optional[Dict[str, Any]],
    sockopt: List[Any],
    sslopt: Dict[str, Any],
    timeout: Optional[float],
) -> Any:
    """The Python-socket driver's connect: a TCP socket to ``hostname:port``, directly or
    through ``proxy`` (the dict ``websocket._proxy.resolve_proxy`` returns: type, host, port,
    auth, timeout), TLS-wrapped for wss://; every step through Python's socket and ssl
    modules. The proxy exchange is bounded by the proxy's timeout, the rest by ``timeout``."""
    if proxy is None:
        sock = _open_socket(_resolve(hostname, port), sockopt, timeout)
    else:
        try:
            sock = _open_socket(_resolve(proxy["host"], proxy["port"]), sockopt, proxy["timeout"])
        except OSError as e:
            if proxy["type"] == "http":
                raise
            raise ProxyConnectionError(f"Could not connect to proxy {proxy['host']}:{proxy['port']} ({e})") from e
        try:
            if proxy["type"] == "http":
                debug("Connecting proxy...")
            _negotiate(sock, proxy["type"], hostname, port, proxy["auth"])
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)
    if is_secure:
        if not HAVE_SSL:
            sock.close()
            raise WebSocketException("SSL not available.")
        try:
            sock = _ssl_socket(sock, sslopt or {}, hostname)
        except BaseException:
            sock.close()
            raise
    return sock


def _proxy_options(proxy: Any) -> Dict[str, Any]:
    """A ``proxy_info``'s settings as ``connect`` options."""
    return {
        "http_proxy_host": proxy.proxy_host,
        "http_proxy_port": proxy.proxy_port,
        "http_proxy_auth": proxy.auth,
        "http_no_proxy": proxy.no_proxy,
        "proxy_type": proxy.proxy_protocol,
        "http_proxy_timeout": proxy.proxy_timeout,
    }


def _start_proxied_socket(url: str, options: Any, proxy: Any) -> Tuple[Any, Tuple[str, int, str]]:
    """Connects through a SOCKS proxy (``proxy.proxy_protocol``: socks4, socks4a, socks5,
    socks5h; the ``a``/``h`` kinds let the proxy resolve the host), then wraps TLS for
    wss://. Returns ``(sock, (hostname, port, resource))``."""
    if proxy.proxy_host and not proxy.proxy_port:
        raise WebSocketProxyException("Cannot use port 0 when proxy_host specified")
    hostname, port, resource, is_secure = parse_url(url)
    timeout = getattr(options, "timeout", None)
    resolved = resolve_proxy(hostname, is_secure, _proxy_options(proxy), timeout)
    sock = open_stream(
        hostname, port, is_secure, resolved, getattr(options, "sockopt", None) or [], getattr(options, "sslopt", None) or {}, timeout
    )
    return sock, (hostname, port, resource)


def connect(url: str, options: Any, proxy: Any, socket: Any) -> Tuple[Any, Tuple[str, int, str]]:
    """Opens the stream of a connection to ``url``: ``socket`` when given (used as is: no
    proxy, no TLS, as in websocket-client), else a TCP connection, direct or through the
    proxy (``proxy``, a ``proxy_info``; else the ``http_proxy``/``https_proxy`` environment),
    TLS-wrapped for wss://. ``options`` has ``sockopt``, ``sslopt`` and ``timeout``.
    Returns ``(sock, (hostname, port, resource))``."""
    hostname, port, resource, is_secure = parse_url(url)
    if socket:
        return socket, (hostname, port, resource)
    resolved = resolve_proxy(hostname, is_secure, _proxy_options(proxy), options.timeout)
    sock = open_stream(hostname, port, is_secure, resolved, options.sockopt, options.sslopt, options.timeout)
    return sock, (hostname, port, resource)


def _numeric_addrinfo(host: Any, port: Any) -> Optional[List[Any]]:
    """What getaddrinfo answers for an IPv4 or IPv6 address literal (no scope id), without
    asking it: under gevent or eventlet every getaddrinfo is handed to a thread of their
    resolver. None for anything else (names, "127.1", "fe80::1%eth0")."""
    if not isinstance(host, str) or not isinstance(port, int) or isinstance(port, bool):
        return None
    for family, address in ((socket.AF_INET, (host, port)), (socket.AF_INET6, (host, port, 0, 0))):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
    return None


def _get_addrinfo_list(hostname: str, port: int, is_secure: bool, proxy: Any) -> Tuple[List[Any], bool, Any]:
    """``(getaddrinfo list, need_tunnel, proxy auth)``: the proxy's addresses when an HTTP
    proxy applies (given, or from the environment minus ``no_proxy``), else the host's.
    WebSocketAddressException when the name does not resolve."""
    try:
        phost, pport, pauth = get_proxy_info(
            hostname, is_secure, proxy.proxy_host, proxy.proxy_port, proxy.auth, proxy.no_proxy
        )
    except TypeError as e:
        raise WebSocketAddressException(e) from e
    try:
        if not phost:
            numeric = _numeric_addrinfo(hostname, port)
            if numeric is not None:
                return numeric, False, None
            return socket.getaddrinfo(hostname, port, 0, socket.SOCK_STREAM, socket.SOL_TCP), False, None
        pport = pport and pport or 80
        return socket.getaddrinfo(phost, pport, 0, socket.SOCK_STREAM, socket.SOL_TCP), True, pauth
    except (socket.gaierror, TypeError) as e:
        raise WebSocketAddressException(e) from e


_REFUSED = (errno.ECONNREFUSED, getattr(errno, "WSAECONNREFUSED", errno.ECONNREFUSED), errno.ENETUNREACH)


def _open_socket(addrinfo_list: List[Any], sockopt: List[Any], timeout: Optional[float]) -> Any:
    """Connects to the first address that accepts, moving on only when one refuses or is
    unreachable (as websocket-client); applies ``DEFAULT_SOCKET_OPTION`` then ``sockopt``
    and the ``timeout`` (also for the connect itself)."""
    err: Optional[OSError] = None
    for addrinfo in addrinfo_list:
        family, socktype, proto = addrinfo[:3]
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(timeout)
        for opts in DEFAULT_SOCKET_OPTION:
            sock.setsockopt(*opts)
        for opts in sockopt or []:
            sock.setsockopt(*opts)
        address = addrinfo[4]
        try:
            sock.connect(address)
        except OSError as error:
            sock.close()
            error.remote_ip = str(address[0])  # type: ignore[attr-defined]
            if error.errno not in _REFUSED:
                raise
            err = error
            continue
        return sock
    if err:
        # `err` would keep this frame alive through its own traceback (a cycle that holds
        # everything the caller's frames hold until the garbage collector runs).
        try:
            raise err
        finally:
            err = None
    raise WebSocketException("no address to connect to")


def _can_use_sni() -> bool:
    """SNI is always available on the Pythons this package supports."""
    return True


def _wrap_sni_socket(sock: Any, sslopt: Dict[str, Any], hostname: str, check_hostname: bool) -> Any:
    """Wraps ``sock`` in TLS the way websocket-client does: ``sslopt["context"]`` when
    given, else a new ``SSLContext(ssl_version or PROTOCOL_TLS_CLIENT)`` configured from
    ``sslopt`` (CA file/dir or the default store, client certificate, verification mode,
    ``ciphers``, ``cert_chain``, ``ecdh_curve``, SSLKEYLOGFILE). Configuration failures
    raise WebSocketException; handshake failures raise ``ssl.SSLError``."""
    context = sslopt.get("context", None)
    if not context:
        context = ssl.SSLContext(sslopt.get("ssl_version", ssl.PROTOCOL_TLS_CLIENT))
        keylog_file = os.environ.get("SSLKEYLOGFILE")
        if keylog_file is not None:
            context.keylog_filename = keylog_file
        if sslopt.get("cert_reqs", ssl.CERT_NONE) != ssl.CERT_NONE:
            cafile = sslopt.get("ca_certs", None)
            capath = sslopt.get("ca_cert_path", None)
            if cafile or capath:
                try:
                    context.load_verify_locations(cafile=cafile, capath=capath)
                except (FileNotFoundError, ssl.SSLError, ValueError) as e:
                    raise WebSocketException(f"SSL CA certificate loading failed: {e}")
            elif hasattr(context, "load_default_certs"):
                try:
                    context.load_default_certs(ssl.Purpose.SERVER_AUTH)
                except ssl.SSLError as e:
                    raise WebSocketException(f"SSL default certificate loading failed: {e}")
        if sslopt.get("certfile", None):
            try:
                context.load_cert_chain(sslopt["certfile"], sslopt.get("keyfile", None), sslopt.get("password", None))
            except (FileNotFoundError, ValueError, ssl.SSLError) as e:
                raise WebSocketException(f"SSL client certificate loading failed: {e}")
        # PROTOCOL_TLS_CLIENT checks hostnames and certificates by default: with both
        # unwanted, the hostname check goes first.
        if sslopt.get("cert_reqs", ssl.CERT_NONE) == ssl.CERT_NONE and not sslopt.get("check_hostname", False):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            check = sslopt.get("check_hostname", True)
            cert_reqs = sslopt.get("cert_reqs", ssl.CERT_REQUIRED)
            if check and cert_reqs == ssl.CERT_NONE:
                raise WebSocketException(
                    "SSL certificate verification configuration failed: "
                    "check_hostname cannot be enabled when cert_reqs is CERT_NONE"
                )
            context.check_hostname = check
            context.verify_mode = cert_reqs
        if "ciphers" in sslopt:
            try:
                context.set_ciphers(sslopt["ciphers"])
            except ssl.SSLError as e:
                raise WebSocketException(f"SSL cipher configuration failed: {e}")
        if "cert_chain" in sslopt:
            cert_chain = sslopt["cert_chain"]
            if not isinstance(cert_chain, (tuple, list)) or len(cert_chain) != 3:
                raise ValueError("cert_chain must be a tuple/list of (certfile, keyfile, password)")
            certfile, keyfile, password = cert_chain
            try:
                context.load_cert_chain(certfile, keyfile, password)
            except (FileNotFoundError, ssl.SSLError) as e:
                raise WebSocketException(f"SSL client certificate configuration failed: {e}")
        if "ecdh_curve" in sslopt:
            try:
                context.set_ecdh_curve(sslopt["ecdh_curve"])
            except ValueError as e:
                raise WebSocketException(f"SSL ECDH curve configuration failed: {e}")
    return context.wrap_socket(
        sock,
        do_handshake_on_connect=sslopt.get("do_handshake_on_connect", True),
        suppress_ragged_eofs=sslopt.get("suppress_ragged_eofs", True),
        server_hostname=hostname,
    )


def _ssl_socket(sock: Any, user_sslopt: Dict[str, Any], hostname: str) -> Any:
    """TLS over ``sock`` for ``hostname`` with websocket-client's ``sslopt`` defaults
    (certificates required; ``WEBSOCKET_CLIENT_CA_BUNDLE`` as the CA file or directory when
    the user gave none; ``server_hostname`` overriding the name checked and sent)."""
    sslopt: Dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    sslopt.update(user_sslopt or {})
    cert_path = os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
    if cert_path and os.path.isfile(cert_path) and (user_sslopt or {}).get("ca_certs", None) is None:
        sslopt["ca_certs"] = cert_path
    elif cert_path and os.path.isdir(cert_path) and (user_sslopt or {}).get("ca_cert_path", None) is None:
        sslopt["ca_cert_path"] = cert_path
    if sslopt.get("server_hostname", None):
        hostname = sslopt["server_hostname"]
    return _wrap_sni_socket(sock, sslopt, hostname, sslopt.get("check_hostname", True))


def _tunnel(sock: Any, host: str, port: int, auth: Any) -> Any:
    """Has the HTTP proxy ``sock`` is connected to open a tunnel to ``host:port`` (CONNECT,
    Basic auth when ``auth`` has a user); returns ``sock``. WebSocketProxyException unless
    the proxy answers 200."""
    debug("Connecting proxy...")
    _negotiate(sock, "http", host, port, auth)
    return sock


def read_headers(sock: Any) -> Tuple[Optional[int], Dict[str, Any], Optional[str]]:
    """Reads an HTTP response head line by line (never past its blank line): ``(status,
    headers with lowercased names, status message)``; ``set-cookie`` values are joined with
    ``"; "``. WebSocketException for a line that is not UTF-8 or not a header."""
    status: Optional[int] = None
    status_message: Optional[str] = None
    headers: Dict[str, Any] = {}
    trace("--- response header ---")
    while True:
        raw = recv_line(sock)
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as e:
            raise WebSocketException(f"Invalid header line, not valid UTF-8 at byte {e.start}: {raw!r}")
        if not line:
            break
        trace(line)
        if not status:
            status_info = line.split(" ", 2)
            try:
                status = int(status_info[1])
            except (IndexError, ValueError):
                raise WebSocketException(f"Invalid status line: {line!r}")
            if len(status_info) > 2:
                status_message = status_info[2]
        else:
            kv = line.split(":", 1)
            if len(kv) != 2:
                raise WebSocketException("Invalid header")
            key, value = kv
            if key.lower() == "set-cookie" and headers.get("set-cookie"):
                headers["set-cookie"] = headers["set-cookie"] + "; " + value.strip()
            else:
                headers[key.lower()] = value.strip()
    trace("-----------------------")
    return status, headers, status_message
