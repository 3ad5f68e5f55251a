"""WebSocketApp with a custom (rel-style) dispatcher, and the proxy options of run_forever."""

import heapq
import itertools
import select
import time

import pytest

import websocket
from websocket import WebSocketApp
from app_servers import ConnectProxy, Recorder, drop_script, no_pong_script

STRICT = hasattr(websocket, "_native")
ours_only = pytest.mark.skipif(not STRICT, reason="deliberate difference from websocket-client 1.9.2")

pytestmark = pytest.mark.timeout(60)


class MiniLoop:
    """The smallest rel-style event loop: read(sock, cb), timeout(s, cb, *args) (repeats
    while cb returns True), signal(), abort(), and dispatch() to run it."""

    def __init__(self):
        self.readers = {}
        self.timers = []
        self.seq = itertools.count()
        self.running = False
        self.signals = {}

    def read(self, sock, cb, *args):
        self.readers[sock.fileno()] = (sock, cb, args)

    def timeout(self, seconds, cb, *args):
        heapq.heappush(self.timers, (time.monotonic() + seconds, next(self.seq), seconds, cb, args))

    def signal(self, sig, cb, *args):
        self.signals[sig] = cb

    def abort(self):
        self.running = False

    def buffwrite(self, sock, data, send, on_error):
        send(sock, data)  # websocket-client 1.9.2 sends through here

    def dispatch(self, limit=10.0):
        self.running = True
        deadline = time.monotonic() + limit
        while self.running and (self.readers or self.timers) and time.monotonic() < deadline:
            now = time.monotonic()
            wait = 0.2
            if self.timers:
                wait = max(0.0, min(wait, self.timers[0][0] - now))
            # a socket closed behind our back (fileno() -1) is forgotten
            for fd, entry in list(self.readers.items()):
                if entry[0].fileno() != fd:
                    del self.readers[fd]
            ready = []
            if self.readers:
                ready, _, _ = select.select(list(self.readers), [], [], wait)
            else:
                time.sleep(wait)
            for fd in ready:
                entry = self.readers.get(fd)
                if entry and not entry[1](*entry[2]):
                    if self.readers.get(fd) is entry:
                        del self.readers[fd]
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, seconds, cb, args = heapq.heappop(self.timers)
                if cb(*args):
                    self.timeout(seconds, cb, *args)
        self.running = False


def test_custom_dispatcher_drives_the_app(echo_url):
    loop = MiniLoop()
    rec = Recorder()
    count = [0]

    def on_message(ws, msg):
        rec.add("msg", msg)
        count[0] += 1
        if count[0] < 5:
            ws.send(f"m{count[0]}")
        else:
            ws.close()

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("m0"), on_message=on_message,
                       **rec.callbacks("on_close", "on_error"))
    t0 = time.monotonic()
    assert app.run_forever(dispatcher=loop) is False  # returns at once
    assert time.monotonic() - t0 < 2
    assert 2 in loop.signals  # Ctrl-C aborts the user's loop
    assert rec.named("msg") == []
    loop.dispatch()
    assert rec.named("msg") == [(f"m{i}",) for i in range(5)]
    if STRICT:  # websocket-client 1.9.2 does not call on_close after close() here
        assert len(rec.named("on_close")) == 1
    assert rec.named("on_error") == []


def test_custom_dispatcher_server_close(echo_url):
    loop = MiniLoop()
    rec = Recorder()
    app = WebSocketApp(echo_url + "/close?code=1000&reason=bye", **rec.callbacks("on_open", "on_close"))
    app.run_forever(dispatcher=loop)
    loop.dispatch()
    assert rec.named("on_close") == [(1000, "bye")]


def test_custom_dispatcher_pings(echo_url):
    loop = MiniLoop()
    rec = Recorder()

    def on_pong(ws, data):
        rec.add("pong", data)
        if len(rec.named("pong")) == 3:
            ws.close()

    app = WebSocketApp(echo_url + "/", on_pong=on_pong, **rec.callbacks("on_error", "on_close"))
    app.run_forever(dispatcher=loop, ping_interval=0.1, ping_timeout=0.05, ping_payload="d")
    loop.dispatch()
    assert rec.named("pong") == [(b"d",)] * 3
    assert rec.named("on_error") == []
    if STRICT:  # websocket-client 1.9.2 does not call on_close after close() here
        assert len(rec.named("on_close")) == 1


@ours_only
def test_custom_dispatcher_ping_timeout(scripted):
    """(websocket-client 1.9.2 raises the timeout out of the user's loop instead.)"""
    srv = scripted(no_pong_script)
    loop = MiniLoop()
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks())
    app.run_forever(dispatcher=loop, ping_interval=0.3, ping_timeout=0.1)
    loop.dispatch()
    assert rec.names() == ["on_open", "on_error", "on_close"]
    assert str(rec.named("on_error")[0][0]) == "ping/pong timed out"


def test_custom_dispatcher_reconnect(scripted):
    from servers import echo_script

    srv = scripted([drop_script, echo_script])
    loop = MiniLoop()
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", on_reconnect=lambda ws: ws.send("back"),
                       on_message=lambda ws, m: (rec.add("msg", m), ws.close()),
                       **rec.callbacks("on_open", "on_close"))
    app.run_forever(dispatcher=loop, reconnect=1)
    loop.dispatch()
    assert rec.named("msg") == [("back",)]
    assert len(rec.named("on_open")) == 1
    if STRICT:  # websocket-client 1.9.2 does not call on_close after close() here
        assert len(rec.named("on_close")) == 1


@ours_only
def test_unusable_dispatcher_is_refused():
    app = WebSocketApp("ws://127.0.0.1:1/")
    with pytest.raises(websocket.WebSocketException, match="rel-style"):
        app.run_forever(dispatcher=object())


def test_rel_dispatcher(echo_url):
    import rel  # requirements-test.txt (the reference venv of scripts/test installs it too)

    rec = Recorder()

    def on_message(ws, msg):
        rec.add("msg", msg)
        ws.close()
        rel.abort()

    def on_close(ws, code, reason):
        rec.add("close", code, reason)

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("via rel"), on_message=on_message,
                       on_close=on_close)
    assert app.run_forever(dispatcher=rel) is False
    rel.timeout(10, rel.abort)  # safety net
    rel.dispatch()
    assert rec.named("msg") == [("via rel",)]
    if STRICT:  # websocket-client 1.9.2 never calls on_close here
        assert len(rec.named("close")) == 1


# ---- proxies -------------------------------------------------------------------------------

@ours_only
def test_http_proxy_without_proxy_type(echo_url):
    """websocket-client 1.9.2 fails here: 'Only http, socks4, socks5 proxy protocols are
    supported' (proxy_type=None)."""
    proxy = ConnectProxy()
    try:
        rec = Recorder()
        app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("through"),
                           **rec.callbacks("on_message", "on_error", on_message=lambda ws, m: ws.close()))
        result = app.run_forever(http_proxy_host="127.0.0.1", http_proxy_port=proxy.port)
        assert rec.named("on_error") == []
        assert result is False
        assert rec.named("on_message") == [("through",)]
        assert proxy.targets == [echo_url[len("ws://"):]]
    finally:
        proxy.stop()


def test_http_proxy_with_proxy_type(echo_url):
    proxy = ConnectProxy()
    try:
        rec = Recorder()
        app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("through"),
                           **rec.callbacks("on_message", "on_error", on_message=lambda ws, m: ws.close()))
        app.run_forever(http_proxy_host="127.0.0.1", http_proxy_port=proxy.port, proxy_type="http")
        assert rec.named("on_error") == []
        assert rec.named("on_message") == [("through",)]
        assert len(proxy.targets) == 1
    finally:
        proxy.stop()


def test_http_no_proxy_bypasses_the_proxy(echo_url, closed_port):
    rec = Recorder()
    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("direct"),
                       **rec.callbacks("on_message", "on_error", on_message=lambda ws, m: ws.close()))
    app.run_forever(http_proxy_host="127.0.0.1", http_proxy_port=closed_port,
                    http_no_proxy=["127.0.0.1"], proxy_type="http")
    assert rec.named("on_error") == []
    assert rec.named("on_message") == [("direct",)]


def test_ssl_dispatcher_select_results():
    """SSLDispatcher.select: ``[sock]`` when the TLS layer has bytes pending, without waiting;
    otherwise the first selector result's key, or None when nothing is ready."""

    class Sock:
        def __init__(self, pending):
            self._pending = pending

        def pending(self):
            return self._pending

    class Selector:
        def __init__(self, ready):
            self.ready = ready
            self.waits = []

        def select(self, timeout):
            self.waits.append(timeout)
            return self.ready

    app = WebSocketApp("wss://example.invalid/")
    app.sock = type("WS", (), {})()
    dispatcher = websocket._dispatcher.SSLDispatcher(app, 5.0)
    app.sock.sock = Sock(True)
    sel = Selector([])
    assert dispatcher.select(None, sel) == [app.sock.sock]
    assert sel.waits == []
    app.sock.sock = Sock(False)
    assert dispatcher.select(None, Selector([("key", 1)])) == "key"
    sel = Selector([])
    assert dispatcher.select(None, sel) is None
    assert sel.waits == [5.0]


def test_custom_dispatcher_fragments(scripted):
    from app_servers import fragments_script

    srv = scripted(fragments_script)
    loop = MiniLoop()
    rec = Recorder()
    app = WebSocketApp(srv.url + "/", **rec.callbacks(
        "on_message", "on_cont_message",
        on_cont_message=lambda ws, d, fin: ws.close() if len(rec.named("on_cont_message")) == 3 else None))
    app.run_forever(dispatcher=loop)
    loop.dispatch()
    assert rec.named("on_message") == [("héllo ",), (b"\x00\x01",)]
    assert rec.named("on_cont_message") == [("wörld ".encode(), 0), (b"!", 1), (b"\x02", 1)]
