"""Translation of the reference's ``sslopt`` dict into the Rust engine's TLS options.

The engine uses rustls, not OpenSSL. Options with a rustls meaning are translated:

* ``cert_reqs`` (CERT_NONE / CERT_OPTIONAL / CERT_REQUIRED; in client mode OPTIONAL means
  REQUIRED, as in Python), ``check_hostname``, ``server_hostname`` (SNI and the name
  checked);
* ``ca_certs`` (PEM file), ``ca_cert_path`` (directory: every PEM file in it is read, not
  only OpenSSL's hashed names), ``WEBSOCKET_CLIENT_CA_BUNDLE``; otherwise the OS store;
* ``certfile`` + ``keyfile`` + ``password`` (str, bytes or a callable returning them) or
  ``cert_chain=(certfile, keyfile, password)``: encrypted keys in PKCS#8 or the legacy
  OpenSSL PEM form are decrypted by the engine;
* ``ssl_version``: ``PROTOCOL_TLS`` / ``PROTOCOL_TLS_CLIENT`` (any version),
  ``PROTOCOL_TLSv1_2`` (TLS 1.2 only), or an ``ssl.TLSVersion`` as the minimum;
  ``minimum_version`` / ``maximum_version`` (``ssl.TLSVersion``) are accepted too;
* ``SSLKEYLOGFILE`` (environment): TLS secrets appended there, for Wireshark;
* ``context``: an ``ssl.SSLContext``, as in the reference used instead of every other key
  except ``server_hostname``. Its verify mode, hostname check, minimum/maximum version,
  ``keylog_filename`` and the CA certificates ``get_ca_certs(binary_form=True)`` returns
  are used. Two things cannot be read back from an SSLContext: CA certificates loaded
  from a ``capath`` directory (only files loaded with ``cafile``/``cadata`` are visible;
  without any, the OS store is used) and a client certificate loaded with
  ``load_cert_chain``: give ``certfile``/``keyfile``/``password`` in ``sslopt`` next to the
  context for that (an extension; the reference ignores them there).

Options that only mean something to OpenSSL (``ciphers``, ``ecdh_curve``) and versions
rustls does not speak (TLS 1.0/1.1) raise ``WebSocketException`` naming the key instead of
being silently ignored.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, Dict, List, Optional

from ._exceptions import WebSocketException

__all__ = ["tls_options"]

_UNSUPPORTED = {
    "ciphers": "OpenSSL cipher strings have no rustls equivalent (rustls only offers modern AEAD suites)",
    "ecdh_curve": "ECDH curve selection is not configurable with rustls",
}

_TLS12 = 12
_TLS13 = 13


def _version_number(value: Any, key: str, minimum: bool = True) -> Optional[int]:
    """An ``ssl.TLSVersion`` bound as 12 / 13, None for no bound. A minimum below TLS 1.2
    is no bound (rustls' floor is 1.2); a maximum below it cannot be honoured."""
    if value is None or value in (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.MAXIMUM_SUPPORTED):
        return None
    if value == ssl.TLSVersion.TLSv1_2:
        return _TLS12
    if value == ssl.TLSVersion.TLSv1_3:
        return _TLS13
    if minimum and value in (ssl.TLSVersion.SSLv3, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        return None
    raise WebSocketException(
        f"sslopt[{key!r}] = {value!r} is not supported: the engine speaks TLS 1.2 and 1.3 only"
    )


def _ssl_version(value: Any, out: Dict[str, Any]) -> None:
    """``ssl_version``: the protocol constant the reference gives ``SSLContext()``."""
    if value is None or value in (ssl.PROTOCOL_TLS, ssl.PROTOCOL_TLS_CLIENT):
        return
    if value == getattr(ssl, "PROTOCOL_TLSv1_2", object()):
        out["min_version"] = out["max_version"] = _TLS12
        return
    if isinstance(value, ssl.TLSVersion) and value >= ssl.TLSVersion.TLSv1_2:
        out["min_version"] = _version_number(value, "ssl_version")
        return
    raise WebSocketException(
        f"sslopt['ssl_version'] = {value!r} is not supported: the engine speaks TLS 1.2 and "
        "1.3 only (use ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLSv1_2 or an ssl.TLSVersion)"
    )


def _from_context(ctx: ssl.SSLContext, out: Dict[str, Any]) -> None:
    out["cert_reqs"] = int(ctx.verify_mode)
    out["check_hostname"] = bool(ctx.check_hostname)
    der: List[bytes] = [bytes(c) for c in ctx.get_ca_certs(binary_form=True)]
    if der:
        out["ca_der"] = der
    out["min_version"] = _version_number(ctx.minimum_version, "context.minimum_version")
    out["max_version"] = _version_number(ctx.maximum_version, "context.maximum_version", False)
    keylog = getattr(ctx, "keylog_filename", None)
    if keylog:
        out["keylog"] = os.fspath(keylog)


def _password(password: Any) -> Optional[bytes]:
    if password is None:
        return None
    if callable(password):
        password = password()
    if isinstance(password, str):
        return password.encode("utf-8")
    if isinstance(password, (bytes, bytearray)):
        return bytes(password)
    raise TypeError("password should be a string or bytes")


def _client_cert(sslopt: Dict[str, Any], out: Dict[str, Any]) -> None:
    certfile = sslopt.get("certfile")
    keyfile = sslopt.get("keyfile")
    password = sslopt.get("password")
    if "cert_chain" in sslopt:
        chain = sslopt["cert_chain"]
        if not isinstance(chain, (tuple, list)) or len(chain) != 3:
            raise ValueError("cert_chain must be a tuple/list of (certfile, keyfile, password)")
        certfile, keyfile, password = chain
    if not certfile:
        return
    out["certfile"] = os.fspath(certfile)
    out["keyfile"] = os.fspath(keyfile) if keyfile else None
    out["password"] = _password(password)


def tls_options(sslopt: Optional[Dict[str, Any]], hostname: str) -> Dict[str, Any]:
    """The engine's TLS options for ``sslopt`` (as given to ``WebSocket(sslopt=...)``)."""
    sslopt = dict(sslopt or {})
    out: Dict[str, Any] = {}
    ctx = sslopt.get("context")
    if ctx is not None:
        if not isinstance(ctx, ssl.SSLContext):
            raise WebSocketException("sslopt['context'] must be an ssl.SSLContext")
        _from_context(ctx, out)
    else:
        for key, why in _UNSUPPORTED.items():
            if sslopt.get(key) is not None:
                raise WebSocketException(f"sslopt[{key!r}] is not supported: {why}")
        cert_reqs = int(sslopt.get("cert_reqs", ssl.CERT_REQUIRED))
        if cert_reqs == int(ssl.CERT_NONE) and not sslopt.get("check_hostname", False):
            out["cert_reqs"] = cert_reqs
            out["check_hostname"] = False
        else:
            check_hostname = bool(sslopt.get("check_hostname", True))
            if check_hostname and cert_reqs == int(ssl.CERT_NONE):
                raise WebSocketException(
                    "SSL certificate verification configuration failed: "
                    "check_hostname cannot be enabled when cert_reqs is CERT_NONE"
                )
            out["cert_reqs"] = cert_reqs
            out["check_hostname"] = check_hostname
        ca_certs = sslopt.get("ca_certs")
        ca_cert_path = sslopt.get("ca_cert_path")
        # As the reference: the bundle fills whichever of the two the user left unset.
        bundle = os.environ.get("WEBSOCKET_CLIENT_CA_BUNDLE")
        if bundle and os.path.isfile(bundle) and ca_certs is None:
            ca_certs = bundle
        elif bundle and os.path.isdir(bundle) and ca_cert_path is None:
            ca_cert_path = bundle
        if cert_reqs != int(ssl.CERT_NONE):  # the reference loads no CA without verification
            out["ca_certs"] = os.fspath(ca_certs) if ca_certs else None
            out["ca_cert_path"] = os.fspath(ca_cert_path) if ca_cert_path else None
        _ssl_version(sslopt.get("ssl_version"), out)
        if sslopt.get("minimum_version") is not None:
            out["min_version"] = _version_number(sslopt["minimum_version"], "minimum_version")
        if sslopt.get("maximum_version") is not None:
            out["max_version"] = _version_number(sslopt["maximum_version"], "maximum_version", False)
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog:
            out["keylog"] = keylog
    # With a context too: its client certificate cannot be read back (see above).
    _client_cert(sslopt, out)
    server_hostname = sslopt.get("server_hostname")
    if server_hostname:
        out["server_hostname"] = str(server_hostname)
    return out
