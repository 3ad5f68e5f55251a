"""One benchmark run of one Python client, in its own process (started by bench/run.py).

    python pyclient.py CLIENT SCENARIO HOST:PORT N WARMUP

CLIENT: wsr (this package), wsc (websocket-client 1.9.2, wsaccel blocked), wsc-accel
(websocket-client with wsaccel), websockets (17, sync client), picows (2.3, asyncio),
tcp-py (a raw socket ping-pong of the same bytes: the floor for any Python client).

Prints one JSON object: ops, secs (wall time of the timed part), cpu (user+sys seconds of
the whole process over the timed part, getrusage: threads such as a reactor included), and
for idle200 rss_kib / threads (added by N idle connections after one warm-up connection).
A client that cannot run a scenario prints {"skip": "why"}.
"""

import gc
import json
import resource
import sys
import time

CLIENT, SCENARIO, ADDR, N, WARMUP = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
HOST, PORT = ADDR.rsplit(":", 1)

if CLIENT == "wsc":
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

def run_websocket_client_api() -> None:
    import websocket

    if CLIENT == "wsr":
        assert hasattr(websocket, "_native"), "not websocket-rust"
    else:
        has_accel = sys.modules.get("wsaccel") is not None
        if CLIENT == "wsc-accel":
            assert has_accel, "wsaccel not in use"
        else:
            assert sys.modules.get("wsaccel") is None
    url = f"ws://{ADDR}"
    t = Timer()
    if SCENARIO in ECHO:
        size, text = ECHO[SCENARIO]
        msg = payload(size, text)
        ws = websocket.create_connection(url + "/echo")
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
        for _ in range(WARMUP):
            websocket.create_connection(url + "/echo").close()
        t.start()
        for _ in range(N):
            websocket.create_connection(url + "/echo").close()
        t.stop(N)
    elif SCENARIO == "idle200":
        idle_measure(lambda: websocket.create_connection(url + "/echo"), lambda ws: ws.close())
    else:
        raise SystemExit(f"unknown scenario {SCENARIO}")


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

    async def main() -> None:
        if SCENARIO in ECHO:
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
    if CLIENT in ("wsr", "wsc", "wsc-accel"):
        run_websocket_client_api()
    elif CLIENT == "websockets":
        run_websockets()
    elif CLIENT == "picows":
        run_picows()
    elif CLIENT == "tcp-py":
        run_tcp()
    else:
        raise SystemExit(f"unknown client {CLIENT}")
