"""One benchmark run of one Python client, in its own process (started by bench/run.py).

    python pyclient.py CLIENT SCENARIO HOST:PORT N WARMUP

CLIENT: wsr (this package), wsc (websocket-client 1.9.2, wsaccel blocked), wsc-accel
(websocket-client with wsaccel), websockets (17, sync client), picows (2.3, asyncio),
tcp-py (a raw socket ping-pong of the same bytes: the floor for any Python client;
tcp-py-gevent the same under gevent, the floor of the gevent rows);
wsr-gevent and wsc-gevent: wsr and wsc in a process that first runs gevent's
monkey.patch_all() (this package then runs its Python-socket driver, which is asserted).

SCENARIO: rt64, echo16k, echo1m (echo round trips), push100 / push100app (server pushes N
100-byte messages, read by a recv() loop / by WebSocketApp.on_message), handshake, idle200,
and the scale family: scaleK (K = 1, 10, 100, 1000 connections, one Python thread per
connection in a recv() loop) and scaleappK (K WebSocketApps on one shared rel dispatcher,
run_forever(dispatcher=rel); picows runs one asyncio loop for both); N messages in all,
N/K per connection, every connection open before the clock starts.

Prints one JSON object: ops, secs (wall time of the timed part), cpu (user+sys seconds of
the whole process over the timed part, getrusage: threads such as a reactor included), and
for idle200 rss_kib / threads (added by N idle connections after one warm-up connection).
A client that cannot run a scenario prints {"skip": "why"}.
"""

import sys

# gevent must patch before anything else is imported (threading, socket, time, ...).
if len(sys.argv) > 1 and sys.argv[1].endswith("-gevent"):
    from gevent import monkey

    monkey.patch_all()

import gc
import json
import resource
import threading
import time

CLIENT, SCENARIO, ADDR, N, WARMUP = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
HOST, PORT = ADDR.rsplit(":", 1)
# wsr-gevent runs wsr's code, wsc-gevent wsc's.
BASE = CLIENT.removesuffix("-gevent")
GREEN = BASE != CLIENT

if BASE == "wsc":
    sys.modules["wsaccel"] = None  # type: ignore[assignment]  # websocket-client falls back to pure Python

ECHO = {"rt64": (64, True), "echo16k": (16 * 1024, False), "echo1m": (1024 * 1024, False)}
PUSH_SIZE = 100


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise KeyError(field)


def emit(**kw: object) -> None:
    print(json.dumps(kw), flush=True)


def payload(size: int, text: bool):  # type: ignore[no-untyped-def]
    if text:
        return "x" * size
    return bytes(i & 0xFF for i in range(size))


class Timer:
    def start(self) -> None:
        self.c0 = cpu()
        self.t0 = time.perf_counter()

    def stop(self, ops: int, **extra: object) -> None:
        secs = time.perf_counter() - self.t0
        emit(ops=ops, secs=secs, cpu=cpu() - self.c0, **extra)


def idle_measure(open_one, close_one, keep_alive=None):  # type: ignore[no-untyped-def]
    """RSS and threads added by N open idle connections, after one warm-up connection."""
    close_one(open_one())
    gc.collect()
    time.sleep(0.05)
    rss0, th0 = proc_status("VmRSS:"), proc_status("Threads:")
    conns = [open_one() for _ in range(N)]
    if keep_alive is not None:
        keep_alive(0.2)
    else:
        time.sleep(0.2)
    gc.collect()
    rss1, th1 = proc_status("VmRSS:"), proc_status("Threads:")
    emit(ops=N, secs=0.0, cpu=0.0, rss_kib=rss1 - rss0, threads=th1 - th0)
    for c in conns:
        close_one(c)


# ---- websocket-client API: this package and websocket-client ------------------------------

def check_driver(ws) -> None:  # type: ignore[no-untyped-def]
    """This package must run the driver the process calls for: "python" under gevent
    (socket monkey-patched), "native" otherwise."""
    if BASE == "wsr":
        want = "python" if GREEN else "native"
        assert ws.driver == want, f"ws.driver is {ws.driver!r}, not {want!r}"


def scale_spec() -> "tuple[bool, int, int]":
    """(app variant, connections, messages per connection) of a scaleK / scaleappK scenario."""
    app = SCENARIO.startswith("scaleapp")
    conns = int(SCENARIO[len("scaleapp" if app else "scale"):])
    if N % conns:
        raise SystemExit(f"{SCENARIO}: N={N} is not a multiple of {conns}")
    return app, conns, N // conns


def raise_nofile(need: int) -> None:
    """Room for `need` more descriptors (each connection may take two: socket, readiness)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = need + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def run_websocket_client_api() -> None:
    import websocket

    if BASE == "wsr":
        assert hasattr(websocket, "_native"), "not websocket-rust"
    else:
        assert not hasattr(websocket, "_native"), "websocket-rust, not websocket-client"
        has_accel = sys.modules.get("wsaccel") is not None
        if CLIENT == "wsc-accel":
            assert has_accel, "wsaccel not in use"
        else:
            assert sys.modules.get("wsaccel") is None
    if GREEN:
        import socket as _socket_mod

        assert _socket_mod.socket.__module__.startswith("gevent"), "socket is not gevent's"
    url = f"ws://{ADDR}"
    t = Timer()
    if SCENARIO in ECHO:
        size, text = ECHO[SCENARIO]
        msg = payload(size, text)
        ws = websocket.create_connection(url + "/echo")
        check_driver(ws)
        send = ws.send if text else ws.send_binary
        recv = ws.recv
        for _ in range(WARMUP):
            send(msg)
            recv()
        t.start()
        for _ in range(N):
            send(msg)
            r = recv()
        t.stop(N)
        assert r == msg
        ws.close()
    elif SCENARIO == "push100":
        ws = websocket.create_connection(f"{url}/push?n={N}&size={PUSH_SIZE}")
        check_driver(ws)
        recv = ws.recv
        t.start()
        ws.send("go")
        for _ in range(N):
            r = recv()
        t.stop(N)
        assert len(r) == PUSH_SIZE
        ws.close()
    elif SCENARIO == "push100app":
        if not hasattr(websocket, "WebSocketApp"):
            emit(skip="no WebSocketApp")
            return
        count = 0

        def on_open(ws):  # type: ignore[no-untyped-def]
            check_driver(ws.sock)
            t.start()
            ws.send("go")

        def on_message(ws, message):  # type: ignore[no-untyped-def]
            nonlocal count
            count += 1
            if count == N:
                t.stop(N)
                ws.close()

        errors = []
        try:
            app = websocket.WebSocketApp(
                f"{url}/push?n={N}&size={PUSH_SIZE}",
                on_open=on_open,
                on_message=on_message,
                on_error=lambda ws, e: errors.append(repr(e)),
            )
        except NotImplementedError as e:
            emit(skip=f"WebSocketApp: {e}")
            return
        app.run_forever()
        if count != N:
            emit(error=f"on_message got {count} of {N} messages; errors: {errors}")
    elif SCENARIO == "handshake":
        ws = websocket.create_connection(url + "/echo")
        check_driver(ws)
        ws.close()
        for _ in range(WARMUP):
            websocket.create_connection(url + "/echo").close()
        t.start()
        for _ in range(N):
            websocket.create_connection(url + "/echo").close()
        t.stop(N)
    elif SCENARIO == "idle200":
        def open_one():  # type: ignore[no-untyped-def]
            ws = websocket.create_connection(url + "/echo")
            check_driver(ws)
            return ws

        idle_measure(open_one, lambda ws: ws.close())  # type: ignore[no-untyped-call]
    elif SCENARIO.startswith("scale"):
        use_app, conns, per = scale_spec()
        raise_nofile(2 * conns)
        path = f"{url}/push?n={per}&size={PUSH_SIZE}"
        if use_app:
            scale_app(websocket, t, path, conns, per)
        else:
            scale_threads(websocket, t, path, conns, per)
    else:
        raise SystemExit(f"unknown scenario {SCENARIO}")


def scale_threads(websocket, t: Timer, path: str, conns: int, per: int) -> None:  # type: ignore[no-untyped-def]
    """One thread per connection, each in a recv() loop; the clock runs from the first "go"
    (sent by the main thread once every thread waits in recv()) to the last thread's end."""
    sockets = [websocket.create_connection(path) for _ in range(conns)]
    check_driver(sockets[0])
    errors: "list[str]" = []
    ready = threading.Semaphore(0)

    def reader(ws) -> None:  # type: ignore[no-untyped-def]
        recv = ws.recv
        ready.release()
        try:
            for _ in range(per):
                r = recv()
            assert len(r) == PUSH_SIZE
        except BaseException as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=reader, args=(ws,), daemon=True) for ws in sockets]
    for th in threads:
        th.start()
    for _ in threads:
        ready.acquire()
    time.sleep(0.05)  # let the last threads reach their recv()
    t.start()
    for ws in sockets:
        ws.send("go")
    for th in threads:
        th.join()
    if errors:
        emit(error=f"{len(errors)} of {conns} readers failed: {errors[0]}")
        return
    t.stop(conns * per)
    for ws in sockets:
        ws.close()


def scale_app(websocket, t: Timer, path: str, conns: int, per: int) -> None:  # type: ignore[no-untyped-def]
    """`conns` WebSocketApps on one shared rel dispatcher (websocket-client's documented way
    to run several apps in one thread: run_forever(dispatcher=rel), then rel.dispatch()).
    run_forever connects and registers, then returns; the clock runs from the first "go" to
    the last message of the last app."""
    import rel

    total = conns * per
    count = 0
    errors: "list[str]" = []

    def on_message(app, message) -> None:  # type: ignore[no-untyped-def]
        nonlocal count
        count += 1
        if count == total:
            t.stop(total)
            rel.abort()

    def on_error(app, e) -> None:  # type: ignore[no-untyped-def]
        errors.append(repr(e))
        rel.abort()

    apps = []
    for _ in range(conns):
        app = websocket.WebSocketApp(path, on_message=on_message, on_error=on_error)
        app.run_forever(dispatcher=rel)
        if app.sock is None or not app.sock.connected:
            emit(error=f"run_forever(dispatcher=rel) did not connect: {errors}")
            return
        apps.append(app)
    check_driver(apps[0].sock)
    t.start()
    for app in apps:
        app.send("go")
    rel.dispatch()
    if count != total:
        emit(error=f"on_message got {count} of {total} messages; errors: {errors[:3]}")
        return
    # timeout=0: websocket-client hands a write to the dispatcher (rel's buffwrite), which no
    # longer runs, so close() would wait its full 3 s per app for a reply to a close frame
    # that never went out; this way the socket is just shut down (the server sees EOF).
    for app in apps:
        app.close(timeout=0)


# ---- websockets (sync client) ----------------------------------------------------------------

def run_websockets() -> None:
    from websockets.sync.client import connect

    url = f"ws://{ADDR}"
    t = Timer()

    def open_(path: str):  # type: ignore[no-untyped-def]
        return connect(url + path, compression=None, max_size=None)

    if SCENARIO in ECHO:
        size, text = ECHO[SCENARIO]
        msg = payload(size, text)
        ws = open_("/echo")
        send, recv = ws.send, ws.recv
        for _ in range(WARMUP):
            send(msg)
            recv()
        t.start()
        for _ in range(N):
            send(msg)
            r = recv()
        t.stop(N)
        assert r == msg
        ws.close()
    elif SCENARIO == "push100":
        ws = open_(f"/push?n={N}&size={PUSH_SIZE}")
        recv = ws.recv
        t.start()
        ws.send("go")
        for _ in range(N):
            r = recv()
        t.stop(N)
        assert len(r) == PUSH_SIZE
        ws.close()
    elif SCENARIO == "push100app":
        emit(skip="no callback API")
    elif SCENARIO == "handshake":
        for _ in range(WARMUP):
            open_("/echo").close()
        t.start()
        for _ in range(N):
            open_("/echo").close()
        t.stop(N)
    elif SCENARIO == "idle200":
        idle_measure(lambda: open_("/echo"), lambda ws: ws.close())


# ---- picows (asyncio; its API is callbacks, so both push100 variants are the same code) ------

def run_picows() -> None:
    import asyncio

    from picows import WSListener, WSMsgType, ws_connect

    url = f"ws://{ADDR}"
    t = Timer()

    class Echo(WSListener):
        """Sends the next message from the callback: the fastest way to use picows."""

        def __init__(self, msg, text, n):  # type: ignore[no-untyped-def]
            self.msg = msg.encode() if text else msg
            self.text = text
            self.kind = WSMsgType.TEXT if text else WSMsgType.BINARY
            self.left = n
            self.done = asyncio.get_running_loop().create_future()
            self.last = None

        def go(self, transport, n):  # type: ignore[no-untyped-def]
            self.transport = transport
            self.left = n
            self.done = asyncio.get_running_loop().create_future()
            transport.send(self.kind, self.msg)
            return self.done

        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.TEXT:
                self.last = frame.get_payload_as_utf8_text()
            elif frame.msg_type == WSMsgType.BINARY:
                self.last = frame.get_payload_as_bytes()
            else:
                return
            self.left -= 1
            if self.left > 0:
                transport.send(self.kind, self.msg)
            elif not self.done.done():
                self.done.set_result(None)

    class Push(WSListener):
        def __init__(self, n):  # type: ignore[no-untyped-def]
            self.left = n
            self.done = asyncio.get_running_loop().create_future()

        def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
            if frame.msg_type == WSMsgType.TEXT:
                self.last = frame.get_payload_as_utf8_text()
                self.left -= 1
                if self.left == 0:
                    t.stop(N)
                    self.done.set_result(None)

    class Idle(WSListener):
        pass

    async def close(transport) -> None:  # type: ignore[no-untyped-def]
        transport.send_close()
        await transport.wait_disconnected()

    async def scale() -> None:
        """K connections on the one loop; the clock runs from the first "go" to the last message."""
        _app, conns, per = scale_spec()
        raise_nofile(conns)
        total = conns * per
        left = total
        done = asyncio.get_running_loop().create_future()

        class ScalePush(WSListener):
            def on_ws_frame(self, transport, frame):  # type: ignore[no-untyped-def]
                nonlocal left
                if frame.msg_type == WSMsgType.TEXT:
                    self.last = frame.get_payload_as_utf8_text()
                    left -= 1
                    if left == 0:
                        t.stop(total)
                        done.set_result(None)

        path = f"{url}/push?n={per}&size={PUSH_SIZE}"
        transports = [(await ws_connect(ScalePush, path))[0] for _ in range(conns)]
        t.start()
        for tr in transports:
            tr.send(WSMsgType.TEXT, b"go")
        await done
        for tr in transports:
            await close(tr)

    async def main() -> None:
        if SCENARIO.startswith("scale"):
            await scale()
        elif SCENARIO in ECHO:
            size, text = ECHO[SCENARIO]
            msg = payload(size, text)
            transport, lst = await ws_connect(lambda: Echo(msg, text, N), url + "/echo")
            if WARMUP:
                await lst.go(transport, WARMUP)
            t.start()
            await lst.go(transport, N)
            t.stop(N)
            assert lst.last == msg
            await close(transport)
        elif SCENARIO in ("push100", "push100app"):
            transport, lst = await ws_connect(lambda: Push(N), f"{url}/push?n={N}&size={PUSH_SIZE}")
            t.start()
            transport.send(WSMsgType.TEXT, b"go")
            await lst.done
            await close(transport)
        elif SCENARIO == "handshake":
            for _ in range(WARMUP):
                transport, _l = await ws_connect(Idle, url + "/echo")
                await close(transport)
            t.start()
            for _ in range(N):
                transport, _l = await ws_connect(Idle, url + "/echo")
                await close(transport)
            t.stop(N)
        elif SCENARIO == "idle200":
            transport, _l = await ws_connect(Idle, url + "/echo")
            await close(transport)
            gc.collect()
            await asyncio.sleep(0.05)
            rss0, th0 = proc_status("VmRSS:"), proc_status("Threads:")
            conns = [(await ws_connect(Idle, url + "/echo"))[0] for _ in range(N)]
            await asyncio.sleep(0.2)
            gc.collect()
            rss1, th1 = proc_status("VmRSS:"), proc_status("Threads:")
            emit(ops=N, secs=0.0, cpu=0.0, rss_kib=rss1 - rss0, threads=th1 - th0)
            for c in conns:
                await close(c)

    asyncio.run(main())


# ---- raw TCP ping-pong of the same bytes --------------------------------------------------

def run_tcp() -> None:
    import socket
    import struct

    if SCENARIO not in ECHO:
        emit(skip="echo scenarios only")
        return
    size, _ = ECHO[SCENARIO]

    def ext(n: int) -> int:
        return 0 if n < 126 else 2 if n <= 0xFFFF else 8

    req, resp = 2 + ext(size) + 4 + size, 2 + ext(size) + size
    s = socket.create_connection((HOST, int(PORT)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(b"RAW1" + struct.pack("<II", req, resp))
    out = bytes(i & 0xFF for i in range(req))
    buf = bytearray(resp)
    view = memoryview(buf)

    def run(n: int) -> None:
        sendall, recv_into = s.sendall, s.recv_into
        for _ in range(n):
            sendall(out)
            got = 0
            while got < resp:
                k = recv_into(view[got:])
                if not k:
                    raise EOFError
                got += k

    run(WARMUP)
    t = Timer()
    t.start()
    run(N)
    t.stop(N)
    s.close()


if __name__ == "__main__":
    if BASE in ("wsr", "wsc", "wsc-accel"):
        run_websocket_client_api()
    elif CLIENT == "websockets":
        run_websockets()
    elif CLIENT == "picows":
        run_picows()
    elif BASE == "tcp-py":
        run_tcp()
    else:
        raise SystemExit(f"unknown client {CLIENT}")
