"""The ``ssl`` names the package uses, with stand-ins when Python has no ``ssl`` module.

``HAVE_SSL`` tells which case applies. Without ssl, ``ssl`` is None and the error classes
are plain exception classes that nothing raises, so ``except SSLError`` stays valid.
Type checkers see the real ``ssl`` module.
"""

from __future__ import annotations

__all__ = [
    "HAVE_SSL",
    "ssl",
    "SSLError",
    "SSLEOFError",
    "SSLWantReadError",
    "SSLWantWriteError",
]

try:
    import ssl
    from ssl import SSLEOFError, SSLError, SSLWantReadError, SSLWantWriteError

    HAVE_SSL = True
except ImportError:  # a Python built without OpenSSL

    class SSLError(Exception):  # type: ignore[no-redef]
        """Stand-in for ``ssl.SSLError``; never raised."""

    class SSLEOFError(SSLError):  # type: ignore[no-redef]
        """Stand-in for ``ssl.SSLEOFError``; never raised."""

    class SSLWantReadError(SSLError):  # type: ignore[no-redef]
        """Stand-in for ``ssl.SSLWantReadError``; never raised."""

    class SSLWantWriteError(SSLError):  # type: ignore[no-redef]
        """Stand-in for ``ssl.SSLWantWriteError``; never raised."""

    ssl = None  # type: ignore[assignment]
    HAVE_SSL = False

# websocket-client imports these from ``ssl`` for its type hints only; at run time they are
# None there, and code may still import them from this module.
_ssl_module = None
_SSLErrorType = None
_SSLEOFErrorType = None
_SSLWantReadErrorType = None
_SSLWantWriteErrorType = None
