"""Frames from a scripted peer: length encodings, odd chunking, and bad input.

Deliberate differences from websocket-client 1.9.2 (tested only when STRICT, i.e. when the
``websocket`` under test is this project, detected by ``hasattr(websocket, "_native")``):

1. A protocol error (RSV bits, unknown opcode, fragmented or oversized control frame, bad close
   payload, continuation without a start, a new message inside a fragmented one) makes the
   client send a close frame with code 1002 (the reference raises the same
   WebSocketProtocolException but sends nothing and keeps the connection open).
2. A masked frame from the server is a protocol error (close 1002 +
   WebSocketProtocolException); the reference silently unmasks it.
3. Invalid UTF-8 in a text message makes the client send close 1007 before raising
   WebSocketPayloadException (the reference sends nothing and stays usable).
4. A text message ending inside a multi-byte UTF-8 sequence is invalid UTF-8 like any other
   (close 1007 + WebSocketPayloadException); the reference's validator lets it through and
   recv() then fails with a bare UnicodeDecodeError.
"""

import socket
import time

import pytest

import websocket
from websocket import (
    ABNF,
    WebSocketConnectionClosedException,
    WebSocketPayloadException,
    WebSocketProtocolException,
)
from servers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_payload,
    echo_loop,
    make_frame,
    prelude_then_echo,
)

STRICT = hasattr(websocket, "_native")
strict_only = pytest.mark.skipif(not STRICT, reason="stricter-than-reference behaviour")
reference_only = pytest.mark.skipif(STRICT, reason="reference behaviour this project changes")

pytestmark = pytest.mark.timeout(30)


def close_codes(frames):
    return [f.close_code for f in frames if f.opcode == OP_CLOSE]


# -- lengths and chunking ----------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_length_encodings_from_server(scripted, n):
    data = bytes((i * 7) & 0xFF for i in range(n))
    srv = scripted(prelude_then_echo(make_frame(OP_BINARY, data), make_frame(OP_TEXT, "x" * n)))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == data
        assert ws.recv() == "x" * n
    finally:
        ws.close()


def test_non_minimal_length_encoding_accepted(scripted):
    # 5 bytes encoded with the 16-bit and the 64-bit length forms
    raw16 = bytes([0x81, 126]) + (5).to_bytes(2, "big") + b"hello"
    raw64 = bytes([0x82, 127]) + (3).to_bytes(8, "big") + b"abc"
    srv = scripted(prelude_then_echo(raw16, raw64))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "hello"
        assert ws.recv() == b"abc"
    finally:
        ws.close()


def test_byte_by_byte_delivery(scripted):
    frames = make_frame(OP_TEXT, "slow") + make_frame(OP_BINARY, b"x" * 300) + make_frame(OP_PING, b"p")

    def script(conn):
        conn.accept()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(frames)):
            conn.send_raw(frames[i : i + 1])
            if i < 20 or i % 50 == 0:
                time.sleep(0.002)
        conn.send_raw(make_frame(OP_TEXT, "end"))
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "slow"
        assert ws.recv() == b"x" * 300
        assert ws.recv() == "end"
    finally:
        ws.close()


def test_many_frames_in_one_write(scripted):
    blob = b"".join(make_frame(OP_TEXT, f"m{i}") for i in range(100))
    srv = scripted(prelude_then_echo(blob))
    ws = websocket.create_connection(srv.url)
    try:
        assert [ws.recv() for _ in range(100)] == [f"m{i}" for i in range(100)]
    finally:
        ws.close()


def test_utf8_split_across_fragments(scripted):
    data = "é€🎉".encode()
    # cut inside every multi-byte sequence
    parts = [data[:1], data[1:3], data[3:6], data[6:]]
    frames = [make_frame(OP_TEXT, parts[0], fin=False)]
    frames += [make_frame(OP_CONT, p, fin=False) for p in parts[1:-1]]
    frames += [make_frame(OP_CONT, parts[-1])]
    srv = scripted(prelude_then_echo(*frames))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "é€🎉"
    finally:
        ws.close()


def test_binary_with_invalid_utf8_is_fine(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_BINARY, b"\xff\xfe\xc0")))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == b"\xff\xfe\xc0"
    finally:
        ws.close()


def test_close_with_reason_and_valid_codes(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_CLOSE, close_payload(4999, "é"))))
    ws = websocket.create_connection(srv.url)
    assert ws.recv_data() == (ABNF.OPCODE_CLOSE, b"\x13\x87" + "é".encode())
    ws.close()


# -- masked server frames ----------------------------------------------------------------

@reference_only
def test_masked_server_frame_accepted_by_reference(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_TEXT, "masked", mask=b"abcd")))
    ws = websocket.create_connection(srv.url)
    try:
        assert ws.recv() == "masked"
    finally:
        ws.close()


@strict_only
def test_masked_server_frame_rejected(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_TEXT, "masked", mask=b"abcd")))
    ws = websocket.create_connection(srv.url)
    try:
        with pytest.raises(WebSocketProtocolException):
            ws.recv()
        assert close_codes(srv.result()) == [1002]
    finally:
        ws.shutdown()


# -- protocol errors ---------------------------------------------------------------------

PROTOCOL_ERRORS = {
    "rsv1": make_frame(OP_TEXT, "x", rsv1=1),
    "rsv2": make_frame(OP_BINARY, b"x", rsv2=1),
    "rsv3": make_frame(OP_TEXT, "x", rsv3=1),
    "opcode-3": make_frame(3, b"x"),
    "opcode-0xB": make_frame(0xB, b"x"),
    "fragmented-ping": make_frame(OP_PING, b"x", fin=False),
    "ping-126-bytes": make_frame(OP_PING, b"p" * 126),
    "close-126-bytes": make_frame(OP_CLOSE, close_payload(1000, b"r" * 124)),
    "close-1-byte": make_frame(OP_CLOSE, b"\x03"),
    "close-code-999": make_frame(OP_CLOSE, close_payload(999)),
    "close-code-1004": make_frame(OP_CLOSE, close_payload(1004)),
    "close-code-1005": make_frame(OP_CLOSE, close_payload(1005)),
    "close-code-1006": make_frame(OP_CLOSE, close_payload(1006)),
    "close-code-1015": make_frame(OP_CLOSE, close_payload(1015)),
    "close-code-5000": make_frame(OP_CLOSE, close_payload(5000)),
    "close-reason-bad-utf8": make_frame(OP_CLOSE, close_payload(1000, b"\xff")),
    "continuation-without-start": make_frame(OP_CONT, b"x"),
    "text-inside-fragmented": make_frame(OP_TEXT, "a", fin=False) + make_frame(OP_TEXT, "b"),
    "binary-inside-fragmented": make_frame(OP_BINARY, b"a", fin=False) + make_frame(OP_BINARY, b"b"),
}


@pytest.mark.parametrize("raw", list(PROTOCOL_ERRORS.values()), ids=list(PROTOCOL_ERRORS))
def test_protocol_error(scripted, raw):
    srv = scripted(prelude_then_echo(raw))
    ws = websocket.create_connection(srv.url)
    try:
        with pytest.raises(WebSocketProtocolException):
            ws.recv()
        if STRICT:
            # a close reason that is not UTF-8 may be answered with 1007 instead
            allowed = ([1002], [1007]) if raw == PROTOCOL_ERRORS["close-reason-bad-utf8"] else ([1002],)
            assert close_codes(srv.result()) in allowed
    finally:
        ws.shutdown()


@reference_only
def test_reference_stays_open_after_protocol_error(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_TEXT, "x", rsv1=1)))
    ws = websocket.create_connection(srv.url)
    try:
        with pytest.raises(WebSocketProtocolException):
            ws.recv()
        assert ws.connected
        ws.send("still")
        assert ws.recv() == "still"
    finally:
        ws.close()


@pytest.mark.parametrize(
    "raw",
    [make_frame(OP_PING, b"p" * 125), make_frame(OP_CLOSE, close_payload(1000, b"r" * 123))],
    ids=["ping-125", "close-125"],
)
def test_control_frame_125_bytes_is_fine(scripted, raw):
    srv = scripted(prelude_then_echo(raw))
    ws = websocket.create_connection(srv.url)
    try:
        op, data = ws.recv_data(control_frame=True)
        assert len(data) == 125
        assert op in (ABNF.OPCODE_PING, ABNF.OPCODE_CLOSE)
    finally:
        ws.close()


def test_recv_frame_reports_rsv_error(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_BINARY, b"x", rsv1=1)))
    ws = websocket.create_connection(srv.url)
    try:
        with pytest.raises(WebSocketProtocolException):
            ws.recv_frame()
    finally:
        ws.shutdown()


# -- invalid UTF-8 -----------------------------------------------------------------------

BAD_TEXT = {
    "single": [make_frame(OP_TEXT, b"ok \xff\xfe")],
    "overlong": [make_frame(OP_TEXT, b"\xc0\xaf")],
    "surrogate": [make_frame(OP_TEXT, b"\xed\xa0\x80")],
    "fragmented": [make_frame(OP_TEXT, "good ".encode(), fin=False), make_frame(OP_CONT, b"\x80bad")],
}


@pytest.mark.parametrize("frames", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_invalid_utf8_text(scripted, frames):
    srv = scripted(prelude_then_echo(*frames))
    ws = websocket.create_connection(srv.url)
    try:
        with pytest.raises(WebSocketPayloadException):
            ws.recv()
        if STRICT:
            assert close_codes(srv.result()) == [1007]
        else:
            # the reference keeps the connection open and usable
            assert ws.connected
            ws.send("still usable")
            assert ws.recv() == "still usable"
    finally:
        ws.shutdown()


def test_truncated_utf8_at_end_of_message(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_TEXT, b"abc\xe2\x82")))
    ws = websocket.create_connection(srv.url)
    try:
        if STRICT:
            with pytest.raises(WebSocketPayloadException):
                ws.recv()
            assert close_codes(srv.result()) == [1007]
        else:
            # the reference's validator lets an incomplete sequence through; decode() fails
            with pytest.raises(UnicodeDecodeError):
                ws.recv()
    finally:
        ws.shutdown()


def test_skip_utf8_validation(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_TEXT, b"\xff\xfe"), make_frame(OP_TEXT, b"\xff")))
    ws = websocket.create_connection(srv.url, skip_utf8_validation=True)
    try:
        with pytest.raises(UnicodeDecodeError):
            ws.recv()
        assert ws.recv_data() == (ABNF.OPCODE_TEXT, b"\xff")
        ws.send("sync")
        assert ws.recv() == "sync"
        # no close frame was sent: only the data frame reached the server
        assert [f.opcode for f in srv.conn(0).frames] == [OP_TEXT]
    finally:
        ws.close()


# -- peer going away ---------------------------------------------------------------------

def test_peer_closes_mid_frame(scripted):
    def script(conn):
        conn.accept()
        conn.send_raw(make_frame(OP_TEXT, "this frame is cut")[:6])
        time.sleep(0.05)
        conn.close()

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    assert ws.connected is False
    ws.close()


def test_peer_closes_mid_header(scripted):
    def script(conn):
        conn.accept()
        conn.send_raw(b"\x82\x7f\x00\x00")  # 64-bit length, cut
        time.sleep(0.05)
        conn.close()

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    ws.close()


def test_peer_closes_without_close_frame(scripted):
    def script(conn):
        conn.accept()
        conn.send_raw(make_frame(OP_TEXT, "last words"))
        conn.close()

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    assert ws.recv() == "last words"
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    assert not ws.connected
    with pytest.raises(WebSocketConnectionClosedException):
        ws.recv()
    ws.close()


def test_peer_closes_during_handshake(scripted):
    def script(conn):
        conn.read_request()
        conn.send_raw(b"HTTP/1.1 101 Switching")
        conn.close()

    srv = scripted(script)
    with pytest.raises(WebSocketConnectionClosedException):
        websocket.create_connection(srv.url)


def test_peer_closes_before_response(scripted):
    def script(conn):
        conn.read_request()
        conn.close()

    srv = scripted(script)
    with pytest.raises(WebSocketConnectionClosedException):
        websocket.create_connection(srv.url)
