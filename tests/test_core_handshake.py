"""create_connection / WebSocket.connect options and the opening-handshake bytes
(REFERENCE.md 1.3, 5.11): header order and defaults, every option that shapes the request,
the checks made on the response, redirects, subprotocols, socket options, proxies."""

import base64
import json
import socket
import subprocess
import sys
import textwrap

import pytest

import websocket
from websocket import WebSocketBadStatusException, WebSocketException, WebSocketProxyException
from servers import (
    OP_BINARY,
    OP_TEXT,
    accept_key,
    echo_loop,
    echo_script,
    make_frame,
)

pytestmark = pytest.mark.timeout(30)

STRICT = hasattr(websocket, "_native")


def lines_of(req: bytes):
    return req.decode("latin-1").split("\r\n")


def header_names(req: bytes):
    return [ln.split(":", 1)[0] for ln in lines_of(req)[1:] if ln]


def header_value(req: bytes, name: str):
    vals = [ln.split(":", 1)[1].strip() for ln in lines_of(req)[1:] if ln.lower().startswith(name.lower() + ":")]
    return vals


def connect_and_get_request(scripted, path="/", script=echo_script, **options):
    srv = scripted(script)
    ws = websocket.create_connection(srv.url + path, **options)
    try:
        req = srv.conn(0).request
        assert ws.connected
    finally:
        ws.close()
    return srv, req


def request_via_socket(scripted, url, **options):
    """Handshake over a pre-connected socket (socket=), so the URL's host and port can be
    anything: they only shape the request."""
    srv = scripted(echo_script)
    s = socket.create_connection(("127.0.0.1", srv.port))
    ws = websocket.create_connection(url, socket=s, **options)
    try:
        req = srv.conn(0).request
    finally:
        ws.close()
    return req


# -- default request ---------------------------------------------------------------------

def test_default_request_exact_lines_and_order(scripted):
    srv, req = connect_and_get_request(scripted, "/chat?room=1&x=%20y#frag")
    lines = lines_of(req)
    assert req.endswith(b"\r\n\r\n")
    assert lines[0] == "GET /chat?room=1&x=%20y HTTP/1.1"
    assert header_names(req) == [
        "Upgrade",
        "Host",
        "Origin",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Connection",
    ]
    assert lines[1] == "Upgrade: websocket"
    assert lines[2] == f"Host: 127.0.0.1:{srv.port}"
    assert lines[3] == f"Origin: http://127.0.0.1:{srv.port}"
    key = lines[4][len("Sec-WebSocket-Key: "):]
    assert lines[4].startswith("Sec-WebSocket-Key: ")
    assert len(base64.b64decode(key, validate=True)) == 16
    assert lines[5] == "Sec-WebSocket-Version: 13"
    assert lines[6] == "Connection: Upgrade"
    assert lines[7:] == ["", ""]
    assert b"user-agent" not in req.lower()


def test_key_is_random_per_connection(scripted):
    srv = scripted(echo_script)
    keys = set()
    for i in range(3):
        ws = websocket.create_connection(srv.url)
        keys.add(srv.conn(i).key)
        ws.close()
    assert len(keys) == 3


@pytest.mark.parametrize(
    "suffix, resource",
    [
        ("", "/"),
        ("/", "/"),
        ("?a=b", "/?a=b"),
        ("/p/q?a=b&c=%2F", "/p/q?a=b&c=%2F"),
        ("/x#only-fragment", "/x"),
    ],
)
def test_resource_line(scripted, suffix, resource):
    _, req = connect_and_get_request(scripted, suffix)
    assert lines_of(req)[0] == f"GET {resource} HTTP/1.1"


@pytest.mark.parametrize(
    "url, host, origin",
    [
        ("ws://localhost/", "localhost", "http://localhost"),
        ("ws://localhost:80/", "localhost", "http://localhost"),
        ("ws://localhost:443/", "localhost", "http://localhost"),
        ("ws://localhost:8080/", "localhost:8080", "http://localhost:8080"),
        ("wss://localhost/", "localhost", "https://localhost"),
        ("wss://localhost:80/", "localhost", "https://localhost"),
        ("wss://localhost:8443/", "localhost:8443", "https://localhost:8443"),
        ("ws://127.0.0.1/", "127.0.0.1", "http://127.0.0.1"),
        ("ws://[::1]:8080/", "[::1]:8080", "http://[::1]:8080"),
        ("ws://[::1]/", "[::1]", "http://[::1]"),
        ("ws://user:pw@localhost:81/", "localhost:81", "http://localhost:81"),
        ("ws://LocalHost:81/", "localhost:81", "http://localhost:81"),
    ],
)
def test_default_host_and_origin(scripted, url, host, origin):
    # socket= skips TCP connect and TLS, so any host/scheme can be used to shape the request
    # (only names that resolve locally: an implementation ignoring socket= must not query DNS)
    req = request_via_socket(scripted, url)
    assert header_value(req, "Host") == [host]
    assert header_value(req, "Origin") == [origin]
    others = [ln for ln in lines_of(req)[1:] if not ln.startswith("Sec-WebSocket-Key:")]
    assert not [ln for ln in others if "user" in ln or "pw" in ln]
    assert "Authorization" not in header_names(req)


# -- header option -----------------------------------------------------------------------

def test_header_list_goes_after_connection_and_subprotocol_before_cookie(scripted):
    def script(conn):
        conn.accept(subprotocol="p1")
        return echo_loop(conn)

    _, req = connect_and_get_request(
        scripted,
        script=script,
        header=["X-One: 1", "X-Two: two words"],
        subprotocols=["p1", "p2"],
        cookie="a=1; b=2",
    )
    assert header_names(req) == [
        "Upgrade",
        "Host",
        "Origin",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Connection",
        "Sec-WebSocket-Protocol",
        "X-One",
        "X-Two",
        "Cookie",
    ]
    lines = lines_of(req)
    assert "Sec-WebSocket-Protocol: p1,p2" in lines
    assert "X-Two: two words" in lines
    assert lines[-3] == "Cookie: a=1; b=2"


def test_header_dict_none_values_dropped(scripted):
    _, req = connect_and_get_request(
        scripted, header={"X-A": "a", "X-None": None, "X-B": "b"}
    )
    names = header_names(req)
    assert names[-2:] == ["X-A", "X-B"]
    assert "X-None" not in names
    assert "X-A: a" in lines_of(req)


def test_header_dict_overrides_key_and_version(scripted):
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    srv = scripted(echo_script)
    ws = websocket.create_connection(
        srv.url, header={"Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13", "X-Z": "z"}
    )
    try:
        req = srv.conn(0).request
        assert header_value(req, "Sec-WebSocket-Key") == [key]
        assert header_value(req, "Sec-WebSocket-Version") == ["13"]
        # the user's entries come after Connection, in dict order
        assert header_names(req)[-4:] == ["Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "X-Z"]
        # and the accept key was checked against the user's key (the server answered for it)
        assert ws.getheaders()["sec-websocket-accept"] == accept_key(key)
        ws.send("ok")
        assert ws.recv() == "ok"
    finally:
        ws.close()


def test_header_dict_key_override_checked_against_response(scripted):
    key = "dGhlIHNhbXBsZSBub25jZQ=="

    def script(conn):
        conn.accept(accept=accept_key("AAAAAAAAAAAAAAAAAAAAAA=="))
        return echo_loop(conn, 2)

    srv = scripted(script)
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url, header={"Sec-WebSocket-Key": key})
    assert not isinstance(ei.value, WebSocketBadStatusException)


def test_cookie_option(scripted):
    _, req = connect_and_get_request(scripted, cookie="sid=42")
    assert lines_of(req)[-3] == "Cookie: sid=42"
    assert header_names(req)[-1] == "Cookie"


def test_no_cookie_header_by_default(scripted):
    _, req = connect_and_get_request(scripted)
    assert "Cookie" not in header_names(req)


@pytest.mark.timeout(60)
def test_cookie_jar_replays_domain_cookies(scripted, child_env):
    """Set-Cookie with a domain attribute fills a process-global jar that later handshakes to
    that host replay, before the user's cookie. Run in a child so the jar stays clean here."""

    def first(conn):
        conn.accept(extra_headers=["Set-Cookie: sid=abc; Domain=127.0.0.1"])
        return echo_loop(conn)

    srv = scripted([first, echo_script])
    code = textwrap.dedent(
        """
        import sys, websocket
        url = sys.argv[1]
        ws = websocket.create_connection(url + "/one")
        print(ws.getheaders()["set-cookie"])
        ws.close()
        ws = websocket.create_connection(url + "/two", cookie="mine=1")
        ws.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, srv.url], env=child_env, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "sid=abc; Domain=127.0.0.1"
    req2 = srv.conn(1).request
    assert lines_of(req2)[-3] == "Cookie: sid=abc; mine=1"


# -- origin / host / connection ----------------------------------------------------------

def test_origin_option(scripted):
    _, req = connect_and_get_request(scripted, origin="https://example.org")
    assert header_value(req, "Origin") == ["https://example.org"]
    assert header_names(req)[2] == "Origin"


def test_origin_none_means_default(scripted):
    srv, req = connect_and_get_request(scripted, origin=None)
    assert header_value(req, "Origin") == [f"http://127.0.0.1:{srv.port}"]


def test_suppress_origin(scripted):
    _, req = connect_and_get_request(scripted, suppress_origin=True, origin="https://ignored")
    assert "Origin" not in header_names(req)
    assert header_names(req)[:3] == ["Upgrade", "Host", "Sec-WebSocket-Key"]


def test_host_option(scripted):
    _, req = connect_and_get_request(scripted, host="example.org:1234")
    assert header_value(req, "Host") == ["example.org:1234"]
    assert header_names(req)[1] == "Host"


def test_suppress_host(scripted):
    srv, req = connect_and_get_request(scripted, suppress_host=True)
    assert "Host" not in header_names(req)
    # the default Origin still carries host:port
    assert header_value(req, "Origin") == [f"http://127.0.0.1:{srv.port}"]


def test_connection_option_replaces_whole_line(scripted):
    _, req = connect_and_get_request(scripted, connection="Connection: Upgrade, keep-alive")
    lines = lines_of(req)
    assert "Connection: Upgrade, keep-alive" in lines
    assert "Connection: Upgrade" not in lines
    assert header_names(req)[5] == "Connection"


def test_request_headers_seen_by_real_server(echo_server):
    ws = websocket.create_connection(echo_server.url + "/headers?q=1", header=["X-Custom: v"])
    try:
        info = json.loads(ws.recv())
        names = [k for k, _ in info["headers"]]
        assert info["path"] == "/headers?q=1"
        assert names == [
            "Upgrade",
            "Host",
            "Origin",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
            "Connection",
            "X-Custom",
        ]
        assert dict(info["headers"])["Host"] == f"127.0.0.1:{echo_server.port}"
    finally:
        ws.close()


# -- subprotocols ------------------------------------------------------------------------

def test_subprotocol_lowercased_scripted(scripted):
    def script(conn):
        conn.accept(subprotocol="SuperChat")
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url, subprotocols=["chat", "superchat"])
    try:
        assert header_value(srv.conn(0).request, "Sec-WebSocket-Protocol") == ["chat,superchat"]
        assert ws.subprotocol == "superchat"
        assert ws.getsubprotocol() == "superchat"
        # the raw response header keeps the server's spelling
        assert ws.getheaders()["sec-websocket-protocol"] == "SuperChat"
    finally:
        ws.close()


def test_subprotocol_real_server(echo_server):
    ws = websocket.create_connection(echo_server.url + "/headers", subprotocols=["MyProto", "other"])
    try:
        info = json.loads(ws.recv())
        assert info["subprotocol"] == "MyProto"
        assert ws.subprotocol == "myproto"
    finally:
        ws.close()


def test_no_subprotocol_requested(echo_server):
    ws = websocket.create_connection(echo_server.url)
    try:
        assert ws.subprotocol is None
        assert ws.getsubprotocol() is None
    finally:
        ws.close()


@pytest.mark.parametrize("reply", ["other", None])
def test_subprotocol_mismatch_rejected(scripted, reply):
    def script(conn):
        conn.accept(subprotocol=reply)
        return echo_loop(conn, 2)

    srv = scripted(script)
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url, subprotocols=["chat"])
    assert not isinstance(ei.value, WebSocketBadStatusException)


def test_unrequested_subprotocol_in_reply(scripted):
    """RFC 6455 4.1: a subprotocol the client did not offer fails the connection, also when
    it offered none. websocket-client 1.9.2 ignores the header then (a deliberate
    difference: it connects and reports no subprotocol)."""

    def script(conn):
        conn.accept(subprotocol="surprise")
        return echo_loop(conn, 2)

    srv = scripted(script)
    if not STRICT:
        ws = websocket.create_connection(srv.url)
        try:
            assert ws.subprotocol is None and ws.connected
        finally:
            ws.close()
        return
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert type(ei.value) is WebSocketException
    assert "did not offer" in str(ei.value) and "surprise" in str(ei.value)


# -- response checks ---------------------------------------------------------------------

def test_wrong_accept_key(scripted):
    def script(conn):
        conn.accept(accept=base64.b64encode(b"x" * 20).decode())
        return echo_loop(conn, 2)

    srv = scripted(script)
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert type(ei.value) is WebSocketException
    assert "Invalid WebSocket Header" in str(ei.value)


@pytest.mark.parametrize(
    "lines",
    [
        # missing Upgrade
        ["HTTP/1.1 101 Switching Protocols", "Connection: Upgrade", "Sec-WebSocket-Accept: {acc}"],
        # wrong Upgrade
        ["HTTP/1.1 101 Switching Protocols", "Upgrade: h2c", "Connection: Upgrade", "Sec-WebSocket-Accept: {acc}"],
        # missing Connection
        ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Sec-WebSocket-Accept: {acc}"],
        # missing accept
        ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade"],
    ],
    ids=["no-upgrade", "wrong-upgrade", "no-connection", "no-accept"],
)
def test_invalid_101_response(scripted, lines):
    def script(conn):
        conn.read_request()
        text = "\r\n".join(lines).format(acc=accept_key(conn.key)) + "\r\n\r\n"
        conn.send_raw(text.encode())
        return echo_loop(conn, 2)

    srv = scripted(script)
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert type(ei.value) is WebSocketException
    assert "Invalid WebSocket Header" in str(ei.value)


def test_response_header_tolerance(scripted):
    """Header names any case, comma lists in Connection, extra spaces, HTTP/1.0-ish reason."""

    def script(conn):
        conn.read_request()
        resp = (
            "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
            "UPGRADE:   WebSocket  \r\n"
            "connection: keep-alive, Upgrade\r\n"
            f"sec-websocket-accept: {accept_key(conn.key)}\r\n"
            "X-Dup: 1\r\n"
            "X-Dup: 2\r\n"
            "Set-Cookie: a=1\r\n"
            "Set-Cookie: b=2\r\n"
            "\r\n"
        )
        conn.send_raw(resp.encode())
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.status == 101
        assert ws.getstatus() == 101
        h = ws.headers
        assert h is ws.getheaders()
        assert isinstance(h, dict)
        assert h["upgrade"] == "WebSocket"
        assert h["connection"] == "keep-alive, Upgrade"
        assert h["x-dup"] == "2"  # duplicates overwrite
        assert h["set-cookie"] == "a=1; b=2"  # except set-cookie, joined
        assert all(k == k.lower() for k in h)
        ws.send("x")
        assert ws.recv() == "x"
    finally:
        ws.close()


def test_data_right_after_101_in_same_packet(scripted):
    """Frames sent in the same TCP write as the 101 must not be lost."""

    def script(conn):
        conn.read_request()
        resp = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(conn.key)}\r\n\r\n"
        ).encode() + make_frame(OP_TEXT, "early") + make_frame(OP_BINARY, b"\x00bin")
        conn.send_raw(resp)
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "early"
        assert ws.recv() == b"\x00bin"
    finally:
        ws.close()


# -- redirects ---------------------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_followed(echo_server, status):
    target = echo_server.url + f"/headers?after={status}"
    ws = websocket.create_connection(echo_server.url + f"/redirect?status={status}&to={target}")
    try:
        info = json.loads(ws.recv())
        assert info["path"] == f"/headers?after={status}"
        assert ws.status == 101
    finally:
        ws.close()


def test_redirect_to_other_server(scripted, echo_server):
    def script(conn):
        conn.respond(f"HTTP/1.1 302 Found\r\nLocation: {echo_server.url}/headers?hop=1\r\n\r\n")

    srv = scripted(script)
    ws = websocket.create_connection(srv.url + "/start")
    try:
        assert json.loads(ws.recv())["path"] == "/headers?hop=1"
        assert lines_of(srv.conn(0).request)[0] == "GET /start HTTP/1.1"
    finally:
        ws.close()


def loop_redirect(conn):
    conn.respond(f"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:{conn.server.port}/again\r\n\r\n")


def test_redirect_limit_exhausted_default_3(scripted):
    srv = scripted(loop_redirect)
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert "Redirect limit exhausted" in str(ei.value)
    assert not isinstance(ei.value, WebSocketBadStatusException)
    srv.result(3)  # 1 + 3 handshakes were made
    assert len(srv.conns) == 4


@pytest.mark.parametrize("limit", [0, 1, 5])
def test_redirect_limit_option(scripted, limit):
    srv = scripted(loop_redirect)
    with pytest.raises(WebSocketException, match="Redirect limit exhausted"):
        websocket.create_connection(srv.url, redirect_limit=limit)
    srv.result(limit)
    assert len(srv.conns) == limit + 1


def test_redirect_limit_allows_enough_hops(scripted):
    def hop(conn):
        conn.respond(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: ws://127.0.0.1:{conn.server.port}/n\r\n\r\n")

    srv = scripted([hop, hop, echo_script])
    ws = websocket.create_connection(srv.url, redirect_limit=2)
    try:
        ws.send("arrived")
        assert ws.recv() == "arrived"
        assert lines_of(srv.conn(2).request)[0] == "GET /n HTTP/1.1"
    finally:
        ws.close()


def test_redirect_without_location(scripted):
    srv = scripted(lambda c: c.respond("HTTP/1.1 302 Found\r\n\r\n"))
    with pytest.raises(WebSocketException, match="Location"):
        websocket.create_connection(srv.url)


def test_redirect_invalid_target(scripted):
    srv = scripted(lambda c: c.respond("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1/x\r\n\r\n"))
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert "Invalid redirect target" in str(ei.value)


# -- timeouts and socket options ---------------------------------------------------------

def test_timeout_option(echo_url):
    ws = websocket.create_connection(echo_url, timeout=2.5)
    try:
        assert ws.gettimeout() == 2.5
        assert ws.timeout == 2.5
        assert ws.sock.gettimeout() == 2.5
    finally:
        ws.close()


def test_default_timeout_is_blocking(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        assert ws.gettimeout() is None
        assert ws.sock.gettimeout() is None
    finally:
        ws.close()


def test_setdefaulttimeout_used_when_no_timeout(echo_url):
    assert websocket.getdefaulttimeout() is None
    websocket.setdefaulttimeout(1.5)
    try:
        assert websocket.getdefaulttimeout() == 1.5
        ws = websocket.create_connection(echo_url)
        assert ws.gettimeout() == 1.5
        assert ws.sock.gettimeout() == 1.5
        ws.close()
        ws = websocket.create_connection(echo_url, timeout=4)
        assert ws.gettimeout() == 4
        ws.close()
    finally:
        websocket.setdefaulttimeout(None)


def test_default_socket_options(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        s = ws.sock
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        assert websocket.DEFAULT_SOCKET_OPTION[0] == (socket.SOL_TCP, socket.TCP_NODELAY, 1)
    finally:
        ws.close()


def test_sockopt_applied_after_defaults(echo_url):
    opts = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)]
    if hasattr(socket, "TCP_KEEPIDLE"):
        opts.append((socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 77))
    ws = websocket.create_connection(echo_url, sockopt=opts)
    try:
        # Linux doubles SO_SNDBUF; the default is far above 64 KiB
        assert ws.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) in (32768, 65536)
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 77
        ws.send("x")
        assert ws.recv() == "x"
    finally:
        ws.close()


# -- socket= -----------------------------------------------------------------------------

def test_socket_option_uses_given_socket(scripted):
    srv = scripted(echo_script)
    s = socket.create_connection(("127.0.0.1", srv.port))
    local = s.getsockname()
    # the URL's host/port are not connected to: only the handshake uses them
    ws = websocket.create_connection("ws://localhost:1/given", socket=s)
    try:
        assert ws.sock.getsockname() == local
        assert lines_of(srv.conn(0).request)[0] == "GET /given HTTP/1.1"
        assert header_value(srv.conn(0).request, "Host") == ["localhost:1"]
        ws.send("via socket")
        assert ws.recv() == "via socket"
    finally:
        ws.close()
    assert s.fileno() == -1  # close() closed the caller's socket


def test_socket_option_with_connect_method(scripted):
    srv = scripted(echo_script)
    s = socket.create_connection(("127.0.0.1", srv.port))
    ws = websocket.WebSocket()
    ws.connect("ws://127.0.0.1/", socket=s)
    try:
        assert header_value(srv.conn(0).request, "Host") == ["127.0.0.1"]
        ws.send_binary(b"\x01")
        assert ws.recv() == b"\x01"
    finally:
        ws.close()


# -- constructor options reaching the socket ---------------------------------------------

def test_get_mask_key_option_and_wire_bytes(scripted):
    calls = []

    def mask(n):
        calls.append(n)
        return b"\x01\x02\x03\x04"

    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url, get_mask_key=mask)
    try:
        assert ws.send("hello") == 11
        assert ws.recv() == "hello"
        frame = srv.conn(0).frames[0]
        expected = bytes(b ^ k for b, k in zip(b"hello", b"\x01\x02\x03\x04\x01"))
        assert frame.raw == b"\x81\x85\x01\x02\x03\x04" + expected
        assert calls == [4]
    finally:
        ws.close()


def test_set_mask_key(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    try:
        ws.set_mask_key(lambda n: b"\x00" * n)
        ws.send_binary(b"abc")
        assert ws.recv() == b"abc"
        assert srv.conn(0).frames[0].raw == b"\x82\x83\x00\x00\x00\x00abc"
    finally:
        ws.close()


def test_websocket_positional_constructor_order(scripted):
    """WebSocket(get_mask_key, sockopt, sslopt, fire_cont_frame, enable_multithread,
    skip_utf8_validation, dispatcher)."""
    srv = scripted(echo_script)
    ws = websocket.WebSocket(lambda n: b"\x00\x00\x00\x00", None, None, False, True, True, None)
    ws.connect(srv.url)
    try:
        ws.send("z")
        assert ws.recv() == "z"
        assert srv.conn(0).frames[0].raw == b"\x81\x81\x00\x00\x00\x00z"
    finally:
        ws.close()


def test_unknown_options_are_ignored(echo_url):
    ws = websocket.create_connection(echo_url, no_such_option=1, another=None)
    try:
        ws.send("still works")
        assert ws.recv() == "still works"
    finally:
        ws.close()
    ws = websocket.WebSocket(whatever=True)
    ws.connect(echo_url, bogus="x")
    assert ws.connected
    ws.close()


def test_enable_multithread_false_still_works(echo_url):
    ws = websocket.create_connection(echo_url, enable_multithread=False)
    try:
        for i in range(3):
            ws.send(f"m{i}")
            assert ws.recv() == f"m{i}"
    finally:
        ws.close()


def test_connect_method_options(scripted):
    srv = scripted(echo_script)
    ws = websocket.WebSocket()
    assert not ws.connected
    assert ws.sock is None
    ws.connect(srv.url + "/m", header=["X-M: 1"], origin="o://x", timeout=3)
    try:
        req = srv.conn(0).request
        assert header_value(req, "X-M") == ["1"]
        assert header_value(req, "Origin") == ["o://x"]
        assert ws.gettimeout() == 3
        assert ws.connected
        assert ws.status == 101
    finally:
        ws.close()


# -- proxies (HTTP CONNECT) --------------------------------------------------------------

def proxy_then_echo(conn):
    conn.read_request()
    conn.proxy_request = conn.request
    conn.send_raw(b"HTTP/1.1 200 Connection established\r\n\r\n")
    conn.request = None
    conn.accept()
    return echo_loop(conn)


def test_http_proxy_connect(scripted, closed_port):
    # the target is only named in CONNECT; if it were dialled directly it would be refused
    target = f"localhost:{closed_port}"
    srv = scripted(proxy_then_echo)
    ws = websocket.create_connection(
        f"ws://{target}/via?p=1",
        http_proxy_host="127.0.0.1",
        http_proxy_port=srv.port,
        http_proxy_auth=("user", "pass"),
    )
    try:
        c = srv.conn(0)
        assert c.proxy_request == (
            f"CONNECT {target} HTTP/1.1\r\n".encode()
            + f"Host: {target}\r\n".encode()
            + b"Proxy-Authorization: Basic " + base64.b64encode(b"user:pass") + b"\r\n\r\n"
        )
        assert lines_of(c.request)[0] == "GET /via?p=1 HTTP/1.1"
        assert header_value(c.request, "Host") == [target]
        ws.send("through proxy")
        assert ws.recv() == "through proxy"
    finally:
        ws.close()


def test_http_proxy_without_auth(scripted):
    srv = scripted(proxy_then_echo)
    ws = websocket.create_connection(
        "ws://localhost/", http_proxy_host="127.0.0.1", http_proxy_port=srv.port
    )
    try:
        assert srv.conn(0).proxy_request == (
            b"CONNECT localhost:80 HTTP/1.1\r\nHost: localhost:80\r\n\r\n"
        )
        assert header_value(srv.conn(0).request, "Host") == ["localhost"]
    finally:
        ws.close()


def test_http_proxy_does_not_resolve_target(scripted):
    """Through an HTTP proxy the target name is only sent in CONNECT, never resolved locally
    (this name fails in getaddrinfo at once, without any DNS query)."""
    srv = scripted(proxy_then_echo)
    ws = websocket.create_connection(
        "ws://-unresolvable.invalid:9/", http_proxy_host="127.0.0.1", http_proxy_port=srv.port
    )
    try:
        assert srv.conn(0).proxy_request.startswith(b"CONNECT -unresolvable.invalid:9 HTTP/1.1\r\n")
        ws.send("ok")
        assert ws.recv() == "ok"
    finally:
        ws.close()


def test_http_proxy_refuses(scripted, closed_port):
    srv = scripted(lambda c: c.respond("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"))
    with pytest.raises(WebSocketProxyException) as ei:
        websocket.create_connection(
            f"ws://localhost:{closed_port}/", http_proxy_host="127.0.0.1", http_proxy_port=srv.port
        )
    assert "407" in str(ei.value)


def test_http_no_proxy_list(echo_url, closed_port):
    ws = websocket.create_connection(
        echo_url,
        http_proxy_host="127.0.0.1",
        http_proxy_port=closed_port,
        http_no_proxy=["127.0.0.1"],
    )
    try:
        ws.send("direct")
        assert ws.recv() == "direct"
    finally:
        ws.close()


def test_proxy_from_environment(scripted, monkeypatch, closed_port):
    srv = scripted(proxy_then_echo)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{srv.port}")
    ws = websocket.create_connection(f"ws://localhost:{closed_port}/")
    try:
        assert srv.conn(0).proxy_request.startswith(f"CONNECT localhost:{closed_port} HTTP/1.1\r\n".encode())
    finally:
        ws.close()


def test_no_proxy_environment(echo_url, closed_port, monkeypatch):
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    ws = websocket.create_connection(echo_url)
    try:
        assert ws.connected
    finally:
        ws.close()


def test_https_proxy_env_not_used_for_ws(echo_url, closed_port, monkeypatch):
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{closed_port}")
    ws = websocket.create_connection(echo_url)
    assert ws.connected
    ws.close()
