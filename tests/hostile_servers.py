"""Misbehaving WebSocket servers for the robustness tests, all on 127.0.0.1.

Each server is a plain TCP listener whose per-connection behaviour is a function of a
``Peer`` (the accepted socket plus a few helpers). The behaviours below are the hostile
peers of issue 6: silent after accept, trickling or endless handshake headers, half a frame
then nothing, a reset in the middle of a message, a close frame never answered, a peer that
never reads, floods (data, empty frames, pings), absurd frame lengths.

Nothing here uses a WebSocket library: the bytes on the wire are exactly what each test
wants, including the broken ones. Every behaviour is bounded in time (``LIMIT``) so a
failing test never leaves a thread spinning.

Running ``python hostile_servers.py BEHAVIOUR [ARG]`` serves one behaviour in a separate
process and prints its port (for tests that measure the client's memory or descriptors and
must keep the server's out of the count).
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import sys
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LIMIT = 30.0  # no behaviour runs longer than this

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(opcode: int, payload: bytes = b"", fin: bool = True, length: int | None = None) -> bytes:
    """A server frame (unmasked). ``length`` overrides the declared payload length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", b0, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", b0, 126, n)
    else:
        head = struct.pack("!BBQ", b0, 127, n)
    return head + payload


class Peer:
    """One accepted connection."""

    def __init__(self, sock: socket.socket, server: "HostileServer"):
        self.sock = sock
        self.server = server
        self.buf = b""
        self.key: str | None = None
        self.deadline = time.monotonic() + LIMIT
        self.frames: list[tuple[int, bytes]] = []  # what `collect` read from the client
        self.got_frame = threading.Condition()

    def alive(self) -> bool:
        return not self.server.stopping and time.monotonic() < self.deadline

    def read_request(self) -> bytes:
        self.sock.settimeout(5)
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("EOF before the request ended")
            self.buf += chunk
        end = self.buf.index(b"\r\n\r\n") + 4
        req, self.buf = self.buf[:end], self.buf[end:]
        for line in req.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-key":
                self.key = value.strip()
        return req

    def accept(self) -> None:
        """Reads the request and answers a correct 101."""
        self.read_request()
        self.send(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept_key(self.key or '')}\r\n\r\n"
            ).encode()
        )

    def send(self, data: bytes) -> None:
        self.sock.settimeout(5)
        self.sock.sendall(data)

    def read_frames(self, timeout: float) -> list[tuple[int, bytes]]:
        """Client frames (opcode, unmasked payload) read within ``timeout``."""
        out = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            while len(self.buf) >= 2:
                b1 = self.buf[1]
                n, at = b1 & 0x7F, 2
                if n == 126:
                    if len(self.buf) < 4:
                        break
                    n, at = struct.unpack("!H", self.buf[2:4])[0], 4
                elif n == 127:
                    if len(self.buf) < 10:
                        break
                    n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
                if len(self.buf) < at + 4 + n:
                    break
                key = self.buf[at:at + 4]
                data = bytes(b ^ key[i % 4] for i, b in enumerate(self.buf[at + 4:at + 4 + n]))
                out.append((self.buf[0] & 0xF, data))
                self.buf = self.buf[at + 4 + n:]
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            self.buf += chunk
        return out

    def collect(self, seconds: float = LIMIT) -> None:
        """Keeps the connection open, recording the client's frames in ``frames``."""
        end = min(self.deadline, time.monotonic() + seconds)
        while self.alive() and time.monotonic() < end:
            got = self.read_frames(0.05)
            if got:
                with self.got_frame:
                    self.frames.extend(got)
                    self.got_frame.notify_all()

    def wait_frame(self, opcode: int, timeout: float = 3.0) -> bytes | None:
        """The payload of the first client frame with ``opcode`` seen by ``collect``."""
        end = time.monotonic() + timeout
        with self.got_frame:
            while True:
                for op, data in self.frames:
                    if op == opcode:
                        return data
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.got_frame.wait(left)

    def hold(self, seconds: float = LIMIT) -> None:
        """Keeps the connection open, reading nothing, until the test ends or the client
        goes away."""
        end = min(self.deadline, time.monotonic() + seconds)
        while self.alive() and time.monotonic() < end:
            time.sleep(0.02)

    def drain(self, seconds: float = LIMIT) -> None:
        """Keeps the connection open, reading (and dropping) whatever the client sends."""
        end = min(self.deadline, time.monotonic() + seconds)
        while self.alive() and time.monotonic() < end:
            self.sock.settimeout(0.05)
            try:
                if not self.sock.recv(65536):
                    return
            except socket.timeout:
                continue
            except OSError:
                return

    def reset(self) -> None:
        """Closes with a TCP RST (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class HostileServer:
    """Listens on 127.0.0.1 and runs ``behaviour(peer)`` per connection, in a thread."""

    def __init__(self, behaviour, backlog: int = 16):
        self.behaviour = behaviour
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(backlog)
        self.port = self.lsock.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.stopping = False
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self.connected = threading.Event()
        self.finished = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept.start()

    def _accept_loop(self) -> None:
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            peer = Peer(s, self)
            self.peers.append(peer)
            self.connected.set()
            t = threading.Thread(target=self._run, args=(peer,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, peer: Peer) -> None:
        try:
            self.behaviour(peer)
        except (OSError, ConnectionError):
            pass  # the client went away: expected for most behaviours
        except BaseException as e:  # noqa: BLE001 - reported to the test
            self.errors.append(e)
        finally:
            self.finished.set()

    def stop(self) -> None:
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        for p in self.peers:
            try:
                p.sock.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> "HostileServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ---- behaviours ----------------------------------------------------------------------------


def silent(peer: Peer) -> None:
    """Accepts TCP, never answers the handshake."""
    peer.hold()


def trickle_headers(peer: Peer) -> None:
    """Answers the handshake one byte every 50 ms, a header line that never ends."""
    peer.read_request()
    for b in b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: " + b"a" * 100000:
        if not peer.alive():
            return
        peer.send(bytes([b]))
        time.sleep(0.05)


def endless_headers(peer: Peer) -> None:
    """Sends response headers as fast as possible, never the blank line."""
    peer.read_request()
    peer.send(b"HTTP/1.1 101 Switching Protocols\r\n")
    line = b"X-Filler: " + b"f" * 100 + b"\r\n"
    while peer.alive():
        peer.send(line * 100)


def many_headers(peer: Peer) -> None:
    """A complete 101 with 1000 header lines (more than the parser takes)."""
    peer.read_request()
    lines = [f"X-H{i}: v" for i in range(1000)]
    peer.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(peer.key or '')}\r\n" + "\r\n".join(lines) + "\r\n\r\n"
        ).encode()
    )
    peer.hold(5)


def half_frame(then: bytes | None = None, after: float = 0.0):
    """Accepts, sends the first half of a 100-byte text frame, stalls; with ``then``, sends
    those bytes after ``after`` seconds (the rest of the frame, say), then drains."""

    def behaviour(peer: Peer) -> None:
        peer.accept()
        peer.send(frame(OP_TEXT, b"h" * 100)[:52])
        if then is None:
            peer.hold()
            return
        time.sleep(after)
        peer.send(then)
        peer.drain()

    return behaviour


def reset_mid_message(peer: Peer) -> None:
    """Accepts, sends part of a 64 KiB binary message, then resets the connection."""
    peer.accept()
    peer.send(frame(OP_BINARY, b"r" * 65536)[:30000])
    time.sleep(0.1)
    peer.reset()


def ignore_close(peer: Peer) -> None:
    """Accepts, reads whatever comes (the close frame too), never answers, keeps TCP open."""
    peer.accept()
    peer.drain()


def never_read(peer: Peer) -> None:
    """Accepts, then never reads: the client's sends fill the socket buffers."""
    peer.accept()
    peer.hold()


def length_frame(length: int, body: bytes = b"x" * 1000):
    """Accepts, sends a binary frame header declaring ``length`` bytes, then ``body``, then
    stalls (collecting the client's frames)."""

    def behaviour(peer: Peer) -> None:
        peer.accept()
        peer.send(frame(OP_BINARY, body, length=length))
        peer.collect()

    return behaviour


def flood(payload_size: int, total: int):
    """Accepts, then pushes binary messages of ``payload_size`` bytes until ``total`` bytes
    went out (or the client stops reading for good, or LIMIT), reading nothing."""

    def behaviour(peer: Peer) -> None:
        peer.accept()
        one = frame(OP_BINARY, b"\xab" * payload_size)
        batch = one * max(1, (256 * 1024) // len(one))
        sent = 0
        peer.sock.settimeout(0.2)
        stalled_since = None
        while peer.alive() and sent < total:
            try:
                peer.sock.sendall(batch)
                sent += len(batch)
                stalled_since = None
            except socket.timeout:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 5:
                    break
        peer.server.sent = sent  # type: ignore[attr-defined]
        peer.hold(5)

    return behaviour


def ping_flood(peer: Peer) -> None:
    """Accepts, then sends pings (125-byte payloads) without ever reading the pongs."""
    peer.accept()
    ping = frame(OP_PING, b"p" * 125) * 512
    peer.sock.settimeout(0.2)
    stalled_since = None
    while peer.alive():
        try:
            peer.sock.sendall(ping)
            stalled_since = None
        except socket.timeout:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 5:
                break
    peer.hold(5)


BEHAVIOURS = {
    "silent": lambda arg: silent,
    "flood": lambda arg: flood(int(arg or 1024), 1 << 62),
    "empty-flood": lambda arg: flood(0, 1 << 62),
    "ping-flood": lambda arg: ping_flood,
    "ignore-close": lambda arg: ignore_close,
}


if __name__ == "__main__":
    srv = HostileServer(BEHAVIOURS[sys.argv[1]](sys.argv[2] if len(sys.argv) > 2 else None))
    print(srv.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin
    finally:
        srv.stop()
