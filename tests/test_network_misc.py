"""Reaching the server: redirects (301/302/303/307/308, relative Location, a loop hitting
redirect_limit), sockopt, IPv6 literals on ::1, and a Unix domain socket through
``socket=`` (REFERENCE.md 1.3)."""

import json
import os
import socket
import tempfile
import threading

import pytest

import websocket
from websocket import WebSocketException
from servers import ScriptedConn, echo_loop, echo_once, echo_script

pytestmark = pytest.mark.timeout(30)


def has_ipv6_loopback():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")


def redirect_script(status, location):
    def script(conn):
        conn.read_request()
        lines = [f"HTTP/1.1 {status} Moved", "Content-Length: 0"]
        if location is not None:
            lines.append(f"Location: {location}")
        conn.respond("\r\n".join(lines) + "\r\n\r\n")
    return script


# ---- redirects -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_statuses(echo_server, status):
    target = f"{echo_server.url}/headers"
    ws = websocket.create_connection(f"{echo_server.url}/redirect?status={status}&to={target}", timeout=5)
    try:
        assert json.loads(ws.recv())["path"] == "/headers"
        assert ws.status == 101
    finally:
        ws.close()


def test_redirect_relative_location(scripted, echo_server):
    """A Location without scheme and host is resolved against the current URL (the
    reference fails on it with 'Invalid redirect target')."""
    srv = scripted([redirect_script(302, "/second"), echo_script])
    if not hasattr(websocket, "_native"):
        pytest.skip("websocket-client does not resolve relative redirects")
    ws = websocket.create_connection(f"{srv.url}/first", timeout=5)
    echo_once(ws)
    assert srv.conn(1).request_line == "GET /second HTTP/1.1"


def test_redirect_to_another_server(scripted, echo_server):
    srv = scripted(redirect_script(307, f"{echo_server.url}/headers?from=redirect"))
    ws = websocket.create_connection(srv.url, timeout=5)
    try:
        assert json.loads(ws.recv())["path"] == "/headers?from=redirect"
    finally:
        ws.close()


def test_redirect_loop_hits_the_limit(scripted):
    srv = scripted(None)
    srv.scripts = [redirect_script(302, f"{srv.url}/again")]
    with pytest.raises(WebSocketException, match="Redirect limit exhausted"):
        websocket.create_connection(srv.url, timeout=5)
    assert len(srv.conns) == 4  # the first answer, then redirect_limit=3 more


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_redirect_limit_option(scripted, limit):
    srv = scripted(None)
    srv.scripts = [redirect_script(301, f"{srv.url}/loop")]
    with pytest.raises(WebSocketException, match="Redirect limit exhausted"):
        websocket.create_connection(srv.url, timeout=5, redirect_limit=limit)
    assert len(srv.conns) == limit + 1


def test_redirect_within_the_limit(scripted):
    srv = scripted(None)
    srv.scripts = [redirect_script(302, f"{srv.url}/2"), redirect_script(302, f"{srv.url}/3"), echo_script]
    echo_once(websocket.create_connection(srv.url, timeout=5, redirect_limit=2))
    assert [c.request_line for c in srv.conns] == ["GET / HTTP/1.1", "GET /2 HTTP/1.1", "GET /3 HTTP/1.1"]


def test_redirect_without_location(scripted):
    srv = scripted(redirect_script(302, None))
    with pytest.raises(WebSocketException, match="Location"):
        websocket.create_connection(srv.url, timeout=5)


def test_redirect_to_non_websocket_url(scripted):
    srv = scripted(redirect_script(302, "ftp://example.com/"))
    with pytest.raises(WebSocketException, match="Invalid redirect target"):
        websocket.create_connection(srv.url, timeout=5)


# ---- sockopt ---------------------------------------------------------------------------

def test_sockopt_applied_after_defaults(echo_server):
    opts = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0), (socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)]
    ws = websocket.create_connection(echo_server.url, sockopt=opts, timeout=5)
    try:
        assert ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 32768
        echo_once(ws)
    finally:
        ws.close()


def test_default_socket_options(echo_server):
    ws = websocket.create_connection(echo_server.url, timeout=5)
    try:
        assert ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
    finally:
        ws.close()


def test_sockopt_on_websocket_constructor(echo_server):
    ws = websocket.WebSocket(sockopt=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 0)])
    ws.connect(echo_server.url, timeout=5)
    try:
        assert ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    finally:
        ws.close()


def test_bad_sockopt_raises_os_error(echo_server):
    with pytest.raises(OSError):
        websocket.create_connection(echo_server.url, sockopt=[(socket.SOL_SOCKET, 0x7FFF, 1)], timeout=5)


# ---- IPv6 ------------------------------------------------------------------------------

@needs_ipv6
def test_ipv6_literal(scripted):
    srv = scripted(echo_script, family=socket.AF_INET6, host="::1")
    ws = websocket.create_connection(f"ws://[::1]:{srv.port}/v6", timeout=5)
    try:
        assert ws.sock.getpeername()[0] == "::1"
        echo_once(ws)
    finally:
        ws.close()
    req = srv.conn(0).request.decode()
    assert f"Host: [::1]:{srv.port}\r\n" in req
    assert f"Origin: http://[::1]:{srv.port}\r\n" in req


@needs_ipv6
def test_ipv6_through_http_proxy(scripted):
    from proxy_servers import ProxyServer

    srv = scripted(echo_script, family=socket.AF_INET6, host="::1")
    p = ProxyServer("http")
    try:
        echo_once(websocket.create_connection(
            f"ws://[::1]:{srv.port}/", http_proxy_host="127.0.0.1", http_proxy_port=p.port, timeout=5
        ))
        if hasattr(websocket, "_native"):  # websocket-client writes CONNECT ::1:port unbracketed
            assert p.log[0]["head"].startswith(f"CONNECT [::1]:{srv.port} HTTP/1.1\r\n".encode())
    finally:
        p.stop()


@needs_ipv6
@pytest.mark.skipif(not hasattr(websocket, "_native"), reason="SOCKS needs python-socks in websocket-client")
def test_ipv6_through_socks5(scripted):
    from proxy_servers import ProxyServer

    srv = scripted(echo_script, family=socket.AF_INET6, host="::1")
    p = ProxyServer("socks5")
    try:
        echo_once(websocket.create_connection(
            f"ws://[::1]:{srv.port}/", http_proxy_host="127.0.0.1", http_proxy_port=p.port,
            proxy_type="socks5h", timeout=5,
        ))
        assert p.log[0]["addr_type"] == "ipv6"
    finally:
        p.stop()


@needs_ipv6
def test_ipv6_proxy_host(scripted, echo_server):
    from proxy_servers import ProxyServer

    p = ProxyServer("http", host="::1")
    try:
        echo_once(websocket.create_connection(echo_server.url, http_proxy_host="::1", http_proxy_port=p.port, timeout=5))
        assert len(p.log) == 1
    finally:
        p.stop()


# ---- socket= with a Unix domain socket -------------------------------------------------

class _Recorder:
    requests: list = []


@pytest.fixture
def unix_server():
    """A WebSocket echo server on a Unix socket; yields its path and the accepted conns."""
    d = tempfile.mkdtemp()
    path = os.path.join(d, "ws.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(4)
    conns = []

    def serve():
        while True:
            try:
                s, _ = lsock.accept()
            except OSError:
                return
            conn = ScriptedConn(s, _Recorder())
            conns.append(conn)
            threading.Thread(target=lambda c=conn: (c.accept(), echo_loop(c)), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield path, conns
    lsock.close()
    for c in conns:
        c.close()
    os.unlink(path)
    os.rmdir(d)


def test_unix_socket(unix_server):
    path, conns = unix_server
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    ws = websocket.create_connection("ws://localhost/unix", socket=s, timeout=5)
    try:
        assert ws.is_ssl() is False
        assert ws.sock.family == socket.AF_UNIX
        echo_once(ws, "over a unix socket")
    finally:
        ws.close()
    req = conns[0].request.decode()
    assert req.startswith("GET /unix HTTP/1.1\r\n") and "Host: localhost\r\n" in req
    s.close()


def test_unix_socket_with_websocket_connect(unix_server):
    path, _ = unix_server
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    ws = websocket.WebSocket()
    ws.connect("ws://docker/v1/attach", socket=s, timeout=5)
    echo_once(ws, "docker-style")
    s.close()
