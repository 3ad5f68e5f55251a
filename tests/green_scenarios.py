"""Scenarios for tests/test_green.py, run in a fresh interpreter that gevent or eventlet
has monkey-patched before anything else is imported (``websocket`` included).

    python green_scenarios.py HUB SCENARIO [SCENARIO...]

``HUB`` is ``gevent`` (``gevent.monkey.patch_all()``), ``eventlet``
(``eventlet.monkey_patch()``) or ``threads`` (nothing patched). The addresses of the peers
(tests/green_servers.py, in another process) come as JSON in ``GREEN_SERVERS``;
``GREEN_DRIVER`` (``native``, ``python``), when set, is passed to
``websocket.setdefaultdriver`` (the tests use it to check that a blocked hub is seen).
``GREEN_WATCHDOG`` (seconds, default 90) bounds the whole run: past it, faulthandler prints
every thread's stack and ends the process (a blocked hub cannot be interrupted otherwise).

Everything runs with the same scenario code under both hubs: ``threading.Thread``,
``time.sleep``, ``socket`` and ``ssl`` are the hub's after patching. A ticker thread (a
greenlet under a hub) sleeps 10 ms in a loop and records when it wakes up; ``measure``
gives the largest gap between two of its ticks around a waiting point, which stays near
10 ms only if nothing blocked the hub meanwhile. The ticker also samples the process's OS
threads (/proc/self/task) at every tick, so a thread started and ended within a scenario is
still seen.

Each scenario prints one line ``RESULT {json}`` (``name``, ``error`` with a traceback, and
its figures); at the end one line ``THREADS {json}`` says which OS threads appeared (see
``thread_report``).
"""

from __future__ import annotations

import sys

HUB = sys.argv[1] if len(sys.argv) > 1 else ""
if HUB == "gevent":
    from gevent import monkey

    monkey.patch_all()
elif HUB == "eventlet":
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()
elif HUB != "threads":
    raise SystemExit(f"usage: {sys.argv[0]} gevent|eventlet|threads SCENARIO...")

import bisect  # noqa: E402
import contextlib  # noqa: E402
import faulthandler  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import websocket  # noqa: E402

STRICT = hasattr(websocket, "_native")
CFG = json.loads(os.environ.get("GREEN_SERVERS", "{}"))
if os.environ.get("GREEN_DRIVER") and STRICT:
    websocket.setdefaultdriver(os.environ["GREEN_DRIVER"])

# The native engine's reactor thread ("websocket-reactor", cut to 15 characters by Linux).
REACTOR_COMM = "websocket-react"


# ---- OS threads -------------------------------------------------------------------------------


def os_threads() -> dict:
    """{tid: name} of this process's OS threads."""
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                out[int(tid)] = f.read().strip()
        except OSError:
            pass
    return out


# gevent's threadpool workers started so far. Counted as they start, not as they are at the
# end: an idle worker of the hub's pool exits after GEVENT_THREADPOOL_IDLE_TASK_TIMEOUT (5 s)
# and a later name look-up starts another one, which a count of the live ones would miss.
_GEVENT_WORKERS_STARTED = [0]
if HUB == "gevent":
    import gevent.threadpool as _gevent_threadpool

    _register_worker = _gevent_threadpool.ThreadPool._register_worker

    def _counting_register_worker(self, worker):  # type: ignore[no-untyped-def]
        _GEVENT_WORKERS_STARTED[0] += 1
        return _register_worker(self, worker)

    _gevent_threadpool.ThreadPool._register_worker = _counting_register_worker


def hub_os_threads() -> int:
    """How many OS threads the hub itself started: gevent's threadpool (its default resolver
    uses it for DNS) since the process started, eventlet's tpool."""
    if HUB == "gevent":
        return _GEVENT_WORKERS_STARTED[0]
    if HUB == "eventlet":
        from eventlet import tpool

        return len(getattr(tpool, "_threads", ()))
    return 0


def scenario_thread_ids() -> set:
    """Native ids of the OS threads the scenarios started themselves (named "scenario-...";
    under a hub these are greenlets and have none of their own)."""
    if HUB != "threads":
        return set()
    return {t.native_id for t in threading.enumerate() if t.name.startswith("scenario-") and t.native_id}


# ---- the ticker ----------------------------------------------------------------------------


class Ticker:
    PERIOD = 0.01

    def __init__(self) -> None:
        self.ticks = [time.monotonic()]
        self.seen_threads = os_threads()
        self.scenario_ids: set = set()
        self.running = True
        self.thread = threading.Thread(target=self._run, name="scenario-ticker", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            time.sleep(self.PERIOD)
            self.ticks.append(time.monotonic())
            self.seen_threads.update(os_threads())
            self.scenario_ids |= scenario_thread_ids()

    def max_gap(self, start: float, end: float) -> float:
        """The largest interval between consecutive ticks that overlaps [start, end]."""
        ticks = self.ticks[:]
        i = max(bisect.bisect_right(ticks, start) - 1, 0)
        gap = 0.0
        while i + 1 < len(ticks) and ticks[i] < end:
            gap = max(gap, ticks[i + 1] - ticks[i])
            i += 1
        return gap

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)


TICKER: Ticker


@contextlib.contextmanager
def measure(r: dict, key: str = ""):
    """Times the block and stores its duration and the ticker's largest gap around it in
    ``r`` (as ``duration``/``max_gap``, or ``KEY_duration``/``KEY_max_gap``)."""
    # A tick first: what blocked the hub before (an import...) is not the block's.
    time.sleep(2 * Ticker.PERIOD)
    t0 = time.monotonic()
    try:
        yield
    finally:
        t1 = time.monotonic()
        # A tick after the block: a hub blocked until the block's end is seen as a gap
        # that reaches past it.
        time.sleep(3 * Ticker.PERIOD)
        prefix = f"{key}_" if key else ""
        r[prefix + "duration"] = round(t1 - t0, 4)
        r[prefix + "max_gap"] = round(TICKER.max_gap(t0, t1), 4)


def driver(ws) -> str | None:
    return getattr(ws, "driver", None)


def echo(ws, text: str) -> bool:
    ws.send(text)
    return ws.recv() == text


# ---- waiting points -----------------------------------------------------------------------


def connect_localhost(r):
    """DNS ("localhost") and TCP connect."""
    with measure(r):
        ws = websocket.create_connection(f"ws://localhost:{CFG['ws_port']}/echo", timeout=10)
    r["driver"] = driver(ws)
    r["echo"] = echo(ws, "localhost")
    ws.close()


def connect_slow_accept(r):
    """TCP connect to a listener whose accept queue is full: the SYN is dropped and
    connect() waits for its retransmission (about 1 s)."""
    with socket.create_connection(("127.0.0.1", CFG["slow_accept_control"]), timeout=10) as c:
        c.sendall(b"listen\n")
        port = int(c.makefile().readline())
    with measure(r):
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/", timeout=10)
    r["driver"] = driver(ws)
    r["echo"] = echo(ws, "slow accept")
    ws.close()


def _through_proxy(r, kind, port):
    with measure(r):
        ws = websocket.create_connection(
            CFG["ws"] + "/echo",
            timeout=10,
            http_proxy_host="127.0.0.1",
            http_proxy_port=port,
            proxy_type=kind,
        )
    r["driver"] = driver(ws)
    r["echo"] = echo(ws, f"through {kind}")
    ws.close()


def http_proxy_slow(r):
    """HTTP CONNECT through a proxy that answers 1 s late."""
    _through_proxy(r, "http", CFG["http_proxy_port"])


def socks5_proxy_slow(r):
    """SOCKS5 through a proxy that answers 2 x 0.5 s late."""
    _through_proxy(r, "socks5", CFG["socks5_proxy_port"])


def tls_handshake_slow(r):
    """TLS handshake with a server whose hello comes 1 s late."""
    with measure(r):
        ws = websocket.create_connection(
            f"wss://127.0.0.1:{CFG['wss_slow_port']}/echo", timeout=10, sslopt={"ca_certs": CFG["ca"]}
        )
    r["driver"] = driver(ws)
    r["is_ssl"] = ws.is_ssl()
    r["echo"] = echo(ws, "tls")
    ws.close()


def handshake_slow(r):
    """Opening handshake: the 101 comes 1 s late."""
    with measure(r):
        ws = websocket.create_connection(CFG["ws"] + "/slow-101?s=1", timeout=10)
    r["driver"] = driver(ws)
    r["status"] = ws.getstatus()
    r["echo"] = echo(ws, "slow 101")
    ws.close()


def recv_echo_delayed(r):
    """recv() waiting 1 s for an echo."""
    ws = websocket.create_connection(CFG["ws"] + "/delay-echo?s=1", timeout=10)
    r["driver"] = driver(ws)
    ws.send("late echo")
    with measure(r):
        got = ws.recv()
    r["echo"] = got == "late echo"
    ws.close()


def recv_pushed_unread(r):
    """A feed pushed at once after the handshake (300 messages, a ping after every tenth),
    left unread 0.3 s, then read, over ws:// and wss:// (the SSL object then holds data the
    socket no longer shows): every message in order, every ping answered."""
    ok = True
    with measure(r):
        for url, opts in (
            (CFG["ws"], {}),
            (f"wss://127.0.0.1:{CFG['wss_port']}", {"sslopt": {"ca_certs": CFG["ca"]}}),
        ):
            ws = websocket.create_connection(url + "/burst?n=300", timeout=10, **opts)
            r["driver"] = driver(ws)
            time.sleep(0.3)
            got = [ws.recv() for _ in range(301)]
            ok = ok and got == [f"m{i}" for i in range(300)] + ["pongs 30/30"]
            ws.close()
    r["echo"] = ok


def recv_timeout(r):
    """recv() with a 0.8 s timeout that expires."""
    ws = websocket.create_connection(CFG["ws"] + "/silent", timeout=10)
    r["driver"] = driver(ws)
    ws.settimeout(0.8)
    with measure(r):
        try:
            ws.recv()
            r["timed_out"] = False
        except websocket.WebSocketTimeoutException:
            r["timed_out"] = True
    ws.close()


def send_24mib_slow_reader(r):
    """send() of 24 MiB to a server that reads nothing for 1 s: the socket buffers fill and
    the send waits."""
    payload = bytes(24 << 20)
    ws = websocket.create_connection(CFG["slow_reader"] + "/", timeout=30)
    r["driver"] = driver(ws)
    with measure(r):
        ws.send_binary(payload)
    r["echo"] = ws.recv() == str(len(payload))
    ws.close()


def close_slow_peer(r):
    """close() waiting for the peer's close frame, which comes 1 s late."""
    ws = websocket.create_connection(CFG["slow_close"] + "/", timeout=10)
    r["driver"] = driver(ws)
    r["echo"] = echo(ws, "before close")
    with measure(r):
        ws.close()


def _close_later(app, until, timeout):
    """Closes ``app`` once ``until()`` holds (or after ``timeout`` seconds)."""

    def run():
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.02)
        app.close()

    t = threading.Thread(target=run, name="scenario-closer", daemon=True)
    t.start()
    return t


def app_ping(r):
    """WebSocketApp.run_forever with ping_interval=0.3 and ping_timeout=0.2, for 1.2 s."""
    pongs, drivers, errors = [], [], []
    app = websocket.WebSocketApp(
        CFG["ws"] + "/echo",
        on_open=lambda app: drivers.append(driver(app.sock)),
        on_pong=lambda app, data: pongs.append(time.monotonic()),
        on_error=lambda app, e: errors.append(repr(e)),
    )
    t0 = time.monotonic()
    closer = _close_later(app, lambda: time.monotonic() - t0 > 1.2, 5)
    with measure(r):
        app.run_forever(ping_interval=0.3, ping_timeout=0.2)
    closer.join(5)
    r["driver"] = drivers[0] if drivers else None
    r["pongs"] = len(pongs)
    r["errors"] = errors


def app_reconnect(r):
    """WebSocketApp.run_forever(reconnect=0.5) against a server that cuts the connection
    0.2 s after each handshake: the app connects again."""
    opens, drivers = [], []

    def opened(app):
        opens.append(time.monotonic())
        drivers.append(driver(app.sock))

    app = websocket.WebSocketApp(CFG["ws"] + "/drop?after=0.2", on_open=opened, on_reconnect=opened, on_error=lambda app, e: None)
    closer = _close_later(app, lambda: len(opens) >= 2, 8)
    with measure(r):
        app.run_forever(reconnect=0.5)
    closer.join(5)
    r["driver"] = drivers[0] if drivers else None
    r["drivers"] = sorted(set(map(str, drivers)))
    r["connections"] = len(opens)


def app_dispatcher_rel(r):
    """WebSocketApp.run_forever(dispatcher=rel), then rel's loop; the echo comes 0.5 s
    late."""
    import rel

    got, drivers = [], []

    def on_open(app):
        drivers.append(driver(app.sock))
        app.send("via rel")

    def on_message(app, message):
        got.append(message)
        app.close()
        rel.abort()

    app = websocket.WebSocketApp(CFG["ws"] + "/delay-echo?s=0.5", on_open=on_open, on_message=on_message)
    with measure(r):
        app.run_forever(dispatcher=rel, reconnect=0)
        rel.timeout(10, rel.abort)  # never hangs the scenario
        rel.dispatch()
    r["driver"] = drivers[0] if drivers else None
    r["echo"] = got == ["via rel"]
    r["rel_registrar"] = type(getattr(rel.rel, "registrar", None)).__name__


def _stop_blocked_reader(r, how):
    """A thread (a greenlet under a hub) blocked in recv() without a timeout; another one
    calls ``ws.<how>()`` 0.3 s later. The reader must wake up with the exception a dropped
    connection raises."""
    ws = websocket.create_connection(CFG["ws"] + "/silent", timeout=None)
    r["driver"] = driver(ws)
    out = []

    def reader():
        try:
            out.append(["returned", repr(ws.recv())])
        except Exception as e:  # noqa: BLE001 - reported
            out.append([type(e).__name__, str(e)])

    t = threading.Thread(target=reader, name="scenario-reader", daemon=True)
    t.start()
    time.sleep(0.3)
    with measure(r):
        getattr(ws, how)()
        t.join(3)
    r["reader_woke"] = not t.is_alive()
    r["reader_got"] = out[0] if out else None
    ws.shutdown()


def abort_wakes_reader(r):
    """``ws.abort()`` while another thread/greenlet waits in recv()."""
    _stop_blocked_reader(r, "abort")


def shutdown_wakes_reader(r):
    """``ws.shutdown()`` while another thread/greenlet waits in recv()."""
    _stop_blocked_reader(r, "shutdown")


# ---- more than one greenlet ---------------------------------------------------------------------


def many_waiting(r, n=200, delay=0.3):
    """``n`` threads (greenlets under a hub) each connect, send one message that the server
    echoes ``delay`` seconds late, wait for it, and close."""
    connected, echoed, errors, drivers = [], [], [], set()

    def one(i):
        try:
            ws = websocket.create_connection(CFG["ws"] + f"/delay-echo?s={delay}", timeout=30)
            drivers.add(driver(ws))
            connected.append(time.monotonic())
            ws.send(f"m{i}")
            if ws.recv() == f"m{i}":
                echoed.append(time.monotonic())
            ws.close()
        except Exception as e:  # noqa: BLE001 - counted and reported
            errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,), name=f"scenario-{i}", daemon=True) for i in range(n)]
    t0 = time.monotonic()
    with measure(r):
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    r["n"] = n
    r["echoed"] = len(echoed)
    r["errors"] = errors[:5]
    r["error_count"] = len(errors)
    r["drivers"] = sorted(map(str, drivers))
    r["driver"] = r["drivers"][0] if len(drivers) == 1 else None
    r["all_connected_after"] = round(max(connected) - t0, 3) if connected else None
    r["all_echoed_after"] = round(max(echoed) - t0, 3) if echoed else None


# ---- python-socketio -----------------------------------------------------------------------------


def socketio_client(r):
    """python-socketio's client (its engine.io websocket transport imports ``websocket``):
    connect, emit, get an event back, disconnect."""
    import socketio

    sio = socketio.Client()
    got = []
    replied = threading.Event()

    @sio.on("echo_reply")
    def on_reply(data):
        got.append(data)
        replied.set()

    with measure(r):
        sio.connect(CFG["socketio"], transports=["websocket"], wait_timeout=10)
        r["transport"] = sio.transport()
        ws = sio.eio.ws
        r["driver"] = driver(ws)
        sio.emit("echo", {"n": 42})
        r["replied"] = replied.wait(10)
        sio.disconnect()
    r["echo"] = got == [{"n": 42}]
    r["connected_after_disconnect"] = sio.connected
    import engineio.client

    r["websocket_file"] = websocket.__file__
    r["engineio_websocket_file"] = getattr(engineio.client.websocket, "__file__", None)


# ---- sockets the caller made ------------------------------------------------------------------


def ssl_socket(r):
    """``socket=`` an ``ssl.SSLSocket`` the caller connected and wrapped; the echo comes
    0.3 s late."""
    ctx = ssl.create_default_context(cafile=CFG["ca"])
    raw = socket.create_connection(("127.0.0.1", CFG["wss_port"]), timeout=10)
    ssock = ctx.wrap_socket(raw, server_hostname="localhost")
    r["socket_type"] = f"{type(ssock).__module__}.{type(ssock).__name__}"
    r["is_sslsocket"] = isinstance(ssock, ssl.SSLSocket)
    ws = websocket.create_connection(f"wss://localhost:{CFG['wss_port']}/delay-echo?s=0.3", socket=ssock, timeout=10)
    r["driver"] = driver(ws)
    r["sock_is_given"] = ws.sock is ssock
    ws.send("through my SSLSocket")
    with measure(r):
        got = ws.recv()
    r["echo"] = got == "through my SSLSocket"
    r["echo2"] = echo(ws, "again")
    ws.close()


def socketpair_assigned(r):
    """A socket pair's end assigned to ``ws.sock`` (``ws.connected = True``), as the
    kubernetes client's stream tests do: the other end plays the server, and its first
    frames come 0.3 s late."""
    from servers import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ScriptedConn, close_payload, make_frame

    class _Server:
        requests: list = []

    a, b = socket.socketpair()
    peer = ScriptedConn(b, _Server())
    ws = websocket.WebSocket()
    ws.sock = a
    ws.connected = True
    r["driver"] = driver(ws)
    r["sock_is_given"] = ws.sock is a

    def later():
        time.sleep(0.3)
        b.sendall(make_frame(OP_TEXT, "hello") + make_frame(OP_PING, b"are you there") + make_frame(OP_BINARY, b"\x00\x01"))

    t = threading.Thread(target=later, name="scenario-peer", daemon=True)
    t.start()
    with measure(r):
        # As kubernetes' WSClient: wait until the socket is readable, then read a frame.
        r["readable"] = bool(select.select([ws.sock], [], [], 5)[0])
        op1, f1 = ws.recv_data_frame(True)
    t.join(5)
    op2, f2 = ws.recv_data_frame(True)
    op3, f3 = ws.recv_data_frame(True)
    r["received"] = [[op1, f1.data.decode("latin-1")], [op2, f2.data.decode("latin-1")], [op3, f3.data.decode("latin-1")]]
    ws.send("reply")
    ws.send_binary(b"\x02\x03")
    frames = [peer.recv_frame(5) for _ in range(3)]
    r["peer_got"] = [[f.opcode, f.masked, f.payload.decode("latin-1")] for f in frames]
    b.sendall(make_frame(OP_CLOSE, close_payload(1000, "bye")))
    op4, f4 = ws.recv_data_frame(True)
    r["close"] = [op4, f4.data.decode("latin-1")]
    reply = peer.recv_frame(5)
    r["close_reply"] = [reply.opcode, reply.payload[:2].hex()]
    r["pong"] = [OP_PONG, "are you there"] in [[f[0], f[2]] for f in r["peer_got"]]
    ws.shutdown()
    b.close()


SCENARIOS = {
    f.__name__: f
    for f in (
        connect_localhost,
        connect_slow_accept,
        http_proxy_slow,
        socks5_proxy_slow,
        tls_handshake_slow,
        handshake_slow,
        recv_echo_delayed,
        recv_pushed_unread,
        recv_timeout,
        send_24mib_slow_reader,
        close_slow_peer,
        app_ping,
        app_reconnect,
        app_dispatcher_rel,
        abort_wakes_reader,
        shutdown_wakes_reader,
        many_waiting,
        socketio_client,
        ssl_socket,
        socketpair_assigned,
    )
}


def thread_report(before: dict, before_hub: int) -> dict:
    """Which OS threads appeared while the scenarios ran: ``new`` ({tid: name}), how many
    of them the hub accounts for (``hub_threads``, its threadpool's growth) and the
    scenarios' own (``scenario_threads``), what is left (``unexplained``), and whether the
    native engine's reactor thread ever ran (``reactor``)."""
    seen = dict(TICKER.seen_threads)
    seen.update(os_threads())
    new = {tid: name for tid, name in seen.items() if tid not in before}
    hub = max(hub_os_threads() - before_hub, 0)
    own = len(TICKER.scenario_ids & set(new))
    return {
        "hub": HUB,
        "before": len(before),
        "new": {str(k): v for k, v in new.items()},
        "hub_threads": hub,
        "scenario_threads": own,
        "unexplained": max(len(new) - hub - own, 0),
        "reactor": any(name.startswith(REACTOR_COMM) for name in seen.values()),
        "python_threads_left": sorted(
            t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.name.startswith("scenario-")
        ),
    }


def main(names) -> None:
    global TICKER
    # A hub blocked for good (the native driver under a hub, a deadlock) cannot be
    # interrupted from Python: faulthandler's watchdog (a C thread, started before the
    # threads are counted) prints every thread's stack and ends the process.
    faulthandler.dump_traceback_later(float(os.environ.get("GREEN_WATCHDOG", 90)), exit=True)
    before = os_threads()
    before_hub = hub_os_threads()
    TICKER = Ticker()
    # The ticker's own first gaps (its start) are not a scenario's.
    time.sleep(0.05)
    for name in names:
        r = {"name": name, "hub": HUB, "error": None}
        try:
            SCENARIOS[name](r)
        except BaseException:  # noqa: BLE001 - reported to the test
            r["error"] = traceback.format_exc()
        print("RESULT " + json.dumps(r), flush=True)
    time.sleep(0.05)
    TICKER.stop()
    print("THREADS " + json.dumps(thread_report(before, before_hub)), flush=True)


if __name__ == "__main__":
    main(sys.argv[2:])
    sys.stdout.flush()
    os._exit(0)
