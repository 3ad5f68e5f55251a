"""enableTrace output and logging (REFERENCE.md 1.11, 5.13): users and tests grep for these
exact lines, on stderr by default, through the "websocket" logger."""

import logging

import pytest

import websocket

pytestmark = pytest.mark.timeout(30)

ZERO_MASK = {"get_mask_key": lambda n: b"\x00" * n}


@pytest.fixture
def trace_off():
    yield
    websocket.enableTrace(False)


def test_enable_trace_stderr_format(echo_server, capsys, trace_off):
    websocket.enableTrace(True)
    assert websocket.isEnabledForTrace()
    ws = websocket.create_connection(echo_server.url + "/?trace=1", **ZERO_MASK)
    ws.send("hello")
    assert ws.recv() == "hello"
    ws.close()
    websocket.enableTrace(False)
    assert not websocket.isEnabledForTrace()
    err = capsys.readouterr().err
    lines = err.splitlines()

    def at(line):
        assert line in lines, f"{line!r} not in trace output:\n{err}"
        return lines.index(line)

    req = at("--- request header ---")
    assert lines[req + 1] == "GET /?trace=1 HTTP/1.1"
    assert lines[req + 2] == "Upgrade: websocket"
    assert lines[req + 3] == f"Host: 127.0.0.1:{echo_server.port}"
    end_req = lines.index("-----------------------", req)
    assert lines[end_req - 2 : end_req] == ["", ""]  # the request ends with two blank lines
    resp = at("--- response header ---")
    assert lines[resp + 1] == "HTTP/1.1 101 Switching Protocols"
    assert any(ln.lower() == "upgrade: websocket" for ln in lines[resp:])
    end_resp = lines.index("-----------------------", resp)
    sent_raw = at(r"++Sent raw: b'\x81\x85\x00\x00\x00\x00hello'")
    sent_dec = at("++Sent decoded: fin=1 opcode=1 data=b'hello'")
    rcv_raw = at(r"++Rcv raw: b'\x81\x05hello'")
    rcv_dec = at("++Rcv decoded: fin=1 opcode=1 data=b'hello'")
    assert req < end_req < resp < end_resp < sent_raw < sent_dec < rcv_raw < rcv_dec
    # the close frame sent by close()
    at(r"++Sent decoded: fin=1 opcode=8 data=b'\x03\xe8'")


def test_trace_binary_and_ping(echo_url, capsys, trace_off):
    ws = websocket.create_connection(echo_url, **ZERO_MASK)
    websocket.enableTrace(True)
    ws.send_binary(b"\x01\x02")
    assert ws.recv() == b"\x01\x02"
    ws.ping("p")
    assert ws.recv_data(control_frame=True) == (websocket.ABNF.OPCODE_PONG, b"p")
    websocket.enableTrace(False)
    ws.close()
    lines = capsys.readouterr().err.splitlines()
    assert r"++Sent raw: b'\x82\x82\x00\x00\x00\x00\x01\x02'" in lines
    assert r"++Sent decoded: fin=1 opcode=2 data=b'\x01\x02'" in lines
    assert r"++Rcv decoded: fin=1 opcode=2 data=b'\x01\x02'" in lines
    assert "++Sent decoded: fin=1 opcode=9 data=b'p'" in lines
    assert "++Rcv decoded: fin=1 opcode=10 data=b'p'" in lines


def test_trace_off_is_silent(echo_url, capsys, trace_off):
    websocket.enableTrace(True)
    websocket.enableTrace(False)
    ws = websocket.create_connection(echo_url)
    ws.send("quiet")
    assert ws.recv() == "quiet"
    ws.close()
    err = capsys.readouterr().err
    assert "++Sent" not in err and "--- request header ---" not in err


def test_trace_custom_handler(echo_url, trace_off):
    records = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record)

    h = ListHandler()
    websocket.enableTrace(True, handler=h)
    try:
        assert h in logging.getLogger("websocket").handlers
        ws = websocket.create_connection(echo_url)
        ws.send("x")
        assert ws.recv() == "x"
        ws.close()
    finally:
        websocket.enableTrace(False)
    assert h not in logging.getLogger("websocket").handlers
    msgs = [r.getMessage() for r in records]
    assert "--- request header ---" in msgs
    assert any(m.startswith("++Sent raw: ") for m in msgs)
    assert any(m == "++Rcv decoded: fin=1 opcode=1 data=b'x'" for m in msgs)
    assert all(r.name == "websocket" for r in records)
    assert all(r.levelno == logging.DEBUG for r in records)


def test_trace_level_info_hides_frames(echo_url, trace_off):
    records = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record)

    websocket.enableTrace(True, handler=ListHandler(), level="INFO")
    try:
        ws = websocket.create_connection(echo_url)
        ws.send("x")
        ws.recv()
        ws.close()
    finally:
        websocket.enableTrace(False)
    assert not [r for r in records if r.getMessage().startswith("++")]


def test_unusual_close_status_logged_as_error(echo_url, caplog):
    caplog.set_level(logging.DEBUG, logger="websocket")
    ws = websocket.create_connection(echo_url)
    ws.close(status=1001)
    errors = [r for r in caplog.records if r.name == "websocket" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["close status: 1001"]


def test_normal_close_status_not_logged_as_error(echo_url, caplog):
    caplog.set_level(logging.DEBUG, logger="websocket")
    for status in (1000, 4000):
        ws = websocket.create_connection(echo_url)
        ws.close(status=status)
    assert not [r for r in caplog.records if r.name == "websocket" and r.levelno >= logging.ERROR]


def test_logger_has_null_handler():
    lg = logging.getLogger("websocket")
    assert any(isinstance(h, logging.NullHandler) for h in lg.handlers)
