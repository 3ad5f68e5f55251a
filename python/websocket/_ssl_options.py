"""Translation of the reference's ``sslopt`` dict into the Rust engine's TLS options.

The engine uses rustls, not OpenSSL. Options with a rustls meaning are translated
(verification mode, hostname check, CA files and directories, client certificates, SNI,
minimum version, an ``ssl.SSLContext``'s verify mode and CA certificates); options that
only mean something to OpenSSL raise ``WebSocketException`` naming the key instead of
being silently ignored.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Dict, List, Optional

from ._exceptions import WebSocketException

__all__ = ["tls_options"]

# Keys the reference passes to ssl.SSLSocket.wrap / do_handshake that change nothing here.
_HARMLESS = {"do_handshake_on_connect", "suppress_ragged_eofs", "server_side"}
_UNSUPPORTED = {
    "ciphers": "OpenSSL cipher strings have no rustls equivalent (rustls only offers modern AEAD suites)",
    "ecdh_curve": "ECDH curve selection is not configurable with rustls",
}


def _min_version(value: Any) -> Optional[int]:
    """ssl_version / minimum_version as a minimum TLS version: 12 or 13."""
    if value is None:
        return None
    names = {
        getattr(ssl, "PROTOCOL_TLS", -1): None,
        getattr(ssl, "PROTOCOL_TLS_CLIENT", -1): None,
        getattr(ssl, "PROTOCOL_TLSv1_2", -1): 12,
        getattr(ssl.TLSVersion, "TLSv1_2", -1): 12,
        getattr(ssl.TLSVersion, "TLSv1_3", -1): 13,
        getattr(ssl.TLSVersion, "MINIMUM_SUPPORTED", -1): None,
    }
    if value in names:
        return names[value]
    # TLS 1.0/1.1 are not offered by rustls: the floor is 1.2 anyway.
    return None


def _from_context(ctx: ssl.SSLContext, out: Dict[str, Any]) -> None:
    out["cert_reqs"] = int(ctx.verify_mode)
    out["check_hostname"] = bool(ctx.check_hostname)
    der: List[bytes] = [bytes(c) for c in ctx.get_ca_certs(binary_form=True)]  # type: ignore[call-overload]
    if der:
        out["ca_der"] = der
    if ctx.minimum_version == ssl.TLSVersion.TLSv1_3:
        out["min_version"] = 13


def tls_options(sslopt: Optional[Dict[str, Any]], hostname: str) -> Dict[str, Any]:
    """The engine's TLS options for ``sslopt`` (as given to ``WebSocket(sslopt=...)``)."""
    sslopt = dict(sslopt or {})
    out: Dict[str, Any] = {}
    for key, why in _UNSUPPORTED.items():
        if sslopt.get(key) is not None:
            raise WebSocketException(f"sslopt[{key!r}] is not supported: {why}")
    ctx = sslopt.get("context")
    if ctx is not None:
        if not isinstance(ctx, ssl.SSLContext):
            raise WebSocketException("sslopt['context'] must be an ssl.SSLContext")
        _from_context(ctx, out)
    else:
        cert_reqs = sslopt.get("cert_reqs", ssl.CERT_REQUIRED)
        out["cert_reqs"] = int(cert_reqs)
        out["check_hostname"] = bool(
            sslopt.get("check_hostname", int(cert_reqs) != int(ssl.CERT_NONE))
        )
        ca_certs = sslopt.get("ca_certs")
        ca_cert_path = sslopt.get("ca_cert_path")
        if not ca_certs and not ca_cert_path:
            bundle = os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
            if bundle and os.path.isfile(bundle):
                ca_certs = bundle
            elif bundle and os.path.isdir(bundle):
                ca_cert_path = bundle
        out["ca_certs"] = os.fspath(ca_certs) if ca_certs else None
        out["ca_cert_path"] = os.fspath(ca_cert_path) if ca_cert_path else None
        certfile = sslopt.get("certfile")
        keyfile = sslopt.get("keyfile")
        password = sslopt.get("password")
        chain = sslopt.get("cert_chain")
        if chain:
            certfile, keyfile, password = (tuple(chain) + (None, None))[:3]
        out["certfile"] = os.fspath(certfile) if certfile else None
        out["keyfile"] = os.fspath(keyfile) if keyfile else None
        if password is not None:
            if callable(password):
                password = password()
            out["password"] = password.encode("utf-8") if isinstance(password, str) else bytes(password)
        out["min_version"] = _min_version(sslopt.get("ssl_version", sslopt.get("minimum_version")))
    if out.get("cert_reqs") == int(ssl.CERT_NONE) and out.get("check_hostname"):
        raise WebSocketException(
            "Cannot set verify_mode to CERT_NONE when check_hostname is enabled."
        )
    server_hostname = sslopt.get("server_hostname")
    if server_hostname:
        out["server_hostname"] = str(server_hostname)
    return out
