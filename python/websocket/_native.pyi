"""Type stub of the compiled engine module ``websocket._native`` (src/bindings)."""

from typing import Any, Dict, List, Optional, Tuple, Union, final

__all__ = [
    "set_trace",
    "reset_log_cache",
    "apply_mask",
    "validate_utf8",
    "Connection",
    "ENGINE_VERSION",
]

ENGINE_VERSION: str

def set_trace(on: bool) -> None:
    """Turns ``++Sent``/``++Rcv`` frame traces and header dumps on or off."""

def reset_log_cache() -> None:
    """Forgets pyo3-log's cached logger levels (after a level or handler change)."""

def apply_mask(mask_key: bytes, data: bytes) -> bytes:
    """``data`` XOR-ed with the 4-byte ``mask_key``."""

def validate_utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8."""

_Payload = Union[bytes, bytearray, memoryview, str]

@final
class Connection:
    """One live connection; every blocking method releases the GIL and honours Ctrl-C."""

    @staticmethod
    def open(
        host: str, port: int, resource: str, secure: bool, options: Dict[str, Any]
    ) -> Union["Connection", Tuple[int, Optional[str]]]:
        """Connects and runs the handshake; ``(status, location)`` for a redirect."""
    def send(
        self,
        payload: _Payload,
        opcode: int = ...,  # OPCODE_TEXT
        fin: bool = True,
        rsv: int = 0,
        mask_key: Optional[bytes] = None,
        timeout: Optional[float] = None,
    ) -> int:
        """Sends one frame; returns its length on the wire."""
    def send_close(self, payload: bytes, timeout: Optional[float] = None) -> bool: ...
    def recv_frame(
        self, control: bool = False, timeout: Optional[float] = None
    ) -> Tuple[int, bool, int, bytes]:
        """Next item as ``(opcode, fin, rsv, data)``."""
    def recv_message(
        self, control: bool = False, timeout: Optional[float] = None
    ) -> Tuple[int, bool, int, bytes]:
        """Next message, fragments joined, as ``(opcode, fin, rsv, data)``."""
    def recv_data(
        self, timeout: Optional[float] = None, decode: bool = True, control: bool = False
    ) -> Tuple[int, Union[str, bytes]]:
        """Next message as ``(opcode, data)``; text decoded when ``decode``."""
    def recv_batch(
        self,
        max: int = 256,
        timeout: Optional[float] = None,
        decode: bool = True,
        fragments: bool = False,
    ) -> List[Tuple[int, bool, Union[str, bytes]]]:
        """Up to ``max`` items ``(opcode, fin, data)``, at least one."""
    def close(self, payload: bytes, timeout: Optional[float] = None) -> Optional[bytes]:
        """Close handshake; the peer's close payload, if it came."""
    def shutdown(self) -> None: ...
    def has_item(self) -> bool: ...
    def readiness_fd(self) -> int: ...
    def fileno(self) -> int: ...
    def set_mode(self, mode: int) -> None: ...
    def set_skip_utf8(self, skip: bool) -> None: ...
    def set_max_size(self, max: Optional[int] = None) -> None: ...
    def take_headers(self) -> List[Tuple[str, str]]: ...
    @property
    def status(self) -> int: ...
    @property
    def subprotocol(self) -> Optional[str]: ...
    @property
    def compression(self) -> Optional[Dict[str, Any]]:
        """The permessage-deflate parameters in force, or None."""
    @property
    def is_ssl(self) -> bool: ...
    @property
    def close_sent(self) -> bool: ...
    @property
    def peer_close(self) -> Optional[bytes]: ...
    @property
    def text_decoding_checked(self) -> bool: ...
