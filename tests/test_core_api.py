"""The public surface around WebSocket: module names and leftovers (REFERENCE.md 1.2, 5.15),
WebSocket properties and accessors, ws.sock as a real selectable socket (5.7), and subclasses
passed through class_= (5.10)."""

import importlib
import select
import socket
import typing

import pytest

import websocket
from websocket import ABNF
from reference_names import STATUS
from servers import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, echo_loop, echo_script, make_frame, prelude_then_echo

pytestmark = pytest.mark.timeout(30)


EXPORTED = [
    "ABNF",
    "continuous_frame",
    "frame_buffer",
    "WebSocketApp",
    "set_reconnect",
    "WebSocket",
    "create_connection",
    "WebSocketException",
    "WebSocketProtocolException",
    "WebSocketPayloadException",
    "WebSocketConnectionClosedException",
    "WebSocketTimeoutException",
    "WebSocketProxyException",
    "WebSocketBadStatusException",
    "WebSocketAddressException",
    "Any",
    "Optional",
    "enableTrace",
    "dump",
    "error",
    "warning",
    "debug",
    "trace",
    "isEnabledForError",
    "isEnabledForDebug",
    "isEnabledForTrace",
    "DEFAULT_SOCKET_OPTION",
    "sock_opt",
    "setdefaulttimeout",
    "getdefaulttimeout",
    "recv",
    "recv_line",
    "send",
    "__version__",
] + list(STATUS)

SUBMODULES = [
    "_abnf",
    "_app",
    "_cookiejar",
    "_core",
    "_dispatcher",
    "_exceptions",
    "_handshake",
    "_http",
    "_logging",
    "_socket",
    "_ssl_compat",
    "_url",
    "_utils",
]


# -- module surface ----------------------------------------------------------------------

@pytest.mark.parametrize("name", EXPORTED)
def test_exported_name(name):
    assert hasattr(websocket, name)
    assert name in dir(websocket)


def test_status_values():
    for name, value in STATUS.items():
        assert getattr(websocket, name) == value
        assert getattr(websocket._abnf, name) == value


def test_typing_leftovers():
    assert websocket.Any is typing.Any
    assert websocket.Optional is typing.Optional


def test_info_not_exported():
    assert not hasattr(websocket, "info")
    assert callable(websocket._logging.info)


@pytest.mark.parametrize("mod", SUBMODULES)
def test_submodules_importable(mod):
    m = importlib.import_module(f"websocket.{mod}")
    assert m.__name__ == f"websocket.{mod}"


def test_identity_across_modules():
    import websocket._abnf as a
    import websocket._app as app
    import websocket._core as c
    import websocket._logging as lg
    import websocket._socket as s

    assert c.WebSocket is websocket.WebSocket
    assert c.create_connection is websocket.create_connection
    assert a.ABNF is websocket.ABNF
    assert a.frame_buffer is websocket.frame_buffer
    assert a.continuous_frame is websocket.continuous_frame
    assert app.WebSocketApp is websocket.WebSocketApp
    assert app.set_reconnect is websocket.set_reconnect
    assert lg.enableTrace is websocket.enableTrace
    assert s.setdefaulttimeout is websocket.setdefaulttimeout
    assert s.recv is websocket.recv and s.send is websocket.send
    assert s.DEFAULT_SOCKET_OPTION is websocket.DEFAULT_SOCKET_OPTION
    assert app.SSLDispatcher is websocket._dispatcher.SSLDispatcher


def test_valid_close_status():
    v = set(websocket._abnf.VALID_CLOSE_STATUS)
    assert v == set(STATUS.values()) - {1005, 1006, 1015}


def test_abnf_constants():
    assert (ABNF.OPCODE_CONT, ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY) == (0, 1, 2)
    assert (ABNF.OPCODE_CLOSE, ABNF.OPCODE_PING, ABNF.OPCODE_PONG) == (8, 9, 10)
    assert ABNF.OPCODE_MAP == {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
    assert (ABNF.LENGTH_7, ABNF.LENGTH_16, ABNF.LENGTH_63) == (0x7E, 1 << 16, 1 << 63)


def test_sock_opt_object():
    so = websocket.sock_opt(None, None)
    assert so.sockopt == [] and so.sslopt == {} and so.timeout is None
    so = websocket.sock_opt([(1, 2, 3)], {"a": 1})
    assert so.sockopt == [(1, 2, 3)] and so.sslopt == {"a": 1}


def test_socket_helpers_on_real_sockets():
    a, b = socket.socketpair()
    try:
        assert websocket.send(a, "line one\nrest") == 13
        assert websocket.recv_line(b) == b"line one\n"
        assert websocket.recv(b, 100) == b"rest"
        assert websocket.send(a, b"\x00\x01") == 2
        assert websocket.recv(b, 1) == b"\x00"
        a.close()
        assert websocket.recv(b, 10) == b"\x01"
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            websocket.recv(b, 10)
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            websocket.recv(None, 10)
    finally:
        a.close()
        b.close()


def test_socket_helper_recv_timeout():
    a, b = socket.socketpair()
    try:
        b.settimeout(0.1)
        with pytest.raises(websocket.WebSocketTimeoutException):
            websocket.recv(b, 10)
    finally:
        a.close()
        b.close()


# -- WebSocket accessors -----------------------------------------------------------------

def test_unconnected_websocket_accessors():
    ws = websocket.WebSocket()
    assert ws.connected is False
    assert ws.sock is None
    assert ws.getsubprotocol() is None and ws.subprotocol is None
    assert ws.getstatus() is None and ws.status is None
    assert ws.getheaders() is None and ws.headers is None
    assert ws.handshake_response is None
    assert ws.close_frame is None
    assert ws.is_ssl() is False
    with pytest.raises(websocket.WebSocketException):
        ws.fileno()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.send("x")


def test_connected_accessors(echo_server):
    ws = websocket.create_connection(echo_server.url, timeout=7)
    try:
        assert ws.connected is True
        assert ws.getstatus() == 101 and ws.status == 101
        h = ws.getheaders()
        assert h["upgrade"] == "websocket"
        assert "sec-websocket-accept" in h
        assert ws.headers == h
        assert ws.handshake_response.status == 101
        assert ws.handshake_response.headers == h
        assert ws.handshake_response.subprotocol is None
        assert ws.sock.getpeername() == ("127.0.0.1", echo_server.port)
        assert ws.sock.getsockname()[0] == "127.0.0.1"
        assert ws.sock.gettimeout() == 7
        assert ws.sock.type == socket.SOCK_STREAM
        fd = ws.fileno()
        assert isinstance(fd, int) and fd > 2
        assert fd == ws.sock.fileno()
        assert ws.sock_opt.timeout == 7
    finally:
        ws.close()


def test_sock_is_a_real_socket(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        if hasattr(websocket, "_native"):
            # Documented difference: the engine owns the socket; ws.sock is a view with the
            # socket calls downstream code uses (select, addresses, options, timeout).
            assert ws.sock.type == socket.SOCK_STREAM
            assert ws.sock.getpeername()[0] == "127.0.0.1"
        else:
            assert isinstance(ws.sock, socket.socket)
        assert ws.sock.family == socket.AF_INET
    finally:
        ws.close()


def test_select_readiness(scripted):
    """select() on ws.sock says readable exactly when a recv would not block."""

    def script(conn):
        conn.accept()
        conn.recv_frame()  # "go"
        conn.send_raw(make_frame(OP_TEXT, "a") + make_frame(OP_TEXT, "b") + make_frame(OP_BINARY, b"c" * 70000))
        conn.recv_frame()  # "ping me"
        conn.send_frame(OP_PING, b"k8s")
        return echo_loop(conn)

    srv = scripted(script)
    ws = websocket.create_connection(srv.url)
    try:
        assert select.select([ws.sock], [], [], 0.2)[0] == []
        ws.send("go")
        assert select.select([ws.sock], [], [], 5)[0] == [ws.sock]
        assert ws.recv() == "a"
        # "b" came in the same write: it must still be visible as readable
        assert select.select([ws.sock], [], [], 0)[0] == [ws.sock]
        assert ws.recv() == "b"
        assert select.select([ws.sock], [], [], 5)[0] == [ws.sock]
        assert ws.recv() == b"c" * 70000
        assert select.select([ws.sock], [], [], 0.2)[0] == []
        ws.send("ping me")
        assert select.select([ws.sock], [], [], 5)[0] == [ws.sock]
        assert ws.recv_data_frame(True)[0] == ABNF.OPCODE_PING
        assert select.select([ws.sock], [], [], 0.2)[0] == []
        # the ping was answered
        ws.send("sync")
        assert ws.recv() == "sync"
        assert [(f.opcode, f.payload) for f in srv.conn(0).frames[2:4]] == [(OP_PONG, b"k8s"), (OP_TEXT, b"sync")]
    finally:
        ws.close()


def test_select_by_fileno(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        assert select.select([ws.fileno()], [], [], 0.1)[0] == []
        ws.send("x")
        assert select.select([ws.fileno()], [], [], 5)[0] == [ws.fileno()]
        assert ws.recv() == "x"
        assert select.select([], [ws.sock], [], 1)[1] == [ws.sock]
    finally:
        ws.close()


# -- subclasses through class_= ----------------------------------------------------------

class RecordingWS(websocket.WebSocket):
    def __init__(self, *args, **kwargs):
        self.init_kwargs = dict(kwargs)
        super().__init__(*args, **kwargs)
        self.frames_in = []
        self.frames_out = []
        self.recv_data_calls = 0

    def recv_frame(self):
        f = super().recv_frame()
        self.frames_in.append((f.opcode, f.data))
        return f

    def send_frame(self, frame):
        self.frames_out.append((frame.opcode, frame.data))
        return super().send_frame(frame)

    def recv_data(self, control_frame=False):
        self.recv_data_calls += 1
        return super().recv_data(control_frame)


def test_class_option_subclass_is_used(scripted):
    srv = scripted(prelude_then_echo(make_frame(OP_PING, b"auto")))
    ws = websocket.create_connection(srv.url, class_=RecordingWS, header=["X-Y: z"], my_flag=True)
    try:
        assert type(ws) is RecordingWS
        for key in ("sockopt", "sslopt", "fire_cont_frame", "enable_multithread", "skip_utf8_validation"):
            assert key in ws.init_kwargs
        assert ws.init_kwargs["header"] == ["X-Y: z"]
        assert ws.init_kwargs["my_flag"] is True
        n = ws.send("hello")
        assert n == 11
        assert ws.recv() == "hello"
        # recv went through recv_data and recv_frame; the auto-pong through send_frame
        assert ws.recv_data_calls == 1
        assert ws.frames_in == [(OP_PING, b"auto"), (OP_TEXT, b"hello")]
        assert (OP_PONG, b"auto") in ws.frames_out
        ws.ping("p")
        ws.send_binary(b"b")
        assert ws.recv() == b"b"
        assert ws.frames_out[-2:] == [(OP_PING, b"p"), (OP_BINARY, b"b")]
    finally:
        ws.close()
    assert ws.frames_out[-1][0] == ABNF.OPCODE_CLOSE


class RewritingWS(websocket.WebSocket):
    """Overrides that change data must be honoured, not bypassed."""

    def recv_frame(self):
        f = super().recv_frame()
        if f.opcode == ABNF.OPCODE_TEXT:
            f.data = f.data.upper()
        return f

    def send_frame(self, frame):
        if frame.opcode == ABNF.OPCODE_TEXT:
            frame.data = frame.data + b"!"
        return super().send_frame(frame)


def test_class_option_overrides_change_data(echo_url):
    ws = websocket.create_connection(echo_url, class_=RewritingWS)
    try:
        ws.send("quiet")
        assert ws.recv() == "QUIET!"
    finally:
        ws.close()


class DataOverrideWS(websocket.WebSocket):
    def recv_data(self, control_frame=False):
        op, data = super().recv_data(control_frame)
        return op, data[::-1]


def test_recv_data_override_used_by_recv(echo_url):
    ws = websocket.create_connection(echo_url, class_=DataOverrideWS)
    try:
        ws.send("abc")
        assert ws.recv() == "cba"
    finally:
        ws.close()


def test_lock_attributes(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        with ws.lock:
            pass
        with ws.readlock:
            pass
        assert ws.get_mask_key is None
        assert ws.frame_buffer is not None
        assert ws.cont_frame is not None
    finally:
        ws.close()
