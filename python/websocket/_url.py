"""URL parsing and proxy selection, following websocket-client 1.9.2's ``_url``.

``parse_url`` turns ``ws://`` / ``wss://`` URLs into ``(host, port, resource, secure)``.
``get_proxy_info`` picks the proxy for a host: the explicit one, else the environment
(``http_proxy`` / ``https_proxy``), unless the host is listed in ``no_proxy``.

Extra over websocket-client: :func:`get_proxy_info_ex` also returns the proxy type, read
from the scheme of an environment proxy URL (``socks5://...``); websocket-client ignores
that scheme and always speaks HTTP CONNECT.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

from ._exceptions import WebSocketProxyException

__all__ = ["parse_url", "get_proxy_info", "get_proxy_info_ex"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}

# Proxy types the env URL scheme may select; any other scheme means HTTP CONNECT.
_SOCKS_SCHEMES = ("socks4", "socks4a", "socks5", "socks5h")

_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
ProxyAuth = Optional[Tuple[str, str]]


def parse_url(url: str) -> Tuple[str, int, str, bool]:
    """Split a WebSocket URL into ``(hostname, port, resource, is_secure)``.

    The scheme must be exactly ``ws`` or ``wss`` (case-sensitive). The host is
    lowercased, IPv6 brackets are removed, a missing (or zero) port becomes 80/443, the
    resource is the path (``/`` if empty) plus ``?query``; userinfo and fragment are
    dropped. Errors are ``ValueError``: ``url is invalid`` (no colon),
    ``hostname is invalid``, ``scheme X is invalid`` (checked after the host), and
    urllib's messages for a bad port or IPv6 literal.

    Difference from websocket-client: path parameters (``/a;b``) stay in the resource;
    websocket-client silently drops them.
    """
    if type(url) is str:
        # A program opens the same few URLs again and again (reconnects, pools).
        return _parse_url_cached(url)
    return _parse_url(url)


@functools.lru_cache(maxsize=256)
def _parse_url_cached(url: str) -> Tuple[str, int, str, bool]:
    return _parse_url(url)


def _parse_url(url: str) -> Tuple[str, int, str, bool]:
    scheme, sep, rest = url.partition(":")
    if not sep:
        raise ValueError("url is invalid")

    parts = urlsplit(rest, scheme="http")
    hostname = parts.hostname
    if not hostname:
        raise ValueError("hostname is invalid")
    port = parts.port or 0  # urllib raises ValueError for a bad or out-of-range port

    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"scheme {scheme} is invalid")
    if not port:
        port = _DEFAULT_PORTS[scheme]

    resource = parts.path or "/"
    if parts.query:
        resource = f"{resource}?{parts.query}"
    return hostname, port, resource, scheme == "wss"


def _is_ip_address(addr: str) -> bool:
    """True for an IPv4 or IPv6 address literal (no brackets, no prefix length)."""
    if not isinstance(addr, str):
        raise TypeError("_is_ip_address() argument 1 must be str")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        return False
    return True


def _as_network(text: str) -> Optional[_Network]:
    try:
        return ipaddress.ip_network(text)
    except (TypeError, ValueError):
        return None


def _is_subnet_address(hostname: str) -> bool:
    """True for a network in CIDR form (``10.0.0.0/8``) or a bare address.

    As in websocket-client, a network with host bits set (``10.1.2.3/8``) is not one.
    """
    return _as_network(hostname) is not None


def _is_address_in_network(ip: str, net: str) -> bool:
    """True when ``ip`` (an address or network) lies inside ``net``; False on any error."""
    inner = _as_network(ip)
    outer = _as_network(net)
    if inner is None or outer is None or inner.version != outer.version:
        return False
    return inner.subnet_of(outer)  # type: ignore[arg-type]


def _no_proxy_entries(no_proxy: Optional[List[str]]) -> List[str]:
    if no_proxy:
        return list(no_proxy)
    env = os.environ.get("no_proxy", os.environ.get("NO_PROXY", ""))
    env = env.replace(" ", "")
    return env.split(",") if env else []


def _domain_matches(hostname: str, entry: str) -> bool:
    """``example.com``, ``.example.com`` and ``*.example.com`` all match ``example.com``
    and its subdomains, on label boundaries only."""
    domain = entry.lstrip("*").lstrip(".").lower()
    if not domain:
        return False
    host = hostname.lower()
    return host == domain or host.endswith("." + domain)


def _is_no_proxy_host(hostname: str, no_proxy: Optional[List[str]]) -> bool:
    """Whether ``hostname`` bypasses the proxy.

    ``no_proxy`` (a list) wins; when it is empty or None the ``no_proxy`` / ``NO_PROXY``
    environment variable (comma-separated, spaces ignored) is used. Entries: ``*``
    (everything), an exact host, a domain (matches itself and subdomains, with or
    without a leading ``.``), and for IP hosts an address or CIDR network (IPv4 or
    IPv6). IP hosts are matched only against exact entries and networks.

    Differences from websocket-client 1.9.2, which matches domains with a plain
    ``endswith``: ``.example.com`` does not match ``badexample.com``, an entry of ``.``
    or an empty entry matches nothing (not everything), domain entries compare
    case-insensitively, and ``*.example.com`` works like ``.example.com``.
    """
    entries = _no_proxy_entries(no_proxy)
    if "*" in entries or hostname in entries:
        return True
    if _is_ip_address(hostname):
        return any(
            _is_address_in_network(hostname, entry)
            for entry in entries
            if _is_subnet_address(entry)
        )
    return any(_domain_matches(hostname, entry) for entry in entries)


def _environ_lookup() -> "Callable[[str], Optional[str]]":
    """``os.environ.get`` without its cost for a missing name: ``Mapping.get`` raises and
    catches a KeyError for each, and every connection asks for two names that are
    usually unset. CPython's ``os.environ`` keeps the encoded environment in ``_data``;
    when that is not there, ``os.environ.get`` itself."""
    env = os.environ
    data = getattr(env, "_data", None)
    encodekey = getattr(env, "encodekey", None)
    decodevalue = getattr(env, "decodevalue", None)
    if not isinstance(data, dict) or encodekey is None or decodevalue is None:
        return env.get
    keys: Dict[str, Any] = {}

    def lookup(name: str) -> Optional[str]:
        if os.environ is not env:  # replaced wholesale (a test's patch): ask the new one
            return os.environ.get(name)
        key = keys.get(name)
        if key is None:
            key = keys[name] = encodekey(name)
        value = data.get(key)
        return None if value is None else decodevalue(value)

    return lookup


_getenv = _environ_lookup()


def _env_proxy(is_secure: bool) -> Optional[str]:
    if is_secure:
        value = _getenv("https_proxy")
        if value is None:
            value = _getenv("HTTPS_PROXY")
    else:
        value = _getenv("http_proxy")
        if value is None:
            value = _getenv("HTTP_PROXY")
    if not value:
        return None
    return value.replace(" ", "") or None


def get_proxy_info_ex(
    hostname: str,
    is_secure: bool,
    proxy_host: Optional[str] = None,
    proxy_port: int = 0,
    proxy_auth: ProxyAuth = None,
    no_proxy: Optional[List[str]] = None,
    proxy_type: str = "http",
) -> Tuple[Optional[str], Optional[int], ProxyAuth, str]:
    """Like :func:`get_proxy_info`, plus the proxy type: ``(host, port, auth, type)``.

    The type is ``proxy_type`` for an explicit proxy (and when no proxy applies). For a
    proxy taken from the environment it comes from the URL scheme: ``socks4``,
    ``socks4a``, ``socks5`` or ``socks5h``, and ``"http"`` for any other scheme. This is
    an extension: websocket-client always tunnels env proxies with HTTP CONNECT.
    """
    # No proxy at all (the common case): the no_proxy rules cannot change that, and parsing
    # them is most of the cost of a local connection's set-up.
    if not proxy_host and _env_proxy(is_secure) is None:
        return None, 0, None, proxy_type
    if _is_no_proxy_host(hostname, no_proxy):
        return None, 0, None, proxy_type

    if proxy_host:
        if not proxy_port:
            raise WebSocketProxyException("Cannot use port 0 when proxy_host specified")
        return proxy_host, proxy_port, proxy_auth, proxy_type

    value = _env_proxy(is_secure)
    if value is None:
        return None, 0, None, proxy_type

    proxy = urlsplit(value)
    auth: ProxyAuth = None
    if proxy.username:
        auth = (unquote(proxy.username), unquote(proxy.password or ""))
    scheme = proxy.scheme.lower()
    kind = scheme if scheme in _SOCKS_SCHEMES else "http"
    # The port is None when the URL has none; the connector picks the default.
    return proxy.hostname, proxy.port, auth, kind


def get_proxy_info(
    hostname: str,
    is_secure: bool,
    proxy_host: Optional[str] = None,
    proxy_port: int = 0,
    proxy_auth: ProxyAuth = None,
    no_proxy: Optional[List[str]] = None,
    proxy_type: str = "http",
) -> Tuple[Optional[str], Optional[int], ProxyAuth]:
    """The proxy to use for ``hostname``: ``(proxy_host, proxy_port, proxy_auth)``.

    ``(None, 0, None)`` when the host is in ``no_proxy`` or no proxy is configured. An
    explicit ``proxy_host`` needs a ``proxy_port`` (``WebSocketProxyException``
    otherwise). Without one, ``https_proxy``/``HTTPS_PROXY`` (wss) or
    ``http_proxy``/``HTTP_PROXY`` (ws) is read; ``user:pass@`` in it is URL-decoded into
    ``proxy_auth``, and its port is None when the URL gives none. ``proxy_type`` is
    accepted for compatibility and not used; see :func:`get_proxy_info_ex`.
    """
    host, port, auth, _kind = get_proxy_info_ex(
        hostname, is_secure, proxy_host, proxy_port, proxy_auth, no_proxy, proxy_type
    )
    return host, port, auth
