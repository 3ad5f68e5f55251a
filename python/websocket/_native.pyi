"""Type stub of the compiled engine module ``websocket._native`` (src/bindings)."""

from typing import Any, Callable, Dict, List, Optional, Tuple, Union, final

from typing_extensions import disjoint_base

__all__ = [
    "set_trace",
    "reset_log_cache",
    "apply_mask",
    "validate_utf8",
    "Connection",
    "WebSocketBase",
    "SockOptBase",
    "Protocol",
    "ProxyNegotiation",
    "build_request",
    "head_bytes_wanted",
    "parse_response_head",
    "handshake_answer",
    "proxy_target",
    "proxy_needs_ipv4",
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

@disjoint_base
class SockOptBase:
    """The compiled base of ``websocket._socket.sock_opt``, holding its ``timeout``."""

    timeout: Optional[Union[int, float]]
    def __new__(cls, *_args: Any, **_kwargs: Any) -> SockOptBase: ...

@disjoint_base
class WebSocketBase:
    """The compiled base of ``websocket.WebSocket``: the attributes its receive fast path
    reads, and that path, ``recv()``."""

    _conn: Any
    _fast_recv: bool
    _fast_send: bool
    get_mask_key: Optional[Callable[[int], bytes]]
    fire_cont_frame: bool
    sock_opt: Any
    def __new__(cls, *_args: Any, **_kwargs: Any) -> WebSocketBase: ...
    def recv(self) -> Union[str, bytes]:
        """The next message: ``str`` for text, ``bytes`` for binary, ``""`` after a close."""
    def send(self, payload: Union[bytes, bytearray, str], opcode: int = 1) -> int:
        """Sends ``payload`` in one frame and returns the frame's length on the wire."""

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
    def recv_text_or_binary(self, timeout: Optional[float] = None) -> Union[str, bytes, None]:
        """Next message's payload (``str`` for text); None once the peer's close frame is
        here (its payload is ``peer_close``)."""
    def recv_next(self) -> Union[str, bytes, None]:
        """``recv_text_or_binary()`` without a timeout, taking no argument."""
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
    def send_raw(self, data: bytes, timeout: Optional[float] = None) -> None:
        """Writes pre-formatted frames in order with the engine's own frames."""
    def recv_raw(self, max: int, timeout: Optional[float] = None) -> bytes:
        """Up to ``max`` bytes of the server's frame stream; b"" at its end."""
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

# ---- the sans-I/O core, for the Python-socket driver ------------------------------------

def build_request(
    host: str, port: int, resource: str, secure: bool, options: Dict[str, Any]
) -> Tuple[bytes, str]:
    """The opening handshake request and its Sec-WebSocket-Key."""

def head_bytes_wanted(buf: bytes) -> int:
    """Bytes that may be read without passing the end of a response head."""

def parse_response_head(buf: bytes) -> Optional[Tuple[int, str, List[Tuple[str, str]], int]]:
    """``(status, reason, headers, head_len)``, or None when more bytes are needed."""

def handshake_answer(
    status: int,
    headers: List[Tuple[str, str]],
    key: str,
    subprotocols: Optional[List[str]] = None,
    compression: Optional[Dict[str, Any]] = None,
) -> Tuple[Any, ...]:
    """``("upgraded", subprotocol, params)``, ``("redirect", status, location)`` or
    ``("refused", body_len)``."""

def proxy_target(kind: str, host: str) -> Optional[str]:
    """What to tell the proxy, or None when the caller must resolve ``host``."""

def proxy_needs_ipv4(kind: str) -> bool:
    """Whether a locally resolved target must be IPv4."""

@final
class ProxyNegotiation:
    """One proxy exchange: send ``data_to_send()``, read at most ``bytes_wanted()`` bytes,
    ``receive()`` them, until ``done``."""

    def __new__(
        cls, kind: str, target: str, port: int, auth: Optional[Tuple[str, str]] = None
    ) -> "ProxyNegotiation": ...
    def data_to_send(self) -> bytes: ...
    def bytes_wanted(self) -> int: ...
    def receive(self, data: bytes) -> int: ...
    @property
    def done(self) -> bool: ...
    @property
    def http_request(self) -> str: ...
    @property
    def http_response_head(self) -> bytes: ...

@final
class Protocol:
    """A connection's protocol without I/O: feed what was read, write what is returned."""

    def __new__(cls, options: Optional[Dict[str, Any]] = None) -> "Protocol": ...
    def receive_data(self, data: bytes) -> bytes:
        """Feeds bytes read from the peer; returns the replies to write now."""
    def bytes_wanted(self) -> int:
        """Most bytes to read without passing the frame in progress."""
    def send(
        self,
        payload: _Payload,
        opcode: int = 1,
        fin: bool = True,
        rsv: int = 0,
        mask_key: Optional[bytes] = None,
    ) -> bytes:
        """One frame's wire bytes."""
    def send_close(self, payload: bytes) -> Optional[bytes]: ...
    def fail(self) -> Optional[bytes]:
        """The close frame owed after a protocol failure, once."""
    def next_message(self, control: bool = False) -> Optional[Tuple[int, bool, int, bytes]]: ...
    def next_frame(self, control: bool = False) -> Optional[Tuple[int, bool, int, bytes]]: ...
    def next_data(
        self, decode: bool = True, control: bool = False
    ) -> Optional[Tuple[int, Union[str, bytes]]]: ...
    def feed_payload(self, data: bytes) -> Union[str, bytes, None, int, Tuple[bytes]]:
        """receive_data(data), then next_payload(); replies to write first come back
        alone as (replies,), then next_payload() gives the rest."""
    def next_payload(self) -> Union[str, bytes, None, int]:
        """The next message's payload (str for text), None once the peer's close frame is
        here, or (an int) how many bytes may be read when more are needed."""
    def next_batch(
        self, max: int = 256, decode: bool = True, fragments: bool = False
    ) -> List[Tuple[int, bool, Union[str, bytes]]]: ...
    def has_item(self) -> bool: ...
    def discard(self) -> None: ...
    def set_mode(self, mode: int) -> None: ...
    def set_skip_utf8(self, skip: bool) -> None: ...
    def set_max_size(self, max: Optional[int] = None) -> None: ...
    @property
    def close_sent(self) -> bool: ...
    @property
    def peer_close(self) -> Optional[bytes]: ...
    @property
    def mode(self) -> int: ...
