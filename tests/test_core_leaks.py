"""Resource leaks: many connect/close cycles (and failing connects) must leave the number of
open file descriptors and threads where it was. The server runs in a child process so only
the client's descriptors and threads are counted here.

Deliberate difference from websocket-client 1.9.2 (STRICT = this project): after the peer
closed the connection (recv() returned ""), close() releases the socket at once; the
reference leaves it open until the garbage collector runs.
"""

import gc
import os
import sys
import threading
import time

import pytest

import websocket
from websocket import WebSocketBadStatusException

STRICT = hasattr(websocket, "_native")

pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc"),
    pytest.mark.timeout(120),
]


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def task_count():
    return len(os.listdir("/proc/self/task"))


def snapshot():
    return fd_count(), threading.active_count(), task_count()


def settled(baseline, limit=3.0):
    """Counts after letting any deferred cleanup run (at most ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    now = snapshot()
    while time.monotonic() < deadline:
        if all(n <= b for n, b in zip(now, baseline)):
            break
        time.sleep(0.05)
        now = snapshot()
    return now


def warm_up(url):
    for _ in range(3):
        ws = websocket.create_connection(url)
        ws.send("warm")
        assert ws.recv() == "warm"
        ws.close()


def test_1000_connect_close_cycles(echo_server_proc):
    url = echo_server_proc
    warm_up(url)
    before = snapshot()
    t0 = time.monotonic()
    for i in range(1000):
        ws = websocket.create_connection(url, timeout=10)
        if i % 10 == 0:
            ws.send(f"c{i}")
            assert ws.recv() == f"c{i}"
        ws.close()
        assert ws.sock is None
    elapsed = time.monotonic() - t0
    after = settled(before)
    assert after[0] <= before[0], f"file descriptors: {before[0]} -> {after[0]}"
    assert after[1] <= before[1], f"threads: {before[1]} -> {after[1]}"
    assert after[2] <= before[2], f"OS tasks: {before[2]} -> {after[2]}"
    assert elapsed < 60


def test_shutdown_and_abort_cycles(echo_server_proc):
    url = echo_server_proc
    warm_up(url)
    before = snapshot()
    for i in range(200):
        ws = websocket.create_connection(url)
        if i % 2:
            ws.abort()
        ws.shutdown()
    after = settled(before)
    assert after[0] <= before[0], f"file descriptors: {before[0]} -> {after[0]}"
    assert after[2] <= before[2], f"OS tasks: {before[2]} -> {after[2]}"


def test_failed_connects_do_not_leak(echo_server_proc, closed_port):
    url = echo_server_proc
    warm_up(url)
    before = snapshot()
    for _ in range(200):
        with pytest.raises(ConnectionRefusedError):
            websocket.create_connection(f"ws://127.0.0.1:{closed_port}/")
    for _ in range(200):
        with pytest.raises(WebSocketBadStatusException):
            websocket.create_connection(url + "/reject?status=403")
    for _ in range(50):
        with pytest.raises(ValueError):
            websocket.create_connection("http://127.0.0.1/")
    after = settled(before)
    assert after[0] <= before[0], f"file descriptors: {before[0]} -> {after[0]}"
    assert after[2] <= before[2], f"OS tasks: {before[2]} -> {after[2]}"


def test_server_initiated_close_cycles(echo_server_proc):
    url = echo_server_proc
    warm_up(url)
    before = snapshot()
    for _ in range(100):
        ws = websocket.create_connection(url + "/close?code=1000")
        assert ws.recv() == ""
        ws.close()
        del ws
    if not STRICT:
        # the reference's close() is a no-op once the peer's close frame was received, and
        # its WebSocket objects sit in reference cycles: the sockets wait for the GC
        gc.collect()
    after = settled(before)
    assert after[0] <= before[0], f"file descriptors: {before[0]} -> {after[0]}"


@pytest.mark.skipif(sys.platform != "linux", reason="linux /proc")
def test_idle_connections_cost_no_threads(echo_server_proc):
    url = echo_server_proc
    warm_up(url)
    before = snapshot()
    conns = [websocket.create_connection(url) for _ in range(50)]
    try:
        during = snapshot()
        assert during[0] - before[0] <= 50 + 2  # one descriptor per connection (+ slack)
        assert during[2] - before[2] <= 2  # no thread per connection
        for i, ws in enumerate(conns):
            ws.send(f"i{i}")
        assert [ws.recv() for ws in conns] == [f"i{i}" for i in range(50)]
    finally:
        for ws in conns:
            ws.close()
    after = settled(before)
    assert after[0] <= before[0]
