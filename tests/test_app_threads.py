"""WebSocketApp and threads: sends from many threads, callbacks one at a time, and 100 apps
running at once, each in its own thread."""

import json
import threading
import time

import pytest

import websocket
from websocket import WebSocketApp
from app_servers import AppThread, Recorder
from servers import sink_message

STRICT = hasattr(websocket, "_native")

pytestmark = pytest.mark.timeout(120)


def test_send_from_many_threads(echo_url):
    """4 threads send 200 checked messages each while run_forever runs; the server sees
    every one intact (frames never interleave)."""
    rec = Recorder()
    opened = threading.Event()
    app = WebSocketApp(echo_url + "/sink", on_open=lambda ws: opened.set(),
                       **rec.callbacks("on_message", "on_error"))
    t = AppThread(app)
    t.start()
    assert opened.wait(5)

    def sender(tid):
        for seq in range(200):
            app.send(sink_message(tid, seq, 100 + (seq * 37) % 3000))

    senders = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for s in senders:
        s.start()
    for s in senders:
        s.join()
    app.send("done")
    got = rec.wait_named("on_message")
    app.close()
    t.result()
    assert json.loads(got[0][0]) == {"count": 800, "bad": 0}
    assert rec.named("on_error") == []


def test_send_from_callbacks_and_threads_together(echo_url):
    """An echo chain driven from on_message while another thread sends too."""
    rec = Recorder()
    stop = threading.Event()

    def on_message(ws, msg):
        rec.add("msg", msg)
        if msg.startswith("chain-"):
            n = int(msg[6:])
            if n < 200:
                ws.send(f"chain-{n + 1}")
            else:
                stop.set()

    app = WebSocketApp(echo_url + "/", on_open=lambda ws: ws.send("chain-0"), on_message=on_message)
    t = AppThread(app)
    t.start()

    def other():
        i = 0
        while not stop.is_set():
            try:
                app.send_bytes(b"side-%d" % i)
            except websocket.WebSocketConnectionClosedException:
                break
            i += 1
            time.sleep(0.001)

    side = threading.Thread(target=other)
    side.start()
    assert stop.wait(20)
    side.join()
    app.close()
    t.result()
    chain = [m[0] for m in rec.named("msg") if isinstance(m[0], str)]
    assert chain == [f"chain-{i}" for i in range(201)]


def test_callbacks_never_overlap(echo_url):
    active = [0]
    overlaps = [0]
    count = [0]

    def on_message(ws, msg):
        active[0] += 1
        if active[0] > 1:
            overlaps[0] += 1
        time.sleep(0.001)
        active[0] -= 1
        count[0] += 1
        if count[0] == 300:
            ws.close()

    def on_open(ws):
        def spam():
            for i in range(300):
                ws.send(str(i))

        for _ in range(3):
            threading.Thread(target=spam).start()

    app = WebSocketApp(echo_url + "/", on_open=on_open, on_message=on_message)
    app.run_forever()
    assert overlaps[0] == 0
    assert count[0] >= 300


def test_hundred_apps_at_once(echo_url):
    """100 apps, each running in its own thread, each exchanging 20 messages."""
    n_apps, n_msgs = 100, 20
    results = {}
    received = {}
    errors = []
    lock = threading.Lock()

    def run(i):
        got = []

        def on_open(ws):
            for k in range(n_msgs):
                ws.send(f"{i}:{k}")

        def on_message(ws, msg):
            got.append(msg)
            if len(got) == n_msgs:
                ws.close()

        def on_error(ws, e):
            with lock:
                errors.append((i, e))

        app = WebSocketApp(echo_url + f"/app{i}", on_open=on_open, on_message=on_message, on_error=on_error)
        r = app.run_forever()
        with lock:
            results[i] = r
            received[i] = got

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n_apps)]
    t0 = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not [th for th in threads if th.is_alive()]
    assert errors == []
    assert results == {i: False for i in range(n_apps)}
    for i in range(n_apps):
        assert received[i] == [f"{i}:{k}" for k in range(n_msgs)]
    assert time.monotonic() - t0 < 60


def test_hundred_idle_apps_close_from_main_thread(echo_url):
    apps = []
    opened = threading.Semaphore(0)
    threads = []
    for i in range(100):
        app = WebSocketApp(echo_url + "/silent", on_open=lambda ws: opened.release())
        apps.append(app)
        t = AppThread(app)
        t.start()
        threads.append(t)
    for _ in range(100):
        assert opened.acquire(timeout=20)
    t0 = time.monotonic()
    for app in apps:
        app.close()
    results = [t.result(30) for t in threads]
    if STRICT:
        assert results == [False] * 100
        assert time.monotonic() - t0 < 10
