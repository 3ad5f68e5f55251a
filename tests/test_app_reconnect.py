"""WebSocketApp reconnect: after a dropped connection or a server restart, wait, connect
again and call on_reconnect (or on_open); the header callable is called again."""

import time

import pytest

import websocket
from websocket import WebSocketApp
from app_servers import AppThread, ProcessEchoServer, Recorder, drop_script
from servers import echo_script

STRICT = hasattr(websocket, "_native")
ours_only = pytest.mark.skipif(not STRICT, reason="deliberate difference from websocket-client 1.9.2")

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def proc_server():
    srv = ProcessEchoServer()
    srv.start()
    yield srv
    srv.kill()


def test_reconnect_after_server_restart(proc_server):
    rec = Recorder()
    app = WebSocketApp(proc_server.url + "/", on_open=lambda ws: ws.send("hello"),
                       **rec.callbacks("on_message", "on_reconnect", "on_error", "on_close"))
    t = AppThread(app, reconnect=1)
    t.start()
    rec.wait_named("on_message")
    proc_server.kill()  # connections die without a close frame
    time.sleep(0.5)
    proc_server.start()  # same port
    rec.wait_named("on_reconnect", timeout=15)
    app.send("again")
    rec.wait_named("on_message", 2)
    assert rec.named("on_message") == [("hello",), ("again",)]
    assert app.ready()
    app.close()
    result = t.result()
    if STRICT:
        assert result is False  # ended by close()
        # the drop was reported; nothing reported for the attempts while the server was down
        assert len(rec.named("on_error")) == 1
    assert len(rec.named("on_close")) == 1
    assert isinstance(rec.named("on_error")[0][0], Exception)


def test_reconnect_calls_on_open_when_no_on_reconnect(scripted):
    srv = scripted([drop_script, echo_script])
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_error", "on_close"))
    t = AppThread(app, reconnect=1)
    t.start()
    rec.wait_named("on_open", 2, timeout=10)
    app.close()
    t.result()
    assert len(rec.named("on_open")) == 2
    assert len(rec.named("on_close")) == 1


def test_header_callable_is_called_on_every_connect(scripted):
    srv = scripted([drop_script, drop_script, echo_script])
    calls = []

    def header():
        calls.append(time.monotonic())
        return {"X-Attempt": str(len(calls))}

    rec = Recorder()
    app = WebSocketApp(srv.url + "/", header=header, **rec.callbacks("on_open", "on_reconnect"))
    t = AppThread(app, reconnect=1)
    t.start()
    rec.wait_named("on_reconnect", 2, timeout=15)
    app.close()
    t.result()
    assert len(calls) == 3
    attempts = [c.header("X-Attempt") for c in srv.conns[:3]]
    assert attempts == ["1", "2", "3"]


def test_reconnect_waits_the_given_delay(scripted):
    srv = scripted([drop_script, echo_script])
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_error"))
    t = AppThread(app, reconnect=2)
    t.start()
    rec.wait_named("on_error")
    t_err = time.monotonic()
    rec.wait_named("on_open", 2, timeout=10)
    waited = time.monotonic() - t_err
    app.close()
    t.result()
    assert 1.5 < waited < 4


def test_set_reconnect_gives_the_default(scripted):
    srv = scripted([drop_script, echo_script])
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_reconnect"))
    websocket.set_reconnect(1)
    try:
        t = AppThread(app)
        t.start()
        rec.wait_named("on_reconnect", timeout=10)
    finally:
        websocket.set_reconnect(0)
    app.close()
    t.result()


def test_server_going_away_with_reconnect(echo_url):
    """A 1001 close (server shutting down) is followed by a reconnect."""
    rec = Recorder()
    app = WebSocketApp(echo_url + "/close?code=1001&reason=restart", **rec.callbacks("on_open", "on_close"))
    t = AppThread(app, reconnect=1)
    t.start()
    rec.wait_named("on_open", 2, timeout=10)
    app.close()
    t.result()
    assert len(rec.named("on_close")) == 1


def test_initial_connect_failure_is_retried():
    srv = ProcessEchoServer()  # a free port, nothing listening yet
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_error", "on_reconnect"))
    t = AppThread(app, reconnect=1)
    t.start()
    try:
        rec.wait_named("on_error")
        time.sleep(1.5)
        srv.start()
        rec.wait_named("on_reconnect", timeout=10)
        app.close()
        t.result()
    finally:
        srv.kill()
    # the first failure was reported, the retries were not
    assert len(rec.named("on_error")) == 1
    assert isinstance(rec.named("on_error")[0][0], ConnectionRefusedError)
    assert rec.named("on_open") == []


@ours_only
def test_close_during_reconnect_wait_returns_promptly(scripted):
    srv = scripted([drop_script, echo_script])
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_error", "on_close"))
    t = AppThread(app, reconnect=30)
    t.start()
    rec.wait_named("on_error")
    assert not app.ready()
    t0 = time.monotonic()
    app.close()
    assert t.result(5) is False
    assert time.monotonic() - t0 < 1
    assert rec.named("on_close") == [(None, None)]
    assert len(rec.named("on_open")) == 1


@ours_only
def test_on_error_reported_for_each_drop(scripted):
    srv = scripted([drop_script, drop_script, echo_script])
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_open", "on_reconnect", "on_error"))
    t = AppThread(app, reconnect=1)
    t.start()
    rec.wait_named("on_reconnect", 2, timeout=15)
    app.close()
    t.result()
    assert len(rec.named("on_error")) == 2
