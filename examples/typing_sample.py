"""Every public name of ``websocket``, used with precise types.

``mypy --strict examples/typing_sample.py`` must pass (tests/test_typing.py checks it), so
this file is the proof that code written against websocket-client's API type-checks with
websocket-rust's annotations. It also runs against any echo server:

    python examples/typing_sample.py ws://127.0.0.1:8765/

and prints ``typing sample: ok`` at the end.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import threading
from typing import Dict, List, Optional, Tuple, Union

import websocket
from websocket import (
    ABNF,
    DEFAULT_SOCKET_OPTION,
    STATUS_ABNORMAL_CLOSED,
    STATUS_BAD_GATEWAY,
    STATUS_GOING_AWAY,
    STATUS_INVALID_EXTENSION,
    STATUS_INVALID_PAYLOAD,
    STATUS_MESSAGE_TOO_BIG,
    STATUS_NORMAL,
    STATUS_POLICY_VIOLATION,
    STATUS_PROTOCOL_ERROR,
    STATUS_SERVICE_RESTART,
    STATUS_STATUS_NOT_AVAILABLE,
    STATUS_TLS_HANDSHAKE_ERROR,
    STATUS_TRY_AGAIN_LATER,
    STATUS_UNEXPECTED_CONDITION,
    STATUS_UNSUPPORTED_DATA_TYPE,
    WebSocket,
    WebSocketAddressException,
    WebSocketApp,
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketException,
    WebSocketPayloadException,
    WebSocketProtocolException,
    WebSocketProxyException,
    WebSocketTimeoutException,
    continuous_frame,
    create_connection,
    enableTrace,
    frame_buffer,
    getdefaulttimeout,
    setdefaulttimeout,
    sock_opt,
)

ALL_STATUS: Tuple[int, ...] = (
    STATUS_NORMAL,
    STATUS_GOING_AWAY,
    STATUS_PROTOCOL_ERROR,
    STATUS_UNSUPPORTED_DATA_TYPE,
    STATUS_STATUS_NOT_AVAILABLE,
    STATUS_ABNORMAL_CLOSED,
    STATUS_INVALID_PAYLOAD,
    STATUS_POLICY_VIOLATION,
    STATUS_MESSAGE_TOO_BIG,
    STATUS_INVALID_EXTENSION,
    STATUS_UNEXPECTED_CONDITION,
    STATUS_SERVICE_RESTART,
    STATUS_TRY_AGAIN_LATER,
    STATUS_BAD_GATEWAY,
    STATUS_TLS_HANDSHAKE_ERROR,
)

EXCEPTIONS: Tuple[type[WebSocketException], ...] = (
    WebSocketProtocolException,
    WebSocketPayloadException,
    WebSocketConnectionClosedException,
    WebSocketTimeoutException,
    WebSocketProxyException,
    WebSocketBadStatusException,
    WebSocketAddressException,
)


def text_of(message: Union[str, bytes]) -> str:
    return message if isinstance(message, str) else message.decode("utf-8", "replace")


def frames_and_helpers() -> None:
    """ABNF, frame_buffer, continuous_frame, sock_opt and the raw socket helpers."""
    frame: ABNF = ABNF.create_frame("hi", ABNF.OPCODE_TEXT)
    frame.get_mask_key = lambda n: b"\x01\x02\x03\x04"[:n]
    wire: bytes = frame.format()
    frame.validate(skip_utf8_validation=False)
    described: str = str(frame)
    masked: bytes = ABNF.mask(b"abcd", b"payload")
    assert ABNF.mask(b"abcd", masked) == b"payload"
    names: Dict[int, str] = ABNF.OPCODE_MAP
    assert names[ABNF.OPCODE_TEXT] == "text" and ABNF.OPCODE_CLOSE in ABNF.OPCODES
    assert ABNF.LENGTH_7 < ABNF.LENGTH_16 < ABNF.LENGTH_63
    assert ABNF.OPCODE_CONT == 0 and ABNF.OPCODE_BINARY == 2
    assert ABNF.OPCODE_PING == 9 and ABNF.OPCODE_PONG == 10

    # A server-style (unmasked) frame read back through frame_buffer.
    unmasked = ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b"\x00\x01")
    pending = bytearray(unmasked.format())

    def reader(n: int) -> bytes:
        chunk = bytes(pending[:n])
        del pending[:n]
        return chunk

    buffer = frame_buffer(reader, False)
    back: ABNF = buffer.recv_frame()
    assert back.opcode == ABNF.OPCODE_BINARY and back.data == b"\x00\x01"

    # Two fragments joined by continuous_frame.
    joiner = continuous_frame(False, False)
    first = ABNF(0, 0, 0, 0, ABNF.OPCODE_TEXT, 0, b"hel")
    last = ABNF(1, 0, 0, 0, ABNF.OPCODE_CONT, 0, b"lo")
    result: Optional[Tuple[int, ABNF]] = None
    for part in (first, last):
        joiner.validate(part)
        joiner.add(part)
        if joiner.is_fire(part):
            result = joiner.extract(part)
    assert result is not None and result[1].data == b"hello"

    options = sock_opt([(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], {})
    assert options.timeout is None and isinstance(DEFAULT_SOCKET_OPTION, list)

    a, b = socket.socketpair()
    with a, b:
        sent: int = websocket.send(a, b"line\n")
        line: bytes = websocket.recv_line(b)
        websocket.send(a, "more")
        more: bytes = websocket.recv(b, 4)
    assert sent == 5 and line == b"line\n" and more == b"more"
    assert wire and described


def low_level(url: str) -> None:
    """create_connection and every WebSocket method."""
    setdefaulttimeout(10)
    default: Optional[float] = getdefaulttimeout()
    ws: WebSocket = create_connection(
        url,
        timeout=default,
        header={"X-Sample": "typed"},
        sockopt=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        enable_multithread=True,
    )
    status: Optional[int] = ws.getstatus()
    headers: Optional[Dict[str, str]] = ws.getheaders()
    subprotocol: Optional[str] = ws.getsubprotocol()
    assert status == ws.status == 101 and headers is ws.headers
    assert subprotocol == ws.subprotocol
    assert ws.connected and not ws.is_ssl() and ws.fileno() >= 0
    ws.settimeout(5.0)
    timeout: Optional[float] = ws.gettimeout()
    ws.timeout = timeout

    wire_length: int = ws.send("Hello, Server")
    echoed: Union[str, bytes] = ws.recv()
    assert wire_length == 19 and echoed == "Hello, Server"
    ws.send_text("text")
    assert ws.recv() == "text"
    ws.send_bytes(b"\x00bytes")
    assert ws.recv() == b"\x00bytes"
    ws.send_binary(b"\x00binary")
    assert ws.recv() == b"\x00binary"
    ws.send("as binary", ABNF.OPCODE_BINARY)
    opcode, data = ws.recv_data()
    assert opcode == ABNF.OPCODE_BINARY and data == b"as binary"
    ws.send_frame(ABNF.create_frame("a frame", ABNF.OPCODE_TEXT))
    frame_opcode, frame = ws.recv_data_frame(False)
    assert frame_opcode == ABNF.OPCODE_TEXT and frame.data == b"a frame"

    ws.ping("are you there?")
    while True:  # the pong comes back before or after the echo
        ws.send("after ping")
        got_opcode, got = ws.recv_data_frame(control_frame=True)
        if got_opcode == ABNF.OPCODE_PONG:
            assert got.data == b"are you there?"
            assert ws.recv() == "after ping"
            break
    ws.pong(b"unsolicited")

    def mask_key(n: int) -> bytes:
        return os.urandom(n)

    ws.set_mask_key(mask_key)
    ws.send("masked by my key")
    assert next(ws) == "masked by my key"
    ws.send("via next()")
    assert ws.next() == "via next()"
    ws.send("one raw frame")
    raw: ABNF = ws.recv_frame()
    assert raw.opcode == ABNF.OPCODE_TEXT
    ws.send("iterated")
    for message in ws:  # iteration: endless recv()
        assert text_of(message) == "iterated"
        break
    ws.close(STATUS_NORMAL, b"bye", timeout=3)
    assert not ws.connected and ws.sock is None

    # The constructor and connect(), then the other ways out.
    other = WebSocket(sslopt={}, skip_utf8_validation=False)
    other.connect(url, origin="http://localhost", subprotocols=None)
    other.send_close(STATUS_GOING_AWAY, b"leaving")
    other.abort()
    other.shutdown()


def errors(url: str) -> None:
    """The exceptions, as code catches them."""
    try:
        create_connection("http://not-a-websocket-url/")
    except ValueError as e:
        assert "scheme" in str(e)
    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))
    free_port: int = port_holder.getsockname()[1]
    port_holder.close()
    try:
        create_connection(f"ws://127.0.0.1:{free_port}/", timeout=2)
    except ConnectionRefusedError:
        pass
    except WebSocketBadStatusException as e:
        code: int = e.status_code
        raise AssertionError(f"unexpected status {code}")
    except EXCEPTIONS as e:
        raise AssertionError(f"unexpected {e!r}")
    ws = create_connection(url, timeout=0.2)
    try:
        ws.recv()
    except WebSocketTimeoutException:
        pass  # the connection stays usable
    ws.close()
    try:
        ws.send("closed")
    except WebSocketConnectionClosedException:
        pass


def app(url: str) -> bool:
    """WebSocketApp with every callback typed."""
    received: List[str] = []
    closed: List[Tuple[Optional[int], Optional[str]]] = []

    def on_open(ws: WebSocketApp) -> None:
        ws.send("hello app")

    def on_reconnect(ws: WebSocketApp) -> None:
        ws.send("hello again")

    def on_message(ws: WebSocketApp, message: Union[str, bytes]) -> None:
        received.append(text_of(message))
        if len(received) == 1:
            ws.send_bytes(b"bin")
        elif len(received) == 2:
            ws.send_text("text")
        else:
            ws.close(status=STATUS_NORMAL, reason=b"done")

    def on_error(ws: WebSocketApp, error: BaseException) -> None:
        print(f"error: {error!r}", file=sys.stderr)

    def on_close(ws: WebSocketApp, code: Optional[int], reason: Optional[str]) -> None:
        closed.append((code, reason))

    def on_ping(ws: WebSocketApp, data: bytes) -> None:
        pass

    def on_pong(ws: WebSocketApp, data: bytes) -> None:
        pass

    def on_data(ws: WebSocketApp, data: Union[str, bytes], opcode: int, fin: bool) -> None:
        pass

    def on_cont_message(ws: WebSocketApp, data: Union[str, bytes], fin: int) -> None:
        pass

    def headers() -> Dict[str, str]:
        return {"X-Sample": "app"}

    websocket.set_reconnect(0)
    wsapp = WebSocketApp(
        url,
        header=headers,
        on_open=on_open,
        on_reconnect=on_reconnect,
        on_message=on_message,
        on_error=on_error,
        on_close=on_close,
        on_ping=on_ping,
        on_pong=on_pong,
        on_data=on_data,
        subprotocols=None,
    )
    wsapp.on_cont_message = on_cont_message
    watchdog = threading.Timer(20, wsapp.close)
    watchdog.start()
    try:
        errored: bool = wsapp.run_forever(ping_interval=5, ping_timeout=2, ping_payload="ka")
    finally:
        watchdog.cancel()
    assert not wsapp.ready()
    assert received == ["hello app", "bin", "text"], received
    assert closed and closed[0][0] in (STATUS_NORMAL, None), closed
    return errored


def tracing() -> None:
    """enableTrace and the logging helpers."""
    handler: logging.Handler = logging.NullHandler()
    enableTrace(True, handler=handler, level="DEBUG")
    websocket.dump("title", "message")
    websocket.debug("debug")
    websocket.trace("trace")
    websocket.warning("warning")
    websocket.error("error")
    on: bool = websocket.isEnabledForTrace()
    assert on and websocket.isEnabledForDebug() and websocket.isEnabledForError()
    enableTrace(False)


def main(argv: List[str]) -> None:
    url = argv[1] if len(argv) > 1 else "ws://localhost:4040/"
    version: str = websocket.__version__
    frames_and_helpers()
    tracing()
    low_level(url)
    errors(url)
    errored = app(url)
    setdefaulttimeout(None)
    closing: bytes = struct.pack("!H", STATUS_NORMAL)
    assert len(ALL_STATUS) == 15 and closing and version
    print(f"typing sample: ok (websocket {version}, run_forever returned {errored})")


if __name__ == "__main__":
    main(sys.argv)
