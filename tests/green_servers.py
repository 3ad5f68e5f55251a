"""Peers for tests/test_green.py, run in their own process that neither gevent nor eventlet
has patched: the scenarios (tests/green_scenarios.py) measure how their own process waits,
so no server may share it.

``python green_servers.py`` starts, on 127.0.0.1, and prints one JSON line with their
addresses (then serves until its stdin is closed):

* ``ws``: a ``websockets`` server. Paths: ``/echo``; ``/delay-echo?s=X`` (each message is
  echoed X seconds late); ``/burst?n=N`` (N messages at once after the handshake, a ping
  after every tenth, then "pongs K/M" once the pongs are back); ``/silent`` (never sends); ``/slow-101?s=X`` (the 101 comes X
  seconds late); ``/drop?after=X`` (the TCP connection is cut X seconds after the
  handshake, without a close frame).
* ``wss``: the same server over TLS (a trustme CA; ``ca`` is the path of its PEM file; the
  certificate is valid for 127.0.0.1 and localhost), and ``wss_slow``: a relay in front of
  it that waits ``SLOW`` seconds before passing anything on, so the client's TLS handshake
  waits that long for the server's hello.
* ``http_proxy`` and ``socks5_proxy``: tests/proxy_servers.py's proxies, answering
  ``SLOW`` seconds late (SOCKS5 answers twice: half of it each time).
* ``slow_close``: raw; echoes, and answers the client's close frame ``SLOW`` seconds late.
* ``slow_reader``: raw; after the handshake it reads nothing for ``SLOW`` seconds (the
  client's send fills the socket buffers and waits), then reads one frame and answers with
  its payload length as text, then echoes.
* ``slow_accept``: a control port. A client that sends one line gets back the port of a new
  listener whose accept queue is full (backlog 0, taken by a connection of this process)
  for ``ACCEPT_HOLD`` seconds: the client's SYN is dropped, and its connect() completes at
  the kernel's SYN retransmission, about 1 s later. The listener then serves one WebSocket
  echo connection.

``python green_servers.py socketio`` runs a python-socketio ASGI server
(``socketio.AsyncServer(async_mode="asgi")``) under uvicorn instead, and prints
``{"url": ...}``; its ``echo`` event is answered 0.3 s later by an ``echo_reply`` event to
the sender.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from servers import OP_CLOSE, OP_TEXT, PeerGone, ScriptedConn, ScriptedServer, echo_loop, echo_script  # noqa: E402

# How late the slow peers answer (seconds).
SLOW = 1.0
# How long the slow_accept listener keeps its accept queue full.
ACCEPT_HOLD = 0.5


def _query(path: str) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}


# ---- the websockets server ----------------------------------------------------------------


async def _handler(ws) -> None:
    from websockets.exceptions import ConnectionClosed

    url = urlsplit(ws.request.path)
    q = _query(ws.request.path)
    try:
        if url.path == "/delay-echo":
            delay = float(q.get("s", SLOW))
            async for msg in ws:
                await asyncio.sleep(delay)
                await ws.send(msg)
        elif url.path == "/burst":
            # n messages at once, a ping after every tenth; once every pong is back (or 5 s
            # passed), "pongs K/M".
            n = int(q.get("n", 300))
            pongs = []
            for i in range(n):
                await ws.send(f"m{i}")
                if i % 10 == 9:
                    pongs.append(await ws.ping(f"p{i}"))
            done, _ = await asyncio.wait(pongs, timeout=5)
            await ws.send(f"pongs {len(done)}/{len(pongs)}")
            await ws.wait_closed()
        elif url.path == "/silent":
            await ws.wait_closed()
        elif url.path == "/drop":
            await asyncio.sleep(float(q.get("after", 0.2)))
            ws.transport.abort()
        else:
            async for msg in ws:
                await ws.send(msg)
    except ConnectionClosed:
        pass


async def _process_request(connection, request):
    if urlsplit(request.path).path == "/slow-101":
        await asyncio.sleep(float(_query(request.path).get("s", SLOW)))
    return None


async def _serve_ws(ssl_context=None):
    from websockets.asyncio.server import serve

    return await serve(
        _handler,
        "127.0.0.1",
        0,
        ssl=ssl_context,
        max_size=None,
        ping_interval=None,
        compression=None,
        process_request=_process_request,
        # 200 greenlets connect at once (test_green.py): a larger accept queue.
        backlog=512,
    )


async def _pipe(reader, writer) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _serve_slow_relay(port: int):
    """Accepts, waits SLOW seconds, then relays both ways to 127.0.0.1:``port``."""

    async def relay(reader, writer):
        await asyncio.sleep(SLOW)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    return await asyncio.start_server(relay, "127.0.0.1", 0)


# ---- raw peers (servers.ScriptedServer scripts) -----------------------------------------------


def slow_close_script(conn: ScriptedConn):
    """Echoes; the client's close frame is answered SLOW seconds late."""
    conn.accept()
    for f in conn.frames_within(30):
        if f.opcode == OP_CLOSE:
            time.sleep(SLOW)
            conn.send_frame(OP_CLOSE, f.payload[:2])
            break
        conn.send_frame(f.opcode, f.payload, fin=f.fin)


def slow_reader_script(conn: ScriptedConn):
    """Reads nothing for SLOW seconds after the handshake, then one frame (its payload is
    counted, not kept), answered with its length; then echoes."""
    conn.accept()
    time.sleep(SLOW)
    head = conn.read_exact(2, 30)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", conn.read_exact(2, 30))[0]
    elif n == 127:
        n = struct.unpack("!Q", conn.read_exact(8, 30))[0]
    if head[1] & 0x80:
        conn.read_exact(4, 30)
    left = n - len(conn.buf[:n])
    conn.buf = conn.buf[n:]
    buf = bytearray(1 << 20)
    conn.sock.settimeout(30)
    while left > 0:
        got = conn.sock.recv_into(buf, min(left, len(buf)))
        if not got:
            raise PeerGone("EOF in the large frame")
        left -= got
    conn.send_frame(OP_TEXT, str(n))
    echo_loop(conn)


class _Holder:
    """What ScriptedConn needs of its server."""

    def __init__(self):
        self.requests: list = []


def _slow_accept_control(lsock: socket.socket) -> None:
    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=_slow_accept_one, args=(c,), daemon=True).start()


def _slow_accept_one(control: socket.socket) -> None:
    with control:
        control.recv(100)
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one connection in the accept queue...
        filler = socket.create_connection(listener.getsockname())  # ...taken
        control.sendall(b"%d\n" % listener.getsockname()[1])
    time.sleep(ACCEPT_HOLD)
    with listener, filler:
        first, _ = listener.accept()  # the filler: the queue has room again
        first.close()
        listener.settimeout(30)
        try:
            sock, _ = listener.accept()
        except OSError:
            return
    conn = ScriptedConn(sock, _Holder())
    try:
        echo_script(conn)
    except (PeerGone, TimeoutError, OSError):
        pass
    finally:
        conn.close()


# ---- main ---------------------------------------------------------------------------------


async def _main() -> None:
    import ssl

    import trustme
    from proxy_servers import ProxyServer

    ca = trustme.CA()
    ca_dir = tempfile.mkdtemp(prefix="green-ca-")
    ca_file = os.path.join(ca_dir, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)

    ws = await _serve_ws()
    wss = await _serve_ws(ctx)
    wss_port = wss.sockets[0].getsockname()[1]
    relay = await _serve_slow_relay(wss_port)
    http_proxy = ProxyServer("http", delay=SLOW)
    socks5_proxy = ProxyServer("socks5", delay=SLOW / 2)
    slow_close = ScriptedServer(slow_close_script)
    slow_reader = ScriptedServer(slow_reader_script)
    control = socket.socket()
    control.bind(("127.0.0.1", 0))
    control.listen(16)
    threading.Thread(target=_slow_accept_control, args=(control,), daemon=True).start()

    print(
        json.dumps(
            {
                "ws": f"ws://127.0.0.1:{ws.sockets[0].getsockname()[1]}",
                "ws_port": ws.sockets[0].getsockname()[1],
                "wss_port": wss_port,
                "wss_slow_port": relay.sockets[0].getsockname()[1],
                "ca": ca_file,
                "http_proxy_port": http_proxy.port,
                "socks5_proxy_port": socks5_proxy.port,
                "slow_close": slow_close.url,
                "slow_reader": slow_reader.url,
                "slow_accept_control": control.getsockname()[1],
                "slow": SLOW,
            }
        ),
        flush=True,
    )
    # Until the parent closes our stdin.
    try:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)


def _socketio_main() -> None:
    import socketio
    import uvicorn

    sio = socketio.AsyncServer(async_mode="asgi")

    @sio.event
    async def echo(sid, data):
        await asyncio.sleep(0.3)  # the client waits for it
        await sio.emit("echo_reply", data, to=sid)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    server = uvicorn.Server(uvicorn.Config(socketio.ASGIApp(sio), log_level="warning", lifespan="off"))

    def until_stdin_closes():
        sys.stdin.read()
        server.should_exit = True

    threading.Thread(target=until_stdin_closes, daemon=True).start()
    print(json.dumps({"url": f"http://127.0.0.1:{sock.getsockname()[1]}"}), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    if sys.argv[1:] == ["socketio"]:
        _socketio_main()
    else:
        try:
            asyncio.run(_main())
        except KeyboardInterrupt:
            pass
    os._exit(0)
