"""Timeouts and errors: which exception type, with which attributes, from which module, and
whether the connection is still usable afterwards (REFERENCE.md 1.9, 5.6)."""

import socket
import time

import pytest

import websocket
import websocket._exceptions as wsexc
from websocket import (
    WebSocketAddressException,
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketPayloadException,
    WebSocketProtocolException,
    WebSocketProxyException,
    WebSocketTimeoutException,
)
from servers import echo_loop

pytestmark = pytest.mark.timeout(30)

EXCEPTIONS = [
    "WebSocketException",
    "WebSocketProtocolException",
    "WebSocketPayloadException",
    "WebSocketConnectionClosedException",
    "WebSocketTimeoutException",
    "WebSocketProxyException",
    "WebSocketBadStatusException",
    "WebSocketAddressException",
]


# -- classes -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", EXCEPTIONS)
def test_exception_module_paths(name):
    cls = getattr(websocket, name)
    assert getattr(wsexc, name) is cls
    assert issubclass(cls, WebSocketException)
    assert issubclass(cls, Exception)


def test_exception_hierarchy():
    assert WebSocketException.__bases__ == (Exception,)
    for cls in (
        WebSocketProtocolException,
        WebSocketPayloadException,
        WebSocketConnectionClosedException,
        WebSocketTimeoutException,
        WebSocketProxyException,
        WebSocketBadStatusException,
        WebSocketAddressException,
    ):
        assert cls.__bases__ == (WebSocketException,)
    # a WebSocketTimeoutException is not a TimeoutError / OSError
    assert not issubclass(WebSocketTimeoutException, TimeoutError)
    assert not issubclass(WebSocketTimeoutException, OSError)
    assert not issubclass(WebSocketConnectionClosedException, ConnectionError)
    assert not issubclass(WebSocketConnectionClosedException, OSError)


def test_bad_status_exception_constructor():
    e = WebSocketBadStatusException("msg", 404, "Not Found", {"a": "b"}, b"body")
    assert str(e) == "msg"
    assert (e.status_code, e.status_message, e.resp_headers, e.resp_body) == (404, "Not Found", {"a": "b"}, b"body")
    e = WebSocketBadStatusException("m", 500)
    assert (e.status_code, e.status_message, e.resp_headers, e.resp_body) == (500, None, None, None)
    e = WebSocketBadStatusException(message="k", status_code=403, resp_body=b"x")
    assert e.resp_body == b"x" and e.status_code == 403


# -- bad handshake status ----------------------------------------------------------------

def test_bad_status_with_body(scripted):
    def script(conn):
        conn.respond(
            "HTTP/1.1 403 Forbidden\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 12\r\n"
            "X-Why: Test\r\n"
            "\r\n"
            "go away now!"
        )

    srv = scripted(script)
    with pytest.raises(WebSocketBadStatusException) as ei:
        websocket.create_connection(srv.url)
    e = ei.value
    assert e.status_code == 403
    assert e.status_message == "Forbidden"
    assert e.resp_headers == {"content-type": "text/plain", "content-length": "12", "x-why": "Test"}
    assert e.resp_body == b"go away now!"
    assert str(e) == (
        "Handshake status 403 Forbidden -+-+- "
        "{'content-type': 'text/plain', 'content-length': '12', 'x-why': 'Test'} -+-+- go away now!"
    )


def test_bad_status_without_content_length(scripted):
    srv = scripted(lambda c: c.respond("HTTP/1.1 500 Internal Server Error\r\nX-A: 1\r\n\r\n"))
    with pytest.raises(WebSocketBadStatusException) as ei:
        websocket.create_connection(srv.url)
    e = ei.value
    assert e.status_code == 500
    assert e.status_message == "Internal Server Error"
    assert e.resp_headers == {"x-a": "1"}
    assert e.resp_body is None
    assert str(e).startswith("Handshake status 500 Internal Server Error -+-+- ")
    assert str(e).endswith("-+-+- None")


@pytest.mark.parametrize("status", [200, 400, 404, 426, 503])
def test_bad_status_codes(scripted, status):
    srv = scripted(lambda c: c.respond(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(WebSocketBadStatusException) as ei:
        websocket.create_connection(srv.url)
    assert ei.value.status_code == status


def test_bad_status_from_real_server(echo_server):
    with pytest.raises(WebSocketBadStatusException) as ei:
        websocket.create_connection(echo_server.url + "/reject?status=401&body=denied")
    e = ei.value
    assert e.status_code == 401
    assert e.status_message == "Unauthorized"
    assert e.resp_body == b"denied"
    assert e.resp_headers["x-reason"] == "test"
    assert e.resp_headers["content-length"] == "6"


def test_bad_status_large_body(scripted):
    body = b"B" * 100_000
    srv = scripted(lambda c: c.respond(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 100000\r\n\r\n" + body))
    with pytest.raises(WebSocketBadStatusException) as ei:
        websocket.create_connection(srv.url)
    assert ei.value.resp_body == body


def test_invalid_status_line(scripted):
    srv = scripted(lambda c: c.respond("GARBAGE\r\n\r\n"))
    with pytest.raises(WebSocketException) as ei:
        websocket.create_connection(srv.url)
    assert not isinstance(ei.value, WebSocketBadStatusException)


# -- timeouts ----------------------------------------------------------------------------

def test_recv_timeout_then_still_usable(echo_url):
    ws = websocket.create_connection(echo_url, timeout=0.3)
    try:
        t0 = time.monotonic()
        with pytest.raises(WebSocketTimeoutException) as ei:
            ws.recv()
        elapsed = time.monotonic() - t0
        assert 0.2 < elapsed < 2
        assert not isinstance(ei.value, TimeoutError)
        assert ws.connected
        # the connection survived the timeout
        ws.send("after timeout")
        assert ws.recv() == "after timeout"
        with pytest.raises(WebSocketTimeoutException):
            ws.recv_data()
        ws.send_binary(b"again")
        assert ws.recv() == b"again"
    finally:
        ws.close()


def test_settimeout_on_live_connection(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        assert ws.gettimeout() is None
        ws.settimeout(0.2)
        assert ws.gettimeout() == 0.2
        assert ws.timeout == 0.2
        assert ws.sock.gettimeout() == 0.2
        t0 = time.monotonic()
        with pytest.raises(WebSocketTimeoutException):
            ws.recv()
        assert time.monotonic() - t0 < 2
        ws.timeout = 0.4
        assert ws.gettimeout() == 0.4
        assert ws.sock.gettimeout() == 0.4
        ws.settimeout(None)
        assert ws.gettimeout() is None
        assert ws.sock.gettimeout() is None
        ws.send("blocking again")
        assert ws.recv() == "blocking again"
    finally:
        ws.close()


def test_settimeout_before_connect():
    ws = websocket.WebSocket()
    assert ws.gettimeout() is None
    ws.settimeout(1.25)
    assert ws.gettimeout() == 1.25
    assert ws.timeout == 1.25


def test_timeout_mid_message_keeps_stream_in_sync(scripted):
    """A timeout while a frame is only half there must not lose the bytes already read."""
    from servers import OP_TEXT, make_frame

    frame = make_frame(OP_TEXT, "split across a pause")

    def script(conn):
        conn.accept()
        conn.send_raw(frame[:7])
        time.sleep(0.6)
        conn.send_raw(frame[7:])
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url, timeout=0.25)
    try:
        with pytest.raises(WebSocketTimeoutException):
            ws.recv()
        ws.settimeout(5)
        assert ws.recv() == "split across a pause"
    finally:
        ws.close()


def test_handshake_timeout(scripted):
    def script(conn):
        conn.read_request()
        conn.wait_eof(10)  # never answer

    srv = scripted(script)
    t0 = time.monotonic()
    with pytest.raises(WebSocketTimeoutException):
        websocket.create_connection(srv.url, timeout=0.5)
    assert time.monotonic() - t0 < 3


def test_handshake_timeout_from_default_timeout(scripted):
    def script(conn):
        conn.read_request()
        conn.wait_eof(10)

    srv = scripted(script)
    websocket.setdefaulttimeout(0.4)
    try:
        t0 = time.monotonic()
        with pytest.raises(WebSocketTimeoutException):
            websocket.create_connection(srv.url)
        assert time.monotonic() - t0 < 3
    finally:
        websocket.setdefaulttimeout(None)


# -- connection failures -----------------------------------------------------------------

def test_connection_refused(closed_port):
    with pytest.raises(ConnectionRefusedError):
        websocket.create_connection(f"ws://127.0.0.1:{closed_port}/")


def test_connection_refused_is_not_wrapped(closed_port):
    with pytest.raises(OSError) as ei:
        websocket.create_connection(f"ws://127.0.0.1:{closed_port}/", timeout=2)
    assert not isinstance(ei.value, WebSocketException)


def test_unresolvable_host():
    # a name glibc rejects without asking DNS, so no packet leaves the machine
    with pytest.raises(WebSocketAddressException) as ei:
        websocket.create_connection("ws://-unresolvable.invalid:9/")
    assert isinstance(ei.value.args[0], socket.gaierror)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "https://127.0.0.1/", "ftp://x/", "wsx://127.0.0.1/"])
def test_bad_scheme(url):
    with pytest.raises(ValueError) as ei:
        websocket.create_connection(url)
    assert str(ei.value) == f"scheme {url.split(':')[0]} is invalid"


@pytest.mark.parametrize("url", ["ws://", "ws:///path", "ws://:80/"])
def test_empty_host(url):
    with pytest.raises(ValueError, match="hostname is invalid"):
        websocket.create_connection(url)


def test_url_without_colon():
    with pytest.raises(ValueError):
        websocket.create_connection("127.0.0.1")


def test_connection_closed_after_peer_closes(scripted):
    def script(conn):
        conn.accept()
        conn.close()

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    assert not ws.connected


def test_send_to_reset_peer_eventually_fails(scripted):
    import struct

    def script(conn):
        conn.accept()
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    srv.result()
    time.sleep(0.1)
    with pytest.raises((WebSocketConnectionClosedException, OSError)):
        for _ in range(50):
            ws.send("x" * 1000)
            time.sleep(0.01)
    ws.shutdown()


def test_failed_connect_leaves_object_clean(closed_port, echo_url):
    ws = websocket.WebSocket()
    with pytest.raises(ConnectionRefusedError):
        ws.connect(f"ws://127.0.0.1:{closed_port}/")
    assert ws.sock is None
    assert not ws.connected
    # and the same object can connect afterwards
    ws.connect(echo_url)
    ws.send("ok")
    assert ws.recv() == "ok"
    ws.close()


def test_failed_handshake_closes_socket(scripted):
    srv = scripted(lambda c: c.respond("HTTP/1.1 404 Not Found\r\n\r\n"))
    ws = websocket.WebSocket()
    with pytest.raises(WebSocketBadStatusException):
        ws.connect(srv.url)
    assert ws.sock is None
    assert not ws.connected
    # the server sees the client hang up
    assert srv.conn(0).wait_eof(5)
