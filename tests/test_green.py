"""gevent and eventlet: every wait of a connection lets the other greenlets run.

Each scenario (tests/green_scenarios.py) runs in a fresh interpreter that the hub has
monkey-patched before ``websocket`` is imported, and the peers (tests/green_servers.py: a
``websockets`` server, TLS with trustme, the proxies of tests/proxy_servers.py, raw slow
peers; python-socketio under uvicorn) run in other, unpatched processes. A ticker greenlet
sleeping 10 ms records when it wakes; around each waiting point the largest gap between two
ticks must stay under 100 ms (the native engine, which blocks the OS thread, shows the whole
wait there: ``test_the_ticker_sees_a_blocked_hub``). The scenario code is the same for both
hubs (``threading``, ``time.sleep``, ``socket``, ``ssl`` are the hub's after patching).

Covered: DNS + connect, a connect that waits for the SYN retransmission, HTTP CONNECT and
SOCKS5 proxies that answer late, a TLS handshake whose server hello is late, a late 101,
``recv()`` waiting for a late echo, ``recv()`` timing out, a 24 MiB ``send()`` to a peer
that reads nothing for 1 s, ``close()`` waiting for a late close answer,
``WebSocketApp.run_forever`` with pings, with ``reconnect`` and with ``rel``; then 200
greenlets waiting 0.3 s each for an echo, python-socketio's client, a caller's
``ssl.SSLSocket`` given as ``socket=``, a socket pair assigned to ``ws.sock`` (as the
kubernetes client's stream tests do), and ``abort()``/``shutdown()`` waking a reader
blocked in ``recv()``. Each scenario also says which driver ran it (``ws.driver`` must be
"python") and which OS threads appeared in its process (none of the package's: the native
engine's reactor thread is "websocket-reactor"; gevent's threadpool, which its default
resolver uses, is gevent's).

Machine load can stretch a 10 ms sleep (the measuring process is not alone on the CPU): a
waiting point whose gap reaches the bound is measured again in a fresh process, up to 3
times; a hub that is really blocked shows the whole wait, every time. The figures of every
attempt are printed once the module is done.

``GREEN_DRIVER=native pytest tests/test_green.py`` forces the native driver in every
scenario process (the children inherit the variable): then every test fails but the few
that do not depend on the driver (plain threads, ``ws.sock`` assignment, the self-check);
the hubs' batches end on their watchdog, as run_forever and python-socketio block for good.

Against websocket-client 1.9.2 (the reference pass) the scenarios run too, as it is pure
Python over the patched sockets; what is about this package alone (the driver, the native
engine's thread, SOCKS without python-socks, ``abort()`` semantics, a 24 MiB frame that
websocket-client masks in Python) is skipped there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

import pytest

import websocket
from servers import stop_child

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.path.join(HERE, "green_scenarios.py")
SERVERS = os.path.join(HERE, "green_servers.py")

STRICT = hasattr(websocket, "_native")
HUBS = ("gevent", "eventlet")
# The requirement: a ticker sleeping 10 ms never waits 100 ms or more.
GAP_BOUND = 0.100
# A waiting point over the bound is measured again (machine load), at most this many times.
ATTEMPTS = 3
# Longest a batch of scenarios may take before its process is ended (with its stacks).
BATCH_TIMEOUT = 90

pytestmark = [pytest.mark.own_driver, pytest.mark.timeout(300)]

_MISSING = [m for m in ("gevent", "eventlet", "socketio", "engineio", "uvicorn") if importlib.util.find_spec(m) is None]

_PROXY_ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
              "WEBSOCKET_CLIENT_CA_BUNDLE", "SSLKEYLOGFILE")


@pytest.fixture(scope="module", autouse=True)
def _requirements():
    if _MISSING and sys.version_info < (3, 10):
        pytest.skip("the pinned gevent, eventlet and uvicorn (requirements-test.txt) need Python >= 3.10")
    # requirements-test.txt has them: a missing one is an error, not a skip.
    if _MISSING:
        pytest.fail(f"{', '.join(_MISSING)} missing: pip install -r requirements-test.txt")


# ---- waiting points: (name, what, shortest wait that shows the point was reached, check) ----

WAITS = [
    ("connect_localhost", "DNS (localhost) + TCP connect", 0.0, lambda r: r["echo"]),
    ("connect_slow_accept", "TCP connect, accept queue full (SYN retransmitted)", 0.5, lambda r: r["echo"]),
    ("http_proxy_slow", "HTTP CONNECT proxy answering 1 s late", 0.8, lambda r: r["echo"]),
    ("socks5_proxy_slow", "SOCKS5 proxy answering 2 x 0.5 s late", 0.8, lambda r: r["echo"]),
    ("tls_handshake_slow", "TLS handshake, server hello 1 s late", 0.8, lambda r: r["echo"] and r["is_ssl"]),
    ("handshake_slow", "opening handshake, 101 1 s late", 0.8, lambda r: r["echo"] and r["status"] == 101),
    ("recv_echo_delayed", "recv() waiting 1 s for an echo", 0.8, lambda r: r["echo"]),
    ("recv_pushed_unread", "recv() of 300 messages and 30 pings pushed unread, ws + wss", 0.6, lambda r: r["echo"]),
    ("recv_timeout", "recv() with a 0.8 s timeout, timing out", 0.7, lambda r: r["timed_out"] and r["duration"] < 2),
    ("send_24mib_slow_reader", "send() of 24 MiB, peer reading nothing for 1 s", 0.5, lambda r: r["echo"]),
    # Under 2.5 s: the close answer came (the timeout is 3 s).
    ("close_slow_peer", "close() waiting 1 s for the close answer", 0.8, lambda r: r["echo"] and r["duration"] < 2.5),
    ("app_ping", "run_forever, ping_interval 0.3 / ping_timeout 0.2", 1.0, lambda r: r["pongs"] >= 2 and not r["errors"]),
    ("app_reconnect", "run_forever(reconnect=0.5), connection cut", 0.5, lambda r: r["connections"] >= 2),
    ("app_dispatcher_rel", "run_forever(dispatcher=rel), echo 0.5 s late", 0.4, lambda r: r["echo"]),
]
WAIT_NAMES = [w[0] for w in WAITS]
WHAT = {w[0]: w[1] for w in WAITS}
# Scenarios about sockets the caller made, and about waking a blocked reader, run in the
# same processes as the waiting points (and alone in plain threads).
OTHERS = ["ssl_socket", "socketpair_assigned", "abort_wakes_reader", "shutdown_wakes_reader"]
NOT_ON_REFERENCE = {
    # websocket-client speaks SOCKS through python-socks, which the reference pass lacks.
    "socks5_proxy_slow": "websocket-client needs python-socks for SOCKS",
    # websocket-client masks in Python (wsaccel is not installed): 24 MiB hold the hub
    # 0.25-0.7 s on the 2-core test machine, a stall of its own, not a wait.
    "send_24mib_slow_reader": "websocket-client masks 24 MiB in Python: the hub is busy, not waiting",
    # websocket-client 1.9.2: under gevent the blocked recv() gets gevent's "File descriptor
    # was closed in another greenlet" (EBADF); its shutdown() only closes the socket, which
    # wakes no reader in plain threads nor under eventlet.
    "abort_wakes_reader": "websocket-client: gevent's EBADF error instead of a closed connection",
    "shutdown_wakes_reader": "websocket-client's shutdown() does not wake a blocked recv()",
}


def _scenarios(mode: str) -> list:
    names = OTHERS if mode == "threads" else WAIT_NAMES + OTHERS
    if mode == "eventlet":
        # Both hubs run at once: not the heavy points at the same moment.
        names = names[::-1]
    return [n for n in names if STRICT or n not in NOT_ON_REFERENCE]


def _passes(name: str, r: dict) -> bool:
    """Whether a waiting point's measure is acceptable (else it is measured again)."""
    spec = {w[0]: w for w in WAITS}.get(name)
    if r.get("error") or spec is None:
        return True  # errors and other scenarios are not measured again
    return r["max_gap"] < GAP_BOUND and r["duration"] >= spec[2]


# ---- running scenarios ---------------------------------------------------------------------


class Batch:
    """One scenario process: ``results`` by name, ``threads`` (its thread report)."""

    def __init__(self, mode: str, names: list, env: dict, driver: str | None = None, timeout: float = BATCH_TIMEOUT):
        self.mode = mode
        self.names = names
        env = dict(env, GREEN_WATCHDOG=str(timeout))
        if driver:
            env["GREEN_DRIVER"] = driver
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, SCENARIOS, mode, *names],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.timeout = timeout
        self.results: dict = {}
        self.threads: dict | None = None
        self.stderr = ""
        self.elapsed = None

    def wait(self) -> "Batch":
        if self.elapsed is not None:
            return self
        try:
            out, self.stderr = self.proc.communicate(timeout=self.timeout + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, self.stderr = self.proc.communicate()
        self.elapsed = time.monotonic() - self.started
        for line in out.splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line[len("RESULT "):])
                self.results[r["name"]] = r
            elif line.startswith("THREADS "):
                self.threads = json.loads(line[len("THREADS "):])
        return self

    def result(self, name: str) -> dict:
        self.wait()
        if name not in self.results:
            pytest.fail(
                f"scenario {name} ({self.mode}) did not report (exit status {self.proc.returncode}); "
                f"stderr:\n{self.stderr[-4000:]}"
            )
        return self.results[name]


@pytest.fixture(scope="module")
def child_env():
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(websocket.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for k in _PROXY_ENV:
        env.pop(k, None)
    return env


def _start_server(args, env):
    proc = subprocess.Popen(
        [sys.executable, SERVERS, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    box: list = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if not box or not box[0].strip():
        proc.kill()
        proc.wait()
        pytest.fail(f"green_servers.py {' '.join(args)} did not start")
    return proc, json.loads(box[0])


@pytest.fixture(scope="module")
def servers(child_env, _requirements):
    proc, cfg = _start_server([], child_env)
    yield cfg
    stop_child(proc)


@pytest.fixture(scope="module")
def socketio_url(child_env, _requirements):
    proc, cfg = _start_server(["socketio"], child_env)
    yield cfg["url"]
    stop_child(proc)


@pytest.fixture(scope="module")
def figures(request):
    """Collects each test's figures; printed once the module is done."""
    table: list = []
    yield table
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not table:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_sep("-", "gevent/eventlet figures (test_green.py)")
        for line in table:
            reporter.write_line(line)


@pytest.fixture(scope="module")
def batches(servers, child_env):
    """The scenario processes of the three modes, all started at the first request, and the
    later attempts of waiting points measured again: ``batches(mode)`` is the first
    process, ``batches.attempts(mode, name)`` every attempt of one scenario."""
    env = dict(child_env, GREEN_SERVERS=json.dumps(servers))
    first: dict = {}
    retried: dict = {}

    class Batches:
        def __call__(self, mode: str) -> Batch:
            if not first:
                for m in ("threads",) + HUBS:
                    first[m] = Batch(m, _scenarios(m), env)
            return first[mode].wait()

        def attempts(self, mode: str, name: str) -> list:
            runs = [self(mode).result(name)]
            while not _passes(name, runs[-1]) and len(runs) < ATTEMPTS:
                again = Batch(mode, [name], env).wait()
                retried.setdefault(mode, []).append(again)
                runs.append(again.result(name))
            return runs

        def thread_reports(self, mode: str) -> list:
            return [b.threads for b in [self(mode)] + retried.get(mode, [])]

    return Batches()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _check_driver(r: dict) -> None:
    if STRICT:
        assert r["driver"] == "python", f"the connection ran on the {r['driver']!r} driver"


def _check_gap(r: dict, what: str, attempts: list | None = None) -> None:
    gaps = ", ".join(_ms(a["max_gap"]) for a in (attempts or [r]))
    assert r["max_gap"] < GAP_BOUND, (
        f"the ticker stalled {_ms(r['max_gap'])} while {what} (bound {_ms(GAP_BOUND)}; attempts: {gaps})"
    )


# ---- 1. each waiting point ----------------------------------------------------------------------


@pytest.mark.parametrize("point", WAIT_NAMES)
@pytest.mark.parametrize("hub", HUBS)
def test_waiting_point_lets_greenlets_run(hub, point, batches, figures):
    if not STRICT and point in NOT_ON_REFERENCE:
        pytest.skip(NOT_ON_REFERENCE[point])
    runs = batches.attempts(hub, point)
    r = runs[-1]
    assert r["error"] is None, r["error"]
    figures.append(
        f"{hub:8} {point:24} largest gap {', '.join(_ms(a['max_gap']) for a in runs):24} "
        f"wait {r['duration']:.2f} s  ({WHAT[point]})"
    )
    print(figures[-1])
    _check_driver(r)
    spec = {w[0]: w for w in WAITS}[point]
    assert r["duration"] >= spec[2], f"{point} took {r['duration']} s: the waiting point was not reached ({r})"
    assert spec[3](r), r
    _check_gap(r, WHAT[point], runs)


@pytest.mark.parametrize("hub", HUBS)
def test_no_os_thread_of_its_own(hub, batches, figures):
    """Under a hub the package starts no OS thread: the processes that ran every scenario
    saw no thread but gevent's threadpool (its DNS resolver), and never the native engine's
    reactor; and no thread object of the package's (a greenlet) is left running."""
    for name in _scenarios(hub):
        batches.attempts(hub, name)
    for report in batches.thread_reports(hub):
        assert report is not None, "a scenario process did not report its threads"
        figures.append(
            f"{hub:8} OS threads: {report['before']} at start, new {sorted(report['new'].values())}, "
            f"{report['hub_threads']} of them the hub's, reactor: {report['reactor']}"
        )
        print(figures[-1])
        assert not report["reactor"], f"the native engine's reactor thread ran: {report}"
        assert report["unexplained"] == 0, f"OS threads that are not the hub's: {report}"
        # Nor a thread object (a greenlet under the hub) still running at the end.
        assert [n for n in report["python_threads_left"] if n != "MainThread"] == [], report


# ---- the measure itself ----------------------------------------------------------------------


@pytest.mark.skipif(not STRICT, reason="websocket-client has no native driver")
@pytest.mark.parametrize("hub", HUBS)
def test_the_ticker_sees_a_blocked_hub(hub, servers, child_env, figures):
    """The same recv() wait with the native driver forced (``setdefaultdriver("native")``):
    the engine blocks the OS thread, the ticker stops for the whole second, and the
    reactor thread shows in the thread report. Proves that the measures above can fail."""
    env = dict(child_env, GREEN_SERVERS=json.dumps(servers))
    batch = Batch(hub, ["recv_echo_delayed"], env, driver="native", timeout=30).wait()
    r = batch.result("recv_echo_delayed")
    assert r["error"] is None, r["error"]
    figures.append(f"{hub:8} native driver forced: recv_echo_delayed largest gap {_ms(r['max_gap'])}")
    print(figures[-1])
    assert r["driver"] == "native"
    assert r["max_gap"] > 0.5, r
    assert batch.threads is not None and batch.threads["reactor"], batch.threads


# ---- 2. many greenlets ---------------------------------------------------------------------------


@pytest.mark.parametrize("hub", HUBS)
def test_200_greenlets_each_waiting_for_an_echo(hub, servers, child_env, figures):
    """200 greenlets each connect, send one message that the server echoes 0.3 s late, wait
    for it and close: all of it in under 2 s (one after the other: 60 s)."""
    env = dict(child_env, GREEN_SERVERS=json.dumps(servers))
    batch = Batch(hub, ["many_waiting"], env, timeout=60).wait()
    r = batch.result("many_waiting")
    assert r["error"] is None, r["error"]
    figures.append(
        f"{hub:8} 200 greenlets: all connected after {r['all_connected_after']} s, all echoed after "
        f"{r['all_echoed_after']} s, done after {r['duration']:.2f} s (largest ticker gap {_ms(r['max_gap'])})"
    )
    print(figures[-1])
    assert r["error_count"] == 0, r["errors"]
    assert r["echoed"] == 200
    _check_driver(r)
    assert r["duration"] < 2.0, r
    assert batch.threads is not None and not batch.threads["reactor"] and batch.threads["unexplained"] == 0, batch.threads


# ---- 3. python-socketio -----------------------------------------------------------------------------


@pytest.mark.parametrize("hub", HUBS)
def test_python_socketio_client(hub, socketio_url, child_env, figures):
    """python-socketio's client (transports=["websocket"]) against a python-socketio ASGI
    server under uvicorn: connect, emit, get the (0.3 s late) reply event, disconnect; its
    engine.io transport imports this ``websocket``."""
    env = dict(child_env, GREEN_SERVERS=json.dumps({"socketio": socketio_url}))
    batch = Batch(hub, ["socketio_client"], env, timeout=30).wait()
    r = batch.result("socketio_client")
    assert r["error"] is None, r["error"]
    figures.append(f"{hub:8} python-socketio session {r['duration']:.2f} s, largest ticker gap {_ms(r['max_gap'])}")
    print(figures[-1])
    assert r["websocket_file"] == r["engineio_websocket_file"] == os.path.abspath(websocket.__file__)
    assert r["transport"] == "websocket"
    _check_driver(r)
    assert r["replied"] and r["echo"], r
    assert not r["connected_after_disconnect"]
    _check_gap(r, "python-socketio waited for its reply event")
    assert batch.threads is not None and not batch.threads["reactor"] and batch.threads["unexplained"] == 0, batch.threads


# ---- 4. and 5. sockets the caller made; waking a blocked reader --------------------------------------


MODES = ("threads",) + HUBS


@pytest.mark.parametrize("mode", MODES)
def test_socket_is_a_callers_sslsocket(mode, batches, figures):
    """``create_connection(wss_url, socket=ssock)`` with an ``ssl.SSLSocket`` the caller
    connected and wrapped (the hub's SSLSocket under gevent/eventlet): echoes go through it
    and ``ws.sock`` is that object."""
    r = batches(mode).result("ssl_socket")
    assert r["error"] is None, r["error"]
    figures.append(f"{mode:8} socket=SSLSocket ({r['socket_type']}): recv wait, largest gap {_ms(r['max_gap'])}")
    print(figures[-1])
    assert r["is_sslsocket"]
    assert r["sock_is_given"]
    assert r["echo"] and r["echo2"]
    _check_driver(r)
    if mode != "threads":
        _check_gap(r, "recv() waited on a caller's SSLSocket")


@pytest.mark.parametrize("mode", MODES)
def test_socketpair_assigned_to_ws_sock(mode, batches, figures):
    """``ws = WebSocket(); ws.sock = a; ws.connected = True`` with one end of a socket pair:
    select() on ``ws.sock``, ``recv_data_frame(True)`` (a text frame, a ping, which is
    answered, a binary frame, then a close, which is answered), sends (masked frames)."""
    r = batches(mode).result("socketpair_assigned")
    assert r["error"] is None, r["error"]
    figures.append(f"{mode:8} socket pair as ws.sock: recv wait, largest gap {_ms(r['max_gap'])}")
    print(figures[-1])
    _check_driver(r)
    assert r["sock_is_given"] and r["readable"]
    assert r["received"] == [[1, "hello"], [9, "are you there"], [2, "\x00\x01"]]
    assert r["peer_got"] == [[10, True, "are you there"], [1, True, "reply"], [2, True, "\x02\x03"]]
    assert r["close"] == [8, "\x03\xe8bye"]
    assert r["close_reply"] == [8, "03e8"]
    if mode != "threads":
        _check_gap(r, "recv_data_frame() waited on an assigned socket")


@pytest.mark.parametrize("how", ["abort", "shutdown"])
@pytest.mark.parametrize("mode", MODES)
def test_stopping_wakes_a_blocked_reader(mode, how, batches):
    """``ws.abort()``/``ws.shutdown()`` from another thread or greenlet wakes a ``recv()``
    blocked without a timeout, which raises WebSocketConnectionClosedException, in every
    mode (eventlet never wakes a greenlet waiting on a socket that another one closes;
    gevent wakes it with its own EBADF error)."""
    name = f"{how}_wakes_reader"
    if not STRICT:
        pytest.skip(NOT_ON_REFERENCE[name])
    r = batches(mode).result(name)
    assert r["error"] is None, r["error"]
    assert r["reader_woke"], f"the reader is still blocked 3 s after {how}(): {r}"
    assert r["reader_got"] == ["WebSocketConnectionClosedException", "Connection was shut down locally (shutdown() or abort())."], r


# ---- what a large send costs the hub -----------------------------------------------------------


@pytest.mark.skipif(not STRICT, reason="websocket-client copies the rest of a frame after every partial write")
def test_partial_writes_do_not_copy_the_rest_of_the_frame():
    """A large frame that the socket takes piece by piece (a slow peer; under a hub the
    send waits between pieces) is not copied again after each piece: 24 MiB taken 64 KiB at
    a time were 384 copies of up to 24 MiB, and in send_24mib_slow_reader above the copy
    after the first partial write held the hub 12 ms. Seen as the peak of the traced
    allocations during the send: the frame once, and little more."""
    import hashlib
    import struct
    import tracemalloc

    n = 24 << 20
    payload = bytes(n)
    # The frame the socket must get: 4 zero bytes as mask key leave the payload as it is.
    expected = hashlib.sha256(struct.pack("!BBQ", 0x82, 0x80 | 127, n) + b"\0\0\0\0")
    for i in range(0, n, 1 << 20):
        expected.update(payload[i : i + (1 << 20)])

    class Trickle:
        """A socket object taking at most 64 KiB per send."""

        def __init__(self):
            self.got = hashlib.sha256()
            self.sends = 0

        def gettimeout(self):
            return None

        def send(self, data):
            piece = bytes(data[:65536])
            self.got.update(piece)
            self.sends += 1
            return len(piece)

        def fileno(self):
            return -1

    sock = Trickle()
    ws = websocket.WebSocket(get_mask_key=lambda _: b"\0\0\0\0")
    ws.sock = sock
    ws.connected = True
    tracemalloc.start()
    try:
        ws.send_binary(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sock.got.hexdigest() == expected.hexdigest()
    assert sock.sends == (n + 14 + 65535) // 65536
    assert peak < 1.5 * n, f"{peak / n:.1f} times the payload allocated at once"
