"""Lifecycle under stress (issue 6): a connection dropped without close() is cleaned up by
the garbage collector, the interpreter exits promptly whatever is still open or blocked,
fork() after import leaves both processes working, and running out of descriptors raises
an ordinary OSError instead of taking the process down.

Most checks run in a child interpreter, so a hang or an abort there fails one test (with
a timeout) instead of the suite.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import websocket

import hostile_servers as hs

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc"),
]

STRICT = hasattr(websocket, "_native")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_child(code: str, env, timeout: float = 20.0, **fmt) -> subprocess.CompletedProcess:
    src = textwrap.dedent(code).format(**fmt)
    return subprocess.run(
        [sys.executable, "-c", src], env=env, capture_output=True, text=True, timeout=timeout
    )


def echo(peer: hs.Peer) -> None:
    """Accepts, echoes text frames, answers the close frame, stops on EOF."""
    peer.accept()
    while peer.alive():
        for op, data in peer.read_frames(0.1):
            if op == hs.OP_TEXT:
                peer.send(hs.frame(hs.OP_TEXT, data))
            elif op == hs.OP_CLOSE:
                peer.send(hs.frame(hs.OP_CLOSE, data[:2]))
                return
        try:
            peer.sock.getpeername()
        except OSError:
            return


def pinger(results: list):
    """Accepts, then every 0.4 s sends a ping and records whether its pong came back within
    a second, without the client ever calling recv()."""

    def behaviour(peer: hs.Peer) -> None:
        peer.accept()
        n = 0
        while peer.alive():
            time.sleep(0.4)
            n += 1
            payload = b"p%d" % n
            try:
                peer.send(hs.frame(hs.OP_PING, payload))
            except OSError:
                return
            end = time.monotonic() + 1.0
            ok = False
            while time.monotonic() < end and not ok:
                frames = peer.read_frames(0.1)
                ok = any(op == hs.OP_PONG and d == payload for op, d in frames)
                if any(op == hs.OP_CLOSE for op, _ in frames):
                    return
            results.append(ok)

    return behaviour


# ---- garbage collection ------------------------------------------------------------------


def test_connections_dropped_without_close_are_released_by_the_gc(echo_server_proc):
    url = echo_server_proc
    ws = websocket.create_connection(url)
    ws.close()
    gc.collect()
    baseline = fd_count()
    for round_ in range(3):
        conns = [websocket.create_connection(url) for _ in range(20)]
        for i, ws in enumerate(conns):
            ws.send(f"m{i}")
            assert ws.recv() == f"m{i}"
        assert fd_count() >= baseline + 20
        del conns, ws  # no close(), no shutdown()
        gc.collect()
        deadline = time.monotonic() + 3
        while fd_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fd_count() <= baseline, f"round {round_}: {fd_count() - baseline} descriptors left"


def test_a_connection_with_a_blocked_reader_is_released_after_abort(echo_server_proc):
    """A reader thread holds the connection while it waits; abort() frees it."""
    url = echo_server_proc
    gc.collect()
    baseline = fd_count()
    ws = websocket.create_connection(url)
    t = threading.Thread(target=lambda: pytest.raises(Exception, ws.recv), daemon=True)
    t.start()
    time.sleep(0.2)
    ws.abort()
    t.join(3)
    assert not t.is_alive()
    del ws, t
    gc.collect()
    deadline = time.monotonic() + 3
    while fd_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fd_count() <= baseline


# ---- interpreter exit ----------------------------------------------------------------------


EXIT_PRELUDE = """
import sys, threading, time, websocket
t0 = time.monotonic()
"""


@pytest.mark.parametrize(
    "scenario",
    ["open_connections", "daemon_thread_in_recv", "daemon_thread_in_send", "main_thread_exits_with_reader"],
)
def test_interpreter_exits_promptly(hostile, child_env, scenario):
    behaviour = hs.never_read if scenario == "daemon_thread_in_send" else hs.ignore_close
    srv = hostile(behaviour)
    code = EXIT_PRELUDE + {
        "open_connections": """
conns = [websocket.create_connection("{url}") for _ in range(5)]
""",
        "daemon_thread_in_recv": """
ws = websocket.create_connection("{url}")
threading.Thread(target=ws.recv, daemon=True).start()
time.sleep(0.3)
""",
        "daemon_thread_in_send": """
ws = websocket.create_connection("{url}")
def flood():
    while True:
        ws.send_binary(b"x" * (1 << 20))
threading.Thread(target=flood, daemon=True).start()
time.sleep(0.5)
""",
        "main_thread_exits_with_reader": """
ws = websocket.create_connection("{url}")
def reader():
    try:
        ws.recv()
    except Exception:
        pass
threading.Thread(target=reader, daemon=True).start()
time.sleep(0.2)
sys.exit(3)
""",
    }[scenario]
    t0 = time.monotonic()
    r = run_child(code, child_env, url=srv.url)
    elapsed = time.monotonic() - t0
    expected = 3 if scenario == "main_thread_exits_with_reader" else 0
    assert r.returncode == expected, r.stderr
    assert "panicked" not in r.stderr and "Fatal Python error" not in r.stderr, r.stderr
    assert elapsed < 8, f"exit took {elapsed:.1f} s"


def test_interpreter_exits_promptly_with_run_forever_in_a_daemon_thread(hostile, child_env):
    srv = hostile(hs.ignore_close)
    code = """
import threading, time, websocket
opened = threading.Event()
app = websocket.WebSocketApp("{url}", on_open=lambda ws: opened.set())
threading.Thread(target=app.run_forever, kwargs=dict(ping_interval=1), daemon=True).start()
assert opened.wait(5), "never opened"
time.sleep(0.3)
"""
    t0 = time.monotonic()
    r = run_child(code, child_env, url=srv.url)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 8


# ---- fork ------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.skipif(not STRICT, reason="the reference answers pings only inside recv()")
def test_fork_after_import_leaves_both_processes_working(hostile, child_env):
    """The child gets its own reactor (its pings are answered without recv()), and dropping
    the inherited connection in the child does not disturb the parent's."""
    parent_pings, child_pings = [], []
    parent_srv = hostile(pinger(parent_pings))
    child_srv = hostile(pinger(child_pings))
    echo_srv = hostile(echo)
    code = """
import gc, os, sys, time, warnings, websocket
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads
ws = websocket.create_connection("{parent}")   # starts the reactor in the parent
pid = os.fork()
if pid == 0:
    try:
        del ws
        gc.collect()                             # the inherited connection is dropped here
        mine = websocket.create_connection("{child}")
        e = websocket.create_connection("{echo}")
        e.send("from the child")
        assert e.recv() == "from the child"
        e.close(timeout=1)
        time.sleep(2.5)                          # the child's reactor answers pings meanwhile
        mine.close(timeout=1)
        os._exit(0)
    except BaseException as exc:
        print("child failed:", repr(exc), file=sys.stderr, flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, status
time.sleep(2.5)                                  # the parent's reactor answers pings meanwhile
ws.close(timeout=1)
"""
    r = run_child(code, child_env, timeout=30, parent=parent_srv.url, child=child_srv.url, echo=echo_srv.url)
    assert r.returncode == 0, r.stderr
    assert child_pings and all(child_pings), f"child pongs: {child_pings}"
    # The parent's pings span the child's whole life and 2.5 s after it.
    assert len(parent_pings) >= 6 and all(parent_pings), f"parent pongs: {parent_pings}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_other_threads_connect_does_not_deadlock_the_child(echo_server_proc, child_env):
    code = """
import os, sys, threading, time, warnings, websocket
warnings.simplefilter("ignore", DeprecationWarning)
stop = False
def churn():
    while not stop:
        ws = websocket.create_connection("{url}")
        ws.send("x"); ws.recv(); ws.close()
threads = [threading.Thread(target=churn, daemon=True) for _ in range(2)]
for t in threads: t.start()
time.sleep(0.2)
for i in range(25):
    pid = os.fork()
    if pid == 0:
        try:
            ws = websocket.create_connection("{url}", timeout=5)
            ws.send("child"); assert ws.recv() == "child"; ws.close(timeout=1)
            os._exit(0)
        except BaseException as e:
            print(repr(e), file=sys.stderr, flush=True)
            os._exit(1)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WEXITSTATUS(status) == 0, ("child", i, status)
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            raise SystemExit(f"child {{i}} deadlocked")
        time.sleep(0.01)
stop = True
"""
    r = run_child(code, child_env, timeout=60, url=echo_server_proc)
    assert r.returncode == 0, r.stdout + r.stderr


# ---- out of descriptors --------------------------------------------------------------------


@pytest.mark.skipif(not STRICT, reason="checks the engine's reactor start")
def test_running_out_of_descriptors_raises_oserror_and_recovers(echo_server_proc, child_env):
    """With no descriptor left, connecting raises OSError (EMFILE), also when the socket
    gets the last one and the engine's reactor cannot start; once descriptors are free
    again, connections work."""
    code = """
import errno, os, resource, websocket
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
hog = []
try:
    while True:
        hog.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
for keep_free in (0, 1, 2):
    for fd in hog[len(hog) - keep_free:]:
        os.close(fd)
    hog = hog[:len(hog) - keep_free]
    try:
        websocket.create_connection("{url}", timeout=5)
    except OSError as e:
        assert e.errno == errno.EMFILE or "Too many open files" in str(e), e
    else:
        raise SystemExit("connected without descriptors")
    hog += [os.open("/dev/null", os.O_RDONLY) for _ in range(keep_free)]
for fd in hog:
    os.close(fd)
ws = websocket.create_connection("{url}", timeout=5)
ws.send("back"); assert ws.recv() == "back"; ws.close()
"""
    r = run_child(code, child_env, url=echo_server_proc)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "panicked" not in r.stderr, r.stderr
