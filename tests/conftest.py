"""Fixtures shared by the core tests: real servers on 127.0.0.1 (see servers.py).

The suite must run unchanged against websocket-client 1.9.2 (the reference) and against this
project; which ``websocket`` is imported is decided by the environment, never by this file.
Tests of the few deliberate differences check ``STRICT = hasattr(websocket, "_native")``; the
differences are listed in the docstrings of test_core_frames.py and test_core_leaks.py.

On this project every test runs once per driver (``ws_driver``: "native", then "python", the
Python-socket driver), the driver set as the default for the test's connections; a test
about one driver's waiting or ownership says so with ``@pytest.mark.drivers("native")``; a
test whose connections are all made in child processes (test_green.py) is marked
``own_driver`` and runs once.
``WEBSOCKET_TEST_DRIVERS=native`` (a comma-separated list) narrows a run.

Needs: pytest, pytest-timeout, websockets>=15, trustme.
"""

import os
import signal
import ssl
import subprocess
import sys
import time

import pytest

import websocket
import hostile_servers
from servers import EchoServer, ScriptedServer, stop_child

HERE = os.path.dirname(os.path.abspath(__file__))

_ENV_TO_CLEAR = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "WEBSOCKET_CLIENT_CA_BUNDLE",
    "SSLKEYLOGFILE",
)


def pytest_report_header(config):
    return (
        f"websocket under test: {os.path.dirname(websocket.__file__)} "
        f"(version {getattr(websocket, '__version__', '?')}, "
        f"STRICT={hasattr(websocket, '_native')})"
    )


STRICT = hasattr(websocket, "_native")
DRIVERS = [d for d in os.environ.get("WEBSOCKET_TEST_DRIVERS", "native,python").split(",") if d] if STRICT else []


def pytest_generate_tests(metafunc):
    if "ws_driver" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("own_driver"):
        # The test's connections are made in child processes that choose their driver
        # themselves: it runs once, the default driver left alone.
        return
    if not STRICT:
        metafunc.parametrize("ws_driver", [None], indirect=True, ids=["reference"])
        return
    marker = metafunc.definition.get_closest_marker("drivers")
    wanted = [d for d in DRIVERS if marker is None or d in marker.args]
    params = wanted or [pytest.param(None, marks=pytest.mark.skip(reason=f"runs on {marker.args} only"))]
    metafunc.parametrize("ws_driver", params, indirect=True, ids=lambda d: d or "none")


@pytest.fixture(autouse=True)
def ws_driver(request):
    """The driver of this run of the test (None: the reference, which has one)."""
    name = getattr(request, "param", None)
    if name is None:
        yield None
        return
    websocket.setdefaultdriver(name)
    try:
        yield name
    finally:
        websocket.setdefaultdriver("auto")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No proxy or CA variables from the outer environment may change what a test sees."""
    for k in _ENV_TO_CLEAR:
        monkeypatch.delenv(k, raising=False)
    yield
    websocket.setdefaulttimeout(None)


@pytest.fixture
def sigint_child(child_env):
    """``run(code, *args, ready=line)``: starts ``python -c code *args``, waits for its first
    output line ``ready``, lets it block 0.5 s more (it must still run), sends it SIGINT and
    waits for it to end; returns ``(returncode, stdout, stderr, seconds from the signal to
    the end)``."""

    def run(code, *args, ready):
        p = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
        )
        try:
            assert p.stdout.readline().strip() == ready
            time.sleep(0.5)  # well inside the blocking call
            assert p.poll() is None
            t0 = time.monotonic()
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        return p.returncode, out, err, elapsed

    return run


@pytest.fixture(scope="session")
def echo_server():
    srv = EchoServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def echo_url(echo_server):
    return echo_server.url


@pytest.fixture
def scripted():
    """Factory: ``srv = scripted(script)`` starts a ScriptedServer; all are stopped at the end."""
    servers = []

    def make(script, **kw):
        srv = ScriptedServer(script, **kw)
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def hostile():
    """``hostile(behaviour, **kw)`` starts a hostile_servers.HostileServer running
    ``behaviour(peer)`` per connection; stopped after the test, which fails if a behaviour
    raised anything but the client going away."""
    servers = []

    def make(behaviour, **kw):
        srv = hostile_servers.HostileServer(behaviour, **kw)
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()
    for s in servers:
        assert not s.errors, s.errors


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 on which nothing listens."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- TLS ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tls_ca():
    import trustme  # requirements-test.txt: a missing one is an error, not a skip

    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(tls_ca, tmp_path_factory):
    """Path of a PEM file holding the test CA that signed the TLS server's certificate."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def tls_server(tls_ca):
    """wss:// echo server; its certificate is valid for 127.0.0.1 and localhost.
    ``tls_server.sni`` lists the server names the clients sent (SNI)."""
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    sni = []

    def on_sni(sslobj, name, context):
        sni.append(name)

    ctx.sni_callback = on_sni
    srv = EchoServer(ssl_context=ctx)
    srv.sni = sni
    yield srv
    srv.stop()


# -- a server in another process ---------------------------------------------------------

@pytest.fixture(scope="module")
def echo_server_proc():
    """Echo server in a child process, so its sockets and threads are not counted in ours."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "servers.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop_child(proc)


@pytest.fixture
def child_env():
    """Environment for child Python processes: they must import the same ``websocket``."""
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(websocket.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([pkg_parent, HERE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    for k in _ENV_TO_CLEAR:
        env.pop(k, None)
    return env
