"""Closing: close(status, reason, timeout), send_close, abort, shutdown, peer-initiated closes,
and what every method does once the connection is gone (REFERENCE.md 1.7)."""

import threading
import time

import pytest

import websocket
from websocket import (
    ABNF,
    WebSocketConnectionClosedException,
    WebSocketException,
)
from servers import OP_CLOSE, OP_TEXT, echo_loop, echo_script, make_frame, close_payload

pytestmark = pytest.mark.timeout(30)


def test_close_default(echo_server):
    path = "/?close-default"
    ws = websocket.create_connection(echo_server.url + path)
    t0 = time.monotonic()
    assert ws.close() is None
    assert time.monotonic() - t0 < 2
    assert ws.connected is False
    assert ws.sock is None
    assert echo_server.wait_close(path) == (1000, "")
    # the peer's close frame is kept
    assert isinstance(ws.close_frame, ABNF)
    assert ws.close_frame.opcode == ABNF.OPCODE_CLOSE
    assert ws.close_frame.data[:2] == b"\x03\xe8"


@pytest.mark.parametrize(
    "status, reason, expected",
    [
        (1001, "bye", (1001, "bye")),
        (4000, b"bytes reason", (4000, "bytes reason")),
        (3000, "héllo", (3000, "héllo")),
        (1000, "", (1000, "")),
    ],
)
def test_close_status_and_reason(echo_server, status, reason, expected):
    path = f"/?close-{status}-{len(reason)}"
    ws = websocket.create_connection(echo_server.url + path)
    ws.close(status=status, reason=reason)
    assert echo_server.wait_close(path) == expected
    assert ws.close_frame.data[:2] == status.to_bytes(2, "big")


def test_close_positional_args(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    ws.close(1001, "pos", 2)
    frames = srv.result()
    assert frames[-1].opcode == OP_CLOSE
    assert frames[-1].payload == b"\x03\xe9pos"
    assert frames[-1].masked


@pytest.mark.parametrize("status", [-1, 65536, 100000])
def test_close_bad_status_raises_value_error(echo_url, status):
    ws = websocket.create_connection(echo_url)
    with pytest.raises(ValueError):
        ws.close(status=status)
    # nothing was sent: the connection is still fine
    assert ws.connected
    ws.send("alive")
    assert ws.recv() == "alive"
    ws.close()
    assert not ws.connected


def test_close_twice_and_close_unconnected(echo_url):
    ws = websocket.create_connection(echo_url)
    ws.close()
    ws.close()
    assert not ws.connected
    fresh = websocket.WebSocket()
    fresh.close()
    assert fresh.connected is False
    assert fresh.sock is None


def test_close_timeout_when_peer_never_answers(scripted):
    def script(conn):
        conn.accept()
        frames = conn.recv_until_close(timeout=5, reply=False)
        conn.wait_eof(5)
        return frames

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    t0 = time.monotonic()
    ws.close(timeout=0.5)
    elapsed = time.monotonic() - t0
    assert 0.3 < elapsed < 2.5
    assert ws.close_frame is None
    assert not ws.connected
    frames = srv.result()
    assert [f.close_code for f in frames] == [1000]


def test_close_when_peer_drops_tcp_instead_of_answering(scripted):
    def script(conn):
        conn.accept()
        frames = conn.recv_until_close(timeout=5, reply=False)
        conn.close()
        return frames

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    t0 = time.monotonic()
    ws.close(timeout=5)
    assert time.monotonic() - t0 < 2.5
    assert ws.close_frame is None
    assert srv.result()[0].close_code == 1000


def test_close_skips_data_before_peer_close(scripted):
    def script(conn):
        conn.accept()
        got = conn.recv_until_close(timeout=5, reply=False)
        conn.send_frame(OP_TEXT, "late data")
        conn.send_frame(OP_CLOSE, close_payload(1000, "done"))
        return got

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    ws.close()
    assert ws.close_frame.data == b"\x03\xe8done"


def test_close_timeout_none_waits_for_reply(echo_url):
    ws = websocket.create_connection(echo_url)
    ws.close(timeout=None)
    assert ws.close_frame is not None
    assert not ws.connected


def test_server_initiated_close(echo_server):
    path = "/close?code=4000&reason=server+bye"
    ws = websocket.create_connection(echo_server.url + path)
    assert ws.recv_data() == (ABNF.OPCODE_CLOSE, b"\x0f\xa0server bye")
    assert not ws.connected
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    ws.close()  # must not raise (a no-op in the reference, which leaves the socket open)
    ws.shutdown()
    # the client answered (the reference always answers 1000; echoing 4000 is fine too), so
    # websockets saw a clean closing handshake rather than 1006
    code, _ = echo_server.wait_close(path)
    assert code in (1000, 4000)


def test_send_after_close_raises(echo_url):
    ws = websocket.create_connection(echo_url)
    ws.close()
    with pytest.raises(WebSocketConnectionClosedException):
        ws.send("late")
    with pytest.raises(WebSocketConnectionClosedException):
        ws.send_binary(b"late")
    with pytest.raises(WebSocketConnectionClosedException):
        ws.ping()
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    with pytest.raises(WebSocketException):
        ws.fileno()


def test_send_close(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    assert ws.send_close(1000, "sc") is None
    assert ws.connected is False
    # the peer answers; recv sees that close
    assert ws.recv() == ""
    frames = srv.result()
    assert frames[0].opcode == OP_CLOSE and frames[0].payload == b"\x03\xe8sc"
    ws.shutdown()


def test_send_close_defaults_and_bad_status(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    with pytest.raises(ValueError):
        ws.send_close(70000)
    assert ws.connected
    ws.send_close()
    assert srv.result()[0].payload == b"\x03\xe8"
    ws.shutdown()


def test_shutdown(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    assert ws.shutdown() is None
    assert ws.sock is None
    assert ws.connected is False
    # no close frame: the peer just sees EOF
    assert srv.result() == []
    with pytest.raises(WebSocketConnectionClosedException):
        ws.send("x")
    with pytest.raises(WebSocketException):
        ws.fileno()
    ws.shutdown()  # idempotent
    ws.close()  # no-op


def test_abort_wakes_blocked_recv(echo_server):
    ws = websocket.create_connection(echo_server.url + "/silent")
    result = {}

    def reader():
        t0 = time.monotonic()
        try:
            ws.recv()
            result["ret"] = "returned"
        except Exception as e:  # noqa: BLE001
            result["exc"] = e
        result["t"] = time.monotonic() - t0

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()
    ws.abort()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(result.get("exc"), WebSocketConnectionClosedException)
    ws.shutdown()


def test_abort_when_not_connected_is_harmless():
    ws = websocket.WebSocket()
    ws.abort()
    assert ws.sock is None


def test_close_from_other_thread_while_recv_blocks(echo_server):
    path = "/silent?close-from-thread"
    ws = websocket.create_connection(echo_server.url + path)
    result = {}

    def reader():
        try:
            result["ret"] = ws.recv()
        except Exception as e:  # noqa: BLE001
            result["exc"] = e

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    ws.close()
    assert time.monotonic() - t0 < 5
    t.join(5)
    assert not t.is_alive()
    assert result.get("ret") == "" or isinstance(result.get("exc"), WebSocketConnectionClosedException)
    assert not ws.connected
    assert echo_server.wait_close(path)[0] == 1000


def test_close_frame_reset_between_connections(echo_url, scripted):
    ws = websocket.WebSocket()
    ws.connect(echo_url)
    ws.close()
    assert ws.close_frame is not None

    def script(conn):
        conn.accept()
        conn.recv_until_close(reply=False)
        conn.close()

    srv = scripted(script)
    ws.connect(srv.url)
    assert ws.connected
    ws.close(timeout=2)
    assert ws.close_frame is None


def test_reconnect_same_object(echo_url):
    ws = websocket.WebSocket()
    for i in range(3):
        ws.connect(echo_url)
        ws.send(f"round {i}")
        assert ws.recv() == f"round {i}"
        ws.close()
        assert not ws.connected
