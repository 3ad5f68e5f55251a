"""WebSocketApp keepalive: ping_interval / ping_timeout / ping_payload, and server pings
answered while a Python callback is still running."""

import time

import pytest

import websocket
from websocket import WebSocketApp
from app_servers import AppThread, Recorder, no_pong_script, ping_at_open_script, ping_while_busy_script
from servers import OP_PING, echo_script

STRICT = hasattr(websocket, "_native")
ours_only = pytest.mark.skipif(not STRICT, reason="deliberate difference from websocket-client 1.9.2")

pytestmark = pytest.mark.timeout(60)


def test_pings_are_sent_with_the_payload(scripted):
    srv = scripted(echo_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_pong", "on_error", on_pong=lambda ws, d: (
        ws.close() if len(rec.named("on_pong")) >= 3 else None)))
    assert app.run_forever(ping_interval=0.15, ping_timeout=0.1, ping_payload="keepalive") is False
    assert rec.named("on_pong")[:3] == [(b"keepalive",)] * 3
    assert rec.named("on_error") == []
    pings = [f for f in srv.result(0) if f.opcode == OP_PING]
    assert len(pings) >= 3
    assert all(f.payload == b"keepalive" for f in pings)


def test_ping_interval_spacing(scripted):
    srv = scripted(echo_script)
    app = WebSocketApp(srv.url + "/")
    t = AppThread(app, ping_interval=0.2)
    t.start()
    time.sleep(1.1)
    app.close()
    result = t.result()
    if STRICT:  # 1.9.2 may fail with 'NoneType' object has no attribute 'sock' (#1045)
        assert result is False
    pings = [f for f in srv.result(0) if f.opcode == OP_PING]
    assert 3 <= len(pings) <= 6


def test_no_pings_without_ping_interval(scripted):
    srv = scripted(echo_script)
    app = WebSocketApp(srv.url + "/")
    t = AppThread(app)
    t.start()
    time.sleep(0.5)
    app.close()
    t.result()
    assert [f for f in srv.result(0) if f.opcode == OP_PING] == []


def test_ping_timeout_when_server_never_answers(scripted):
    srv = scripted(no_pong_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks())
    t0 = time.monotonic()
    t = AppThread(app, ping_interval=0.4, ping_timeout=0.2)
    t.start()
    assert t.result(15) is True
    elapsed = time.monotonic() - t0
    assert rec.names() == ["on_open", "on_error", "on_close"]
    err = rec.named("on_error")[0][0]
    assert isinstance(err, websocket.WebSocketTimeoutException)
    assert str(err) == "ping/pong timed out"
    assert rec.named("on_close") == [(None, None)]
    if STRICT:
        assert elapsed < 2.5
    assert srv.result(0)  # the server did get pings


def test_ping_timeout_does_not_fire_while_pongs_come_back(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", **rec.callbacks("on_error", "on_pong"))
    t = AppThread(app, ping_interval=0.1, ping_timeout=0.05)
    t.start()
    time.sleep(1.0)
    app.close()
    result = t.result()
    if STRICT:  # 1.9.2 may fail with 'NoneType' object has no attribute 'sock' (#1045)
        assert result is False
    assert rec.named("on_error") == []
    assert len(rec.named("on_pong")) >= 5


@ours_only
def test_slow_callback_does_not_cause_a_ping_timeout(echo_url):
    """A pong that arrived while a callback was busy counts as in time."""
    rec = Recorder()

    def on_pong(ws, data):
        rec.add("pong")
        if len(rec.named("pong")) == 1:
            time.sleep(0.6)  # longer than ping_timeout; the next pong waits in the queue
        elif len(rec.named("pong")) >= 3:
            ws.close()

    app = WebSocketApp(echo_url + "/", on_pong=on_pong, **rec.callbacks("on_error"))
    assert app.run_forever(ping_interval=0.2, ping_timeout=0.1) is False
    assert rec.named("on_error") == []


@ours_only
@pytest.mark.drivers("native")  # the Python driver answers pings when it reads, as the reference
def test_server_ping_answered_while_callback_sleeps(scripted):
    """The engine answers the server's ping at once, although on_message is still
    sleeping; on_ping is called afterwards, on the run_forever thread."""
    srv = scripted(ping_while_busy_script)
    rec = Recorder()

    def on_message(ws, msg):
        rec.add("msg", msg)
        if msg == "sleep":
            time.sleep(2.0)
        elif msg == "done":
            ws.close()

    app = WebSocketApp(srv.url + "/", on_message=on_message, **rec.callbacks("on_ping"))
    t = AppThread(app)
    t.start()
    assert t.result(15) is False
    latency = srv.result(0)["latency"]
    assert latency is not None and latency < 0.5, latency
    assert rec.named("on_ping") == [(b"are-you-there",)]
    assert [e[0] for e in rec.events] == ["msg", "on_ping", "msg"]
    assert set(rec.threads) == {"app-runner"}


@ours_only
@pytest.mark.drivers("native")  # the Python driver answers pings when it reads, as the reference
def test_ping_right_after_the_handshake_answered_before_the_first_recv(scripted):
    """A connection is watched from its opening: a ping the server sends with its 101 is
    answered while the caller has not called recv() yet (it is busy elsewhere for 1 s)."""
    srv = scripted(ping_at_open_script)
    ws = websocket.create_connection(srv.url + "/")
    try:
        time.sleep(1.0)
        assert ws.recv() == "done"
    finally:
        ws.close()
    latency = srv.result(0)["latency"]
    assert latency is not None and latency < 0.5, latency


def test_server_ping_is_answered(scripted):
    """Also true for the reference (once the callback returns)."""
    srv = scripted(ping_while_busy_script)

    def on_message(ws, msg):
        if msg == "sleep":
            time.sleep(0.2)
        elif msg == "done":
            ws.close()

    app = WebSocketApp(srv.url + "/", on_message=on_message)
    assert app.run_forever() is False
    assert srv.result(0)["latency"] is not None
