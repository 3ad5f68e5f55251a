#!/usr/bin/env python3
"""Seeds fuzz/corpus/ from real traffic: the bytes `websockets` and `aiohttp` servers send to
a client, captured on 127.0.0.1 with a raw socket (no websocket library on the client side).

    python fuzz/capture_corpus.py          # needs websockets and aiohttp

Writes, for each captured conversation:
- corpus/handshake_response/<name>: 2 selector bytes + the server's handshake response
  (101s with and without subprotocol / permessage-deflate, redirects, 4xx with bodies);
- corpus/codec/<name>-<config>: 2 selector bytes + the frames the server sent after the
  handshake (text, binary, empty, 125/126-byte lengths, fragments, ping, pong, close with
  code and reason), once per delivery mode, with permessage-deflate on for the compressed
  conversations; the 65535/65536-byte messages (16- and 64-bit lengths, direct reads) are
  a conversation of their own, kept once, so the corpus stays small;
- corpus/frame_header/<name>: the header (+ 16 payload bytes) of each frame;
- corpus/utf8/<name>: 1 seed byte + each text payload seen;
- corpus/deflate/<name>: each compressed message payload (inflated on its own), each plain
  message (round trip), each Sec-WebSocket-Extensions answer (negotiation).
The selector bytes are explained at the top of each fuzz target.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # the accept key the handshake target checks against

MESSAGES = [
    "hello",
    b"\x00\x01\x02binary",
    "",
    b"",
    "x" * 125,
    "y" * 126,
    "κόσμε 𝄞 mixed UTF-8",
]
LARGE = [b"z" * 65535, b"w" * 65536]
FRAGMENTS = ["frag1 ", "frag2 ", "κό", "σμε"]


def write(target: str, name: str, data: bytes) -> None:
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def raw_conversation(port: int, path: str, extra: str = "", read_for: float = 1.5) -> tuple[bytes, bytes]:
    """Handshake with a raw socket; returns (response head, every byte after it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    s.sendall(req.encode())
    buf = b""
    deadline = time.monotonic() + read_for
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            continue
        if not chunk:
            break
        buf += chunk
    s.close()
    if b"\r\n\r\n" not in buf:
        return buf, b""
    end = buf.index(b"\r\n\r\n") + 4
    return buf[:end], buf[end:]


# ---- servers ----------------------------------------------------------------------------


async def ws_handler(ws):
    path = ws.request.path
    if path.startswith("/messages"):
        for m in MESSAGES:
            await ws.send(m)
        await ws.send(FRAGMENTS)
        await ws.send([b"\x01", b"\x02\x03"])
        await ws.ping(b"ping-data")
        await ws.pong(b"unsolicited")
        await ws.close(1000, "bye")
    elif path.startswith("/large"):
        for m in LARGE:
            await ws.send(m)
        await ws.close(1000)
    elif path.startswith("/close"):
        await ws.close(4001, "custom κόσμε")
    elif path.startswith("/deflate"):
        for m in MESSAGES[:3] + ["compress me " * 50]:
            await ws.send(m)
        await ws.send(["abc" * 40, "def" * 40])
        await ws.close(1001)


def process_request(conn, request):
    from websockets.http11 import Response
    from websockets.datastructures import Headers

    if request.path == "/redirect":
        return Response(302, "Found", Headers([("Location", "ws://127.0.0.1/elsewhere"), ("Content-Length", "0")]), b"")
    if request.path == "/forbidden":
        body = b"go away\n"
        return Response(403, "Forbidden", Headers([("Content-Length", str(len(body))), ("Content-Type", "text/plain")]), body)
    return None


def start_websockets():
    from websockets.asyncio.server import serve

    ready = threading.Event()
    box = {}

    async def main():
        async with serve(ws_handler, "127.0.0.1", 0, compression=None, process_request=process_request,
                         select_subprotocol=lambda c, s: s[0] if s else None, max_size=None) as plain, \
                serve(ws_handler, "127.0.0.1", 0, max_size=None) as deflate:
            box["plain"] = plain.sockets[0].getsockname()[1]
            box["deflate"] = deflate.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return box


def start_aiohttp():
    from aiohttp import web

    async def handler(request):
        ws = web.WebSocketResponse(protocols=("chat",), compress=request.path.startswith("/deflate"))
        await ws.prepare(request)
        for m in MESSAGES:
            if isinstance(m, str):
                await ws.send_str(m)
            else:
                await ws.send_bytes(m)
        await ws.ping(b"aio-ping")
        await ws.close(code=1000, message=b"aio bye")
        return ws

    ready = threading.Event()
    box = {}

    async def main():
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["port"] = site._server.sockets[0].getsockname()[1]
        ready.set()
        await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    ready.wait(10)
    return box


# ---- frame walking ------------------------------------------------------------------------


def frames(stream: bytes):
    """(header bytes, opcode, payload) for each complete frame."""
    pos = 0
    while pos + 2 <= len(stream):
        b0, b1 = stream[pos], stream[pos + 1]
        n, at = b1 & 0x7F, pos + 2
        if n == 126:
            n, at = struct.unpack("!H", stream[at:at + 2])[0], at + 2
        elif n == 127:
            n, at = struct.unpack("!Q", stream[at:at + 8])[0], at + 8
        if at + n > len(stream):
            return
        yield stream[pos:at], b0 & 0xF, b0 & 0x40, stream[at:at + n]
        pos = at + n


def main() -> int:
    ws = start_websockets()
    aio = start_aiohttp()
    conversations = {
        "websockets-messages": (ws["plain"], "/messages", ""),
        "websockets-large": (ws["plain"], "/large", ""),
        "websockets-subprotocol": (ws["plain"], "/close", "Sec-WebSocket-Protocol: chat, superchat\r\n"),
        "websockets-close-4001": (ws["plain"], "/close", ""),
        "websockets-deflate": (ws["deflate"], "/deflate",
                               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"),
        "websockets-redirect": (ws["plain"], "/redirect", ""),
        "websockets-403": (ws["plain"], "/forbidden", ""),
        "aiohttp-messages": (aio["port"], "/messages", "Sec-WebSocket-Protocol: chat\r\n"),
        "aiohttp-deflate": (aio["port"], "/deflate", "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    }
    for name, (port, path, extra) in conversations.items():
        head, rest = raw_conversation(port, path, extra)
        print(f"{name}: head {len(head)} bytes, then {len(rest)} bytes", file=sys.stderr)
        # handshake target: read size 16 and 255; subprotocols none / ["chat"] / both.
        write("handshake_response", name, bytes([15, 2 if "subprotocol" in name else 1 if "aiohttp" in name else 0]) + head)
        write("handshake_response", name + "-bytewise", bytes([0, 0]) + head)
        if not rest:
            continue
        deflate = 0x08 if "deflate" in name else 0x00  # the codec target's "negotiated" bit
        configs = ((0x00, "messages"), (0x01, "fragments"), (0x02, "raw"), (0xC0, "max1000"))
        for cfg, label in configs[:1] if "large" in name else configs:
            write("codec", f"{name}-{label}", bytes([cfg | deflate, 0x5A]) + rest)
        for i, (hdr, op, rsv1, payload) in enumerate(frames(rest)):
            write("frame_header", f"{name}-{i}", hdr + payload[:16])
            if op == 1 and not rsv1 and payload:
                write("utf8", f"{name}-{i}", bytes([i]) + payload[:4096])
            if rsv1:
                # Inflate part, 15-bit window, seed 0: the payload as one whole message.
                write("deflate", f"{name}-inflate-{i}", bytes([0x1C, 0]) + payload)
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-extensions:"):
                # Negotiate part: offered with a bare client_max_window_bits (our default).
                write("deflate", f"{name}-negotiate", bytes([0x06, 0]) + line.split(b":", 1)[1].strip())
    # Round-trip part: the plain messages the servers sent, cut by a few seeds.
    for i, m in enumerate(MESSAGES + FRAGMENTS):
        data = m.encode() if isinstance(m, str) else m
        write("deflate", f"roundtrip-{i}", bytes([0x1D, 1 + i]) + data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
