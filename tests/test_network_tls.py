"""sslopt in full (REFERENCE.md 1.4): each cert_reqs value, client certificates (plain,
cert_chain, encrypted keys), CA directories, TLS versions, SSLKEYLOGFILE, ssl.SSLContext
translation, certificate errors with their reasons, and an abrupt TLS close during recv
and send."""

import datetime
import os
import shutil
import socket
import ssl
import threading
import time

import pytest

import websocket
from websocket import WebSocketConnectionClosedException, WebSocketException
from servers import EchoServer, accept_key, echo_once

pytestmark = pytest.mark.timeout(30)

native_only = pytest.mark.skipif(not hasattr(websocket, "_native"), reason="websocket-rust extension")


def wss(server, host="localhost", path="/"):
    return f"wss://{host}:{server.port}{path}"


@pytest.fixture(scope="module")
def server_factory(tls_ca):
    """``make(**context_settings)`` starts a wss echo server whose certificate (from the
    test CA, for localhost/127.0.0.1 unless ``cert`` is given) and context are tuned."""
    started = []

    def make(cert=None, client_ca=None, minimum=None, maximum=None):
        cert = cert or tls_ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        if client_ca is not None:
            client_ca.configure_trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
        srv = EchoServer(ssl_context=ctx)
        started.append(srv)
        return srv

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def other_ca():
    import trustme

    return trustme.CA()


# ---- cert_reqs -------------------------------------------------------------------------

def test_cert_required_trusted(tls_server, ca_file):
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": ca_file}))


def test_cert_required_untrusted(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_REQUIRED}, timeout=5)


def test_cert_optional_verifies_like_required(tls_server, ca_file):
    """In client mode CERT_OPTIONAL means CERT_REQUIRED (Python's ssl docs)."""
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_OPTIONAL}, timeout=5)
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_OPTIONAL, "ca_certs": ca_file}))


def test_cert_none_accepts_anything(tls_server):
    """No chain check (the CA is unknown) and no hostname check."""
    sslopt = {"cert_reqs": ssl.CERT_NONE, "server_hostname": "wrong.example"}
    echo_once(websocket.create_connection(wss(tls_server), sslopt=sslopt))


def test_cert_none_ignores_a_bad_ca_file(tls_server, tmp_path):
    """As the reference: without verification no CA is loaded."""
    sslopt = {"cert_reqs": ssl.CERT_NONE, "ca_certs": str(tmp_path / "missing.pem")}
    echo_once(websocket.create_connection(wss(tls_server), sslopt=sslopt))


def test_cert_none_with_check_hostname_message(tls_server):
    with pytest.raises(WebSocketException, match="check_hostname cannot be enabled when cert_reqs is CERT_NONE"):
        websocket.create_connection(wss(tls_server), sslopt={"cert_reqs": ssl.CERT_NONE, "check_hostname": True})


# ---- certificate errors and their reasons ----------------------------------------------

def test_unknown_issuer_reason(tls_server):
    with pytest.raises(ssl.SSLCertVerificationError) as ei:
        websocket.create_connection(wss(tls_server), timeout=5)
    assert ei.value.verify_code == 20
    assert "unable to get local issuer certificate" in str(ei.value)
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)


def test_hostname_mismatch_reason(server_factory, tls_ca, ca_file):
    srv = server_factory(cert=tls_ca.issue_cert("other.example"))
    with pytest.raises(ssl.SSLCertVerificationError) as ei:
        websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file}, timeout=5)
    assert ei.value.verify_code == 62
    assert "Hostname mismatch" in str(ei.value) and "localhost" in str(ei.value)


def test_expired_reason(server_factory, tls_ca, ca_file):
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = tls_ca.issue_cert(
        "localhost", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    srv = server_factory(cert=cert)
    with pytest.raises(ssl.SSLCertVerificationError) as ei:
        websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file}, timeout=5)
    assert ei.value.verify_code == 10
    assert "certificate has expired" in str(ei.value)


# ---- CA locations ----------------------------------------------------------------------

# OpenSSL's capath only finds hashed names (c_rehash); the native driver reads every PEM file
@native_only
@pytest.mark.drivers("native")
def test_ca_cert_path_directory(tls_server, ca_file, tmp_path):
    d = tmp_path / "cas"
    d.mkdir()
    shutil.copy(ca_file, d / "test-ca.pem")
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"ca_cert_path": str(d)}))


@native_only
@pytest.mark.drivers("native")  # a capath directory, as above
def test_ca_bundle_directory_env(tls_server, ca_file, tmp_path, monkeypatch):
    d = tmp_path / "bundle"
    d.mkdir()
    shutil.copy(ca_file, d / "ca.pem")
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", str(d))
    echo_once(websocket.create_connection(wss(tls_server)))


# ---- client certificates ---------------------------------------------------------------

@pytest.fixture(scope="module")
def client_cert(tls_ca, tmp_path_factory):
    """A client certificate from the test CA: paths of its chain and key (PEM), and the
    key object for re-encoding."""
    d = tmp_path_factory.mktemp("client")
    leaf = tls_ca.issue_cert("client@example.test")
    chain = d / "client.pem"
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    key = d / "client.key"
    leaf.private_key_pem.write_to_path(str(key))
    both = d / "both.pem"
    both.write_bytes(chain.read_bytes() + key.read_bytes())
    return {"dir": d, "cert": str(chain), "key": str(key), "both": str(both), "leaf": leaf}


@pytest.fixture(scope="module")
def mtls_server(server_factory, tls_ca):
    return server_factory(client_ca=tls_ca)


def test_client_cert_required_and_given(mtls_server, ca_file, client_cert):
    sslopt = {"ca_certs": ca_file, "certfile": client_cert["cert"], "keyfile": client_cert["key"]}
    echo_once(websocket.create_connection(wss(mtls_server), sslopt=sslopt))


def test_client_cert_in_one_file(mtls_server, ca_file, client_cert):
    echo_once(websocket.create_connection(wss(mtls_server), sslopt={"ca_certs": ca_file, "certfile": client_cert["both"]}))


def test_client_cert_chain_option(mtls_server, ca_file, client_cert):
    sslopt = {"ca_certs": ca_file, "cert_chain": (client_cert["cert"], client_cert["key"], None)}
    echo_once(websocket.create_connection(wss(mtls_server), sslopt=sslopt))


def test_cert_chain_must_be_a_triple(mtls_server, ca_file, client_cert):
    with pytest.raises(ValueError, match="cert_chain must be a tuple/list"):
        websocket.create_connection(wss(mtls_server), sslopt={"ca_certs": ca_file, "cert_chain": (client_cert["cert"],)})


def test_client_cert_missing_is_rejected(mtls_server, ca_file):
    """The server rejects the handshake; with TLS 1.3 its alert comes after the client's
    side of the handshake, so it surfaces at the first read (an SSLError either way)."""
    with pytest.raises((ssl.SSLError, WebSocketConnectionClosedException)):
        ws = websocket.create_connection(wss(mtls_server), sslopt={"ca_certs": ca_file}, timeout=5)
        ws.send("x")
        ws.recv()


def test_missing_client_cert_file(mtls_server, ca_file, tmp_path):
    with pytest.raises(WebSocketException, match="SSL client certificate"):
        websocket.create_connection(wss(mtls_server), sslopt={"ca_certs": ca_file, "certfile": str(tmp_path / "none.pem")})


def _encrypted_key(leaf, fmt, password):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), None)
    formats = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
    }
    return key.private_bytes(
        serialization.Encoding.PEM, formats[fmt], serialization.BestAvailableEncryption(password)
    )


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
@pytest.mark.parametrize("password", ["s3cret", b"s3cret", lambda: "s3cret"], ids=["str", "bytes", "callable"])
def test_encrypted_client_key(mtls_server, ca_file, client_cert, tmp_path, fmt, password):
    keyfile = tmp_path / f"enc-{fmt}.key"
    keyfile.write_bytes(_encrypted_key(client_cert["leaf"], fmt, b"s3cret"))
    assert b"ENCRYPTED" in keyfile.read_bytes()
    sslopt = {"ca_certs": ca_file, "certfile": client_cert["cert"], "keyfile": str(keyfile), "password": password}
    echo_once(websocket.create_connection(wss(mtls_server), sslopt=sslopt))


@pytest.mark.parametrize("fmt", ["pkcs8", "traditional"])
def test_encrypted_client_key_wrong_or_no_password(mtls_server, ca_file, client_cert, tmp_path, fmt, ws_driver):
    keyfile = tmp_path / f"enc-{fmt}.key"
    keyfile.write_bytes(_encrypted_key(client_cert["leaf"], fmt, b"s3cret"))
    base = {"ca_certs": ca_file, "certfile": client_cert["cert"], "keyfile": str(keyfile)}
    with pytest.raises(WebSocketException, match="SSL client certificate"):
        websocket.create_connection(wss(mtls_server), sslopt=dict(base, password="wrong"))
    if ws_driver == "native":  # OpenSSL (the reference, the Python driver) would prompt on the terminal
        with pytest.raises(WebSocketException, match="no password"):
            websocket.create_connection(wss(mtls_server), sslopt=base)


def test_encrypted_key_in_cert_chain(mtls_server, ca_file, client_cert, tmp_path):
    keyfile = tmp_path / "enc.key"
    keyfile.write_bytes(_encrypted_key(client_cert["leaf"], "pkcs8", b"pw"))
    sslopt = {"ca_certs": ca_file, "cert_chain": (client_cert["cert"], str(keyfile), "pw")}
    echo_once(websocket.create_connection(wss(mtls_server), sslopt=sslopt))


# ---- versions and unsupported keys -----------------------------------------------------

def test_ssl_version_tls12_against_tls13_only_server(server_factory, ca_file):
    srv = server_factory(minimum=ssl.TLSVersion.TLSv1_3)
    with pytest.raises(ssl.SSLError):
        websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file, "ssl_version": ssl.PROTOCOL_TLSv1_2}, timeout=5)
    echo_once(websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file, "ssl_version": ssl.PROTOCOL_TLS_CLIENT}))


@native_only
@pytest.mark.drivers("native")  # a TLSVersion as ssl_version: the native driver's extension
def test_minimum_tls13_against_tls12_server(server_factory, ca_file):
    srv = server_factory(maximum=ssl.TLSVersion.TLSv1_2)
    echo_once(websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file, "ssl_version": ssl.PROTOCOL_TLSv1_2}))
    with pytest.raises(ssl.SSLError):
        websocket.create_connection(wss(srv), sslopt={"ca_certs": ca_file, "ssl_version": ssl.TLSVersion.TLSv1_3}, timeout=5)


@native_only
@pytest.mark.parametrize(
    "key,value",
    [("ciphers", "ECDHE+AESGCM"), ("ecdh_curve", "prime256v1"), ("ssl_version", getattr(ssl, "PROTOCOL_TLSv1", 3))],
)
def test_native_driver_names_the_keys_rustls_cannot_honour(tls_server, ca_file, key, value):
    with pytest.raises(WebSocketException, match=key):
        websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file, key: value}, driver="native")


@native_only
@pytest.mark.drivers("python")
@pytest.mark.parametrize("key,value", [("ciphers", "ECDHE+AESGCM:ECDHE+CHACHA20"), ("ecdh_curve", "prime256v1")])
def test_openssl_only_keys_are_honoured_by_the_python_driver(tls_server, ca_file, key, value):
    """"auto" gives such a connection to the Python-socket driver, where they mean what they
    mean to Python's ssl (as in websocket-client)."""
    ws = websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file, key: value}, driver="auto")
    assert ws.driver == "python" and isinstance(ws.sock, ssl.SSLSocket)
    echo_once(ws)
    with pytest.raises(WebSocketException, match="cipher"):
        websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file, "ciphers": "NO-SUCH-CIPHER"})


# ---- key log and SSLContext ------------------------------------------------------------

def _keylog_lines(path):
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip() and not line.startswith("#")]


def test_sslkeylogfile(tls_server, ca_file, tmp_path, monkeypatch):
    log = tmp_path / "keys.log"
    monkeypatch.setenv("SSLKEYLOGFILE", str(log))
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"ca_certs": ca_file}))
    labels = _keylog_lines(log)
    assert "CLIENT_TRAFFIC_SECRET_0" in labels or "CLIENT_RANDOM" in labels


def test_context_keylog_filename(tls_server, ca_file, tmp_path):
    log = tmp_path / "ctx-keys.log"
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.keylog_filename = str(log)
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"context": ctx}))
    assert _keylog_lines(log)


def test_context_cert_none(tls_server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"context": ctx}))


def test_context_without_the_ca_fails(tls_server):
    ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(wss(tls_server), sslopt={"context": ctx}, timeout=5)


def test_context_hostname_check_and_server_hostname(tls_server, ca_file):
    ctx = ssl.create_default_context(cafile=ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        websocket.create_connection(wss(tls_server), sslopt={"context": ctx, "server_hostname": "wrong.example"}, timeout=5)
    ctx.check_hostname = False
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"context": ctx, "server_hostname": "wrong.example"}))


def test_context_ignores_other_keys(tls_server, ca_file):
    """As the reference: with a context, cert_reqs in sslopt changes nothing."""
    ctx = ssl.create_default_context(cafile=ca_file)
    echo_once(websocket.create_connection(wss(tls_server), sslopt={"context": ctx, "cert_reqs": ssl.CERT_NONE, "ciphers": "x"}))


def test_context_maximum_version(server_factory, ca_file):
    srv = server_factory(minimum=ssl.TLSVersion.TLSv1_3)
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        websocket.create_connection(wss(srv), sslopt={"context": ctx}, timeout=5)


@native_only
@pytest.mark.drivers("native")  # Python's ssl uses the context as given (its own client cert)
def test_context_with_client_cert_in_sslopt(mtls_server, ca_file, client_cert):
    """Extension: a context's own client certificate cannot be read back, so certfile and
    keyfile given next to it are used."""
    ctx = ssl.create_default_context(cafile=ca_file)
    sslopt = {"context": ctx, "certfile": client_cert["cert"], "keyfile": client_cert["key"]}
    echo_once(websocket.create_connection(wss(mtls_server), sslopt=sslopt))


# ---- an abrupt TLS close ---------------------------------------------------------------

class RawTlsServer:
    """Accepts one TLS connection, completes the WebSocket handshake, then runs ``then``
    with the SSL socket (which may close the TCP connection without close_notify)."""

    def __init__(self, tls_ca, then):
        cert = tls_ca.issue_cert("localhost")
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.ctx)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.then = then
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        raw, _ = self.lsock.accept()
        try:
            s = self.ctx.wrap_socket(raw, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            key = [line.split(":", 1)[1].strip() for line in buf.decode().split("\r\n") if line.lower().startswith("sec-websocket-key")][0]
            s.sendall(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
                ).encode()
            )
            self.then(s)
        finally:
            self.done.set()

    def stop(self):
        self.lsock.close()
        self.done.wait(5)


def _close_without_notify(s, reset=False):
    time.sleep(0.2)
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # SSLSocket.close() sends no close_notify (only unwrap() does)


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_abrupt_tls_close_during_recv(tls_ca, ca_file, reset):
    srv = RawTlsServer(tls_ca, lambda s: _close_without_notify(s, reset))
    try:
        ws = websocket.create_connection(f"wss://localhost:{srv.port}/", sslopt={"ca_certs": ca_file}, timeout=5)
        with pytest.raises(WebSocketConnectionClosedException):
            ws.recv()
        ws.shutdown()
    finally:
        srv.stop()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_abrupt_tls_close_during_send(tls_ca, ca_file, reset):
    srv = RawTlsServer(tls_ca, lambda s: _close_without_notify(s, reset))
    try:
        ws = websocket.create_connection(f"wss://localhost:{srv.port}/", sslopt={"ca_certs": ca_file}, timeout=5)
        srv.done.wait(5)
        time.sleep(0.1)
        with pytest.raises(WebSocketConnectionClosedException):
            for _ in range(200):
                ws.send_binary(b"x" * 65536)
        ws.shutdown()
    finally:
        srv.stop()
