"""Real peers for the core test suite, all on 127.0.0.1 and a free port.

* ``EchoServer``: a ``websockets`` (>= 15) asyncio server in a background thread. It echoes
  text as text and binary as binary; special paths (see ``_route``) exercise headers, closes,
  pings, pushes, subprotocols, fragments, multi-thread sinks and big two-way transfers.
  Pass an ``ssl.SSLContext`` for a wss:// variant.
* ``ScriptedServer``: a raw TCP server whose behaviour is a Python function run per accepted
  connection (in its own thread). The function gets a ``ScriptedConn`` that can read the
  handshake request verbatim, answer with anything (a correct 101, a bad status, a wrong
  accept key...), send arbitrary frames or bytes, and capture the frames the client sends.

Running ``python servers.py`` starts an echo server in this process and prints its port on
stdout (used by tests that must keep server-side sockets out of the measuring process).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def stop_child(proc, timeout: float = 10.0) -> None:
    """Stops a server started as a child process that serves until its stdin closes: closes
    stdin, waits, kills it if it does not leave in time, and closes its stdout."""
    proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def big_payload(n: int, seed: int = 0) -> bytes:
    """Deterministic, non-repeating-every-256 payload so misplaced chunks are detected."""
    block = hashlib.sha256(str(seed).encode()).digest() * 64  # 2 KiB
    reps = n // len(block) + 1
    out = bytearray()
    for i in range(reps):
        out += bytes([(b + i) & 0xFF for b in block[:8]]) + block[8:]
    return bytes(out[:n])


def sink_message(tid: int, seq: int, size: int) -> str:
    """A text message whose integrity the /sink endpoint can check."""
    head = f"T{tid}:{seq}:{size}:"
    ch = chr(ord("a") + (tid + seq) % 26)
    return head + ch * size


def check_sink_message(msg) -> bool:
    if not isinstance(msg, str):
        return False
    try:
        tag, seq, size, body = msg.split(":", 3)
        tid = int(tag[1:])
        seq = int(seq)
        size = int(size)
    except ValueError:
        return False
    return body == chr(ord("a") + (tid + seq) % 26) * size


def numbered_message(i: int):
    """Message ``i`` of a sequence: text for even numbers, binary for odd ones, 22 bytes to
    about 4 KiB, carrying its sequence number and a checksum of its body (so a lost,
    duplicated, reordered or damaged message is seen and named)."""
    body = hashlib.sha256(str(i).encode()).hexdigest() * (i * 37 % 64)
    text = f"{i:04d}:{hashlib.sha256(body.encode()).hexdigest()[:16]}:{body}"
    return text if i % 2 == 0 else text.encode()


# ----------------------------------------------------------------------------------------
# Frame helpers (server side: frames are unmasked unless a mask is given)
# ----------------------------------------------------------------------------------------

def make_frame(
    opcode: int,
    payload: bytes | str = b"",
    fin: bool = True,
    rsv1: int = 0,
    rsv2: int = 0,
    rsv3: int = 0,
    mask: bytes | None = None,
) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b1 = (0x80 if fin else 0) | rsv1 << 6 | rsv2 << 5 | rsv3 << 4 | opcode
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = struct.pack("!BB", b1, mbit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b1, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b1, mbit | 127, n)
    if mask is not None:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def close_payload(code: int, reason: bytes | str = b"") -> bytes:
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, mask_key, payload, raw):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.masked = masked
        self.mask_key = mask_key
        self.payload = payload
        self.raw = raw  # the bytes exactly as they came off the wire

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:]

    def __repr__(self):
        return (
            f"Frame(fin={self.fin}, rsv={self.rsv}, opcode={self.opcode}, "
            f"masked={self.masked}, payload={self.payload[:40]!r}"
            f"{'...' if len(self.payload) > 40 else ''} len={len(self.payload)})"
        )


class PeerGone(Exception):
    pass


# ----------------------------------------------------------------------------------------
# Scripted raw TCP server
# ----------------------------------------------------------------------------------------

class ScriptedConn:
    """One accepted connection, driven by the test's script."""

    def __init__(self, sock: socket.socket, server: "ScriptedServer"):
        self.sock = sock
        self.server = server
        self.buf = b""
        self.request: bytes | None = None
        self.request_line: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.key: str | None = None
        self.frames: list[Frame] = []  # every frame received from the client
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.closed_event = threading.Event()

    # -- reading ---------------------------------------------------------------------------
    def _fill(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("client sent nothing in time") from None
        except OSError as e:
            raise PeerGone(str(e)) from None
        if not chunk:
            raise PeerGone("EOF")
        self.buf += chunk

    def read_exact(self, n: int, timeout: float | None = 5.0) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self.buf) < n:
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("read_exact timed out")
            self._fill(left)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_request(self, timeout: float = 5.0) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no complete request")
            self._fill(max(0.001, deadline - time.monotonic()))
        end = self.buf.index(b"\r\n\r\n") + 4
        self.request, self.buf = self.buf[:end], self.buf[end:]
        lines = self.request.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        self.headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            self.headers.append((k, v.strip()))
        self.key = self.header("Sec-WebSocket-Key")
        self.server.requests.append(self.request)
        return self.request

    def header(self, name: str):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def recv_frame(self, timeout: float | None = 5.0) -> Frame:
        head = self.read_exact(2, timeout)
        b1, b2 = head
        raw = bytearray(head)
        n = b2 & 0x7F
        if n == 126:
            ext = self.read_exact(2, timeout)
            raw += ext
            n = struct.unpack("!H", ext)[0]
        elif n == 127:
            ext = self.read_exact(8, timeout)
            raw += ext
            n = struct.unpack("!Q", ext)[0]
        masked = bool(b2 & 0x80)
        key = self.read_exact(4, timeout) if masked else None
        if key:
            raw += key
        data = self.read_exact(n, timeout)
        raw += data
        if masked:
            data = _unmask(key, data)
        frame = Frame(bool(b1 & 0x80), (b1 >> 4) & 7, b1 & 0xF, masked, key, data, bytes(raw))
        self.frames.append(frame)
        return frame

    def frames_within(self, timeout: float):
        """Yields the client's frames as they come, until EOF or ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                yield self.recv_frame(left)
            except (PeerGone, TimeoutError):
                return

    def recv_until_close(self, timeout: float = 5.0, reply: bool = True) -> list[Frame]:
        """Read frames until the client's close frame (answered with the same code when
        ``reply``), EOF or the timeout. Returns the frames read by this call."""
        got = []
        for f in self.frames_within(timeout):
            got.append(f)
            if f.opcode == OP_CLOSE:
                if reply:
                    try:
                        self.send_frame(OP_CLOSE, f.payload[:2])
                    except OSError:
                        pass
                break
        return got

    def wait_eof(self, timeout: float = 5.0) -> bool:
        """Discard input until the client closes the TCP connection. True on EOF."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._fill(max(0.001, deadline - time.monotonic()))
            except PeerGone:
                return True
            except TimeoutError:
                return False
        return False

    # -- writing ---------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes | str = b"", **kw) -> None:
        self.sock.sendall(make_frame(opcode, payload, **kw))

    def accept(
        self,
        subprotocol: str | None = None,
        extra_headers: list[str] | tuple = (),
        accept: str | None = None,
        status_line: str = "HTTP/1.1 101 Switching Protocols",
    ) -> None:
        """Read the request if not done yet, then answer with a (by default correct) 101."""
        if self.request is None:
            self.read_request()
        lines = [
            status_line,
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept if accept is not None else accept_key(self.key or '')}",
        ]
        if subprotocol is not None:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        lines.extend(extra_headers)
        self.send_raw(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, raw: bytes | str) -> None:
        if self.request is None:
            self.read_request()
        self.send_raw(raw.encode("latin-1") if isinstance(raw, str) else raw)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def echo_loop(conn: ScriptedConn, timeout: float = 10.0) -> list[Frame]:
    """Echo data frames (unmasked, same fin/opcode), answer pings, answer a close with the
    same code and stop. Returns every frame read. Stops quietly on EOF or timeout."""
    got = []
    for f in conn.frames_within(timeout):
        got.append(f)
        try:
            if f.opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                conn.send_frame(f.opcode, f.payload, fin=f.fin)
            elif f.opcode == OP_PING:
                conn.send_frame(OP_PONG, f.payload)
            elif f.opcode == OP_CLOSE:
                conn.send_frame(OP_CLOSE, f.payload[:2])
                break
        except OSError:
            break
    return got


def echo_script(conn: ScriptedConn) -> list[Frame]:
    """Accept the handshake correctly, then ``echo_loop``."""
    conn.accept()
    return echo_loop(conn)


def echo_once(ws, text="hello"):
    """Sends ``text`` through a client ``ws``, checks the echo, closes ``ws``."""
    try:
        ws.send(text)
        assert ws.recv() == text
    finally:
        ws.close()


def prelude_then_echo(*raw: bytes, subprotocol=None, extra_headers=()):
    """A script: accept, send ``raw`` byte strings (frames), then ``echo_loop``."""

    def script(conn: ScriptedConn):
        conn.accept(subprotocol=subprotocol, extra_headers=extra_headers)
        for r in raw:
            conn.send_raw(r)
        return echo_loop(conn)

    return script


def _unmask(key: bytes, data: bytes) -> bytes:
    n = len(data)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ k).to_bytes(n, "big")


class ScriptedServer:
    """Runs ``script(conn)`` for each accepted connection. ``script`` may be a list to give a
    different script to consecutive connections (the last one is reused)."""

    def __init__(self, script, family=socket.AF_INET, host="127.0.0.1"):
        self.scripts = script if isinstance(script, list) else [script]
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(64)
        self.host = host
        self.port = self.lsock.getsockname()[1]
        hostpart = f"[{host}]" if ":" in host else host
        self.url = f"ws://{hostpart}:{self.port}"
        self.conns: list[ScriptedConn] = []
        self.requests: list[bytes] = []
        self.new_conn = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    def _accept_loop(self):
        while not self._stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            if self._stopping:
                s.close()
                return
            conn = ScriptedConn(s, self)
            with self.new_conn:
                idx = len(self.conns)
                self.conns.append(conn)
                self.new_conn.notify_all()
            script = self.scripts[min(idx, len(self.scripts) - 1)]
            t = threading.Thread(target=self._run, args=(script, conn), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, script, conn):
        try:
            conn.result = script(conn)
        except BaseException as e:  # noqa: BLE001 - reported through .result()
            conn.error = e
        finally:
            conn.done.set()
            # keep the socket open until the test is done with it unless the script closed it

    def conn(self, index: int = 0, timeout: float = 5.0) -> ScriptedConn:
        deadline = time.monotonic() + timeout
        with self.new_conn:
            while len(self.conns) <= index:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no connection #{index}")
                self.new_conn.wait(left)
            return self.conns[index]

    def result(self, index: int = 0, timeout: float = 10.0):
        """Wait for the script of connection ``index`` to finish and return its value
        (re-raising what it raised)."""
        c = self.conn(index, timeout)
        if not c.done.wait(timeout):
            raise TimeoutError(f"script of connection #{index} did not finish")
        if c.error is not None:
            raise c.error
        return c.result

    def stop(self):
        self._stopping = True
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.lsock.close()
        for c in list(self.conns):
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._accept_thread.join(5)
        for t in self._threads:
            t.join(5)


# ----------------------------------------------------------------------------------------
# websockets-based echo server
# ----------------------------------------------------------------------------------------

class EchoServer:
    def __init__(self, ssl_context=None, host="127.0.0.1"):
        self.ssl_context = ssl_context
        self.host = host
        self.port = None
        self.closes: dict[str, tuple] = {}  # request path -> (close_code, close_reason)
        self.seen: dict[str, dict] = {}  # request path -> info recorded by some endpoints
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._err = None
        self._thread = threading.Thread(target=self._thread_main, daemon=True, name="echo-server")
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("echo server did not start")
        if self._err:
            raise self._err
        scheme = "wss" if ssl_context else "ws"
        self.url = f"{scheme}://{host}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------
    def _thread_main(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as e:  # noqa: BLE001
            self._err = e
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self):
        import websockets
        from websockets.asyncio.server import serve

        if int(websockets.__version__.split(".")[0]) < 15:
            raise RuntimeError(f"the test servers need websockets>=15, not {websockets.__version__}")
        self._stop = self._loop.create_future()
        async with serve(
            self._handler,
            self.host,
            0,
            ssl=self.ssl_context,
            max_size=None,
            max_queue=None,
            ping_interval=None,
            compression=None,
            close_timeout=2,
            select_subprotocol=_select_subprotocol,
            process_request=_process_request,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop

    def stop(self):
        if self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(lambda: self._stop.done() or self._stop.set_result(None))
        except RuntimeError:
            pass
        self._thread.join(15)

    # -- records ---------------------------------------------------------------------------
    def _record(self, table, path, value):
        with self._cond:
            table[path] = value
            self._cond.notify_all()

    def wait_close(self, path: str, timeout: float = 5.0):
        """(code, reason) with which the client closed the connection made to ``path``."""
        return self._wait(self.closes, path, timeout)

    def wait_seen(self, path: str, timeout: float = 5.0):
        return self._wait(self.seen, path, timeout)

    def _wait(self, table, path, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while path not in table:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"nothing recorded for {path!r}")
                self._cond.wait(left)
            return table[path]

    # -- the handler -----------------------------------------------------------------------
    async def _handler(self, ws):
        from websockets.exceptions import ConnectionClosed

        path = ws.request.path
        try:
            await self._route(ws, path)
        except ConnectionClosed:
            pass
        finally:
            try:
                await asyncio.wait_for(ws.wait_closed(), 5)
            except Exception:  # noqa: BLE001
                pass
            self._record(self.closes, path, (ws.close_code, ws.close_reason))

    async def _echo(self, ws):
        async for msg in ws:
            await ws.send(msg)

    async def _route(self, ws, path):
        url = urlsplit(path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        p = url.path
        if p == "/headers":
            await ws.send(
                json.dumps(
                    {
                        "path": path,
                        "headers": list(ws.request.headers.raw_items()),
                        "subprotocol": ws.subprotocol,
                    }
                )
            )
            await self._echo(ws)
        elif p == "/close":
            await ws.close(int(q.get("code", 1000)), q.get("reason", ""))
        elif p == "/ping":
            await ws.ping(q.get("data", "hi").encode())
            await self._echo(ws)
        elif p == "/push":
            n = int(q.get("n", 5))
            for i in range(n):
                await ws.send(f"msg-{i}")
            await self._echo(ws)
        elif p == "/fragments":
            await ws.send(["frag1 ", "frag2 ", "frag3"])
            await ws.send([b"\x01\x02", b"\x03", b"\x04\x05"])
            await self._echo(ws)
        elif p == "/silent":
            await ws.wait_closed()
        elif p == "/sink":
            count = bad = 0
            async for msg in ws:
                if msg == "done":
                    await ws.send(json.dumps({"count": count, "bad": bad}))
                    continue
                count += 1
                if not check_sink_message(msg):
                    bad += 1
        elif p == "/big":
            n = int(q.get("n", 8 << 20))
            payload = big_payload(n, seed=1)

            async def sender():
                await ws.send(payload)

            task = asyncio.ensure_future(sender())
            got = await ws.recv()
            await task
            if isinstance(got, str):
                got = got.encode()
            await ws.send(json.dumps({"len": len(got), "sha256": hashlib.sha256(got).hexdigest()}))
            await self._echo(ws)
        elif p == "/count":
            # counts messages and their sizes, replies when told "report"
            sizes = []
            async for msg in ws:
                if msg == "report":
                    await ws.send(json.dumps(sizes))
                else:
                    sizes.append([type(msg).__name__, len(msg)])
        else:
            await self._echo(ws)


def _select_subprotocol(connection, subprotocols):
    # Accept whatever the client offers first (exact spelling), or nothing.
    return subprotocols[0] if subprotocols else None


def _process_request(connection, request):
    url = urlsplit(request.path)
    q = {k: v[-1] for k, v in parse_qs(url.query).items()}
    if url.path == "/reject":
        resp = connection.respond(HTTPStatus(int(q.get("status", 403))), q.get("body", "nope\n"))
        resp.headers["X-Reason"] = "test"
        return resp
    if url.path == "/redirect":
        resp = connection.respond(HTTPStatus(int(q.get("status", 302))), "")
        resp.headers["Location"] = q["to"]
        return resp
    return None


def main():
    srv = EchoServer()
    print(srv.port, flush=True)
    try:
        sys.stdin.read()  # run until the parent closes our stdin
    finally:
        srv.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
