"""Small helpers shared by the other modules.

``validate_utf8`` uses the Rust engine (``websocket._native.validate_utf8``) when the
extension is importable, and CPython's own strict UTF-8 decoder otherwise. Both reject
truncated sequences at the end of the data; websocket-client's validator accepts them
(see docs in ``validate_utf8``).
"""

from __future__ import annotations

import importlib
from types import ModuleType, TracebackType
from typing import Callable, List, Optional, Tuple, Type, Union

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


# Bjoern Hoehrmann's UTF-8 decoding automaton (http://bjoern.hoehrmann.de/utf-8/decoder/dfa/),
# under the names websocket-client's pure-Python validator gives it: ``_UTF8D`` is the
# 256-entry byte-class table followed by the transition table (states are multiples of 12),
# ``_decode`` one step of it, ``_validate_utf8`` the validator. Kept for code that imports
# them; ``validate_utf8`` below does not use them. The tables are built here from the
# automaton's definition rather than written out.
_UTF8_ACCEPT = 0
_UTF8_REJECT = 12


def _utf8_dfa_table() -> List[int]:
    # Byte classes: 0 ASCII; 1, 9, 7 continuation bytes 80-8F, 90-9F, A0-BF; 8 never valid
    # (C0, C1, F5-FF); 2 start of 2 bytes; 3 E1-EC/EE-EF, 10 E0, 4 ED; 6 F1-F3, 11 F0, 5 F4.
    classes = [0] * 0x80 + [1] * 0x10 + [9] * 0x10 + [7] * 0x20 + [8] * 2 + [2] * 30
    classes += [10] + [3] * 12 + [4] + [3] * 2 + [11] + [6] * 3 + [5] + [8] * 11
    # States, each a row of 12 classes: which classes lead where (all others: reject).
    accept, reject = _UTF8_ACCEPT, _UTF8_REJECT
    need1, need2, e0, ed, f0, need3, f4 = 24, 36, 48, 60, 72, 84, 96
    cont = (1, 7, 9)
    rows = {
        accept: {0: accept, 2: need1, 3: need2, 4: ed, 5: f4, 6: need3, 10: e0, 11: f0},
        reject: {},
        need1: dict.fromkeys(cont, accept),
        need2: dict.fromkeys(cont, need1),
        e0: {7: need1},  # E0 A0-BF: no overlong 3-byte forms
        ed: {1: need1, 9: need1},  # ED 80-9F: no surrogates
        f0: {7: need2, 9: need2},  # F0 90-BF: no overlong 4-byte forms
        need3: dict.fromkeys(cont, need2),
        f4: {1: need2},  # F4 80-8F: nothing above U+10FFFF
    }
    transitions = [rows[state].get(c, reject) for state in range(0, 108, 12) for c in range(12)]
    return classes + transitions


_UTF8D: List[int] = _utf8_dfa_table()


def _decode(state: int, codep: int, ch: int) -> Tuple[int, int]:
    """One step of the automaton: ``(state, codep)`` after byte ``ch``, ``codep`` being the
    code point decoded so far."""
    byte_class = _UTF8D[ch]
    if state != _UTF8_ACCEPT:
        codep = (ch & 0x3F) | (codep << 6)
    else:
        codep = (0xFF >> byte_class) & ch
    return _UTF8D[256 + state + byte_class], codep


def _validate_utf8(utfbytes: Union[bytes, bytearray, memoryview]) -> bool:
    """websocket-client's validator: False as soon as a byte can never be valid UTF-8, so
    data that merely *ends* inside a multi-byte sequence passes (``validate_utf8`` rejects
    that). Same result as running ``_decode`` over every byte, at the decoder's speed."""
    try:
        bytes(utfbytes).decode("utf-8")
    except UnicodeDecodeError as e:
        # CPython's decoder fails at the same byte as the automaton; only a sequence cut
        # off by the end of the data ("unexpected end of data") is not a rejection there.
        return e.end == len(utfbytes) and e.reason == "unexpected end of data"
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
