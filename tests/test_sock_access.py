"""Raw access through ``ws.sock``, as consumers of websocket-client use it (issue 13, part 4).

The kubernetes client's port-forward formats frames itself (``ABNF.create_frame(data,
OPCODE_BINARY).format()``), writes them with ``ws.sock.send()``, select()s on the WebSocket
object for reading and for writing, and drains ``recv_data_frame(True)`` while the socket is
readable (or, over TLS, while ``sock.pending()``); its exec client poll()s ``ws.sock``. These
tests drive those patterns against real servers, over ws:// and wss://, on both drivers:

* bytes written through ``ws.sock`` go out in order with the WebSocket's own frames;
* on the native driver they never land inside another frame, even while the engine answers
  the server's pings from its own thread (a pong waits for the caller's frame to end);
* poll()/select() on ``ws.sock`` and on the WebSocket object report readable while frames
  wait, so draining one frame per wake-up delivers all of them;
* ``ws.sock.recv()`` hands over the server's frame stream (parsed here with ``frame_buffer``).
"""

from __future__ import annotations

import hashlib
import os
import select
import ssl
import threading
import time

import pytest

import websocket
from websocket import ABNF
from servers import OP_BINARY, OP_PING, OP_PONG

STRICT = hasattr(websocket, "_native")

pytestmark = pytest.mark.timeout(60)


class Endpoint:
    def __init__(self, scheme, server, kw):
        self.scheme, self.server, self.kw = scheme, server, kw

    def connect(self, path="/", **kw):
        return websocket.create_connection(f"{self.scheme}://127.0.0.1:{self.server.port}{path}", timeout=20, **self.kw, **kw)


@pytest.fixture(params=["ws", "wss"])
def endpoint(request, echo_server, tls_server, ca_file):
    if request.param == "ws":
        return Endpoint("ws", echo_server, {})
    return Endpoint("wss", tls_server, {"sslopt": {"ca_certs": ca_file}})


def _ssl_pending(ws):
    """What the kubernetes port-forward loop checks before it stops draining: bytes already
    decrypted by an SSLSocket (the Python-socket driver over wss). Not needed on the native
    driver, whose readiness handle stays readable while frames wait."""
    sock = ws.sock
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def test_port_forward_exchange_of_preformatted_frames(endpoint):
    """The kubernetes port-forward loop: frames formatted by the caller (channel byte first)
    go out through ws.sock.send() as select() reports the WebSocket writable; the echoes are
    drained with recv_data_frame(True) as select() reports it readable. 16 payloads of
    256 KiB, each checked."""
    ws = endpoint.connect()
    try:
        payloads = [bytes([0]) + os.urandom(256 * 1024) for _ in range(16)]
        outgoing = b"".join(ABNF.create_frame(p, ABNF.OPCODE_BINARY).format() for p in payloads)
        received = []
        deadline = time.monotonic() + 30
        while len(received) < len(payloads):
            assert time.monotonic() < deadline, f"{len(received)} of {len(payloads)} echoes"
            r, w, _ = select.select([ws], [ws] if outgoing else [], [], 5)
            if ws in r:
                pending = True
                while pending:
                    opcode, frame = ws.recv_data_frame(True)
                    if opcode == ABNF.OPCODE_BINARY:
                        received.append(frame.data)
                    pending = _ssl_pending(ws)
            if ws in w:
                sent = ws.sock.send(outgoing)
                assert 0 < sent <= len(outgoing)
                outgoing = outgoing[sent:]
        assert [hashlib.sha256(d).digest() for d in received] == [hashlib.sha256(p).digest() for p in payloads]
    finally:
        ws.close()


def test_sock_sends_and_api_sends_keep_their_order(endpoint):
    """Frames written through ws.sock.send()/sendall() and the WebSocket's own sends
    (send, send_binary, ping) reach the server in the order they were made."""
    ws = endpoint.connect()
    try:
        expected = []
        for i in range(50):
            if i % 3 == 0:
                ws.sock.sendall(ABNF.create_frame(f"raw-{i}", ABNF.OPCODE_TEXT).format())
            elif i % 3 == 1:
                data = ABNF.create_frame(f"send-{i}".encode(), ABNF.OPCODE_BINARY).format()
                assert ws.sock.send(data) == len(data) or not STRICT
            else:
                ws.send(f"api-{i}")
                ws.ping(f"p{i}")
            expected.append(f"{['raw', 'send', 'api'][i % 3]}-{i}")
        got = []
        while len(got) < len(expected):
            msg = ws.recv()
            got.append(msg.decode() if isinstance(msg, bytes) else msg)
        assert got == expected
    finally:
        ws.close()


@pytest.mark.drivers("native")  # pongs from the engine's own thread; the Python driver answers on read
def test_sock_frames_are_never_cut_by_the_engines_pongs(scripted):
    """The server pings every millisecond while the client writes a 512 KiB frame through
    ws.sock.send() in 64 pieces with pauses between them: the engine answers the pings from
    its own thread, but only between the caller's frames (the pongs of the pings that came
    while the frame was open follow it), so the server reads a clean stream: its parser
    would see garbage if a pong landed inside the frame."""
    payload = os.urandom(512 * 1024)
    stop = threading.Event()

    def script(conn):
        conn.accept()

        def pinger():
            while not stop.is_set():
                try:
                    conn.send_frame(OP_PING, b"k")
                except OSError:
                    return
                time.sleep(0.001)

        t = threading.Thread(target=pinger, daemon=True)
        t.start()
        frames = []
        try:
            while not any(f.opcode == OP_BINARY for f in frames):
                frames.append(conn.recv_frame(timeout=10))
            # The pongs held back while the caller's frame was open follow it.
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                try:
                    frames.append(conn.recv_frame(timeout=max(0.01, end - time.monotonic())))
                except TimeoutError:
                    break
            return frames
        finally:
            stop.set()
            t.join()

    srv = scripted(script)
    ws = websocket.create_connection(srv.url, timeout=10)
    try:
        data = ABNF.create_frame(payload, ABNF.OPCODE_BINARY).format()
        piece = len(data) // 64 + 1
        for i in range(0, len(data), piece):
            ws.sock.send(data[i : i + piece])
            time.sleep(0.005)  # the server's pings arrive meanwhile
        frames = srv.result(0, 20)
    finally:
        stop.set()
        ws.shutdown()
    binary = [i for i, f in enumerate(frames) if f.opcode == OP_BINARY]
    assert len(binary) == 1 and frames[binary[0]].payload == payload
    pongs = [f for f in frames if f.opcode == OP_PONG]
    assert all(f.payload == b"k" for f in pongs)
    after = [f for f in frames[binary[0] + 1 :] if f.opcode == OP_PONG]
    if STRICT:
        # websocket-client answers pings only when the application reads, and nothing reads
        # here: the stream it sends is clean, but holds no pongs at all.
        assert after, "the pongs of the pings that came while the frame was open were sent after it"


@pytest.mark.parametrize("target", ["sock", "websocket"])
def test_draining_while_readable_delivers_every_frame(endpoint, target):
    """The server pushes 300 messages at once; the client poll()s (ws.sock) or select()s (the
    WebSocket object) and takes ONE frame per wake-up, as the kubernetes exec client does:
    every message arrives."""
    n = 300
    ws = endpoint.connect(f"/push?n={n}")
    try:
        got = []
        deadline = time.monotonic() + 30
        if target == "sock":
            poller = select.poll()
            poller.register(ws.sock, select.POLLIN)
            wait = lambda: poller.poll(5000)  # noqa: E731
        else:
            wait = lambda: select.select([ws], [], [], 5)[0]  # noqa: E731
        while len(got) < n:
            assert time.monotonic() < deadline, f"{len(got)} of {n}"
            if wait() or _ssl_pending(ws):
                opcode, frame = ws.recv_data_frame(True)
                assert opcode == ABNF.OPCODE_TEXT
                got.append(frame.data.decode())
            else:
                pytest.fail(f"not readable with {n - len(got)} messages still to come")
        assert got == [f"msg-{i}" for i in range(n)]
        # Nothing more: neither readable nor pending.
        assert not select.select([ws], [], [], 0.2)[0] and not _ssl_pending(ws)
    finally:
        ws.close()


def test_sock_recv_hands_over_the_frame_stream(endpoint):
    """``ws.sock.recv()`` returns the server's frames as bytes: parsed with websocket's own
    ``frame_buffer``, they are the messages the server pushed."""
    ws = endpoint.connect("/push?n=3")
    try:
        fb = websocket.frame_buffer(ws.sock.recv, skip_utf8_validation=False)
        frames = [fb.recv_frame() for _ in range(3)]
        assert [(f.opcode, f.data) for f in frames] == [(ABNF.OPCODE_TEXT, f"msg-{i}".encode()) for i in range(3)]
    finally:
        ws.shutdown()


def test_frames_sent_with_the_101_stay_in_the_socket_until_read(ws_driver):
    """A server that sends its first frames in the same segment as its 101: the head is read
    without taking them (the Python driver peeks at a plain socket, websocket-client reads
    byte by byte), so select() on ws.sock reports them, and each is delivered once."""
    from hostile_servers import HostileServer, accept_key, frame

    def behaviour(peer):
        peer.read_request()
        head = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(peer.key or '')}\r\n\r\n"
        ).encode()
        peer.send(head + frame(0x1, b"first") + frame(0x2, b"\x00second"))
        peer.hold(5)

    with HostileServer(behaviour) as server:
        ws = websocket.create_connection(server.url, timeout=5)
        # The Python driver and websocket-client read a socket object.
        socket_object = getattr(ws, "driver", "python") == "python"
        try:
            if socket_object:
                readable, _, _ = select.select([ws.sock], [], [], 2)
                assert readable == [ws.sock]
            assert ws.recv() == "first"
            assert ws.recv() == b"\x00second"
            if socket_object:
                assert select.select([ws.sock], [], [], 0.2)[0] == []
        finally:
            ws.close(timeout=0.5)
