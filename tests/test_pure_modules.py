"""Unit tests of the pure-Python modules (websocket._abnf, _url, _socket, ...).

They need no server and no Rust engine: the modules fall back to pure Python when
``websocket._native`` is missing, and use it when it is there.

The same file runs against websocket-client 1.9.2 (install it in a scratch venv and run
pytest on this file there) to show the tests encode the reference's behaviour. Tests of a
deliberate difference are marked ``differs``: strict xfail against the reference, so
they must fail there, and plain tests here.
"""

from __future__ import annotations

import array
import builtins
import errno
import http
import io
import itertools
import logging
import os
import socket
import ssl
import struct
import subprocess
import sys
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest
from reference_names import STATUS

from websocket import _abnf, _cookiejar, _exceptions, _handshake, _logging, _socket
from websocket import _ssl_compat, _url, _utils
from websocket._abnf import ABNF, continuous_frame, frame_buffer
from websocket._cookiejar import SimpleCookieJar
from websocket._exceptions import (
    WebSocketAddressException,
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketPayloadException,
    WebSocketProtocolException,
    WebSocketProxyException,
    WebSocketTimeoutException,
)
from websocket._url import (
    _is_address_in_network,
    _is_ip_address,
    _is_no_proxy_host,
    _is_subnet_address,
    get_proxy_info,
    parse_url,
)

IS_REFERENCE = not hasattr(_url, "get_proxy_info_ex")
differs = pytest.mark.xfail(
    IS_REFERENCE, strict=True, reason="deliberate difference from websocket-client"
)
ours_only = pytest.mark.skipif(IS_REFERENCE, reason="extension of this project")

KEY = b"\x01\x02\x03\x04"


def naive_mask(key: bytes, data: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def wire_frame(
    opcode: int, payload: bytes, fin: int = 1, mask: Optional[bytes] = None, rsv: int = 0
) -> bytes:
    """A frame built by hand, independent of the code under test."""
    head = bytes([(fin << 7) | (rsv << 4) | opcode])
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if mask is not None:
        return head + mask + naive_mask(mask, payload)
    return head + payload


class ChunkedSource:
    """A recv_fn that hands out ``data`` at most ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int = 1 << 30) -> None:
        self.data = data
        self.step = step
        self.requests: List[int] = []

    def __call__(self, n: int) -> bytes:
        self.requests.append(n)
        if not self.data:
            raise WebSocketConnectionClosedException("eof")
        chunk, self.data = self.data[: min(n, self.step)], self.data[min(n, self.step) :]
        return chunk


@pytest.fixture
def pair() -> Iterator[Tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------- exceptions


def test_bad_status_exception_attributes_and_str() -> None:
    msg = "Handshake status 403 Forbidden -+-+- {'a': 'b'} -+-+- nope"
    exc = WebSocketBadStatusException(msg, 403, "Forbidden", {"a": "b"}, b"nope")
    assert str(exc) == msg
    assert exc.args == (msg,)
    assert (exc.status_code, exc.status_message) == (403, "Forbidden")
    assert exc.resp_headers == {"a": "b"}
    assert exc.resp_body == b"nope"
    bare = WebSocketBadStatusException("x", 500)
    assert (bare.status_message, bare.resp_headers, bare.resp_body) == (None, None, None)
    assert str(WebSocketTimeoutException("timed out")) == "timed out"


def test_exceptions_star_export_includes_typing_leak() -> None:
    namespace: dict[str, Any] = {}
    exec("from websocket._exceptions import *", namespace)
    exported = {k for k in namespace if not k.startswith("__")}
    assert exported == {
        "Any",
        "Optional",
        "WebSocketException",
        "WebSocketProtocolException",
        "WebSocketPayloadException",
        "WebSocketConnectionClosedException",
        "WebSocketTimeoutException",
        "WebSocketProxyException",
        "WebSocketBadStatusException",
        "WebSocketAddressException",
    }


# ------------------------------------------------------------------------- ABNF basics


def test_abnf_constants() -> None:
    assert (ABNF.OPCODE_CONT, ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY) == (0, 1, 2)
    assert (ABNF.OPCODE_CLOSE, ABNF.OPCODE_PING, ABNF.OPCODE_PONG) == (8, 9, 10)
    assert ABNF.OPCODES == (0, 1, 2, 8, 9, 10)
    assert ABNF.OPCODE_MAP == {
        0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"
    }
    assert (ABNF.LENGTH_7, ABNF.LENGTH_16, ABNF.LENGTH_63) == (0x7E, 1 << 16, 1 << 63)




def test_status_constants_and_all() -> None:
    for name, value in STATUS.items():
        assert getattr(_abnf, name) == value
    assert _abnf.__all__ == ["ABNF", "continuous_frame", "frame_buffer", *STATUS]
    assert _abnf.VALID_CLOSE_STATUS == tuple(
        v for v in STATUS.values() if v not in (1005, 1006, 1015)
    )


def test_abnf_constructor_defaults() -> None:
    f = ABNF()
    assert (f.fin, f.rsv1, f.rsv2, f.rsv3, f.opcode, f.mask_value, f.data) == (
        0, 0, 0, 0, ABNF.OPCODE_TEXT, 1, ""
    )
    assert f.get_mask_key is os.urandom
    assert ABNF(data=None).data == ""


def test_abnf_str() -> None:
    assert str(ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 1, b"hi")) == "fin=1 opcode=1 data=b'hi'"
    assert str(ABNF(0, 0, 0, 0, ABNF.OPCODE_PING, 1, "hi")) == "fin=0 opcode=9 data=hi"


def test_create_frame() -> None:
    f = ABNF.create_frame("héllo", ABNF.OPCODE_TEXT)
    assert f.data == "héllo".encode()
    assert (f.fin, f.mask_value, f.opcode) == (1, 1, ABNF.OPCODE_TEXT)
    g = ABNF.create_frame("ab", ABNF.OPCODE_BINARY, fin=0)
    assert (g.data, g.fin) == ("ab", 0)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_format_masked_lengths(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    f = ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 1, payload)
    keys: List[int] = []

    def get_key(n: int) -> bytes:
        keys.append(n)
        return KEY

    f.get_mask_key = get_key
    assert f.format() == wire_frame(ABNF.OPCODE_BINARY, payload, mask=KEY)
    assert keys == [4]


def test_format_unmasked_and_bits() -> None:
    f = ABNF(0, 1, 0, 1, ABNF.OPCODE_PONG, 0, b"abc")
    assert f.format() == bytes([0b01011010, 3]) + b"abc"
    text = ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 0, "abc")
    assert text.format() == b"\x81\x03abc"


def test_format_str_payload_masked_is_latin1() -> None:
    f = ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 1, "\xe9\xff")
    f.get_mask_key = lambda n: KEY
    assert f.format() == wire_frame(ABNF.OPCODE_BINARY, b"\xe9\xff", mask=KEY)
    g = ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 1, "\u20ac")
    g.get_mask_key = lambda n: KEY
    with pytest.raises(UnicodeEncodeError):
        g.format()


@differs
def test_format_unmasked_str_header_counts_utf8_bytes() -> None:
    # websocket-client writes the character count (2) and then 3 bytes of payload.
    f = ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, "h\xe9")
    assert f.format() == b"\x82\x03h\xc3\xa9"


@differs
def test_format_masked_text_str_is_utf8() -> None:
    # websocket-client masks a str payload as latin-1 even for TEXT frames built by
    # hand, which sends invalid UTF-8 (or raises above U+00FF).
    f = ABNF(1, 0, 0, 0, ABNF.OPCODE_TEXT, 1, "\xe9\u20ac")
    f.get_mask_key = lambda n: KEY
    assert f.format() == wire_frame(ABNF.OPCODE_TEXT, "\xe9\u20ac".encode(), mask=KEY)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"fin": 2}, "not 0 or 1"),
        ({"rsv1": 2}, "not 0 or 1"),
        ({"rsv3": -1}, "not 0 or 1"),
        ({"opcode": 3}, "Invalid OPCODE"),
    ],
)
def test_format_errors(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ABNF(**{"fin": 1, **kwargs}).format()  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 1000])
def test_mask_matches_naive_xor_and_round_trips(size: int) -> None:
    data = os.urandom(size)
    key = os.urandom(4)
    masked = ABNF.mask(key, data)
    assert isinstance(masked, bytes)
    assert masked == naive_mask(key, data)
    assert ABNF.mask(key, masked) == data


def test_mask_accepts_str_and_none() -> None:
    assert ABNF.mask("\x01\x02\x03\x04", "abcd") == naive_mask(KEY, b"abcd")
    assert ABNF.mask(KEY, "\xe9") == naive_mask(KEY, b"\xe9")
    assert ABNF.mask(KEY, None) == b""
    assert ABNF.mask(KEY, bytearray(b"xyz")) == naive_mask(KEY, b"xyz")


def test_module_mask_helper() -> None:
    """websocket-client's ``_abnf._mask`` (arrays of bytes in, bytes out) stays importable."""
    data = os.urandom(1001)
    key_array, data_array = array.array("B", KEY), array.array("B", data)
    assert _abnf._mask(key_array, data_array) == naive_mask(KEY, data)
    assert _abnf._mask(KEY, data) == naive_mask(KEY, data)
    assert _abnf._mask(key_array, array.array("B")) == b""
    # Its key stream is len(data) // 4 keys plus a partial one: an empty key masks nothing.
    assert _abnf._mask(b"", b"hello") == b"hello"
    assert _abnf.native_byteorder == sys.byteorder
    assert _abnf.array is array


@ours_only
def test_pure_python_mask_fallback_matches() -> None:
    data = os.urandom(1001)
    assert _abnf._xor_mask_py(KEY, data) == naive_mask(KEY, data)
    assert _abnf._xor_mask_py(KEY, b"") == b""


# ----------------------------------------------------------------------- ABNF.validate


def close_frame(payload: bytes, fin: int = 1) -> ABNF:
    return ABNF(fin, 0, 0, 0, ABNF.OPCODE_CLOSE, 0, payload)


@pytest.mark.parametrize(
    "frame, message",
    [
        (ABNF(1, 1, 0, 0, ABNF.OPCODE_TEXT, 0, b""), "rsv is not implemented, yet"),
        (ABNF(1, 0, 0, 1, ABNF.OPCODE_TEXT, 0, b""), "rsv is not implemented, yet"),
        (ABNF(1, 0, 0, 0, 3, 0, b""), "Invalid opcode 3"),
        (ABNF(0, 0, 0, 0, ABNF.OPCODE_PING, 0, b""), "Invalid ping frame."),
        (close_frame(b"\x03"), "Invalid close frame."),
        (close_frame(b"\x03\xe8" + b"a" * 124), "Invalid close frame."),
        (close_frame(b"\x03\xe8\xff"), "Invalid close frame."),
        (close_frame(b"\x03\xed"), "Invalid close opcode 1005"),
        (close_frame(b"\x03\xee"), "Invalid close opcode 1006"),
        (close_frame(b"\x03\xf7"), "Invalid close opcode 1015"),
        (close_frame(b"\x0b\xb7"), "Invalid close opcode 2999"),
        (close_frame(b"\x13\x88"), "Invalid close opcode 5000"),
        (close_frame(b"\x00\x00"), "Invalid close opcode 0"),
    ],
)
def test_validate_rejects(frame: ABNF, message: str) -> None:
    with pytest.raises(WebSocketProtocolException) as info:
        frame.validate()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "frame",
    [
        close_frame(b""),
        close_frame(b"\x03\xe8"),
        close_frame(b"\x03\xe8" + b"a" * 123),
        close_frame("\x03\xe8bye".encode("latin-1")),
        close_frame(b"\x0b\xb8"),
        close_frame(b"\x13\x87\xe2\x82\xac"),
        close_frame(b"\x03\xf6"),
        ABNF(0, 0, 0, 0, ABNF.OPCODE_PONG, 0, b""),
        ABNF(0, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b"\xff"),
    ],
)
def test_validate_accepts(frame: ABNF) -> None:
    frame.validate()


def test_validate_skip_utf8() -> None:
    close_frame(b"\x03\xe8\xff").validate(skip_utf8_validation=True)


# ------------------------------------------------------------------------ frame_buffer


def test_frame_buffer_reads_frames_in_sequence() -> None:
    stream = (
        wire_frame(ABNF.OPCODE_TEXT, b"hello")
        + wire_frame(ABNF.OPCODE_BINARY, b"\x00" * 300, fin=0)
        + wire_frame(ABNF.OPCODE_PING, b"p", mask=KEY)
    )
    fb = frame_buffer(ChunkedSource(stream, step=7), False)
    f1 = fb.recv_frame()
    assert (f1.fin, f1.opcode, f1.data, f1.mask_value) == (1, 1, b"hello", 0)
    f2 = fb.recv_frame()
    assert (f2.fin, f2.opcode, f2.data) == (0, 2, b"\x00" * 300)
    f3 = fb.recv_frame()
    assert (f3.opcode, f3.data, f3.mask_value) == (ABNF.OPCODE_PING, b"p", 1)
    assert fb.needs_header() and fb.needs_length() and fb.needs_mask()


def test_frame_buffer_large_frame_reads_in_16k_chunks() -> None:
    payload = os.urandom(100_000)
    source = ChunkedSource(wire_frame(ABNF.OPCODE_BINARY, payload))
    fb = frame_buffer(source, True)
    assert fb.recv_frame().data == payload
    assert max(source.requests) == 16384
    assert source.requests[:3] == [2, 8, 16384]


def test_frame_buffer_keeps_surplus_bytes() -> None:
    fb = frame_buffer(ChunkedSource(b"abcdef"), False)
    fb.recv_buffer = [b"ab", b"cdef"]
    assert fb.recv_strict(3) == b"abc"
    assert fb.recv_strict(3) == b"def"


def test_frame_buffer_stops_on_non_bytes_read() -> None:
    reads = iter([b"ab", None])
    fb = frame_buffer(lambda n: next(reads), False)  # type: ignore[arg-type,return-value]
    assert fb.recv_strict(5) == b"ab"


@ours_only
def test_frame_buffer_empty_read_is_eof() -> None:
    # websocket-client would call recv_fn again forever.
    fb = frame_buffer(lambda n: b"", False)
    with pytest.raises(WebSocketConnectionClosedException):
        fb.recv_frame()


def test_frame_buffer_resumes_after_timeout() -> None:
    data = wire_frame(ABNF.OPCODE_TEXT, b"x" * 200)
    calls = {"n": 0}

    def flaky(n: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:
            raise WebSocketTimeoutException("timed out")
        nonlocal data
        chunk, data = data[: min(n, 50)], data[min(n, 50) :]
        return chunk

    fb = frame_buffer(flaky, False)
    with pytest.raises(WebSocketTimeoutException):
        fb.recv_frame()
    assert not fb.needs_header() and fb.length == 200
    assert fb.recv_frame().data == b"x" * 200


def test_frame_buffer_header_fields_and_validation() -> None:
    fb = frame_buffer(ChunkedSource(b"\x89\x85" + KEY), False)
    fb.recv_header()
    assert fb.header == (1, 0, 0, 0, 9, 1, 5)
    assert fb.has_mask() == 1
    fb.recv_length()
    assert fb.length == 5
    fb.recv_mask()
    assert fb.mask_value == KEY
    fb.clear()
    assert fb.needs_header() and fb.needs_length() and fb.needs_mask()
    assert fb.has_mask() is False

    bad = frame_buffer(ChunkedSource(wire_frame(1, b"", rsv=4)), False)
    with pytest.raises(WebSocketProtocolException, match="rsv"):
        bad.recv_frame()
    with pytest.raises(ValueError, match="bufsize must be an integer"):
        fb.recv_strict(1.5)  # type: ignore[arg-type]


def test_frame_buffer_invalid_close_reason() -> None:
    data = wire_frame(ABNF.OPCODE_CLOSE, b"\x03\xe8\xff")
    with pytest.raises(WebSocketProtocolException, match="Invalid close frame."):
        frame_buffer(ChunkedSource(data), False).recv_frame()
    assert frame_buffer(ChunkedSource(data), True).recv_frame().data == b"\x03\xe8\xff"


# -------------------------------------------------------------------- continuous_frame


def frag(opcode: int, data: bytes, fin: int) -> ABNF:
    return ABNF(fin, 0, 0, 0, opcode, 0, data)


def test_continuous_frame_reassembles() -> None:
    cf = continuous_frame(False, False)
    frames = [
        frag(ABNF.OPCODE_TEXT, b"h", 0),
        frag(ABNF.OPCODE_CONT, b"\xc3", 0),
        frag(ABNF.OPCODE_CONT, b"\xa9llo", 1),
    ]
    for f in frames[:-1]:
        cf.validate(f)
        cf.add(f)
        assert not cf.is_fire(f)
        assert cf.recving_frames == ABNF.OPCODE_TEXT
    last = frames[-1]
    cf.validate(last)
    cf.add(last)
    assert cf.is_fire(last)
    assert cf.recving_frames is None
    opcode, frame = cf.extract(last)
    assert opcode == ABNF.OPCODE_TEXT
    assert frame is last
    assert frame.data == "héllo".encode()
    assert isinstance(frame.data, bytes)
    assert cf.cont_data is None


def test_continuous_frame_illegal_sequences() -> None:
    cf = continuous_frame(False, False)
    with pytest.raises(WebSocketProtocolException, match="Illegal frame"):
        cf.validate(frag(ABNF.OPCODE_CONT, b"", 1))
    cf.add(frag(ABNF.OPCODE_BINARY, b"a", 0))
    for op in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
        with pytest.raises(WebSocketProtocolException, match="Illegal frame"):
            cf.validate(frag(op, b"", 1))
    cf.validate(frag(ABNF.OPCODE_PING, b"", 1))
    with pytest.raises(WebSocketProtocolException, match="No continuation data"):
        continuous_frame(False, False).extract(frag(ABNF.OPCODE_TEXT, b"", 1))


def test_continuous_frame_utf8_check() -> None:
    cf = continuous_frame(False, False)
    f = frag(ABNF.OPCODE_TEXT, b"\xff\xfe", 1)
    cf.add(f)
    with pytest.raises(WebSocketPayloadException) as info:
        cf.extract(f)
    assert str(info.value) == "cannot decode: b'\\xff\\xfe'"

    for skip, fire in ((True, False), (False, True)):
        cf = continuous_frame(fire, skip)
        cf.add(f)
        assert cf.extract(f)[1].data == b"\xff\xfe"
    cf = continuous_frame(False, False)
    cf.add(frag(ABNF.OPCODE_BINARY, b"\xff", 1))
    assert cf.extract(f)[0] == ABNF.OPCODE_BINARY


def test_continuous_frame_fire_each_fragment() -> None:
    cf = continuous_frame(True, False)
    first = frag(ABNF.OPCODE_TEXT, b"a", 0)
    cf.add(first)
    assert cf.is_fire(first)
    assert cf.extract(first) == (ABNF.OPCODE_TEXT, first)
    second = frag(ABNF.OPCODE_CONT, b"b", 0)
    cf.validate(second)
    cf.add(second)
    opcode, frame = cf.extract(second)
    assert (opcode, frame.data) == (ABNF.OPCODE_CONT, b"b")
    assert cf.recving_frames == ABNF.OPCODE_TEXT
    last = frag(ABNF.OPCODE_CONT, b"c", 1)
    cf.add(last)
    assert cf.extract(last)[1].data == b"c"
    assert cf.recving_frames is None


# ------------------------------------------------------------------------------ _utils


def test_nolock() -> None:
    lock = _utils.NoLock()
    with lock:
        pass
    with pytest.raises(KeyError):
        with lock:
            raise KeyError("not swallowed")


@pytest.mark.parametrize(
    "data, valid",
    [
        (b"", True),
        (b"plain ascii", True),
        ("h\u00e9\u20ac\U0001f600".encode(), True),
        (b"\xff", False),
        (b"\xc0\xaf", False),  # overlong "/"
        (b"\xed\xa0\x80", False),  # UTF-16 surrogate
        (b"\xf4\x90\x80\x80", False),  # above U+10FFFF
        (b"ok\x80", False),
        ("text", True),
        ("\ud800", False),
        (bytearray(b"abc"), True),
    ],
)
def test_validate_utf8(data: Any, valid: bool) -> None:
    assert _utils.validate_utf8(data) is valid


@differs
def test_validate_utf8_rejects_truncated_sequence() -> None:
    assert _utils.validate_utf8(b"\xe2\x82") is False


@ours_only
def test_validate_utf8_fallback_and_native_agree() -> None:
    samples = [b"", b"abc", b"\xe2\x82\xac", b"\xe2\x82", b"\xff", b"\xed\xa0\x80"]
    for sample in samples:
        expected = True
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError:
            expected = False
        assert _utils._validate_utf8_py(sample) is expected
        assert _utils.validate_utf8(sample) is expected


def test_utf8_automaton_helpers() -> None:
    """``_UTF8D``/``_decode``/``_validate_utf8``: websocket-client's pure-Python validator
    (Hoehrmann's automaton), which accepts data that ends inside a sequence."""
    assert len(_utils._UTF8D) == 256 + 9 * 12
    assert (_utils._UTF8_ACCEPT, _utils._UTF8_REJECT) == (0, 12)

    def run(data: bytes) -> Tuple[int, int]:
        state, codep = _utils._UTF8_ACCEPT, 0
        for byte in data:
            state, codep = _utils._decode(state, codep, byte)
            if state == _utils._UTF8_REJECT:
                break
        return state, codep

    assert run("\u20ac".encode()) == (0, 0x20AC)
    assert run("\U0001f600".encode()) == (0, 0x1F600)
    assert run(b"\xe2\x82")[0] not in (_utils._UTF8_ACCEPT, _utils._UTF8_REJECT)
    assert _utils._validate_utf8(b"\xe2\x82") is True
    assert _utils._validate_utf8(b"ok\x80") is False
    # Every short sequence of boundary bytes: the validator fails exactly when the
    # automaton reaches the reject state.
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
             0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
    for n in (1, 2, 3):
        for seq in itertools.product(edges, repeat=n):
            data = bytes(seq)
            expected = run(data)[0] != _utils._UTF8_REJECT
            assert _utils._validate_utf8(data) is expected, data


def test_extract_err_message_and_code() -> None:
    assert _utils.extract_err_message(Exception("boom")) == "boom"
    assert _utils.extract_err_message(Exception(5, "x")) == "5"
    assert _utils.extract_err_message(Exception()) is None
    assert _utils.extract_error_code(OSError(errno.EAGAIN, "again")) == errno.EAGAIN
    assert _utils.extract_error_code(Exception(5)) is None
    assert _utils.extract_error_code(Exception("a", "b")) is None
    assert _utils.extract_error_code(Exception()) is None


# -------------------------------------------------------------------------- parse_url


@pytest.mark.parametrize(
    "url, expected",
    [
        ("ws://example.com", ("example.com", 80, "/", False)),
        ("wss://example.com", ("example.com", 443, "/", True)),
        ("ws://Example.COM:8080/a/b?x=1&y=2#frag", ("example.com", 8080, "/a/b?x=1&y=2", False)),
        ("wss://example.com:443/", ("example.com", 443, "/", True)),
        ("ws://example.com:0/", ("example.com", 80, "/", False)),
        ("ws://example.com:/x", ("example.com", 80, "/x", False)),
        ("ws://example.com?", ("example.com", 80, "/", False)),
        ("ws://example.com?q", ("example.com", 80, "/?q", False)),
        ("ws://user:pw@example.com:81/", ("example.com", 81, "/", False)),
        ("ws://[::1]:8080/chat", ("::1", 8080, "/chat", False)),
        ("wss://[2001:db8::1]", ("2001:db8::1", 443, "/", True)),
        ("ws://127.0.0.1/", ("127.0.0.1", 80, "/", False)),
    ],
)
def test_parse_url(url: str, expected: Tuple[str, int, str, bool]) -> None:
    assert parse_url(url) == expected


@differs
def test_parse_url_keeps_path_parameters() -> None:
    assert parse_url("ws://host/p;jsessionid=1?q") == ("host", 80, "/p;jsessionid=1?q", False)


@pytest.mark.parametrize(
    "url, message",
    [
        ("example.com", "url is invalid"),
        ("ws://", "hostname is invalid"),
        ("ws:example.com", "hostname is invalid"),
        ("http://", "hostname is invalid"),
        ("http://example.com", "scheme http is invalid"),
        ("WS://example.com", "scheme WS is invalid"),
        ("ws://example.com:abc/", "Port could not be cast to integer value"),
        ("ws://example.com:70000/", "Port out of range 0-65535"),
        ("ws://[::1/", "Invalid IPv6 URL"),
    ],
)
def test_parse_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_url(url)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- no_proxy


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_ip_helpers() -> None:
    assert _is_ip_address("10.0.0.1") and _is_ip_address("::1")
    assert not _is_ip_address("example.com") and not _is_ip_address("10.0.0.0/8")
    with pytest.raises(TypeError):
        _is_ip_address(None)  # type: ignore[arg-type]
    assert _is_subnet_address("10.0.0.0/8") and _is_subnet_address("fd00::/8")
    assert _is_subnet_address("10.0.0.1")
    assert not _is_subnet_address("10.0.0.1/8")  # host bits set
    assert not _is_subnet_address("example.com")
    assert _is_address_in_network("10.1.2.3", "10.0.0.0/8")
    assert not _is_address_in_network("11.1.2.3", "10.0.0.0/8")
    assert _is_address_in_network("fd00::5", "fd00::/8")
    assert not _is_address_in_network("10.1.2.3", "fd00::/8")
    assert not _is_address_in_network("nonsense", "10.0.0.0/8")


@pytest.mark.parametrize(
    "host, entries, expected",
    [
        ("anything", ["*"], True),
        ("example.com", ["example.com"], True),
        ("sub.example.com", ["example.com"], True),
        ("notexample.com", ["example.com"], False),
        ("sub.example.com", [".example.com"], True),
        ("example.com", [".example.com"], True),
        ("a.b.example.com", ["x.org", ".example.com"], True),
        ("example.org", [".example.com"], False),
        ("192.168.1.5", ["192.168.0.0/16"], True),
        ("192.169.1.5", ["192.168.0.0/16"], False),
        ("192.168.1.5", ["192.168.1.5"], True),
        ("10.0.0.1", ["10.0.0.0/8", "example.com"], True),
        ("10.0.0.1", [".0.0.1"], False),
        ("2001:db8::7", ["2001:db8::/32"], True),
        ("2001:db9::7", ["2001:db8::/32"], False),
        ("::1", ["::1"], True),
        ("localhost", ["example.com"], False),
    ],
)
def test_no_proxy_matching(
    clean_env: pytest.MonkeyPatch, host: str, entries: List[str], expected: bool
) -> None:
    assert _is_no_proxy_host(host, entries) is expected


@differs
@pytest.mark.parametrize(
    "host, entries, expected",
    [
        ("badexample.com", [".example.com"], False),
        ("example.com", ["."], False),
        ("sub.example.com", ["*.example.com"], True),
        ("sub.example.com", ["Example.COM"], True),
    ],
)
def test_no_proxy_matching_fixed_cases(
    clean_env: pytest.MonkeyPatch, host: str, entries: List[str], expected: bool
) -> None:
    assert _is_no_proxy_host(host, entries) is expected


def test_no_proxy_from_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert not _is_no_proxy_host("example.com", None)
    clean_env.setenv("NO_PROXY", "other.org, example.com")
    assert _is_no_proxy_host("example.com", None)
    assert _is_no_proxy_host("example.com", [])
    assert not _is_no_proxy_host("example.com", ["x.org"])  # the list wins over env
    clean_env.setenv("no_proxy", "x.org")  # lowercase wins over uppercase
    assert not _is_no_proxy_host("example.com", None)
    clean_env.setenv("no_proxy", "")  # even when empty
    assert not _is_no_proxy_host("example.com", None)


# ---------------------------------------------------------------------- get_proxy_info


def test_get_proxy_info_explicit(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("http_proxy", "http://env:1")
    assert get_proxy_info("h", False, "p", 3128, ("u", "pw")) == ("p", 3128, ("u", "pw"))
    with pytest.raises(WebSocketProxyException) as info:
        get_proxy_info("h", False, "p")
    assert str(info.value) == "Cannot use port 0 when proxy_host specified"
    assert get_proxy_info("h", False, "p", 3128, no_proxy=["h"]) == (None, 0, None)


def test_get_proxy_info_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert get_proxy_info("h", False) == (None, 0, None)
    clean_env.setenv("HTTP_PROXY", "http://upper:1")
    assert get_proxy_info("h", False) == ("upper", 1, None)
    clean_env.setenv("http_proxy", "http://lower:2")
    assert get_proxy_info("h", False) == ("lower", 2, None)
    assert get_proxy_info("h", True) == (None, 0, None)
    clean_env.setenv("HTTPS_PROXY", " http://us%65r:p%40ss%3A@secure.example:3128 ")
    assert get_proxy_info("h", True) == ("secure.example", 3128, ("user", "p@ss:"))
    clean_env.setenv("http_proxy", "socks5://[::1]")
    assert get_proxy_info("h", False) == ("::1", None, None)
    clean_env.setenv("http_proxy", "http://:pw@nouser:8")
    assert get_proxy_info("h", False) == ("nouser", 8, None)
    clean_env.setenv("no_proxy", "h")
    assert get_proxy_info("h", False) == (None, 0, None)


@ours_only
def test_get_proxy_info_ex_reports_type(clean_env: pytest.MonkeyPatch) -> None:
    ex: Callable[..., Any] = getattr(_url, "get_proxy_info_ex")
    assert ex("h", False) == (None, 0, None, "http")
    assert ex("h", False, "p", 1, None, None, "socks4a") == ("p", 1, None, "socks4a")
    for scheme in ("socks4", "socks4a", "socks5", "socks5h"):
        clean_env.setenv("http_proxy", f"{scheme.upper()}://u:p@sp:1080")
        assert ex("h", False) == ("sp", 1080, ("u", "p"), scheme)
        assert get_proxy_info("h", False) == ("sp", 1080, ("u", "p"))
    clean_env.setenv("http_proxy", "https://hp:8443")
    assert ex("h", False) == ("hp", 8443, None, "http")


# --------------------------------------------------------------------------- cookies


def test_cookiejar_add_and_get() -> None:
    jar = SimpleCookieJar()
    jar.add(None)
    jar.add("")
    jar.add("nodomain=1")
    assert jar.jar == {}
    jar.add("a=1; Domain=example.com")
    assert list(jar.jar) == [".example.com"]
    jar.add("b=2; Domain=.example.com")
    assert jar.get("example.com") == "a=1; b=2"
    assert jar.get("WWW.Example.com") == "a=1; b=2"
    assert jar.get("badexample.com") == ""
    assert jar.get("other.org") == ""
    assert jar.get("") == ""


def test_cookiejar_set_replaces_and_domain_case() -> None:
    jar = SimpleCookieJar()
    jar.add("z=9; Domain=Example.com")
    assert list(jar.jar) == [".example.com"]
    jar.add("a=1; Domain=example.com")
    jar.set("c=3; Domain=example.com")
    assert jar.get("example.com") == "c=3"
    jar.set("d=4; Domain=other.org")
    assert jar.get("x.other.org") == "d=4"
    assert jar.get("example.com") == "c=3"


def test_cookiejar_files_domainless_cookies_with_the_header() -> None:
    jar = SimpleCookieJar()
    jar.add("s=1; a=2; Domain=example.com")
    assert jar.get("example.com") == "a=2; s=1"


@differs
def test_cookiejar_merges_when_domain_has_capitals() -> None:
    jar = SimpleCookieJar()
    jar.add("a=1; Domain=Example.com")
    jar.add("b=2; Domain=Example.com")
    assert jar.get("example.com") == "a=1; b=2"


# --------------------------------------------------------------------------- _socket


def test_default_socket_option() -> None:
    opts = _socket.DEFAULT_SOCKET_OPTION
    assert opts[0] == (socket.SOL_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "SO_KEEPALIVE"):
        assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in opts
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert (socket.SOL_TCP, socket.TCP_KEEPIDLE, 30) in opts
    if hasattr(socket, "TCP_KEEPINTVL"):
        assert (socket.SOL_TCP, socket.TCP_KEEPINTVL, 10) in opts
    if hasattr(socket, "TCP_KEEPCNT"):
        assert (socket.SOL_TCP, socket.TCP_KEEPCNT, 3) in opts
    assert _socket.__all__ == [
        "DEFAULT_SOCKET_OPTION",
        "sock_opt",
        "setdefaulttimeout",
        "getdefaulttimeout",
        "recv",
        "recv_line",
        "send",
    ]


def test_default_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_socket, "_default_timeout", _socket.getdefaulttimeout())
    _socket.setdefaulttimeout(None)
    assert _socket.getdefaulttimeout() is None
    _socket.setdefaulttimeout(2.5)
    assert _socket.getdefaulttimeout() == 2.5


def test_default_timeout_initially_none() -> None:
    code = "import websocket._socket as s; print(s.getdefaulttimeout())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"


def test_sock_opt() -> None:
    opt = _socket.sock_opt(None, None)
    assert (opt.sockopt, opt.sslopt, opt.timeout) == ([], {}, None)
    sockopt = [(1, 2, 3)]
    sslopt = {"cert_reqs": 0}
    opt = _socket.sock_opt(sockopt, sslopt)
    assert opt.sockopt is sockopt and opt.sslopt is sslopt


def test_send_and_recv(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    assert _socket.send(a, "h\u00e9") == 3
    assert _socket.send(a, b"!") == 1
    assert _socket.recv(b, 10) == "h\u00e9!".encode()
    b.settimeout(1.0)
    a.sendall(b"xyz")
    assert _socket.recv(b, 2) == b"xy"


def test_recv_eof_and_none(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.close()
    with pytest.raises(WebSocketConnectionClosedException) as info:
        _socket.recv(b, 1)
    assert str(info.value) == "Connection to remote host was lost."
    for call in (lambda: _socket.recv(None, 1), lambda: _socket.send(None, b"x")):  # type: ignore[arg-type]
        with pytest.raises(WebSocketConnectionClosedException) as info:
            call()
        assert str(info.value) == "socket is already closed."


def test_recv_timeout_leaves_socket_usable(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    b.settimeout(0.05)
    with pytest.raises(WebSocketTimeoutException) as info:
        _socket.recv(b, 1)
    assert str(info.value) == "Connection timed out"
    a.sendall(b"k")
    assert _socket.recv(b, 1) == b"k"


def test_recv_nonblocking_raises_raw(pair: Tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        _socket.recv(b, 1)


def test_recv_line(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\n")
    assert _socket.recv_line(b) == b"HTTP/1.1 101 OK\r\n"
    assert _socket.recv_line(b) == b"Upgrade: websocket\r\n"
    a.sendall(b"partial")
    a.close()
    with pytest.raises(WebSocketConnectionClosedException):
        _socket.recv_line(b)


def test_send_timeout(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, _ = pair
    a.settimeout(0.05)
    chunk = b"\0" * 65536
    with pytest.raises(WebSocketTimeoutException) as info:
        for _ in range(10_000):
            _socket.send(a, chunk)
    assert str(info.value) == "timed out"


class FlakySocket:
    """Wraps a real socket; the first recv/send raises ``error``."""

    def __init__(self, sock: socket.socket, error: BaseException) -> None:
        self.sock = sock
        self.error: Optional[BaseException] = error

    def fileno(self) -> int:
        return self.sock.fileno()

    def gettimeout(self) -> Optional[float]:
        return self.sock.gettimeout()

    def _maybe_fail(self) -> None:
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def recv(self, n: int) -> bytes:
        self._maybe_fail()
        return self.sock.recv(n)

    def send(self, data: bytes) -> int:
        self._maybe_fail()
        return self.sock.send(data)


@pytest.mark.parametrize(
    "error",
    [
        BlockingIOError(errno.EAGAIN, "again"),
        ssl.SSLWantReadError(2, "want read"),
    ],
)
def test_recv_retries_when_readable(
    pair: Tuple[socket.socket, socket.socket], error: BaseException
) -> None:
    a, b = pair
    b.settimeout(1.0)
    a.sendall(b"later")
    flaky: Any = FlakySocket(b, error)
    assert _socket.recv(flaky, 5) == b"later"


def test_recv_retry_times_out(pair: Tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    b.settimeout(0.05)
    flaky: Any = FlakySocket(b, BlockingIOError(errno.EAGAIN, "again"))
    with pytest.raises(WebSocketTimeoutException) as info:
        _socket.recv(flaky, 5)
    assert str(info.value) == "Connection timed out waiting for data"


def test_recv_ssl_errors(pair: Tuple[socket.socket, socket.socket]) -> None:
    _, b = pair
    b.settimeout(1.0)
    flaky: Any = FlakySocket(b, ssl.SSLError("The read operation timed out"))
    with pytest.raises(WebSocketTimeoutException, match="The read operation timed out"):
        _socket.recv(flaky, 1)
    flaky = FlakySocket(b, ssl.SSLError(1, "bad record mac"))
    with pytest.raises(ssl.SSLError):
        _socket.recv(flaky, 1)
    flaky = FlakySocket(b, ConnectionResetError(errno.ECONNRESET, "reset"))
    with pytest.raises(ConnectionResetError):
        _socket.recv(flaky, 1)


def test_send_error_paths(pair: Tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.settimeout(1.0)
    flaky: Any = FlakySocket(a, ssl.SSLEOFError(8, "EOF"))
    with pytest.raises(WebSocketConnectionClosedException, match="socket is already closed."):
        _socket.send(flaky, b"x")
    flaky = FlakySocket(a, BlockingIOError(errno.EAGAIN, "again"))
    assert _socket.send(flaky, b"abc") == 3
    assert b.recv(3) == b"abc"
    flaky = FlakySocket(a, OSError("write timed out"))
    with pytest.raises(WebSocketTimeoutException, match="write timed out"):
        _socket.send(flaky, b"x")
    flaky = FlakySocket(a, BrokenPipeError(errno.EPIPE, "broken"))
    with pytest.raises(BrokenPipeError):
        _socket.send(flaky, b"x")


# --------------------------------------------------------------------------- logging


@pytest.fixture
def trace_off() -> Iterator[None]:
    _logging.enableTrace(False)
    yield
    _logging.enableTrace(False)


def test_logger_has_null_handler() -> None:
    assert _logging.NullHandler is logging.NullHandler
    logger = logging.getLogger("websocket")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert _logging.__all__ == [
        "enableTrace",
        "dump",
        "error",
        "warning",
        "debug",
        "trace",
        "isEnabledForError",
        "isEnabledForDebug",
        "isEnabledForTrace",
    ]


def test_enable_trace_adds_and_removes_handler(trace_off: None) -> None:
    logger = logging.getLogger("websocket")
    level_before = logger.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    assert not _logging.isEnabledForTrace()
    _logging.trace("hidden")
    _logging.dump("hidden", "hidden")

    _logging.enableTrace(True, handler)
    assert handler in logger.handlers
    assert logger.level == logging.DEBUG
    assert _logging.isEnabledForTrace() and _logging.isEnabledForDebug()
    _logging.trace("++Sent raw: b'x'")
    _logging.dump("request header", "GET / HTTP/1.1")
    assert stream.getvalue() == (
        "++Sent raw: b'x'\n--- request header ---\nGET / HTTP/1.1\n-----------------------\n"
    )

    _logging.enableTrace(False)
    assert handler not in logger.handlers
    assert logger.level == level_before
    assert not _logging.isEnabledForTrace()
    _logging.trace("after")
    assert "after" not in stream.getvalue()


def test_enable_trace_replaces_previous_handler(trace_off: None) -> None:
    logger = logging.getLogger("websocket")
    first, second = logging.NullHandler(), logging.NullHandler()
    _logging.enableTrace(True, first)
    _logging.enableTrace(True, second, level="INFO")
    assert first not in logger.handlers and second in logger.handlers
    assert logger.level == logging.INFO
    assert not _logging.isEnabledForDebug() and _logging.isEnabledForError()
    _logging.enableTrace(True)
    defaults = [h for h in logger.handlers if type(h) is logging.StreamHandler]
    assert len(defaults) == 1 and defaults[0].stream is sys.stderr
    assert second not in logger.handlers


def test_log_helpers_ignore_trace_flag(trace_off: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="websocket"):
        _logging.debug("d")
        _logging.info("i")
        _logging.warning("w")
        _logging.error("e")
        _logging.trace("t")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", "d"),
        ("INFO", "i"),
        ("WARNING", "w"),
        ("ERROR", "e"),
    ]
    assert all(r.name == "websocket" for r in caplog.records)


@ours_only
def test_enable_trace_tells_native(trace_off: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[Tuple[str, Any]] = []

    class FakeNative:
        @staticmethod
        def set_trace(flag: bool) -> None:
            calls.append(("set_trace", flag))

        @staticmethod
        def reset_log_cache() -> None:
            calls.append(("reset_log_cache", None))

    monkeypatch.setattr(_logging, "_load_native", lambda: FakeNative)
    _logging.enableTrace(True, logging.NullHandler())
    _logging.enableTrace(False)
    assert calls == [
        ("set_trace", True),
        ("reset_log_cache", None),
        ("set_trace", False),
        ("reset_log_cache", None),
    ]
    monkeypatch.setattr(_logging, "_load_native", lambda: object())
    _logging.enableTrace(True, logging.NullHandler())  # helpers missing: ignored


# ---------------------------------------------------------------- ssl_compat, handshake


def test_ssl_compat() -> None:
    assert _ssl_compat.HAVE_SSL is True
    assert _ssl_compat.ssl is ssl
    assert _ssl_compat.SSLError is ssl.SSLError
    assert _ssl_compat.SSLEOFError is ssl.SSLEOFError
    assert _ssl_compat.SSLWantReadError is ssl.SSLWantReadError
    assert _ssl_compat.SSLWantWriteError is ssl.SSLWantWriteError
    assert set(_ssl_compat.__all__) == {
        "HAVE_SSL", "ssl", "SSLError", "SSLEOFError", "SSLWantReadError", "SSLWantWriteError"
    }


def test_handshake_response(monkeypatch: pytest.MonkeyPatch) -> None:
    assert [int(s) for s in _handshake.SUPPORTED_REDIRECT_STATUSES] == [301, 302, 303, 307, 308]
    jar = SimpleCookieJar()
    monkeypatch.setattr(_handshake, "CookieJar", jar)
    resp = _handshake.handshake_response(
        101, {"set-cookie": "sid=abc; Domain=example.com"}, "chat"
    )
    assert (resp.status, resp.subprotocol) == (101, "chat")
    assert resp.headers == {"set-cookie": "sid=abc; Domain=example.com"}
    assert jar.get("ws.example.com") == "sid=abc"
    _handshake.handshake_response(101, {}, None)
    assert jar.get("ws.example.com") == "sid=abc"


def test_ssl_compat_type_placeholders() -> None:
    # websocket-client imports these for type hints only: None at run time.
    for name in ("_ssl_module", "_SSLErrorType", "_SSLEOFErrorType", "_SSLWantReadErrorType",
                 "_SSLWantWriteErrorType"):
        assert getattr(_ssl_compat, name) is None


def test_cookiejar_module_exports() -> None:
    assert _cookiejar.SimpleCookieJar is SimpleCookieJar
    assert _cookiejar.http is http
    namespace: dict[str, Any] = {}
    exec("from websocket._cookiejar import *", namespace)
    assert {"SimpleCookieJar", "Optional", "http"} <= set(namespace)
    assert _exceptions.WebSocketException is WebSocketException


# ---------------------------------------------------------------------- wsdump leftovers


def test_wsdump_console_classes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """websocket-client's wsdump helpers stay importable and behave as there."""
    import argparse
    import code

    from websocket import _wsdump

    assert _wsdump.OPCODE_DATA == (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY)
    assert issubclass(_wsdump.InteractiveConsole, code.InteractiveConsole)
    monkeypatch.setattr(builtins, "input", lambda prompt="": "caf\u00e9" + prompt)
    assert _wsdump.RawInput().raw_input("?") == "caf\u00e9?".encode()
    assert _wsdump.InteractiveConsole().read() == "caf\u00e9> ".encode()
    assert _wsdump.NonInteractive().read() == "caf\u00e9".encode()
    _wsdump.InteractiveConsole().write("hi")
    _wsdump.NonInteractive().write("yo")
    assert capsys.readouterr().out == "\x1b[2K\x1b[E\x1b[34m< hi\x1b[39m\n> yo\n"
    parser = argparse.ArgumentParser()
    parser.add_argument("-v", nargs="?", default=0, action=_wsdump.VAction)
    levels = [parser.parse_args(a).v for a in ([], ["-v"], ["-v", "3"], ["-vv"], ["-v", "vvv"])]
    assert levels == [0, 1, 3, 2, 4]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.1.2.3", "2001:db8::8", "localhost", "127.1"])
def test_address_literals_resolve_as_getaddrinfo_would(host):
    """_get_addrinfo_list answers an address literal itself (under gevent and eventlet
    getaddrinfo goes through a resolver thread): the same list getaddrinfo gives, and
    getaddrinfo itself for names and forms only it knows ("127.1", scope ids)."""
    from websocket import _http

    expected = socket.getaddrinfo(host, 8080, 0, socket.SOCK_STREAM, socket.SOL_TCP)
    got, tunnel, auth = _http._get_addrinfo_list(host, 8080, False, _http.proxy_info())
    assert (got, tunnel, auth) == (expected, False, None)
    numeric = getattr(_http, "_numeric_addrinfo", None)
    if numeric is not None:  # this package's shortcut
        assert numeric(host, 8080) == (expected if host in ("127.0.0.1", "::1", "10.1.2.3", "2001:db8::8") else None)
