"""Extra peers for the WebSocketApp tests (tests/test_app_*.py), on 127.0.0.1.

* Scripts for ``servers.ScriptedServer``: a server that never answers pings, one that pings
  the client while its callback sleeps and measures the pong latency, one that drops the TCP
  connection without a close frame.
* ``ProcessEchoServer``: the ``servers.EchoServer`` in a child process on a fixed port, which
  can be killed (SIGKILL: connections just die) and started again on the same port.
* ``ConnectProxy``: a minimal HTTP CONNECT proxy that records the targets it was asked for.
* ``python app_servers.py echo PORT [HOST]``: echo server on a fixed port (prints "ready").
  ``python app_servers.py example PORT N``: echo server on localhost that closes each
  connection normally after echoing N messages (for the documented example).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Optional

from servers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PeerGone,
    ScriptedConn,
)

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------
# ScriptedServer scripts
# ----------------------------------------------------------------------------------------

def no_pong_script(conn: ScriptedConn):
    """Accept, echo data frames, never answer pings. Returns the pings received."""
    conn.accept()
    pings = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            f = conn.recv_frame(max(0.01, deadline - time.monotonic()))
        except (PeerGone, TimeoutError):
            break
        if f.opcode == OP_PING:
            pings.append(f.payload)
        elif f.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
            conn.send_frame(f.opcode, f.payload, fin=f.fin)
        elif f.opcode == OP_CLOSE:
            try:
                conn.send_frame(OP_CLOSE, f.payload[:2])
            except OSError:
                pass
            break
    return pings


def _pong_latency(conn: ScriptedConn, payload: bytes) -> Optional[float]:
    """Sends a ping and waits (up to 10 s) for its pong: the seconds it took, or None."""
    t0 = time.monotonic()
    conn.send_frame(OP_PING, payload)
    deadline = t0 + 10
    while time.monotonic() < deadline:
        try:
            f = conn.recv_frame(max(0.01, deadline - time.monotonic()))
        except (PeerGone, TimeoutError):
            return None
        if f.opcode == OP_PONG and f.payload == payload:
            return time.monotonic() - t0
    return None


def ping_while_busy_script(conn: ScriptedConn, delay: float = 0.3):
    """Accept, send the text "sleep" (the client's on_message then sleeps), wait ``delay``,
    send a ping and measure how long its pong takes. Then echo until close.
    Returns ``{"latency": seconds or None}``."""
    conn.accept()
    conn.send_frame(OP_TEXT, "sleep")
    time.sleep(delay)
    latency = _pong_latency(conn, b"are-you-there")
    conn.send_frame(OP_TEXT, "done")
    from servers import echo_loop

    echo_loop(conn)
    return {"latency": latency}


def ping_at_open_script(conn: ScriptedConn):
    """Accept, ping at once (before the client could have called recv) and measure how long
    its pong takes; then send "done" and echo until close. Returns ``{"latency": seconds or
    None}``."""
    conn.accept()
    latency = _pong_latency(conn, b"just-opened")
    conn.send_frame(OP_TEXT, "done")
    from servers import echo_loop

    echo_loop(conn)
    return {"latency": latency}


def drop_script(conn: ScriptedConn):
    """Accept, then close the TCP connection without a close frame."""
    conn.accept()
    time.sleep(0.1)
    try:
        conn.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def close_without_code_script(conn: ScriptedConn):
    """Accept, then send a close frame with an empty payload."""
    conn.accept()
    conn.send_frame(OP_CLOSE, b"")
    conn.recv_until_close(reply=False)
    conn.close()


def fragments_script(conn: ScriptedConn):
    """Accept, send a text message in three fragments, a binary one in two, then echo."""
    from servers import echo_loop

    conn.accept()
    conn.send_frame(OP_TEXT, "héllo ", fin=False)
    conn.send_frame(OP_CONT, "wörld ", fin=False)
    conn.send_frame(OP_CONT, "!", fin=True)
    conn.send_frame(OP_BINARY, b"\x00\x01", fin=False)
    conn.send_frame(OP_CONT, b"\x02", fin=True)
    return echo_loop(conn)


def pong_script(conn: ScriptedConn):
    """Accept, send an unsolicited pong, then echo."""
    from servers import echo_loop

    conn.accept()
    conn.send_frame(OP_PONG, b"unasked")
    return echo_loop(conn)


# ----------------------------------------------------------------------------------------
# Echo server in a child process, on a fixed port
# ----------------------------------------------------------------------------------------

def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ProcessEchoServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "app_servers.py"), "echo", str(self.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            line = proc.stdout.readline().strip()
            if line == "ready":
                self.proc = proc
                return
            proc.wait()
            if time.monotonic() > deadline:
                raise RuntimeError(f"echo server could not start on {self.port}: {line!r}")
            time.sleep(0.2)  # the port may still be held by the previous process

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc = None

    stop = kill


# ----------------------------------------------------------------------------------------
# HTTP CONNECT proxy
# ----------------------------------------------------------------------------------------

class ConnectProxy:
    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.targets: list[str] = []
        self._socks: list[socket.socket] = []
        self._stopping = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self._socks.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                chunk = c.recv(4096)
                if not chunk:
                    return
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            line = head.split(b"\r\n")[0].decode("latin-1")
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            self.targets.append(target)
            host, _, port = target.rpartition(":")
            up = socket.create_connection((host.strip("[]"), int(port)))
            self._socks.append(up)
            c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                up.sendall(rest)
        except OSError:
            return

        def pump(a: socket.socket, b: socket.socket):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        threading.Thread(target=pump, args=(up, c), daemon=True).start()
        pump(c, up)

    def stop(self):
        self._stopping = True
        self.lsock.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------------------
# Child-process entry points
# ----------------------------------------------------------------------------------------

async def _echo_main(port: int, host: str, close_after: int | None) -> None:
    from websockets.asyncio.server import serve

    async def handler(ws):
        n = 0
        async for msg in ws:
            await ws.send(msg)
            n += 1
            if close_after is not None and n >= close_after:
                await ws.close(1000, "enough")
                break

    try:
        server = await serve(handler, host, port, ping_interval=None, compression=None)
    except OSError as e:
        print(f"error {e}", flush=True)
        return
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    # Run until the parent closes our stdin (or kills us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main(argv: list[str]) -> None:
    kind, port = argv[1], int(argv[2])
    if kind == "echo":
        host = argv[3] if len(argv) > 3 else "127.0.0.1"
        asyncio.run(_echo_main(port, host, None))
    elif kind == "example":
        asyncio.run(_echo_main(port, "localhost", int(argv[3])))
    os._exit(0)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main(sys.argv)


# ----------------------------------------------------------------------------------------
# Test helpers
# ----------------------------------------------------------------------------------------

CALLBACKS = ("on_open", "on_reconnect", "on_message", "on_error", "on_close", "on_ping",
             "on_pong", "on_cont_message", "on_data")


class Recorder:
    """Records every callback as ``(name, *args)`` (the app argument left out) and the
    thread each ran on. ``rec.callbacks(...)`` gives keyword arguments for WebSocketApp."""

    def __init__(self):
        self.events: list[tuple] = []
        self.threads: list[str] = []
        self.cond = threading.Condition()

    def add(self, name, *args):
        with self.cond:
            self.events.append((name,) + args)
            self.threads.append(threading.current_thread().name)
            self.cond.notify_all()

    def make(self, name, then=None):
        def cb(ws, *args):
            self.add(name, *args)
            if then is not None:
                then(ws, *args)

        cb.__name__ = name
        return cb

    def callbacks(self, *names, **then):
        names = names or CALLBACKS
        return {n: self.make(n, then.get(n)) for n in names}

    def named(self, name):
        with self.cond:
            return [e[1:] for e in self.events if e[0] == name]

    def names(self):
        with self.cond:
            return [e[0] for e in self.events]

    def wait(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met; events: {self.events!r}")
                self.cond.wait(left)

    def wait_named(self, name, count=1, timeout=5.0):
        self.wait(lambda: sum(1 for e in self.events if e[0] == name) >= count, timeout)
        return self.named(name)


class AppThread(threading.Thread):
    """Runs ``app.run_forever(**kwargs)`` in a daemon thread; ``result()`` joins it."""

    def __init__(self, app, **kwargs):
        super().__init__(daemon=True, name="app-runner")
        self.app = app
        self.kwargs = kwargs
        self.value = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.value = self.app.run_forever(**self.kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        finally:
            self.app = None

    def result(self, timeout=15.0):
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError("run_forever did not return")
        if self.error is not None:
            raise self.error
        return self.value
