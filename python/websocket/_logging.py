"""Logging for the package: the ``"websocket"`` logger and the ``enableTrace`` switch.

The logger carries a ``NullHandler`` so that nothing is printed unless the application
configures logging or calls :func:`enableTrace`. Frame and handshake dumps (``trace`` and
``dump``) are only logged while tracing is on. ``enableTrace`` also tells the Rust engine
(``websocket._native``) to start or stop producing its frame traces.
"""

from __future__ import annotations

import logging
from logging import NullHandler  # a module attribute in websocket-client too
from typing import Optional, Union

from ._utils import _load_native

__all__ = [
    "enableTrace",
    "dump",
    "error",
    "warning",
    "debug",
    "trace",
    "isEnabledForError",
    "isEnabledForDebug",
    "isEnabledForTrace",
]

_logger = logging.getLogger("websocket")
_logger.addHandler(NullHandler())

_traceEnabled = False
_trace_handler: Optional[logging.Handler] = None
_default_level = _logger.getEffectiveLevel()


def _tell_native(enabled: bool) -> None:
    """Switch the engine's frame tracing; a missing extension or helper is ignored."""
    native = _load_native()
    if native is None:
        return
    set_trace = getattr(native, "set_trace", None)
    if callable(set_trace):
        set_trace(enabled)
    reset_log_cache = getattr(native, "reset_log_cache", None)
    if callable(reset_log_cache):
        reset_log_cache()


def _level_value(level: Union[str, int]) -> int:
    if isinstance(level, int):
        return level
    value = getattr(logging, level)
    if not isinstance(value, int):
        raise ValueError(f"unknown logging level {level!r}")
    return value


def enableTrace(
    traceable: bool,
    handler: Optional[logging.Handler] = None,
    level: Union[str, int] = "DEBUG",
) -> None:
    """Turn tracing on or off.

    On: ``handler`` (a new ``StreamHandler`` to stderr when None) replaces the handler
    of an earlier call, and the logger level becomes ``level`` (a name such as
    ``"DEBUG"``, or, as an extension, a number). Off: that handler is removed and the
    logger gets back the level it had when the module was imported.
    """
    global _traceEnabled, _trace_handler
    if traceable:
        if handler is None:
            handler = logging.StreamHandler()
        if _trace_handler is not None and _trace_handler is not handler:
            _logger.removeHandler(_trace_handler)
        _trace_handler = handler
        if handler not in _logger.handlers:
            _logger.addHandler(handler)
        _logger.setLevel(_level_value(level))
        _traceEnabled = True
    else:
        _traceEnabled = False
        if _trace_handler is not None:
            _logger.removeHandler(_trace_handler)
        _trace_handler = None
        _logger.setLevel(_default_level)
    _tell_native(_traceEnabled)


def dump(title: str, message: str) -> None:
    """Log ``message`` framed by ``--- title ---`` and a dashed line, when tracing."""
    if not _traceEnabled:
        return
    _logger.debug(f"--- {title} ---")
    _logger.debug(message)
    _logger.debug("-----------------------")


def error(msg: str) -> None:
    _logger.error(msg)


def warning(msg: str) -> None:
    _logger.warning(msg)


def debug(msg: str) -> None:
    _logger.debug(msg)


def info(msg: str) -> None:
    _logger.info(msg)


def trace(msg: str) -> None:
    """Log ``msg`` at DEBUG level, only while tracing is on."""
    if _traceEnabled:
        _logger.debug(msg)


def isEnabledForError() -> bool:
    return _logger.isEnabledFor(logging.ERROR)


def isEnabledForDebug() -> bool:
    return _logger.isEnabledFor(logging.DEBUG)


def isEnabledForTrace() -> bool:
    return _traceEnabled
