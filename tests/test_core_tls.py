"""wss:// with a trustme test CA: sslopt keys, verification failures, SNI, is_ssl, and the
socket= bypass (REFERENCE.md 1.4)."""

import json
import select
import socket
import ssl
import time

import pytest

import websocket
from websocket import WebSocketException
from servers import echo_script

pytestmark = pytest.mark.timeout(30)


def wss(tls_server, host="127.0.0.1", path="/"):
    return f"wss://{host}:{tls_server.port}{path}"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_wss_with_ca_certs(tls_server, ca_file, host):
    ws = websocket.create_connection(wss(tls_server, host), sslopt={"ca_certs": ca_file})
    try:
        assert ws.is_ssl() is True
        ws.send("secure")
        assert ws.recv() == "secure"
        ws.send_binary(b"\x00" * 100_000)
        assert ws.recv() == b"\x00" * 100_000
    finally:
        ws.close()


def test_tls_sock_is_sslsocket(tls_server, ca_file):
    ws = websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file})
    try:
        if hasattr(websocket, "_native"):
            # Documented difference: TLS is rustls inside the engine, not an ssl.SSLSocket.
            assert ws.is_ssl()
            assert ws.sock.getpeername()[0] == "127.0.0.1"
            return
        assert isinstance(ws.sock, ssl.SSLSocket)
        assert ws.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert ws.sock.getpeercert()["subjectAltName"]
    finally:
        ws.close()


def test_wss_default_origin_and_host(tls_server, ca_file):
    ws = websocket.create_connection(wss(tls_server, "localhost", "/headers"), sslopt={"ca_certs": ca_file})
    try:
        headers = dict(json.loads(ws.recv())["headers"])
        assert headers["Host"] == f"localhost:{tls_server.port}"
        assert headers["Origin"] == f"https://localhost:{tls_server.port}"
    finally:
        ws.close()


def test_untrusted_certificate(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(wss(tls_server), timeout=5)


def test_untrusted_certificate_is_ssl_error(tls_server):
    with pytest.raises(ssl.SSLError) as ei:
        websocket.create_connection(wss(tls_server, "localhost"), timeout=5)
    assert not isinstance(ei.value, WebSocketException)


def test_cert_none_disables_verification(tls_server):
    ws = websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_NONE})
    try:
        assert ws.is_ssl()
        ws.send("unverified")
        assert ws.recv() == "unverified"
    finally:
        ws.close()


def test_cert_none_with_check_hostname_is_an_error(tls_server):
    with pytest.raises(WebSocketException):
        websocket.create_connection(
            wss(tls_server), sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": True}
        )


def test_hostname_mismatch(tls_server, ca_file):
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(
            wss(tls_server, "localhost"),
            sslopt={"ca_certs": ca_file, "server_hostname": "wrong.example"},
        )


def test_check_hostname_false(tls_server, ca_file):
    ws = websocket.create_connection(
        wss(tls_server, "localhost"),
        sslopt={"ca_certs": ca_file, "server_hostname": "wrong.example", "check_hostname": False},
    )
    try:
        ws.send("no hostname check")
        assert ws.recv() == "no hostname check"
    finally:
        ws.close()


def test_sni_is_url_host(tls_server, ca_file):
    before = len(tls_server.sni)
    ws = websocket.create_connection(wss(tls_server, "localhost"), sslopt={"ca_certs": ca_file})
    ws.close()
    assert tls_server.sni[before:] == ["localhost"]


def test_server_hostname_sets_sni(tls_server, ca_file):
    before = len(tls_server.sni)
    ws = websocket.create_connection(
        wss(tls_server),
        sslopt={"ca_certs": ca_file, "server_hostname": "localhost"},
    )
    try:
        assert ws.is_ssl()
    finally:
        ws.close()
    assert tls_server.sni[before:] == ["localhost"]


def test_ca_bundle_environment_variable(tls_server, ca_file, monkeypatch):
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", ca_file)
    ws = websocket.create_connection(wss(tls_server))
    try:
        ws.send("env ca")
        assert ws.recv() == "env ca"
    finally:
        ws.close()


def test_ssl_context_option(tls_server, ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    ws = websocket.create_connection(wss(tls_server, "localhost"), sslopt={"context": ctx})
    try:
        ws.send("ctx")
        assert ws.recv() == "ctx"
    finally:
        ws.close()


def test_bad_ca_file_is_websocket_exception(tls_server, tmp_path):
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(WebSocketException):
        websocket.create_connection(wss(tls_server), sslopt={"ca_certs": missing})


def test_socket_option_bypasses_tls(scripted):
    """socket= is used as is even for wss://: no TLS, Origin still https."""
    srv = scripted(echo_script)
    s = socket.create_connection(("127.0.0.1", srv.port))
    ws = websocket.create_connection("wss://localhost/", socket=s)
    try:
        assert ws.is_ssl() is False
        req = srv.conn(0).request.decode()
        assert "Origin: https://localhost\r\n" in req
        assert "Host: localhost\r\n" in req
        ws.send("plain")
        assert ws.recv() == "plain"
    finally:
        ws.close()


def test_is_ssl_false_for_ws(echo_url):
    ws = websocket.create_connection(echo_url)
    try:
        assert ws.is_ssl() is False
    finally:
        ws.close()


def test_tls_timeout_and_usable(tls_server, ca_file):
    ws = websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file}, timeout=0.3)
    try:
        with pytest.raises(websocket.WebSocketTimeoutException):
            ws.recv()
        ws.send("after")
        assert ws.recv() == "after"
    finally:
        ws.close()


def test_tls_select_readiness_with_pending(tls_server, ca_file):
    """Kubernetes-client style loop: select() on ws.sock, plus sock.pending() for bytes already
    decrypted, tells truthfully whether a recv would block."""
    ws = websocket.create_connection(wss(tls_server, path="/push?n=3"), sslopt={"ca_certs": ca_file})
    try:
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            if ws.sock.pending() or select.select([ws.sock], [], [], 0.5)[0]:
                got.append(ws.recv())
        assert got == ["msg-0", "msg-1", "msg-2"]
        r = select.select([ws.sock], [], [], 0.3)[0]
        assert not r and ws.sock.pending() == 0
    finally:
        ws.close()


def test_wss_close(tls_server, ca_file):
    path = "/?tls-close"
    ws = websocket.create_connection(wss(tls_server, path=path), sslopt={"ca_certs": ca_file})
    ws.close(1001, "tls bye")
    assert tls_server.wait_close(path) == (1001, "tls bye")
    assert ws.sock is None
