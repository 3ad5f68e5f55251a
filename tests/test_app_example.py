"""The WebSocketApp example of websocket-client's documentation, run unchanged in a child
process against a local echo server on port 4040 that closes after a few echoes."""

import os
import subprocess
import sys
import time

import pytest

import websocket
from servers import stop_child

HERE = os.path.dirname(os.path.abspath(__file__))
STRICT = hasattr(websocket, "_native")

pytestmark = pytest.mark.timeout(60)

EXAMPLE = '''\
import websocket
def on_message(ws, message):
    print("received message as {}".format(message))
    ws.send("hello again")
    print("sending 'hello again'")
def on_error(ws, error):
    print("received error as {}".format(error))
def on_close(ws):
    print("Connection closed")
def on_open(ws):
    ws.send("hello there")
    print("sent message on open")
if __name__ == "__main__":
    websocket.enableTrace(True)
    ws = websocket.WebSocketApp("ws://localhost:4040/", on_message = on_message, on_error = on_error, on_close = on_close)
    ws.on_open = on_open
    ws.run_forever()
'''

ECHOES = 5


@pytest.fixture
def server_4040():
    deadline = time.monotonic() + 15
    while True:
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "app_servers.py"), "example", "4040", str(ECHOES)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        line = proc.stdout.readline().strip()
        if line == "ready":
            break
        proc.wait()
        if time.monotonic() > deadline:
            pytest.skip(f"port 4040 is busy: {line}")
        time.sleep(0.5)
    yield proc
    stop_child(proc)


def test_documented_example(server_4040, child_env, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(EXAMPLE)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=30, env=child_env, cwd=str(tmp_path))
    lines = res.stdout.splitlines()
    expected = ["sent message on open", "received message as hello there", "sending 'hello again'"]
    expected += ["received message as hello again", "sending 'hello again'"] * (ECHOES - 1)
    assert lines[: len(expected)] == expected, res.stdout
    # the handshake, traced on stderr
    err = res.stderr
    assert "--- request header ---" in err
    assert "GET / HTTP/1.1" in err
    assert "Host: localhost:4040" in err
    assert "Upgrade: websocket" in err
    assert "--- response header ---" in err
    assert "HTTP/1.1 101 Switching Protocols" in err
    assert "++Sent decoded: fin=1 opcode=1 data=b'hello there'" in err
    assert res.returncode == 0
    if STRICT:
        # websocket-client 1.9.2 calls on_error for the normal close and then fails to call
        # the one-parameter on_close
        assert lines[len(expected):] == ["Connection closed"], res.stdout
