"""WebSocket send*/recv* methods: return values and types, opcodes on the wire, control
frames, fragmentation, iteration (REFERENCE.md 1.7, 5.1, 5.2)."""

import json
import time

import pytest

import websocket
from websocket import ABNF, WebSocketConnectionClosedException
from servers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    echo_script,
    make_frame,
    prelude_then_echo,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def ws(echo_url):
    w = websocket.create_connection(echo_url)
    yield w
    w.close()


@pytest.fixture
def captured(scripted):
    """(ws, conn): a connection to a scripted echo server that records every client frame."""
    srv = scripted(echo_script)
    w = websocket.create_connection(srv.url, get_mask_key=lambda n: b"\x00\x00\x00\x00")
    conn = srv.conn(0)
    yield w, conn
    w.close()


# -- send return values ------------------------------------------------------------------

@pytest.mark.parametrize(
    "payload, wire",
    [
        ("hello", 2 + 4 + 5),
        ("", 2 + 4),
        ("x" * 125, 2 + 4 + 125),
        ("x" * 126, 2 + 2 + 4 + 126),
        ("x" * 65535, 2 + 2 + 4 + 65535),
        ("x" * 65536, 2 + 8 + 4 + 65536),
        ("é", 2 + 4 + 2),
    ],
)
def test_send_returns_wire_length(ws, payload, wire):
    n = ws.send(payload)
    assert type(n) is int
    assert n == wire
    assert ws.recv() == payload


def test_send_hello_is_11(ws):
    assert ws.send("hello") == 11


def test_send_text_bytes_binary_return_int(ws):
    assert ws.send_text("abc") == 9
    assert ws.recv() == "abc"
    assert ws.send_bytes(b"abcd") == 10
    assert ws.recv() == b"abcd"
    assert ws.send_bytes(bytearray(b"xy")) == 8
    assert ws.recv() == b"xy"
    assert ws.send_binary(b"\x00\xff") == 8
    assert ws.recv() == b"\x00\xff"


# -- opcodes on the wire -----------------------------------------------------------------

def test_send_str_is_text(captured):
    ws, conn = captured
    ws.send("t")
    assert ws.recv() == "t"
    f = conn.frames[-1]
    assert (f.fin, f.opcode, f.masked, f.payload) == (True, OP_TEXT, True, b"t")


def test_send_bytes_defaults_to_text_opcode(captured):
    ws, conn = captured
    ws.send(b"raw")
    r = ws.recv()
    assert r == "raw" and isinstance(r, str)
    assert conn.frames[-1].opcode == OP_TEXT


def test_send_opcode_binary(captured):
    ws, conn = captured
    ws.send(b"\x01\x02", ABNF.OPCODE_BINARY)
    assert ws.recv() == b"\x01\x02"
    assert conn.frames[-1].opcode == OP_BINARY


def test_send_str_with_binary_opcode_is_latin1(captured):
    ws, conn = captured
    ws.send("é\xff", ABNF.OPCODE_BINARY)
    assert ws.recv() == b"\xe9\xff"
    assert conn.frames[-1].payload == b"\xe9\xff"
    with pytest.raises(UnicodeEncodeError):
        ws.send("€", ABNF.OPCODE_BINARY)
    # nothing half-sent: the connection still works
    ws.send("ok")
    assert ws.recv() == "ok"


def test_send_text_and_send_binary_opcodes(captured):
    ws, conn = captured
    ws.send_text("a")
    ws.recv()
    ws.send_binary(b"b")
    ws.recv()
    ws.send_bytes(b"c")
    ws.recv()
    assert [f.opcode for f in conn.frames] == [OP_TEXT, OP_BINARY, OP_BINARY]
    assert all(f.masked for f in conn.frames)


def test_client_frames_are_masked_with_random_keys(scripted):
    srv = scripted(echo_script)
    ws = websocket.create_connection(srv.url)
    try:
        for _ in range(4):
            ws.send("same")
            assert ws.recv() == "same"
        frames = srv.conn(0).frames
        assert all(f.masked for f in frames)
        assert len({f.mask_key for f in frames}) > 1
    finally:
        ws.close()


def test_ping_and_pong_payloads(captured):
    ws, conn = captured
    assert ws.ping("héllo") is None
    assert ws.pong(b"\x00\x01") is None
    ws.ping()
    ws.pong()
    ws.send("sync")
    assert ws.recv() == "sync"
    ctl = [(f.opcode, f.payload) for f in conn.frames if f.opcode in (OP_PING, OP_PONG)]
    assert ctl == [
        (OP_PING, "héllo".encode()),
        (OP_PONG, b"\x00\x01"),
        (OP_PING, b""),
        (OP_PONG, b""),
    ]


def test_send_frame_fragments(captured):
    ws, conn = captured
    n1 = ws.send_frame(ABNF.create_frame("ab", ABNF.OPCODE_TEXT, 0))
    n2 = ws.send_frame(ABNF.create_frame("cd", ABNF.OPCODE_CONT, 1))
    assert (n1, n2) == (8, 8)
    assert ws.recv() == "abcd"
    frames = conn.frames[-2:]
    assert [(f.fin, f.opcode, f.payload) for f in frames] == [
        (False, OP_TEXT, b"ab"),
        (True, OP_CONT, b"cd"),
    ]


def test_send_frame_to_real_server(ws):
    ws.send_frame(ABNF.create_frame(b"\x00\x01", ABNF.OPCODE_BINARY, 0))
    ws.send_frame(ABNF.create_frame(b"\x02", ABNF.OPCODE_CONT, 0))
    ws.send_frame(ABNF.create_frame(b"\x03", ABNF.OPCODE_CONT, 1))
    assert ws.recv() == b"\x00\x01\x02\x03"


# -- recv types --------------------------------------------------------------------------

def test_recv_types(ws):
    ws.send("text")
    r = ws.recv()
    assert r == "text" and type(r) is str
    ws.send_binary(b"bin")
    r = ws.recv()
    assert r == b"bin" and type(r) is bytes


def test_empty_messages(ws):
    ws.send("")
    assert ws.recv() == ""
    ws.send_binary(b"")
    r = ws.recv()
    assert r == b"" and type(r) is bytes


def test_unicode_roundtrip(ws):
    s = "ascii é 中文 🎉 \u0000 end"
    ws.send(s)
    assert ws.recv() == s


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 1 << 20])
def test_large_messages(ws, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    ws.send_binary(data)
    assert ws.recv() == data
    text = ("0123456789" * (size // 10 + 1))[:size]
    ws.send(text)
    assert ws.recv() == text


def test_recv_data(ws):
    ws.send("hi")
    assert ws.recv_data() == (ABNF.OPCODE_TEXT, b"hi")
    ws.send_binary(b"\x00")
    opcode, data = ws.recv_data()
    assert opcode == ABNF.OPCODE_BINARY and data == b"\x00" and type(data) is bytes


def test_recv_data_frame_returns_abnf(ws):
    ws.send("frame")
    opcode, frame = ws.recv_data_frame()
    assert opcode == ABNF.OPCODE_TEXT
    assert isinstance(frame, ABNF)
    assert frame.opcode == ABNF.OPCODE_TEXT
    assert frame.data == b"frame"
    assert frame.fin == 1


def test_recv_frame_raw_no_reassembly(scripted):
    srv = scripted(
        prelude_then_echo(
            make_frame(OP_TEXT, "frag1 ", fin=False),
            make_frame(OP_CONT, "frag2 ", fin=False),
            make_frame(OP_CONT, "frag3"),
            make_frame(OP_BINARY, b"\x01\x02", fin=False),
            make_frame(OP_CONT, b"\x03"),
        )
    )
    ws = websocket.create_connection(srv.url)
    try:
        got = []
        for _ in range(5):
            f = ws.recv_frame()
            assert isinstance(f, ABNF)
            got.append((f.fin, f.opcode, f.data, f.rsv1, f.rsv2, f.rsv3))
        assert got == [
            (0, ABNF.OPCODE_TEXT, b"frag1 ", 0, 0, 0),
            (0, ABNF.OPCODE_CONT, b"frag2 ", 0, 0, 0),
            (1, ABNF.OPCODE_CONT, b"frag3", 0, 0, 0),
            (0, ABNF.OPCODE_BINARY, b"\x01\x02", 0, 0, 0),
            (1, ABNF.OPCODE_CONT, b"\x03", 0, 0, 0),
        ]
    finally:
        ws.close()


def test_fragmented_messages_reassembled(echo_server):
    ws = websocket.create_connection(echo_server.url + "/fragments")
    try:
        assert ws.recv() == "frag1 frag2 frag3"
        opcode, frame = ws.recv_data_frame()
        # the opcode is the first frame's, the frame is the last one with the joined data
        assert opcode == ABNF.OPCODE_BINARY
        assert frame.data == b"\x01\x02\x03\x04\x05"
        assert frame.fin == 1
    finally:
        ws.close()


def test_recv_frame_returns_ping_raw(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_PING, b"p1"), make_frame(OP_PONG, b"p2")))
    ws = websocket.create_connection(srv.url)
    try:
        f = ws.recv_frame()
        assert (f.fin, f.opcode, f.data) == (1, ABNF.OPCODE_PING, b"p1")
        f = ws.recv_frame()
        assert (f.fin, f.opcode, f.data) == (1, ABNF.OPCODE_PONG, b"p2")
        ws.send("after")
        assert ws.recv() == "after"
        # the reference sends no pong from recv_frame; an extra pong would be harmless, but
        # nothing else may reach the server
        assert [x.opcode for x in srv.conn(0).frames if x.opcode != OP_PONG] == [OP_TEXT]
    finally:
        ws.close()


# -- control frames ----------------------------------------------------------------------

def test_ping_auto_pong_and_hidden_from_recv(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_PING, b"are you there"), make_frame(OP_TEXT, "data")))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "data"
        ws.send("sync")
        assert ws.recv() == "sync"
        frames = srv.conn(0).frames
        assert (frames[0].opcode, frames[0].payload) == (OP_PONG, b"are you there")
        assert frames[0].masked
    finally:
        ws.close()


def test_recv_data_control_frame_true_returns_ping_and_pong(scripted):
    srv = scripted(
        prelude_then_echo(make_frame(OP_PING, b"pi"), make_frame(OP_PONG, b"po"), make_frame(OP_TEXT, "t"))
    )
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PING, b"pi")
        assert ws.recv_data(True) == (ABNF.OPCODE_PONG, b"po")
        assert ws.recv_data(True) == (ABNF.OPCODE_TEXT, b"t")
        ws.send("sync")
        assert ws.recv() == "sync"
        # the ping was answered even though it was returned to the caller
        assert (srv.conn(0).frames[0].opcode, srv.conn(0).frames[0].payload) == (OP_PONG, b"pi")
    finally:
        ws.close()


def test_recv_data_frame_control_frame(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_PONG, b"x"), make_frame(OP_PING, b"y"), make_frame(OP_BINARY, b"z")))
    ws = websocket.create_connection(srv.url)
    try:
        op, fr = ws.recv_data_frame(True)
        assert op == ABNF.OPCODE_PONG and fr.data == b"x" and isinstance(fr, ABNF)
        op, fr = ws.recv_data_frame(True)
        assert op == ABNF.OPCODE_PING and fr.data == b"y"
        op, fr = ws.recv_data_frame(True)
        assert op == ABNF.OPCODE_BINARY and fr.data == b"z"
    finally:
        ws.close()


def test_real_server_ping(echo_server):
    ws = websocket.create_connection(echo_server.url + "/ping?data=hey")
    try:
        assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PING, b"hey")
        ws.send("after ping")
        assert ws.recv() == "after ping"
    finally:
        ws.close()


def test_ping_pong_roundtrip_real_server(ws):
    ws.ping("p-data")
    assert ws.recv_data(control_frame=True) == (ABNF.OPCODE_PONG, b"p-data")


def test_ping_between_fragments(scripted):
    srv = scripted(
        prelude_then_echo(
            make_frame(OP_TEXT, "first ", fin=False),
            make_frame(OP_PING, b"mid"),
            make_frame(OP_CONT, "second"),
        )
    )
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "first second"
        ws.send("sync")
        assert ws.recv() == "sync"
        assert (srv.conn(0).frames[0].opcode, srv.conn(0).frames[0].payload) == (OP_PONG, b"mid")
    finally:
        ws.close()


def test_pongs_go_out_before_frames_sent_after_their_message(scripted):
    """Round after round, the server sends a ping and a message in one write; the client
    sends an acknowledgement as soon as it has the message. The ping's pong must reach the
    server first: the native engine reads in the background or in the caller, and its
    replies are queued before the message is handed over, so a frame the application
    writes next cannot overtake them (it once could: test_ping_between_fragments failed in
    CI with the pong after the next frame). Half the rounds leave the client busy while the
    next round arrives (the background reader's path), half find it waiting in recv()."""
    rounds = 200

    def script(conn):
        conn.accept()
        got = []
        for i in range(rounds):
            conn.send_raw(make_frame(OP_PING, f"p{i}") + make_frame(OP_TEXT, f"m{i}"))
            for f in conn.frames_within(10):
                got.append((f.opcode, f.payload))
                if f.payload == f"ack{i}".encode():
                    break
        return got

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    try:
        for i in range(rounds):
            assert ws.recv() == f"m{i}"
            ws.send(f"ack{i}")
            if i % 2:
                time.sleep(0.0005)
        got = srv.result(0, timeout=30)
    finally:
        ws.close()
    for i in range(rounds):
        assert got.index((OP_PONG, f"p{i}".encode())) < got.index((OP_TEXT, f"ack{i}".encode())), i


def test_fire_cont_frame(scripted):
    raw = (
        make_frame(OP_TEXT, "ab", fin=False),
        make_frame(OP_CONT, "cd", fin=False),
        make_frame(OP_CONT, "ef"),
        make_frame(OP_TEXT, "whole"),
    )
    srv = scripted(prelude_then_echo(*raw))
    ws = websocket.create_connection(srv.url, fire_cont_frame=True)
    try:
        assert ws.recv_data() == (ABNF.OPCODE_TEXT, b"ab")
        assert ws.recv_data() == (ABNF.OPCODE_CONT, b"cd")
        assert ws.recv_data() == (ABNF.OPCODE_CONT, b"ef")
        assert ws.recv_data() == (ABNF.OPCODE_TEXT, b"whole")
    finally:
        ws.close()


def test_fire_cont_frame_recv_returns_empty_for_continuations(scripted):
    raw = (make_frame(OP_TEXT, "ab", fin=False), make_frame(OP_CONT, "cd"))
    srv = scripted(prelude_then_echo(*raw))
    ws = websocket.create_connection(srv.url, fire_cont_frame=True)
    try:
        assert ws.recv() == "ab"
        assert ws.recv() == ""
    finally:
        ws.close()


def test_without_fire_cont_frame_reassembles(scripted):
    raw = (make_frame(OP_TEXT, "ab", fin=False), make_frame(OP_CONT, "cd", fin=False), make_frame(OP_CONT, "ef"))
    srv = scripted(prelude_then_echo(*raw))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv_data() == (ABNF.OPCODE_TEXT, b"abcdef")
    finally:
        ws.close()


# -- close frames through recv -----------------------------------------------------------

def test_recv_returns_empty_string_on_close(echo_server):
    ws = websocket.create_connection(echo_server.url + "/close?code=1000&reason=bye")
    r = ws.recv()
    assert r == "" and type(r) is str
    assert ws.connected is False
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    ws.close()


def test_recv_data_on_close(echo_server):
    ws = websocket.create_connection(echo_server.url + "/close?code=4001&reason=custom")
    assert ws.recv_data() == (ABNF.OPCODE_CLOSE, b"\x0f\xa1custom")
    assert not ws.connected
    ws.close()


def test_recv_data_frame_always_returns_close(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_CLOSE, close_payload(1001, "away"))))
    ws = websocket.create_connection(srv.url)
    op, fr = ws.recv_data_frame(control_frame=False)
    assert op == ABNF.OPCODE_CLOSE
    assert fr.data == b"\x03\xe9away"
    frames = srv.result()
    # the client answered the close
    assert frames[-1].opcode == OP_CLOSE
    assert frames[-1].masked
    ws.close()


def test_close_reply_is_sent_when_recv_sees_close(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_CLOSE, close_payload(1000, "bye"))))
    ws = websocket.create_connection(srv.url)
    assert ws.recv() == ""
    frames = srv.result()
    assert [f.opcode for f in frames] == [OP_CLOSE]
    assert frames[0].close_code == 1000
    ws.close()


def test_close_without_payload(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_CLOSE, b"")))
    ws = websocket.create_connection(srv.url)
    assert ws.recv_data() == (ABNF.OPCODE_CLOSE, b"")
    assert not ws.connected
    ws.close()


# -- iteration ---------------------------------------------------------------------------

def test_iteration(echo_server):
    ws = websocket.create_connection(echo_server.url + "/push?n=5")
    try:
        got = []
        for msg in ws:
            got.append(msg)
            if len(got) == 3:
                break
        assert got == ["msg-0", "msg-1", "msg-2"]
        assert next(ws) == "msg-3"
        assert ws.next() == "msg-4"
        ws.send("x")
        assert next(iter(ws)) == "x"
    finally:
        ws.close()


def test_many_small_messages_in_order(echo_server):
    ws = websocket.create_connection(echo_server.url + "/push?n=500")
    try:
        assert [ws.recv() for _ in range(500)] == [f"msg-{i}" for i in range(500)]
    finally:
        ws.close()


def test_pipelined_sends(echo_server):
    ws = websocket.create_connection(echo_server.url + "/count")
    try:
        for i in range(200):
            ws.send("t" * i)
            ws.send_binary(b"b" * i)
        ws.send("report")
        sizes = json.loads(ws.recv())
        expected = []
        for i in range(200):
            expected += [["str", i], ["bytes", i]]
        assert sizes == expected
    finally:
        ws.close()


@pytest.mark.drivers("python")
def test_python_driver_moves_bytes_through_the_module_send_and_recv(echo_url, monkeypatch):
    """websocket-client does its I/O through ``websocket._core``'s ``send`` and ``recv``,
    which its users' tests patch: the Python-socket driver calls whatever they are at each
    write and read (and the socket directly while they are websocket._socket's own)."""
    import websocket._core as core

    calls = {"send": 0, "recv": 0}
    real_send, real_recv = core.send, core.recv

    def counting_send(sock, data):
        calls["send"] += 1
        return real_send(sock, data)

    def counting_recv(sock, bufsize):
        calls["recv"] += 1
        return real_recv(sock, bufsize)

    ws = websocket.create_connection(echo_url)
    try:
        ws.send("before")
        assert ws.recv() == "before"
        assert calls == {"send": 0, "recv": 0}
        monkeypatch.setattr(core, "send", counting_send)
        monkeypatch.setattr(core, "recv", counting_recv)
        ws.send("patched")
        assert ws.recv() == "patched"
        # One frame out; its echo in as header, then payload.
        assert calls == {"send": 1, "recv": 2}
        monkeypatch.undo()
        ws.send("after")
        assert ws.recv() == "after"
        assert calls == {"send": 1, "recv": 2}
    finally:
        ws.close()
