"""Proxies (REFERENCE.md 1.5, 1.6): HTTP CONNECT, SOCKS4/4a, SOCKS5/5h, with and without
authentication, the environment variables and no_proxy, and wss:// through each type.

The proxies are the asyncio ones in proxy_servers.py. ``PROXY_ONLY_NAME`` resolves only at
the proxy, which tells whether the client sent the name (remote DNS) or an address.
"""

import socket
import ssl
import time

import pytest

import websocket
from websocket import WebSocketAddressException, WebSocketProxyException
from proxy_servers import PROXY_ONLY_NAME, ProxyServer
from servers import echo_once

pytestmark = pytest.mark.timeout(30)

# Beyond websocket-client (which needs python-socks for SOCKS and reads env proxies as HTTP).
native_only = pytest.mark.skipif(not hasattr(websocket, "_native"), reason="websocket-rust extension")


@pytest.fixture
def proxy():
    """Factory: ``proxy(kind, **kw)`` starts a ProxyServer; all are stopped at the end."""
    started = []

    def make(kind, **kw):
        p = ProxyServer(kind, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def via(p, proxy_type=None, **kw):
    opts = {"http_proxy_host": "127.0.0.1", "http_proxy_port": p.port, "timeout": 10}
    if proxy_type is not None:
        opts["proxy_type"] = proxy_type
    opts.update(kw)
    return opts


def name_url(server, path="/"):
    return f"ws://{PROXY_ONLY_NAME}:{server.port}{path}"


# ---- HTTP CONNECT ----------------------------------------------------------------------

def test_http_connect(proxy, echo_server):
    p = proxy("http")
    echo_once(websocket.create_connection(echo_server.url, **via(p)))
    (entry,) = p.log
    assert entry["head"] == (
        f"CONNECT 127.0.0.1:{echo_server.port} HTTP/1.1\r\nHost: 127.0.0.1:{echo_server.port}\r\n\r\n"
    ).encode()


def test_http_connect_sends_the_name(proxy, echo_server):
    """The host name goes to the proxy as is: it resolves it."""
    p = proxy("http")
    echo_once(websocket.create_connection(name_url(echo_server), **via(p)))
    assert p.log[0]["target"] == PROXY_ONLY_NAME


def test_http_connect_basic_auth(proxy, echo_server):
    p = proxy("http", auth=("user", "pa:ss word"))
    echo_once(websocket.create_connection(echo_server.url, **via(p, http_proxy_auth=("user", "pa:ss word"))))
    assert b"Proxy-Authorization: Basic dXNlcjpwYTpzcyB3b3Jk\r\n" in p.log[0]["head"]


def test_http_connect_wrong_auth_is_proxy_exception(proxy, echo_server):
    p = proxy("http", auth=("user", "secret"))
    with pytest.raises(WebSocketProxyException, match="failed CONNECT via proxy status: 407"):
        websocket.create_connection(echo_server.url, **via(p, http_proxy_auth=("user", "wrong")))
    with pytest.raises(WebSocketProxyException, match="status: 407"):
        websocket.create_connection(echo_server.url, **via(p))


@pytest.mark.parametrize("status", [403, 502])
def test_http_connect_refused_status(proxy, echo_server, status):
    p = proxy("http", status=status)
    with pytest.raises(WebSocketProxyException) as ei:
        websocket.create_connection(echo_server.url, **via(p))
    assert str(ei.value) == f"failed CONNECT via proxy status: {status}"


def test_explicit_proxy_type_http(proxy, echo_server):
    p = proxy("http")
    echo_once(websocket.create_connection(echo_server.url, **via(p, "http")))
    assert len(p.log) == 1


@native_only
def test_proxy_type_none_means_http(proxy, echo_server):
    """websocket-client raises ProxyError for proxy_type=None (what run_forever passes)."""
    p = proxy("http")
    echo_once(websocket.create_connection(echo_server.url, **via(p), proxy_type=None))
    assert len(p.log) == 1


def test_websocket_connect_method(proxy, echo_server):
    p = proxy("http")
    ws = websocket.WebSocket()
    ws.connect(echo_server.url, **via(p))
    echo_once(ws)
    assert len(p.log) == 1


def test_proxy_port_required(echo_server):
    with pytest.raises(WebSocketProxyException, match="Cannot use port 0 when proxy_host specified"):
        websocket.create_connection(echo_server.url, http_proxy_host="127.0.0.1")


def test_proxy_port_as_string(proxy, echo_server):
    p = proxy("http")
    echo_once(websocket.create_connection(echo_server.url, **via(p, http_proxy_port=str(p.port))))


def test_silent_http_proxy_times_out_with_the_timeout(proxy, echo_server):
    p = proxy("http", silent=True)
    start = time.monotonic()
    with pytest.raises(WebSocketProxyException, match="timed out"):
        websocket.create_connection(echo_server.url, **via(p, timeout=0.5))
    assert time.monotonic() - start < 3


def test_unknown_proxy_type(proxy, echo_server):
    p = proxy("http")
    with pytest.raises(Exception, match="Only http, socks4, socks5 proxy protocols are supported|socks4a"):
        websocket.create_connection(echo_server.url, **via(p, "https"))


def test_unreachable_proxy_is_os_error(echo_server, closed_port):
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(echo_server.url, http_proxy_host="127.0.0.1", http_proxy_port=closed_port)


def test_unresolvable_proxy_host(echo_server):
    with pytest.raises(WebSocketAddressException):
        websocket.create_connection(echo_server.url, http_proxy_host="proxy.invalid", http_proxy_port=3128)


@native_only  # websocket-client bounds only SOCKS by http_proxy_timeout (HTTP by timeout)
@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_silent_proxy_times_out(proxy, echo_server, kind):
    p = proxy(kind, silent=True)
    start = time.monotonic()
    with pytest.raises(WebSocketProxyException, match="timed out"):
        websocket.create_connection(echo_server.url, **via(p, kind, http_proxy_timeout=0.5))
    assert time.monotonic() - start < 3


def test_http_no_proxy_list_bypasses(proxy, echo_server):
    p = proxy("http")
    echo_once(websocket.create_connection(echo_server.url, **via(p, http_no_proxy=["127.0.0.1"])))
    assert p.connections == 0


# ---- SOCKS4 / SOCKS4a ------------------------------------------------------------------

@native_only
def test_socks4(proxy, echo_server):
    p = proxy("socks4")
    echo_once(websocket.create_connection(echo_server.url, **via(p, "socks4")))
    assert p.log[0]["target"] == "127.0.0.1" and p.log[0]["port"] == echo_server.port


@native_only
def test_socks4_user_id(proxy, echo_server):
    p = proxy("socks4", auth=("alice", ""))
    echo_once(websocket.create_connection(echo_server.url, **via(p, "socks4", http_proxy_auth=("alice", ""))))
    assert p.log[0]["auth"] == "alice"
    with pytest.raises(WebSocketProxyException, match="rejected"):
        websocket.create_connection(echo_server.url, **via(p, "socks4", http_proxy_auth=("mallory", "")))


@native_only
def test_socks4_resolves_locally(proxy, echo_server):
    p = proxy("socks4")
    echo_once(websocket.create_connection(f"ws://localhost:{echo_server.port}/", **via(p, "socks4")))
    assert p.log[0]["addr_type"] == "ipv4"
    with pytest.raises(WebSocketAddressException):
        websocket.create_connection(name_url(echo_server), **via(p, "socks4"))


@native_only
def test_socks4a_resolves_at_the_proxy(proxy, echo_server):
    p = proxy("socks4")
    echo_once(websocket.create_connection(name_url(echo_server), **via(p, "socks4a")))
    assert p.log[0]["target"] == PROXY_ONLY_NAME and p.log[0]["addr_type"] == "name"


@native_only
def test_socks4_target_refused(proxy, closed_port):
    p = proxy("socks4")
    with pytest.raises(WebSocketProxyException, match="SOCKS4"):
        websocket.create_connection(f"ws://127.0.0.1:{closed_port}/", **via(p, "socks4"))


# ---- SOCKS5 / SOCKS5h ------------------------------------------------------------------

@native_only
def test_socks5_no_auth(proxy, echo_server):
    p = proxy("socks5")
    echo_once(websocket.create_connection(echo_server.url, **via(p, "socks5")))
    assert p.log[0]["methods"] == [0] and p.log[0]["addr_type"] == "ipv4"


@native_only
def test_socks5_user_password(proxy, echo_server):
    p = proxy("socks5", auth=("bob", "s3cret"))
    echo_once(websocket.create_connection(echo_server.url, **via(p, "socks5", http_proxy_auth=("bob", "s3cret"))))
    assert p.log[0]["methods"] == [0, 2] and p.log[0]["auth"] == ("bob", "s3cret")


@native_only
def test_socks5_bad_password(proxy, echo_server):
    p = proxy("socks5", auth=("bob", "s3cret"))
    with pytest.raises(WebSocketProxyException, match="authentication failed"):
        websocket.create_connection(echo_server.url, **via(p, "socks5", http_proxy_auth=("bob", "nope")))


@native_only
def test_socks5_credentials_missing(proxy, echo_server):
    p = proxy("socks5", auth=("bob", "s3cret"))
    with pytest.raises(WebSocketProxyException, match="no acceptable authentication method"):
        websocket.create_connection(echo_server.url, **via(p, "socks5"))


@native_only
def test_socks5_resolves_locally(proxy, echo_server):
    p = proxy("socks5", hosts={"::1": "127.0.0.1"})
    echo_once(websocket.create_connection(f"ws://localhost:{echo_server.port}/", **via(p, "socks5")))
    assert p.log[0]["addr_type"] in ("ipv4", "ipv6")
    with pytest.raises(WebSocketAddressException):
        websocket.create_connection(name_url(echo_server), **via(p, "socks5"))


@native_only
def test_socks5h_resolves_at_the_proxy(proxy, echo_server):
    p = proxy("socks5")
    echo_once(websocket.create_connection(name_url(echo_server), **via(p, "socks5h")))
    assert p.log[0]["target"] == PROXY_ONLY_NAME and p.log[0]["addr_type"] == "name"


@native_only
def test_socks5_target_refused(proxy, closed_port):
    p = proxy("socks5")
    with pytest.raises(WebSocketProxyException, match="connection refused"):
        websocket.create_connection(f"ws://127.0.0.1:{closed_port}/", **via(p, "socks5"))


@native_only
def test_socks_uses_no_proxy(proxy, echo_server):
    p = proxy("socks5")
    echo_once(websocket.create_connection(echo_server.url, **via(p, "socks5", http_no_proxy=["127.0.0.0/8"])))
    assert p.connections == 0


# ---- the environment -------------------------------------------------------------------

@pytest.mark.parametrize("var", ["http_proxy", "HTTP_PROXY"])
def test_env_http_proxy(proxy, echo_server, monkeypatch, var):
    p = proxy("http")
    monkeypatch.setenv(var, f"http://127.0.0.1:{p.port}")
    echo_once(websocket.create_connection(name_url(echo_server), timeout=10))
    assert p.log[0]["target"] == PROXY_ONLY_NAME


def test_env_https_proxy_is_for_wss_only(proxy, echo_server, monkeypatch):
    p = proxy("http")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{p.port}")
    echo_once(websocket.create_connection(echo_server.url, timeout=10))
    assert p.connections == 0


def test_env_proxy_credentials_are_url_decoded(proxy, echo_server, monkeypatch):
    p = proxy("http", auth=("us er", "p@ss"))
    monkeypatch.setenv("http_proxy", f"http://us%20er:p%40ss@127.0.0.1:{p.port}")
    echo_once(websocket.create_connection(echo_server.url, timeout=10))
    assert p.log[0]["auth"] == ("us er", "p@ss")


@pytest.mark.parametrize(
    "no_proxy", ["127.0.0.1", "*", "127.0.0.0/8", "localhost,127.0.0.1", " 10.0.0.0/8 , 127.0.0.1 "]
)
def test_env_no_proxy_bypasses(proxy, echo_server, monkeypatch, no_proxy):
    p = proxy("http")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{p.port}")
    monkeypatch.setenv("no_proxy", no_proxy)
    echo_once(websocket.create_connection(echo_server.url, timeout=10))
    assert p.connections == 0


def test_env_no_proxy_domain_suffix(proxy, echo_server, monkeypatch):
    """A bypassed name is resolved locally, where the proxy-only name does not exist."""
    p = proxy("http")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{p.port}")
    monkeypatch.setenv("NO_PROXY", ".proxy-only.test")
    with pytest.raises(WebSocketAddressException):
        websocket.create_connection(name_url(echo_server), timeout=10)
    assert p.connections == 0


def test_env_no_proxy_other_host_still_proxied(proxy, echo_server, monkeypatch):
    p = proxy("http")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{p.port}")
    monkeypatch.setenv("no_proxy", "example.com,10.0.0.0/8")
    echo_once(websocket.create_connection(echo_server.url, timeout=10))
    assert p.connections == 1


def test_explicit_proxy_wins_over_env(proxy, echo_server, monkeypatch):
    env_p, explicit = proxy("http"), proxy("http")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{env_p.port}")
    echo_once(websocket.create_connection(echo_server.url, **via(explicit)))
    assert env_p.connections == 0 and explicit.connections == 1


def test_socket_option_skips_proxy(proxy, echo_server, monkeypatch):
    p = proxy("http")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{p.port}")
    s = socket.create_connection(("127.0.0.1", echo_server.port))
    echo_once(websocket.create_connection(echo_server.url, socket=s, **via(p)))
    assert p.connections == 0


@native_only
@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_env_socks_url(proxy, echo_server, monkeypatch, scheme):
    p = proxy("socks5", auth=("u", "p w"))
    monkeypatch.setenv("http_proxy", f"{scheme}://u:p%20w@127.0.0.1:{p.port}")
    url = name_url(echo_server) if scheme == "socks5h" else echo_server.url
    echo_once(websocket.create_connection(url, timeout=10))
    assert p.log[0]["auth"] == ("u", "p w")
    assert p.log[0]["addr_type"] == ("name" if scheme == "socks5h" else "ipv4")


@native_only
def test_env_socks4a_url(proxy, echo_server, monkeypatch):
    p = proxy("socks4")
    monkeypatch.setenv("HTTP_PROXY", f"socks4a://127.0.0.1:{p.port}")
    echo_once(websocket.create_connection(name_url(echo_server), timeout=10))
    assert p.log[0]["addr_type"] == "name"


# ---- wss:// through every proxy type ---------------------------------------------------

PROXY_TYPES = [
    ("http", "http"),
    ("socks4", "socks4"),
    ("socks4", "socks4a"),
    ("socks5", "socks5"),
    ("socks5", "socks5h"),
]


@pytest.mark.parametrize("kind,proxy_type", PROXY_TYPES)
def test_wss_through_proxy(proxy, tls_server, ca_file, kind, proxy_type):
    if proxy_type != "http" and not hasattr(websocket, "_native"):
        pytest.skip("SOCKS needs python-socks in websocket-client")
    p = proxy(kind)
    before = len(tls_server.sni)
    ws = websocket.create_connection(
        f"wss://localhost:{tls_server.port}/", sslopt={"ca_certs": ca_file}, **via(p, proxy_type)
    )
    assert ws.is_ssl()
    echo_once(ws, "through " + proxy_type)
    assert tls_server.sni[before:] == ["localhost"]
    assert p.log[0]["port"] == tls_server.port
    expected = "name" if proxy_type in ("http", "socks4a", "socks5h") else "ipv4"
    assert p.log[0]["addr_type"] == expected


@native_only
@pytest.mark.parametrize("kind,proxy_type", [("http", "http"), ("socks5", "socks5h"), ("socks4", "socks4a")])
def test_wss_through_proxy_checks_hostname(proxy, tls_server, ca_file, kind, proxy_type):
    """The certificate is checked against the URL host, not the proxy; server_hostname
    still overrides the name (and SNI)."""
    p = proxy(kind)
    with pytest.raises(ssl.SSLCertVerificationError) as ei:
        websocket.create_connection(
            f"wss://{PROXY_ONLY_NAME}:{tls_server.port}/", sslopt={"ca_certs": ca_file}, **via(p, proxy_type)
        )
    assert "Hostname mismatch" in str(ei.value)
    before = len(tls_server.sni)
    ws = websocket.create_connection(
        f"wss://{PROXY_ONLY_NAME}:{tls_server.port}/",
        sslopt={"ca_certs": ca_file, "server_hostname": "localhost"},
        **via(p, proxy_type),
    )
    echo_once(ws)
    assert tls_server.sni[before:] == ["localhost"]


def test_env_https_proxy_for_wss(proxy, tls_server, ca_file, monkeypatch):
    p = proxy("http")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{p.port}")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")  # would fail if used
    echo_once(websocket.create_connection(f"wss://localhost:{tls_server.port}/", sslopt={"ca_certs": ca_file}, timeout=10))
    assert p.log[0]["target"] == "localhost"


# ---- WebSocketApp.run_forever ----------------------------------------------------------

@pytest.mark.parametrize(
    "kind,proxy_type",
    [("http", None), ("http", "http"), pytest.param("socks5", "socks5h", marks=native_only)],
)
def test_run_forever_through_proxy(proxy, echo_server, kind, proxy_type):
    """run_forever passes the proxy options through; proxy_type=None (its default) means
    http (websocket-client fails there with 'Only http, socks4, socks5 ...', #810)."""
    if not hasattr(websocket, "_native") and proxy_type is None:
        pytest.skip("websocket-client's run_forever bug with proxy_type=None")
    p = proxy(kind)
    got = []

    def on_open(app):
        app.send("via run_forever")

    def on_message(app, msg):
        got.append(msg)
        app.close()

    app = websocket.WebSocketApp(echo_server.url, on_open=on_open, on_message=on_message)
    kw = {"http_proxy_host": "127.0.0.1", "http_proxy_port": p.port}
    if proxy_type is not None:
        kw["proxy_type"] = proxy_type
    app.run_forever(**kw)
    assert got == ["via run_forever"]
    assert p.connections == 1
