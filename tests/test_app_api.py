"""WebSocketApp: constructor, attributes, argument checks and every callback's arguments,
against real servers on 127.0.0.1 (tests/servers.py, tests/app_servers.py)."""

import functools
import json
import logging
import threading

import pytest

import websocket
from websocket import ABNF, WebSocketApp
from app_servers import (
    AppThread,
    Recorder,
    close_without_code_script,
    fragments_script,
    pong_script,
)

STRICT = hasattr(websocket, "_native")
ours_only = pytest.mark.skipif(not STRICT, reason="deliberate difference from websocket-client 1.9.2")

pytestmark = pytest.mark.timeout(60)


def close_after(n, rec_name="on_message"):
    """A ``then`` hook that closes the app after the n-th call."""
    count = [0]

    def hook(ws, *args):
        count[0] += 1
        if count[0] >= n:
            ws.close()

    return hook


# ---- constructor and attributes ----------------------------------------------------------

def test_positional_constructor_order():
    fns = [lambda *a, i=i: i for i in range(9)]
    mask = lambda n: b"\0" * n  # noqa: E731
    sock = object()
    app = WebSocketApp(
        "ws://h/", ["A: b"], fns[0], fns[1], fns[2], fns[3], fns[4], fns[5], fns[6], fns[7],
        True, mask, "c=1", ["p"], fns[8], sock,
    )
    assert app.url == "ws://h/"
    assert app.header == ["A: b"]
    assert [app.on_open, app.on_reconnect, app.on_message, app.on_error, app.on_close,
            app.on_ping, app.on_pong, app.on_cont_message, app.on_data] == fns
    assert app.get_mask_key is mask
    assert app.cookie == "c=1"
    assert app.subprotocols == ["p"]
    assert app.prepared_socket is sock


def test_default_attributes():
    app = WebSocketApp("ws://h/")
    assert app.header == []
    assert app.keep_running is False  # the keep_running parameter is ignored
    assert app.sock is None
    assert app.last_ping_tm == 0 and app.last_pong_tm == 0
    assert app.ping_interval == 0 and app.ping_timeout is None and app.ping_payload == ""
    assert app.has_errored is False and app.has_done_teardown is False
    assert app.last_close_frame is None
    assert app.cookie is None and app.subprotocols is None and app.prepared_socket is None
    for name in ("on_open", "on_reconnect", "on_message", "on_error", "on_close", "on_ping",
                 "on_pong", "on_cont_message", "on_data"):
        assert getattr(app, name) is None
    assert not app.ready()


def test_module_surface():
    import websocket._app as app_mod

    assert websocket.WebSocketApp is app_mod.WebSocketApp
    assert websocket.set_reconnect is app_mod.set_reconnect
    # imported from _app by downstream code
    from websocket._app import SSLDispatcher, Dispatcher, WrappedDispatcher  # noqa: F401
    from websocket._dispatcher import DispatcherBase  # noqa: F401


def test_send_without_connection_raises():
    app = WebSocketApp("ws://h/")
    for call in (lambda: app.send("x"), lambda: app.send_text("x"), lambda: app.send_bytes(b"x")):
        with pytest.raises(websocket.WebSocketConnectionClosedException, match="Connection is already closed."):
            call()
    app.close()  # no connection: nothing happens


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"ping_timeout": 0}, "Ensure ping_timeout > 0"),
        ({"ping_timeout": -1}, "Ensure ping_timeout > 0"),
        ({"ping_interval": -1}, "Ensure ping_interval >= 0"),
        ({"ping_interval": 1, "ping_timeout": 1}, "Ensure ping_interval > ping_timeout"),
        ({"ping_interval": 1, "ping_timeout": 2}, "Ensure ping_interval > ping_timeout"),
    ],
)
def test_run_forever_argument_checks(kwargs, message):
    rec = Recorder()
    app = WebSocketApp("ws://127.0.0.1:1/", **rec.callbacks())
    with pytest.raises(websocket.WebSocketException, match=message):
        app.run_forever(**kwargs)
    assert rec.events == []  # nothing was attempted


def test_run_forever_twice_raises(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", **rec.callbacks())
    t = AppThread(app)
    t.start()
    rec.wait_named("on_open")
    with pytest.raises(websocket.WebSocketException, match="socket is already opened"):
        app.run_forever()
    app.close()
    result = t.result()
    if STRICT:  # 1.9.2 may fail with 'NoneType' object has no attribute 'sock' (#1045)
        assert result is False


def test_ping_timeout_alone_and_interval_alone_are_accepted(echo_url):
    for kwargs in ({"ping_timeout": 5}, {"ping_interval": 5}):
        app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("x"), on_message=lambda ws, m: ws.close())
        assert app.run_forever(**kwargs) is False


@ours_only
def test_close_in_on_open(echo_url):
    """websocket-client 1.9.2 fails here ('NoneType' object has no attribute 'sock') and
    returns True."""
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.close(), **rec.callbacks("on_error", "on_close"))
    assert app.run_forever() is False
    assert rec.names() == ["on_close"]


# ---- callbacks and their arguments -------------------------------------------------------

def test_text_and_binary_messages(echo_url):
    rec = Recorder()

    def on_open(ws):
        ws.send("héllo")
        ws.send(b"\x00\xff", ABNF.OPCODE_BINARY)
        ws.send_text("text")
        ws.send_bytes(b"bytes")

    app = WebSocketApp(echo_url + "/", **rec.callbacks(
        "on_message", "on_data", "on_close", "on_error",
        on_message=close_after(4)))
    app.on_open = on_open  # assigned after construction
    assert app.run_forever() is False
    assert rec.named("on_message") == [("héllo",), (b"\x00\xff",), ("text",), (b"bytes",)]
    assert rec.named("on_data") == [
        ("héllo", ABNF.OPCODE_TEXT, True),
        (b"\x00\xff", ABNF.OPCODE_BINARY, True),
        ("text", ABNF.OPCODE_TEXT, True),
        (b"bytes", ABNF.OPCODE_BINARY, True),
    ]
    # on_data comes before on_message for each message
    names = [n for n in rec.names() if n in ("on_data", "on_message")]
    assert names == ["on_data", "on_message"] * 4
    assert rec.named("on_error") == []
    assert len(rec.named("on_close")) == 1


def test_send_bytes_default_opcode_is_text(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send(b"abc"),
                       **rec.callbacks("on_data", on_data=close_after(1)))
    app.run_forever()
    assert rec.named("on_data") == [("abc", ABNF.OPCODE_TEXT, True)]


def test_skip_utf8_validation_gives_bytes_for_text(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("héllo"),
                       **rec.callbacks("on_message", "on_data", on_message=close_after(1)))
    app.run_forever(skip_utf8_validation=True)
    assert rec.named("on_message") == [("héllo".encode(),)]
    assert rec.named("on_data") == [("héllo".encode(), ABNF.OPCODE_TEXT, True)]


def test_callbacks_run_on_the_run_forever_thread(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/ping?data=x", on_open=lambda ws: ws.send("m"),
                       **rec.callbacks("on_message", "on_ping", "on_close", on_message=close_after(1)))
    t = AppThread(app)
    t.start()
    assert t.result() is False
    assert set(rec.threads) == {"app-runner"}


def test_fragments_without_on_cont_message_are_joined(scripted):
    srv = scripted(fragments_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_message", "on_data", on_message=close_after(2)))
    app.run_forever()
    assert rec.named("on_message") == [("héllo wörld !",), (b"\x00\x01\x02",)]
    if STRICT:  # websocket-client 1.9.2 passes the last fragment's opcode (0) to on_data
        assert rec.named("on_data") == [("héllo wörld !", 1, True), (b"\x00\x01\x02", 2, True)]


def test_fragments_with_on_cont_message(scripted):
    srv = scripted(fragments_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks(
        "on_message", "on_data", "on_cont_message", on_cont_message=close_after(3)))
    app.run_forever()
    # the first fragment goes to on_message, the continuations to on_cont_message
    assert rec.named("on_message") == [("héllo ",), (b"\x00\x01",)]
    assert rec.named("on_cont_message") == [("wörld ".encode(), 0), (b"!", 1), (b"\x02", 1)]
    assert rec.named("on_data") == [
        ("héllo ", 1, True), ("wörld ".encode(), 0, 0), (b"!", 0, 1),
        (b"\x00\x01", 2, True), (b"\x02", 0, 1),
    ]


def test_on_ping_gets_payload_after_pong_was_sent(echo_url):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/ping?data=hello", **rec.callbacks("on_ping", "on_close", on_ping=lambda ws, d: ws.close()))
    assert app.run_forever() is False
    assert rec.named("on_ping") == [(b"hello",)]


def test_on_pong_and_ping_times(echo_url):
    rec = Recorder()
    seen = []

    def on_pong(ws, data):
        seen.append((ws.last_ping_tm, ws.last_pong_tm))
        if len(seen) == 2:
            ws.close()

    app = WebSocketApp(echo_url + "/", on_pong=on_pong, **rec.callbacks("on_error"))
    assert app.run_forever(ping_interval=0.2, ping_payload="pp") is False
    assert len(seen) == 2
    for ping_tm, pong_tm in seen:
        assert ping_tm > 0 and pong_tm >= ping_tm
    assert rec.named("on_error") == []
    assert app.last_ping_tm == 0 and app.last_pong_tm == 0  # reset by the teardown


def test_unsolicited_pong_reaches_on_pong(scripted):
    srv = scripted(pong_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_pong", on_pong=lambda ws, d: ws.close()))
    app.run_forever()
    assert rec.named("on_pong") == [(b"unasked",)]


@pytest.mark.parametrize("header", [
    ["X-Test: list"],
    {"X-Test": "dict", "X-None": None},
])
def test_header_list_and_dict(echo_url, header):
    got = []

    def on_message(ws, msg):
        got.append(json.loads(msg))
        ws.close()

    app = WebSocketApp(echo_url + "/headers", header=header, on_message=on_message)
    app.run_forever()
    names = {k.lower(): v for k, v in got[0]["headers"]}
    assert names["x-test"] in ("list", "dict")
    assert "x-none" not in names


def test_cookie_subprotocols_host_origin(echo_url):
    got = []

    def on_message(ws, msg):
        got.append((json.loads(msg), ws.sock.getsubprotocol()))
        ws.close()

    app = WebSocketApp(echo_url + "/headers", cookie="a=1", subprotocols=["chat", "x"],
                       on_message=on_message)
    app.run_forever(host="example.com", origin="http://o.example")
    info, sub = got[0]
    names = {k.lower(): v for k, v in info["headers"]}
    assert names["cookie"] == "a=1"
    assert names["host"] == "example.com"
    assert names["origin"] == "http://o.example"
    assert info["subprotocol"] == "chat" and sub == "chat"


def test_suppress_origin(echo_url):
    got = []
    app = WebSocketApp(echo_url + "/headers", on_message=lambda ws, m: (got.append(json.loads(m)), ws.close()))
    app.run_forever(suppress_origin=True)
    assert "origin" not in {k.lower() for k, _ in got[0]["headers"]}


def test_sock_and_ready_inside_callbacks(echo_url):
    seen = []

    def on_open(ws):
        seen.append((type(ws.sock).__name__, ws.ready(), ws.sock.connected))
        ws.close()

    app = WebSocketApp(echo_url + "/", on_open=on_open)
    app.run_forever()
    assert seen == [("WebSocket", True, True)]
    assert app.sock is None and not app.ready()


def test_close_frame_without_code(scripted):
    srv = scripted(close_without_code_script)
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks("on_close"))
    assert app.run_forever() is False
    assert rec.named("on_close") == [(None, None)]


# ---- callback shapes -------------------------------------------------------------------

class Handler:
    def __init__(self):
        self.got = []

    def on_message(self, ws, msg):
        self.got.append(("method", msg))
        ws.close()

    def __call__(self, ws, msg):
        self.got.append(("call", msg))
        ws.close()


def test_bound_method_callable_object_partial_and_varargs(echo_url):
    h = Handler()
    for cb in (h.on_message, h, functools.partial(lambda tag, ws, msg: (h.got.append((tag, msg)), ws.close()), "partial"),
               lambda *args: (h.got.append(("varargs", args[1])), args[0].close())):
        app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("m"), on_message=cb)
        assert app.run_forever() is False
    assert h.got == [("method", "m"), ("call", "m"), ("partial", "m"), ("varargs", "m")]


@ours_only
def test_callbacks_with_fewer_parameters(echo_url):
    """Callbacks written for older releases (``def on_close(ws):``) still work."""
    got = []

    def on_open(ws):
        ws.send("m")

    def on_message(ws):
        got.append("message")
        ws.close()

    def on_close(ws):
        got.append("close")

    def on_data():
        got.append("data")

    app = WebSocketApp(echo_url + "/", on_open=on_open, on_message=on_message, on_close=on_close,
                       on_error=lambda ws, e: got.append(("error", e)), on_data=on_data)
    assert app.run_forever() is False
    assert got == ["data", "message", "close"]


# ---- exceptions in callbacks -----------------------------------------------------------

def test_exception_in_callback_goes_to_on_error_and_app_keeps_running(echo_url, caplog):
    rec = Recorder()
    boom = ValueError("boom")

    def on_open(ws):
        ws.send("first")
        ws.send("second")

    def on_message(ws, msg):
        rec.add("msg", msg)
        if msg == "first":
            raise boom
        ws.close()

    app = WebSocketApp(echo_url + "/", on_open=on_open, on_message=on_message,
                       **rec.callbacks("on_error", "on_close"))
    with caplog.at_level(logging.ERROR, logger="websocket"):
        assert app.run_forever() is False
    assert rec.named("msg") == [("first",), ("second",)]
    assert rec.named("on_error") == [(boom,)]
    assert any("error from callback" in r.getMessage() and "boom" in r.getMessage() for r in caplog.records)
    assert len(rec.named("on_close")) == 1


def test_exception_in_on_open_and_on_close(echo_url):
    rec = Recorder()

    def on_open(ws):
        ws.send("m")
        raise RuntimeError("in open")

    def on_close(ws, code, reason):
        raise RuntimeError("in close")

    app = WebSocketApp(echo_url + "/", on_open=on_open, on_close=on_close,
                       **rec.callbacks("on_error", "on_message", on_message=close_after(1)))
    assert app.run_forever() is False
    errors = [str(e[0]) for e in rec.named("on_error")]
    assert errors == ["in open", "in close"]
    assert rec.named("on_message") == [("m",)]


@ours_only
def test_exception_in_on_error_is_logged_and_app_keeps_running(echo_url, caplog):
    rec = Recorder()

    def on_message(ws, msg):
        rec.add("msg", msg)
        if msg == "1":
            raise ValueError("first")
        ws.close()

    def on_error(ws, e):
        raise RuntimeError("in on_error")

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: (ws.send("1"), ws.send("2")),
                       on_message=on_message, on_error=on_error)
    with caplog.at_level(logging.ERROR, logger="websocket"):
        assert app.run_forever() is False
    assert rec.named("msg") == [("1",), ("2",)]
    assert any("in on_error" in r.getMessage() for r in caplog.records)


def test_trace_logs_connected(echo_url, caplog):
    with caplog.at_level(logging.DEBUG, logger="websocket"):
        WebSocketApp(echo_url + "/close").run_forever()
    assert "Websocket connected" in [r.getMessage() for r in caplog.records]


def test_many_queued_messages_arrive_in_order(echo_url):
    """The server pushes 3000 messages while on_open sleeps: all arrive, in order."""
    got = []

    def on_open(ws):
        threading.Event().wait(0.5)

    def on_message(ws, msg):
        got.append(msg)
        if len(got) == 3000:
            ws.close()

    app = WebSocketApp(echo_url + "/push?n=3000", on_open=on_open, on_message=on_message)
    assert app.run_forever() is False
    assert got == [f"msg-{i}" for i in range(3000)]


def test_wss(tls_server, ca_file):
    rec = Recorder()
    app = WebSocketApp(tls_server.url + "/", on_open=lambda ws: ws.send("secure"),
                       **rec.callbacks("on_message", "on_error", on_message=close_after(1)))
    assert app.run_forever(sslopt={"ca_certs": ca_file}) is False
    assert rec.named("on_message") == [("secure",)]
    assert rec.named("on_error") == []


def test_wss_certificate_error_goes_to_on_error(tls_server):
    import ssl

    rec = Recorder()
    app = WebSocketApp(tls_server.url + "/", **rec.callbacks("on_error", "on_close"))
    assert app.run_forever() is True
    assert isinstance(rec.named("on_error")[0][0], ssl.SSLError)
    assert rec.named("on_close") == [(None, None)]
