"""``wsdump`` (and ``python -m websocket``), driven the way a person uses it: in a
pseudo-terminal, against the local echo server (servers.EchoServer), typing lines, reading
the screen, leaving with Ctrl-D or Ctrl-C. The ``-r/--raw`` mode is driven through pipes.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import zlib
from typing import Dict, List, Optional

import pytest

import websocket

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX"),
    # websocket-client has no ``python -m websocket`` and leaves differently (docs/wsdump.md).
    pytest.mark.skipif(not hasattr(websocket, "_native"), reason="websocket-rust's wsdump"),
]

# Makes the pty the controlling terminal of the child (so Ctrl-C becomes SIGINT), then
# runs the command given after it.
_LAUNCHER = (
    "import fcntl, os, sys, termios\n"
    "fcntl.ioctl(0, termios.TIOCSCTTY, 0)\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A child process on a pseudo-terminal: ``type`` keys, ``expect`` text on screen."""

    def __init__(self, argv: List[str], env: Dict[str, str]) -> None:
        import pty

        master, slave = pty.openpty()
        env = dict(env, TERM="dumb", COLUMNS="200", LINES="50")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER] + argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.raw = b""

    @property
    def screen(self) -> str:
        """Everything printed so far, colours and cursor moves removed."""
        return _ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def _pump(self, timeout: float) -> bool:
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child is gone and the pty is drained
            return False
        self.raw += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(min(left, 0.1)):
                if text in self.screen:
                    return
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen}")

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode("utf-8"))

    def prompt(self, timeout: float = 10.0) -> None:
        """Waits until readline waits for a key (the terminal leaves canonical mode).

        Keys typed ahead, before readline takes the terminal, go through the kernel's line
        editing instead: a Ctrl-D there turns into a NUL byte for readline, and a Ctrl-C
        that lands while readline sets up is only seen at the next key. A person waits for
        the prompt; so do the tests."""
        import termios

        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                raise AssertionError(f"no prompt; screen:\n{self.screen}")
            self._pump(0.01)

    def exited(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.05)
        return self.proc.poll() is not None

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"wsdump did not exit; screen:\n{self.screen}")
            self._pump(0.05)
        while select.select([self.fd], [], [], 0.05)[0] and self._pump(0):
            pass
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


@pytest.fixture
def terminal(child_env):
    started: List[Terminal] = []

    def spawn(*args: str, script: Optional[List[str]] = None) -> Terminal:
        argv = script if script is not None else [sys.executable, "-m", "websocket"]
        t = Terminal(argv + list(args), child_env)
        started.append(t)
        return t

    yield spawn
    for t in started:
        t.close()


def run_raw(child_env, *args: str, stdin: str = "", timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "websocket", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env,
        timeout=timeout,
    )


# -- interactive, in a terminal ----------------------------------------------------------

def test_type_a_line_see_the_echo_leave_with_ctrl_d(terminal, echo_server):
    t = terminal(echo_server.url + "/wsdump-ctrl-d")
    t.expect("Press Ctrl+C")
    t.expect("> ")
    t.prompt()
    t.type("hello wsdump\n")
    t.expect("< hello wsdump")
    t.prompt()
    t.type("second line, ünïcode\n")
    t.expect("< second line, ünïcode")
    t.prompt()
    t.type("\x04")  # Ctrl-D
    assert t.wait() == 0
    # Leaving closes the connection properly (code 1000), not by dropping the socket.
    assert echo_server.wait_close("/wsdump-ctrl-d")[0] == 1000


def test_ctrl_c_leaves(terminal, echo_server):
    t = terminal(echo_server.url + "/wsdump-ctrl-c")
    t.expect("> ")
    t.prompt()
    t.type("ping me\n")
    t.expect("< ping me")
    t.prompt()
    # Ctrl-C: SIGINT from the terminal. One that lands while readline installs its prompt
    # is only noticed at the next key (CPython's readline loop), so press it again then, as
    # a person would.
    for _ in range(3):
        t.type("\x03")
        if t.exited(timeout=2):
            break
    assert t.wait() == 0
    assert echo_server.wait_close("/wsdump-ctrl-c")[0] == 1000


def test_console_script(terminal, echo_server):
    script = shutil.which("wsdump", path=os.path.dirname(sys.executable))
    assert script is not None, "the wsdump console script is not installed next to this Python"
    t = terminal(echo_server.url + "/", script=[script])
    t.expect("> ")
    t.prompt()
    t.type("via the console script\n")
    t.expect("< via the console script")
    t.prompt()
    t.type("\x04")
    assert t.wait() == 0


def test_server_close_ends_the_session(terminal, echo_server):
    t = terminal(echo_server.url + "/close?code=1000&reason=bye", "-v")
    t.expect("close: 1000 bye")
    assert t.wait() == 0


def test_verbose_shows_opcodes_and_pings(terminal, echo_server):
    t = terminal(echo_server.url + "/ping?data=xx", "-v")
    t.expect("< ping: b'xx'")
    t.prompt()
    t.type("abc\n")
    t.expect("< text: abc")
    t.prompt()
    t.type("\x04")
    assert t.wait() == 0


def test_text_option_and_timings(terminal, echo_server):
    t = terminal(echo_server.url + "/", "-t", "first message", "--timings")
    t.expect("first message")
    assert re.search(r"< \d+\.\d+(e-\d+)?: first message", t.screen), t.screen
    t.prompt()
    t.type("\x04")
    assert t.wait() == 0


def test_verbose_2_traces_the_handshake(terminal, echo_server):
    t = terminal(echo_server.url + "/", "-vv")
    t.expect("--- request header ---")
    t.expect("Sec-WebSocket-Version: 13")
    t.expect("> ")
    t.prompt()
    t.type("traced\n")
    t.expect("< text: traced")
    t.prompt()
    t.type("\x04")
    assert t.wait() == 0


# -- raw mode, through pipes ---------------------------------------------------------------

def test_raw_mode_pipes_lines_through(child_env, echo_server):
    p = run_raw(
        child_env, echo_server.url + "/", "-r", "-t", "first", "--eof-wait", "1",
        stdin="one\ntwo\n",
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout == "first\none\ntwo\n"
    assert p.stderr == ""


def test_raw_mode_verbose_and_eof_wait_underscore(child_env, echo_server):
    p = run_raw(child_env, echo_server.url + "/push?n=2", "-r", "-v", "1", "--eof_wait", "0.5", stdin="a\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["text: msg-0", "text: msg-1", "text: a"]


def test_raw_mode_ends_when_the_server_closes(child_env, echo_server):
    start = time.monotonic()
    p = run_raw(child_env, echo_server.url + "/close?code=1001&reason=away", "-r", "-v", "--eof-wait", "30")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "close: 1001 away\n"
    assert time.monotonic() - start < 15


def test_headers_subprotocols_and_origin_are_sent(child_env, echo_server):
    p = run_raw(
        child_env, echo_server.url + "/headers", "-r", "--eof-wait", "1",
        "--headers", "X-One: 1, X-Two: two", "-o", "http://origin.example", "-s", "chat", "superchat",
    )
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout.splitlines()[0])
    headers = {k.lower(): v for k, v in info["headers"]}
    assert headers["x-one"] == "1"
    assert headers["x-two"] == "two"
    assert headers["origin"] == "http://origin.example"
    assert headers["sec-websocket-protocol"] == "chat,superchat"
    assert info["subprotocol"] == "chat"


def test_nocert_accepts_an_unknown_certificate(child_env, tls_server):
    p = run_raw(child_env, tls_server.url + "/", "-r", "-n", "-t", "over tls", "--eof-wait", "1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "over tls\n"
    refused = run_raw(child_env, tls_server.url + "/", "-r", "-t", "over tls")
    assert refused.returncode != 0
    assert "certificate" in refused.stderr.lower() or "ssl" in refused.stderr.lower()


def test_connection_refused_is_one_line_and_exit_1(child_env, closed_port):
    p = run_raw(child_env, f"ws://127.0.0.1:{closed_port}/", "-r")
    assert p.returncode == 1
    assert p.stdout == ""
    assert "cannot connect" in p.stderr and "Traceback" not in p.stderr


def test_bad_arguments_exit_2(child_env):
    p = run_raw(child_env)
    assert p.returncode == 2
    assert "ws_url" in p.stderr


# -- the pieces ------------------------------------------------------------------------------

def test_verbose_levels():
    from websocket._wsdump import parse_args

    assert parse_args(["ws://h/"]).verbose == 0
    assert parse_args(["ws://h/", "-v"]).verbose == 1
    assert parse_args(["ws://h/", "-v", "2"]).verbose == 2
    assert parse_args(["ws://h/", "-vv"]).verbose == 2
    assert parse_args(["ws://h/", "--eof-wait", "2"]).eof_wait == 2


def test_connect_options():
    from websocket._wsdump import connect_options, parse_args

    opts = connect_options(parse_args(["ws://h/", "-p", "http://127.0.0.1:3128"]))
    assert opts["http_proxy_host"] == "127.0.0.1"
    assert opts["http_proxy_port"] == 3128
    assert "proxy_type" not in opts and "http_proxy_auth" not in opts
    assert opts["sslopt"] == {}
    opts = connect_options(parse_args(["ws://h/", "-p", "socks5h://us%40r:p%3Aw@proxy:1080", "-n"]))
    assert (opts["http_proxy_host"], opts["http_proxy_port"]) == ("proxy", 1080)
    assert opts["proxy_type"] == "socks5h"
    assert opts["http_proxy_auth"] == ("us@r", "p:w")
    assert opts["sslopt"]["check_hostname"] is False
    assert int(opts["sslopt"]["cert_reqs"]) == 0


def test_describe_decodes_compressed_binary():
    from websocket._wsdump import describe

    ABNF = websocket.ABNF
    assert describe(ABNF.OPCODE_TEXT, "plain") == "plain"
    assert describe(ABNF.OPCODE_TEXT, "é".encode()) == "é"
    assert describe(ABNF.OPCODE_BINARY, gzip.compress("zipped ✓".encode())) == "[gzip] zipped ✓"
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = deflater.compress(b"deflated") + deflater.flush()
    assert describe(ABNF.OPCODE_BINARY, raw_deflate) == "[zlib] deflated"
    assert describe(ABNF.OPCODE_BINARY, b"\x00\xff\x01") == repr(b"\x00\xff\x01")
    assert describe(ABNF.OPCODE_PING, b"") == "b''"


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_proxy_url_with_credentials(child_env, echo_server, kind):
    import proxy_servers

    proxy = proxy_servers.ProxyServer(kind, auth=("user", "p@ss"))
    try:
        url = proxy.url.replace("://", "://user:p%40ss@", 1)
        p = run_raw(child_env, echo_server.url + "/", "-r", "-p", url, "-t", "via proxy", "--eof-wait", "1")
        assert p.returncode == 0, p.stderr
        assert p.stdout == "via proxy\n"
        assert any(e.get("port") == echo_server.port for e in proxy.log), proxy.log
        assert any(e.get("auth") == ("user", "p@ss") for e in proxy.log), proxy.log
    finally:
        proxy.stop()
