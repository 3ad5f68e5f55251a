"""permessage-deflate (RFC 7692) against real peers: the ``websockets`` server, aiohttp, and a
hand-written server for what no well-behaved peer sends (a compression bomb, a bad answer to
the offer). Autobahn's 12.* and 13.* cases (tests/test_autobahn.py) cover the parameter
combinations; these tests cover the option's Python surface and the wire effects.

Only for websocket-rust: websocket-client 1.9.2 has no ``compression`` option.
"""

import asyncio
import json
import struct
import threading
import zlib

import pytest

import websocket
from websocket import WebSocketException, WebSocketPayloadException

import hostile_servers as hs

pytestmark = pytest.mark.skipif(not hasattr(websocket, "_native"), reason="websocket-rust only")

TEXT = "the same words again and again, " * 2000  # 64 KB, compresses ~100x
BLOB = bytes(range(256)) * 512  # 128 KiB


class _LoopServer:
    """Runs ``start(loop)`` (a coroutine returning (port, stop coroutine)) in a thread."""

    def __init__(self, start):
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        box = {}

        def main():
            asyncio.set_event_loop(self.loop)
            box["port"], box["stop"] = self.loop.run_until_complete(start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10)
        self.port = box["port"]
        self._stop = box["stop"]

    def close(self):
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _websockets_server(handler, **options):
    """A ``websockets`` server on 127.0.0.1 running ``handler``, in its own thread."""
    from websockets.asyncio.server import serve

    async def start():
        server = await serve(handler, "127.0.0.1", 0, ping_interval=None, **options)

        async def stop():
            server.close()
            await server.wait_closed()

        return server.sockets[0].getsockname()[1], stop

    return _LoopServer(start)


@pytest.fixture(scope="module")
def deflate_server():
    """A ``websockets`` server with permessage-deflate on. Paths: ``/`` echoes; ``/info``
    answers with what the server negotiated and the request's extension header; ``/push``
    sends 50 copies of TEXT (context takeover across messages)."""
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    async def handler(ws):
        path = ws.request.path
        if path == "/info":
            ext = [
                {
                    "name": type(e).__name__,
                    "remote_no_context_takeover": e.remote_no_context_takeover,
                    "local_no_context_takeover": e.local_no_context_takeover,
                    "remote_max_window_bits": e.remote_max_window_bits,
                    "local_max_window_bits": e.local_max_window_bits,
                }
                for e in ws.protocol.extensions
            ]
            offer = ws.request.headers.get("Sec-WebSocket-Extensions")
            await ws.send(json.dumps({"extensions": ext, "offer": offer}))
        elif path == "/push":
            for _ in range(50):
                await ws.send(TEXT)
        async for msg in ws:
            await ws.send(msg)

    srv = _websockets_server(
        handler, max_size=None, extensions=[ServerPerMessageDeflateFactory(server_max_window_bits=12)]
    )
    yield f"ws://127.0.0.1:{srv.port}"
    srv.close()


@pytest.fixture(scope="module")
def plain_server():
    """A ``websockets`` echo server that declines every extension."""

    async def handler(ws):
        async for msg in ws:
            await ws.send(msg)

    srv = _websockets_server(handler, compression=None)
    yield f"ws://127.0.0.1:{srv.port}"
    srv.close()


@pytest.fixture(scope="module")
def aiohttp_server():
    """An aiohttp echo server with compression on (its default window of 15 bits)."""
    from aiohttp import WSMsgType, web

    async def handler(request):
        ws = web.WebSocketResponse(compress=15)
        await ws.prepare(request)
        request.app["seen"].append(ws.compress)
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app["seen"] = []
    app.router.add_get("/", handler)
    box = {}

    async def start():
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        return site._server.sockets[0].getsockname()[1], runner.cleanup

    srv = _LoopServer(start)
    yield f"ws://127.0.0.1:{srv.port}/", app["seen"]
    srv.close()


# ---- negotiation --------------------------------------------------------------------------


def test_default_offers_nothing(deflate_server):
    ws = websocket.create_connection(deflate_server + "/info", timeout=5)
    info = json.loads(ws.recv())
    assert info == {"extensions": [], "offer": None}
    assert ws.compression is None
    ws.close()


def test_compression_true_negotiates_and_reports(deflate_server):
    ws = websocket.create_connection(deflate_server + "/info", timeout=5, compression=True)
    info = json.loads(ws.recv())
    assert info["offer"] == "permessage-deflate; client_max_window_bits"
    assert [e["name"] for e in info["extensions"]] == ["PerMessageDeflate"]
    # The server limited its own window to 12 bits; the client reports it.
    assert ws.compression["server_max_window_bits"] == 12
    assert ws.compression["client_no_context_takeover"] is False
    assert ws.compression["server_no_context_takeover"] is False
    ws.close()


def test_dict_offer_parameters_reach_the_server(deflate_server):
    offer = {"client_no_context_takeover": True, "server_no_context_takeover": True, "server_max_window_bits": 10}
    ws = websocket.create_connection(deflate_server + "/info", timeout=5, compression=offer)
    info = json.loads(ws.recv())
    assert "client_no_context_takeover" in info["offer"]
    assert "server_no_context_takeover" in info["offer"]
    assert "server_max_window_bits=10" in info["offer"]
    (ext,) = info["extensions"]
    assert ext["remote_no_context_takeover"] is True  # the client's
    assert ext["local_no_context_takeover"] is True  # the server's
    assert ext["local_max_window_bits"] == 10
    assert ws.compression["client_no_context_takeover"] is True
    assert ws.compression["server_no_context_takeover"] is True
    assert ws.compression["server_max_window_bits"] == 10
    ws.close()


def test_server_that_declines_leaves_compression_off(plain_server):
    ws = websocket.create_connection(plain_server, timeout=5, compression=True)
    assert ws.compression is None
    ws.send(TEXT)
    assert ws.recv() == TEXT
    ws.close()


@pytest.mark.parametrize(
    "value, exc",
    [
        ({"bogus": 1}, ValueError),
        ({"client_max_window_bits": 16}, ValueError),
        ({"server_max_window_bits": 7}, ValueError),
        ("yes", TypeError),
        (1.5, TypeError),
    ],
)
def test_bad_compression_options_raise_before_connecting(closed_port, value, exc):
    # closed_port: nothing listens; the option must be refused before any connect.
    with pytest.raises(exc):
        websocket.create_connection(f"ws://127.0.0.1:{closed_port}/", timeout=2, compression=value)


# ---- messages -------------------------------------------------------------------------------


@pytest.mark.parametrize("offer", [True, {"client_no_context_takeover": True}, {"client_max_window_bits": 9}])
def test_round_trips_are_transparent(deflate_server, offer):
    ws = websocket.create_connection(deflate_server + "/", timeout=10, compression=offer)
    assert ws.compression is not None
    for _ in range(3):  # later messages reuse (or reset) the context
        ws.send(TEXT)
        assert ws.recv() == TEXT
        ws.send_binary(BLOB)
        assert ws.recv() == BLOB
    ws.send("")
    assert ws.recv() == ""
    ws.send("é" * 10)
    assert ws.recv() == "é" * 10
    ws.close()


def test_fragmented_compressed_message(deflate_server):
    ws = websocket.create_connection(deflate_server + "/", timeout=10, compression=True)
    ws.send_frame(websocket.ABNF.create_frame(TEXT[:1000], websocket.ABNF.OPCODE_TEXT, fin=0))
    ws.send_frame(websocket.ABNF.create_frame(TEXT[1000:], websocket.ABNF.OPCODE_CONT, fin=1))
    assert ws.recv() == TEXT
    ws.close()


def test_context_takeover_across_many_server_messages(deflate_server):
    ws = websocket.create_connection(deflate_server + "/push", timeout=10, compression=True)
    for _ in range(50):
        assert ws.recv() == TEXT
    ws.close()


def test_aiohttp_peer(aiohttp_server):
    url, seen = aiohttp_server
    ws = websocket.create_connection(url, timeout=10, compression=True)
    assert ws.compression is not None
    for payload in (TEXT, BLOB, "x"):
        ws.send(payload, websocket.ABNF.OPCODE_BINARY if isinstance(payload, bytes) else websocket.ABNF.OPCODE_TEXT)
        assert ws.recv() == payload
    ws.close()
    assert seen and seen[-1] == 15  # aiohttp agreed to compress


def test_websocketapp_run_forever_compression(deflate_server):
    got = []

    def on_open(app):
        app.send(TEXT)

    def on_message(app, msg):
        got.append((msg, app.sock.compression))
        app.close()

    app = websocket.WebSocketApp(deflate_server + "/", on_open=on_open, on_message=on_message)
    assert app.run_forever(compression=True) is False
    assert len(got) == 1
    assert got[0][0] == TEXT
    assert got[0][1] is not None


# ---- hostile peers ----------------------------------------------------------------------------


def _accept_deflate(peer, answer="permessage-deflate"):
    peer.read_request()
    peer.send(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {hs.accept_key(peer.key or '')}\r\n"
            f"Sec-WebSocket-Extensions: {answer}\r\n\r\n"
        ).encode()
    )


def _compressed(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def _rsv1_frame(opcode: int, payload: bytes) -> bytes:
    f = bytearray(hs.frame(opcode, payload))
    f[0] |= 0x40
    return bytes(f)


def _close_code(srv):
    srv.connected.wait(3)
    data = srv.peers[0].wait_frame(hs.OP_CLOSE, 3)
    return None if data is None else struct.unpack("!H", data[:2])[0]


def test_compression_bomb_is_refused_with_1009(hostile):
    bomb = _compressed(b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KB

    def behaviour(peer):
        _accept_deflate(peer)
        peer.send(_rsv1_frame(hs.OP_BINARY, bomb))
        peer.collect()

    srv = hostile(behaviour)
    ws = websocket.create_connection(srv.url, timeout=5, compression=True, max_size=1 << 20)
    with pytest.raises(WebSocketPayloadException):
        ws.recv()
    assert _close_code(srv) == 1009
    ws.shutdown()


def test_compressed_message_from_a_hand_written_server(hostile):
    def behaviour(peer):
        _accept_deflate(peer)
        peer.send(_rsv1_frame(hs.OP_TEXT, _compressed(TEXT.encode())))
        peer.collect()

    srv = hostile(behaviour)
    ws = websocket.create_connection(srv.url, timeout=5, compression=True)
    assert ws.recv() == TEXT
    ws.shutdown()


def test_corrupt_deflate_data_is_a_protocol_error(hostile):
    def behaviour(peer):
        _accept_deflate(peer)
        peer.send(_rsv1_frame(hs.OP_TEXT, b"\xff\xff\xff\xff garbage"))
        peer.collect()

    srv = hostile(behaviour)
    ws = websocket.create_connection(srv.url, timeout=5, compression=True)
    with pytest.raises(WebSocketException):
        ws.recv()
    assert _close_code(srv) in (1002, 1007)
    ws.shutdown()


def test_compressed_frame_without_negotiation_is_refused(hostile):
    def behaviour(peer):
        peer.accept()  # no extension agreed
        peer.send(_rsv1_frame(hs.OP_TEXT, _compressed(b"hello")))
        peer.collect()

    srv = hostile(behaviour)
    ws = websocket.create_connection(srv.url, timeout=5, compression=True)
    with pytest.raises(WebSocketException):
        ws.recv()
    assert _close_code(srv) == 1002
    ws.shutdown()


@pytest.mark.parametrize(
    "answer",
    [
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; bogus_param",
        "x-unknown-extension",
        "permessage-deflate, permessage-deflate",
    ],
)
def test_bad_answer_to_the_offer_fails_the_handshake(hostile, answer):
    srv = hostile(lambda peer: (_accept_deflate(peer, answer), peer.collect(2)))
    with pytest.raises(WebSocketException):
        websocket.create_connection(srv.url, timeout=5, compression=True)


def test_extension_answer_without_an_offer_fails_the_handshake(hostile):
    srv = hostile(lambda peer: (_accept_deflate(peer), peer.collect(2)))
    with pytest.raises(WebSocketException):
        websocket.create_connection(srv.url, timeout=5)
