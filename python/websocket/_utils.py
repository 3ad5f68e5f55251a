"""Small helpers shared by the other modules.

``validate_utf8`` uses the Rust engine (``websocket._native.validate_utf8``) when the
extension is importable, and CPython's own strict UTF-8 decoder otherwise. Both reject
truncated sequences at the end of the data; websocket-client's validator accepts them
(see docs in ``validate_utf8``).
"""

from __future__ import annotations

import importlib
from types import ModuleType, TracebackType
from typing import Callable, Optional, Type, Union

__all__ = ["NoLock", "validate_utf8", "extract_err_message", "extract_error_code"]


def _load_native() -> Optional[ModuleType]:
    """Return the ``websocket._native`` extension module, or None when it is missing.

    importlib is used instead of ``from . import _native`` so that type checkers see a
    plain ``ModuleType`` whether or not a stub for the extension exists.
    """
    package = __package__ or __name__.rpartition(".")[0]
    if not package:
        return None
    try:
        return importlib.import_module(package + "._native")
    except ImportError:
        return None


_native = _load_native()
_native_validate_utf8: Optional[Callable[[bytes], bool]] = getattr(
    _native, "validate_utf8", None
)


class NoLock:
    """A context manager that does nothing; stands in for a lock when threads are off."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        return None


def _validate_utf8_py(data: bytes) -> bool:
    # CPython's decoder is strict RFC 3629 UTF-8: no overlong forms, no surrogates,
    # nothing above U+10FFFF, no truncated sequence at the end.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def validate_utf8(utfbytes: Union[str, bytes, bytearray, memoryview]) -> bool:
    """Return True when ``utfbytes`` is well-formed UTF-8.

    A ``str`` is checked through its UTF-8 form, so it is valid unless it holds lone
    surrogates. Difference from websocket-client 1.9.2: its validator only fails on a
    byte that can never be valid and so accepts data that *ends* in the middle of a
    multi-byte sequence (``b"\\xe2\\x82"``); here that is invalid, as RFC 6455 requires
    for a complete message.
    """
    if isinstance(utfbytes, str):
        data = utfbytes.encode("utf-8", "surrogatepass")
    elif isinstance(utfbytes, bytes):
        data = utfbytes
    else:
        data = bytes(utfbytes)
    if _native_validate_utf8 is not None:
        return bool(_native_validate_utf8(data))
    return _validate_utf8_py(data)


def extract_err_message(exception: BaseException) -> Optional[str]:
    """The first argument of ``exception`` as a string, or None if it has no arguments."""
    args = exception.args
    return str(args[0]) if args else None


def extract_error_code(exception: BaseException) -> Optional[int]:
    """The errno of an ``OSError``-style exception built as ``(code, message, ...)``.

    None unless there are at least two arguments and the first is an int.
    """
    args = exception.args
    if len(args) < 2:
        return None
    code = args[0]
    return code if isinstance(code, int) else None
