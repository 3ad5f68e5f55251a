"""WebSocketApp: how a run ends (server close, close() from any thread, errors, Ctrl-C,
SystemExit), what run_forever returns, and that a finished app can be freed."""

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import weakref

import pytest

import websocket
from websocket import WebSocketApp
from app_servers import AppThread, Recorder, drop_script

STRICT = hasattr(websocket, "_native")
ours_only = pytest.mark.skipif(not STRICT, reason="deliberate difference from websocket-client 1.9.2")

pytestmark = pytest.mark.timeout(60)


# ---- the server closes -----------------------------------------------------------------

@pytest.mark.parametrize("code, reason", [(1000, "bye"), (1001, "going"), (4001, "custom"), (1000, "")])
def test_server_close_reaches_on_close(echo_url, code, reason):
    rec = Recorder()
    app = WebSocketApp(f"{echo_url}/close?code={code}&reason={reason}", **rec.callbacks("on_close", "on_error", "on_open"))
    assert app.run_forever() is False
    assert rec.named("on_close") == [(code, reason or None)]
    if STRICT:  # kept for inspection; websocket-client 1.9.2 leaves it None
        assert app.last_close_frame is not None
    assert app.sock is None


@ours_only
def test_normal_server_close_calls_only_on_close(echo_url):
    """The README's semantics (and 1.8's): a close frame is not an error."""
    rec = Recorder()
    app = WebSocketApp(f"{echo_url}/close?code=1000&reason=bye", **rec.callbacks())
    assert app.run_forever() is False
    assert rec.names() == ["on_open", "on_close"]
    assert app.has_errored is False


@ours_only
def test_normal_server_close_does_not_reconnect(echo_url):
    rec = Recorder()
    app = WebSocketApp(f"{echo_url}/close?code=1000&reason=bye", **rec.callbacks())
    t = AppThread(app, reconnect=1)
    t.start()
    assert t.result(5) is False
    assert rec.names() == ["on_open", "on_close"]


@ours_only
def test_normal_close_is_not_logged_as_error(echo_url, caplog):
    import logging

    with caplog.at_level(logging.DEBUG, logger="websocket"):
        WebSocketApp(f"{echo_url}/close?code=1000&reason=bye").run_forever()
    msgs = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.INFO, "Connection closed normally (code 1000): bye - goodbye") in msgs
    assert not [m for lvl, m in msgs if lvl >= logging.ERROR]


# ---- close() ---------------------------------------------------------------------------

def test_close_from_callback(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("x"),
                       **rec.callbacks("on_message", "on_close", "on_error", on_message=lambda ws, m: ws.close()))
    assert app.run_forever() is False
    assert rec.named("on_message") == [("x",)]
    assert len(rec.named("on_close")) == 1
    assert rec.named("on_error") == []


def test_close_from_other_thread_returns_promptly(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/silent", **rec.callbacks("on_open", "on_close", "on_error"))
    t = AppThread(app)
    t.start()
    rec.wait_named("on_open")
    t0 = time.monotonic()
    app.close()
    result = t.result()
    if STRICT:  # 1.9.2 may fail with 'NoneType' object has no attribute 'sock' (#1045)
        assert result is False
    if STRICT:
        assert time.monotonic() - t0 < 2  # the reference may need its 10 s select timeout
    assert rec.named("on_error") == []
    assert len(rec.named("on_close")) == 1


@ours_only
def test_close_from_other_thread_reports_the_servers_close_code(echo_server, echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/close-thread", **rec.callbacks("on_open", "on_close"))
    t = AppThread(app)
    t.start()
    rec.wait_named("on_open")
    app.close(status=4000, reason=b"later")
    assert t.result(5) is False
    assert echo_server.wait_close("/close-thread") == (4000, "later")
    assert rec.named("on_close") == [(4000, "later")]  # websockets echoes the close frame


def test_close_status_and_reason_reach_the_server(echo_server, echo_url):
    app = WebSocketApp(echo_url + "/close-args", on_open=lambda ws: ws.send("x"),
                       on_message=lambda ws, m: ws.close(status=4321, reason=b"done"))
    assert app.run_forever() is False
    assert echo_server.wait_close("/close-args") == (4321, "done")


def test_close_while_a_callback_runs_stops_delivery(echo_url):
    """close() from another thread while on_message is busy: no more messages afterwards."""
    rec = Recorder()
    started = threading.Event()

    def on_message(ws, msg):
        rec.add("msg", msg)
        started.set()
        time.sleep(0.5)

    app = WebSocketApp(echo_url + "/push?n=50", on_message=on_message, **rec.callbacks("on_close"))
    t = AppThread(app)
    t.start()
    assert started.wait(5)
    app.close()
    result = t.result()
    if STRICT:  # 1.9.2 may fail with 'NoneType' object has no attribute 'sock' (#1045)
        assert result is False
    assert len(rec.named("msg")) <= 2
    assert len(rec.named("on_close")) == 1


def test_keep_running_false_ends_the_run(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/silent", **rec.callbacks("on_open", "on_close"))
    t = AppThread(app)
    t.start()
    rec.wait_named("on_open")
    t0 = time.monotonic()
    app.keep_running = False
    assert t.result(15) is False
    if STRICT:
        assert time.monotonic() - t0 < 2  # the reference notices it only after its 10 s select
    assert len(rec.named("on_close")) == 1


def test_send_after_close_raises(echo_url):
    app = WebSocketApp(echo_url + "/close")
    app.run_forever()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        app.send("late")


def test_run_forever_again_after_it_returned(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("x"), on_message=lambda ws, m: ws.close(),
                       **rec.callbacks("on_close"))
    assert app.run_forever() is False
    assert app.run_forever() is False
    assert len(rec.named("on_close")) == 2


# ---- errors ------------------------------------------------------------------------------

def test_connection_refused(closed_port):
    rec = Recorder()
    app = WebSocketApp(f"ws://127.0.0.1:{closed_port}/", **rec.callbacks())
    assert app.run_forever() is True
    assert rec.names() == ["on_error", "on_close"]
    assert isinstance(rec.named("on_error")[0][0], ConnectionRefusedError)
    assert rec.named("on_close") == [(None, None)]
    assert app.has_errored is True


def test_bad_status(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/reject?status=403", **rec.callbacks())
    assert app.run_forever() is True
    err = rec.named("on_error")[0][0]
    assert isinstance(err, websocket.WebSocketBadStatusException)
    assert err.status_code == 403
    assert rec.named("on_close") == [(None, None)]


def test_dropped_connection(scripted):
    srv = scripted(drop_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks())
    assert app.run_forever() is True
    assert rec.names() == ["on_open", "on_error", "on_close"]
    assert isinstance(rec.named("on_error")[0][0], websocket.WebSocketConnectionClosedException)
    assert rec.named("on_close") == [(None, None)]


def test_keyboard_interrupt_in_callback(echo_url):
    rec = Recorder()

    def on_message(ws, msg):
        raise KeyboardInterrupt

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("x"), on_message=on_message,
                       **rec.callbacks("on_error", "on_close"))
    assert app.run_forever() is True  # the reference's behaviour (its docstring says False)
    assert isinstance(rec.named("on_error")[0][0], KeyboardInterrupt)
    assert rec.named("on_close") == [(None, None)]
    assert app.sock is None


def test_system_exit_in_callback_propagates(echo_url):
    rec = Recorder()

    def on_message(ws, msg):
        sys.exit(3)

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("x"), on_message=on_message,
                       **rec.callbacks("on_error", "on_close"))
    with pytest.raises(SystemExit):
        app.run_forever()
    assert isinstance(rec.named("on_error")[0][0], SystemExit)
    assert rec.named("on_close") == [(None, None)]
    assert app.sock is None


SIGINT_CHILD = r"""
import sys, websocket
def on_open(ws):
    print("open", flush=True)
def on_close(ws, code, reason):
    print("closed", code, reason, flush=True)
def on_error(ws, e):
    print("error", type(e).__name__, flush=True)
app = websocket.WebSocketApp(sys.argv[1], on_open=on_open, on_close=on_close, on_error=on_error)
print("returned", app.run_forever(), flush=True)
"""


def test_ctrl_c_ends_run_forever(echo_url, child_env):
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_CHILD, echo_url + "/silent"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env)
    try:
        assert proc.stdout.readline().strip() == "open"
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "error KeyboardInterrupt" in out, err
    assert "closed None None" in out
    assert "returned True" in out
    assert time.monotonic() - t0 < 5


# ---- garbage collection ------------------------------------------------------------------

def _run_and_forget(url, **kwargs):
    rec = Recorder()
    app = WebSocketApp(url, on_open=lambda ws: ws.send("x"),
                       **rec.callbacks("on_message", "on_close", "on_error", on_message=lambda ws, m: ws.close()))
    assert app.run_forever(**kwargs) is False
    return weakref.ref(app), rec


@ours_only
@pytest.mark.parametrize("kwargs", [{}, {"ping_interval": 0.1, "ping_timeout": 0.05}, {"reconnect": 1}])
def test_finished_app_is_freed_without_gc(echo_url, kwargs):
    """No reference cycle: the app goes away as soon as the last reference does."""
    gc.collect()
    gc.disable()
    try:
        ref, rec = _run_and_forget(echo_url + "/", **kwargs)
        assert rec.named("on_close")
        assert ref() is None
    finally:
        gc.enable()


@ours_only
def test_failed_app_is_freed_without_gc(closed_port):
    gc.collect()
    gc.disable()
    try:
        app = WebSocketApp(f"ws://127.0.0.1:{closed_port}/", on_error=lambda ws, e: None)
        assert app.run_forever() is True
        ref = weakref.ref(app)
        del app
        assert ref() is None
    finally:
        gc.enable()


def test_finished_app_is_collectable(echo_url):
    ref, _ = _run_and_forget(echo_url + "/", ping_interval=0.2)
    gc.collect()
    assert ref() is None


def test_no_thread_left_behind(echo_url):
    before = set(threading.enumerate())
    _run_and_forget(echo_url + "/", ping_interval=0.1)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (set(threading.enumerate()) - before)


@ours_only
def test_no_thread_started_at_all(echo_url):
    names = []

    def on_open(ws):
        names.extend(t.name for t in threading.enumerate())
        ws.close()

    before = {t.name for t in threading.enumerate()}
    WebSocketApp(echo_url + "/", on_open=on_open).run_forever(ping_interval=0.1)
    assert set(names) == before
