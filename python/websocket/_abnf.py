"""WebSocket frames (RFC 6455 section 5) in the shape of websocket-client's ``_abnf``.

The Rust engine parses and builds frames on the hot path; this module is the Python-level
API that users and subclasses touch: :class:`ABNF` (one frame), :class:`frame_buffer`
(reads frames through a ``recv(n)`` callable) and :class:`continuous_frame` (reassembles
fragmented messages). Masking and UTF-8 validation call the native helpers of
``websocket._native`` when the extension is importable.
"""

from __future__ import annotations

import array
import os
import struct
import sys
import threading
from typing import Any, Callable, List, Optional, Tuple, Union

from ._exceptions import WebSocketConnectionClosedException, WebSocketPayloadException
from ._exceptions import WebSocketProtocolException
from ._utils import _load_native, validate_utf8

__all__ = [
    "ABNF",
    "continuous_frame",
    "frame_buffer",
    "STATUS_NORMAL",
    "STATUS_GOING_AWAY",
    "STATUS_PROTOCOL_ERROR",
    "STATUS_UNSUPPORTED_DATA_TYPE",
    "STATUS_STATUS_NOT_AVAILABLE",
    "STATUS_ABNORMAL_CLOSED",
    "STATUS_INVALID_PAYLOAD",
    "STATUS_POLICY_VIOLATION",
    "STATUS_MESSAGE_TOO_BIG",
    "STATUS_INVALID_EXTENSION",
    "STATUS_UNEXPECTED_CONDITION",
    "STATUS_SERVICE_RESTART",
    "STATUS_TRY_AGAIN_LATER",
    "STATUS_BAD_GATEWAY",
    "STATUS_TLS_HANDSHAKE_ERROR",
]

# Close status codes (RFC 6455 section 7.4.1 and the IANA registry).
STATUS_NORMAL = 1000
STATUS_GOING_AWAY = 1001
STATUS_PROTOCOL_ERROR = 1002
STATUS_UNSUPPORTED_DATA_TYPE = 1003
STATUS_STATUS_NOT_AVAILABLE = 1005
STATUS_ABNORMAL_CLOSED = 1006
STATUS_INVALID_PAYLOAD = 1007
STATUS_POLICY_VIOLATION = 1008
STATUS_MESSAGE_TOO_BIG = 1009
STATUS_INVALID_EXTENSION = 1010
STATUS_UNEXPECTED_CONDITION = 1011
STATUS_SERVICE_RESTART = 1012
STATUS_TRY_AGAIN_LATER = 1013
STATUS_BAD_GATEWAY = 1014
STATUS_TLS_HANDSHAKE_ERROR = 1015

# Codes a peer may put on the wire. 1005, 1006 and 1015 are reserved for local use only.
VALID_CLOSE_STATUS: Tuple[int, ...] = (
    STATUS_NORMAL,
    STATUS_GOING_AWAY,
    STATUS_PROTOCOL_ERROR,
    STATUS_UNSUPPORTED_DATA_TYPE,
    STATUS_INVALID_PAYLOAD,
    STATUS_POLICY_VIOLATION,
    STATUS_MESSAGE_TOO_BIG,
    STATUS_INVALID_EXTENSION,
    STATUS_UNEXPECTED_CONDITION,
    STATUS_SERVICE_RESTART,
    STATUS_TRY_AGAIN_LATER,
    STATUS_BAD_GATEWAY,
)

_native = _load_native()
_native_apply_mask: Optional[Callable[[bytes, bytes], bytes]] = getattr(
    _native, "apply_mask", None
)

_Data = Union[str, bytes, bytearray]


def _as_bytes(value: Union[str, bytes, bytearray, memoryview], encoding: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode(encoding)
    return bytes(value)


def _xor_mask_py(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with ``key`` repeated; one big-int XOR instead of a per-byte loop."""
    n = len(data)
    if n == 0:
        return b""
    if not key:
        raise ValueError("mask key must not be empty")
    reps, rest = divmod(n, len(key))
    stream = key * reps + key[:rest]
    order = sys.byteorder
    value = int.from_bytes(data, order) ^ int.from_bytes(stream, order)
    return value.to_bytes(n, order)


# websocket-client's module-level masking helper and the byte order it uses, kept for code
# that imports them (ABNF.mask does not go through them).
native_byteorder = sys.byteorder


def _mask(
    mask_value: Union["array.array[int]", bytes, bytearray],
    data_value: Union["array.array[int]", bytes, bytearray],
) -> bytes:
    """XOR ``data_value`` with ``mask_value`` repeated every 4 bytes (both ``array('B')`` or
    bytes-like), as websocket-client's ``_mask``: the key stream is ``len(data) // 4`` copies
    of the key followed by its first ``len(data) % 4`` bytes, so a key that is not 4 bytes
    long gives that function's results (an empty key leaves the data as it is)."""
    key = bytes(mask_value)
    data = bytes(data_value)
    if len(key) == 4 and _native_apply_mask is not None:
        return _native_apply_mask(key, data)
    n = len(data)
    stream = key * (n // 4) + key[: n % 4]
    value = int.from_bytes(data, native_byteorder) ^ int.from_bytes(stream, native_byteorder)
    return value.to_bytes(n, native_byteorder)


def _rsv_bits_ok(*bits: Any) -> bool:
    return all(bit in (0, 1) for bit in bits)


class ABNF:
    """One WebSocket frame.

    ``data`` is the (unmasked) payload, ``bytes`` for received frames; ``str`` is
    accepted when building frames. ``get_mask_key(n)`` produces the masking key used by
    :meth:`format` (``os.urandom`` by default).
    """

    OPCODE_CONT = 0x0
    OPCODE_TEXT = 0x1
    OPCODE_BINARY = 0x2
    OPCODE_CLOSE = 0x8
    OPCODE_PING = 0x9
    OPCODE_PONG = 0xA

    OPCODES: Tuple[int, ...] = (0x0, 0x1, 0x2, 0x8, 0x9, 0xA)

    OPCODE_MAP = {
        0x0: "cont",
        0x1: "text",
        0x2: "binary",
        0x8: "close",
        0x9: "ping",
        0xA: "pong",
    }

    # Payload length thresholds of the 7-bit, 16-bit and 64-bit length encodings.
    LENGTH_7 = 0x7E
    LENGTH_16 = 1 << 16
    LENGTH_63 = 1 << 63

    fin: int
    rsv1: int
    rsv2: int
    rsv3: int
    opcode: int
    mask_value: int
    data: _Data
    get_mask_key: Callable[[int], Union[bytes, str]]

    def __init__(
        self,
        fin: int = 0,
        rsv1: int = 0,
        rsv2: int = 0,
        rsv3: int = 0,
        opcode: int = OPCODE_TEXT,
        mask_value: int = 1,
        data: Optional[_Data] = "",
    ) -> None:
        self.fin = fin
        self.rsv1 = rsv1
        self.rsv2 = rsv2
        self.rsv3 = rsv3
        self.opcode = opcode
        self.mask_value = mask_value
        self.data = "" if data is None else data
        self.get_mask_key = os.urandom

    def validate(self, skip_utf8_validation: bool = False) -> None:
        """Raise :class:`WebSocketProtocolException` if this frame breaks RFC 6455.

        Checked: RSV bits (no extension is negotiated), the opcode, ping fragmentation,
        and for CLOSE the payload length, the close code and the UTF-8 of the reason.
        """
        if self.rsv1 or self.rsv2 or self.rsv3:
            raise WebSocketProtocolException("rsv is not implemented, yet")
        if self.opcode not in ABNF.OPCODES:
            raise WebSocketProtocolException(f"Invalid opcode {self.opcode!r}")
        if self.opcode == ABNF.OPCODE_PING and not self.fin:
            raise WebSocketProtocolException("Invalid ping frame.")
        if self.opcode != ABNF.OPCODE_CLOSE:
            return

        size = len(self.data)
        if size == 0:
            return
        if size == 1 or size > 125:
            raise WebSocketProtocolException("Invalid close frame.")
        if size > 2 and not skip_utf8_validation and not validate_utf8(self.data[2:]):
            raise WebSocketProtocolException("Invalid close frame.")
        head = self.data[:2]
        code_bytes = head.encode("utf-8") if isinstance(head, str) else bytes(head)
        (code,) = struct.unpack("!H", code_bytes[:2])
        if not ABNF._is_valid_close_status(code):
            raise WebSocketProtocolException(f"Invalid close opcode {code!r}")

    @staticmethod
    def _is_valid_close_status(code: int) -> bool:
        return code in VALID_CLOSE_STATUS or 3000 <= code <= 4999

    def __str__(self) -> str:
        shown = self.data if isinstance(self.data, str) else repr(self.data)
        return f"fin={self.fin} opcode={self.opcode} data={shown}"

    @staticmethod
    def create_frame(data: _Data, opcode: int, fin: int = 1) -> ABNF:
        """A masked frame ready to send. A ``str`` is UTF-8 encoded for TEXT frames."""
        if opcode == ABNF.OPCODE_TEXT and isinstance(data, str):
            data = data.encode("utf-8")
        return ABNF(fin, 0, 0, 0, opcode, 1, data)

    def _payload_bytes(self) -> bytes:
        data = self.data
        if not isinstance(data, str):
            return bytes(data) if not isinstance(data, bytes) else data
        if self.opcode == ABNF.OPCODE_TEXT or not self.mask_value:
            return data.encode("utf-8")
        # websocket-client masks a non-TEXT str payload as latin-1.
        return data.encode("latin-1")

    def format(self) -> bytes:
        """The frame as bytes on the wire (header, mask key if masked, payload).

        ``ValueError`` for a fin/rsv bit that is not 0 or 1, an unknown opcode, or a
        payload of 2**63 bytes or more. A fresh key from ``get_mask_key(4)`` is used
        when ``mask_value`` is set.
        """
        if not _rsv_bits_ok(self.fin, self.rsv1, self.rsv2, self.rsv3):
            raise ValueError("not 0 or 1")
        if self.opcode not in ABNF.OPCODES:
            raise ValueError("Invalid OPCODE")
        if len(self.data) >= ABNF.LENGTH_63:
            raise ValueError("data is too long")

        payload = self._payload_bytes()
        if isinstance(self.data, str) and not self.mask_value:
            self.data = payload  # websocket-client also stores the encoded payload here
        size = len(payload)

        first = (
            (self.fin << 7)
            | (self.rsv1 << 6)
            | (self.rsv2 << 5)
            | (self.rsv3 << 4)
            | self.opcode
        )
        mask_bit = 0x80 if self.mask_value else 0
        if size < ABNF.LENGTH_7:
            header = struct.pack("!BB", first, mask_bit | size)
        elif size < ABNF.LENGTH_16:
            header = struct.pack("!BBH", first, mask_bit | 126, size)
        else:
            header = struct.pack("!BBQ", first, mask_bit | 127, size)

        if not self.mask_value:
            return header + payload
        return header + self._get_masked(self.get_mask_key(4), payload)

    def _get_masked(
        self, mask_key: Union[str, bytes], payload: Optional[bytes] = None
    ) -> bytes:
        """The mask key followed by the masked payload (``self.data`` by default)."""
        key = _as_bytes(mask_key, "latin-1")
        data = self._payload_bytes() if payload is None else payload
        return key + ABNF.mask(key, data)

    @staticmethod
    def mask(
        mask_key: Union[str, bytes, bytearray],
        data: Optional[Union[str, bytes, bytearray, memoryview]],
    ) -> bytes:
        """XOR ``data`` with the 4-byte ``mask_key`` (masking and unmasking are the same).

        ``str`` arguments are taken as latin-1.
        """
        key = _as_bytes(mask_key, "latin-1")
        payload = _as_bytes("" if data is None else data, "latin-1")
        if _native_apply_mask is not None and len(key) == 4:
            return _native_apply_mask(key, payload)
        return _xor_mask_py(key, payload)


class frame_buffer:
    """Reads whole frames through ``recv_fn(n) -> bytes``.

    Partial reads are buffered, so a ``recv_fn`` that raises a timeout can be retried
    without losing the bytes already read: the parse state (``header``, ``length``,
    ``mask_value``) survives until a frame is complete.
    """

    _HEADER_MASK_INDEX = 5
    _HEADER_LENGTH_INDEX = 6
    _MAX_READ = 16384

    recv: Callable[[int], bytes]
    skip_utf8_validation: bool
    recv_buffer: List[bytes]
    header: Optional[Tuple[int, int, int, int, int, int, int]]
    length: Optional[int]
    mask_value: Optional[Union[bytes, str]]
    lock: threading.Lock

    def __init__(self, recv_fn: Callable[[int], bytes], skip_utf8_validation: bool) -> None:
        self.recv = recv_fn
        self.skip_utf8_validation = skip_utf8_validation
        self.recv_buffer = []
        self.clear()
        self.lock = threading.Lock()

    def clear(self) -> None:
        """Forget the partly parsed frame (the byte buffer is kept)."""
        self.header = None
        self.length = None
        self.mask_value = None

    def needs_header(self) -> bool:
        return self.header is None

    def recv_header(self) -> None:
        b0, b1 = self.recv_strict(2)
        self.header = (
            (b0 >> 7) & 1,
            (b0 >> 6) & 1,
            (b0 >> 5) & 1,
            (b0 >> 4) & 1,
            b0 & 0x0F,
            (b1 >> 7) & 1,
            b1 & 0x7F,
        )

    def has_mask(self) -> Union[bool, int]:
        if not self.header:
            return False
        return self.header[frame_buffer._HEADER_MASK_INDEX]

    def needs_length(self) -> bool:
        return self.length is None

    def recv_length(self) -> None:
        if self.header is None:
            raise WebSocketProtocolException("Header not received")
        short_len = self.header[frame_buffer._HEADER_LENGTH_INDEX] & 0x7F
        if short_len == 126:
            (self.length,) = struct.unpack("!H", self.recv_strict(2))
        elif short_len == 127:
            (self.length,) = struct.unpack("!Q", self.recv_strict(8))
        else:
            self.length = short_len

    def needs_mask(self) -> bool:
        return self.mask_value is None

    def recv_mask(self) -> None:
        self.mask_value = self.recv_strict(4) if self.has_mask() else ""

    def recv_frame(self) -> ABNF:
        """Read, unmask and validate one frame."""
        with self.lock:
            if self.needs_header():
                self.recv_header()
            header = self.header
            if header is None:
                raise WebSocketProtocolException("Header not received")
            fin, rsv1, rsv2, rsv3, opcode, masked, _ = header

            if self.needs_length():
                self.recv_length()
            if self.needs_mask():
                self.recv_mask()

            length = self.length
            if length is None:
                raise WebSocketProtocolException("Length not received")
            payload = self.recv_strict(length)
            if masked:
                key = self.mask_value
                if key is None:
                    raise WebSocketProtocolException("Mask not received")
                payload = ABNF.mask(key, payload)

            self.clear()
            frame = ABNF(fin, rsv1, rsv2, rsv3, opcode, masked, payload)
            frame.validate(self.skip_utf8_validation)
        return frame

    def recv_strict(self, bufsize: int) -> bytes:
        """Exactly ``bufsize`` bytes, read in chunks of at most 16 KiB.

        If ``recv_fn`` returns something that is not bytes, reading stops and what is
        buffered is returned (possibly short), like websocket-client. An empty read means
        the peer closed: :class:`WebSocketConnectionClosedException` (websocket-client
        would call ``recv_fn`` again forever).
        """
        if not isinstance(bufsize, int):
            raise ValueError("bufsize must be an integer")
        have = sum(len(chunk) for chunk in self.recv_buffer)
        while have < bufsize:
            chunk = self.recv(min(self._MAX_READ, bufsize - have))
            if not isinstance(chunk, (bytes, bytearray)):
                break
            if not chunk:
                raise WebSocketConnectionClosedException(
                    "Connection to remote host was lost."
                )
            self.recv_buffer.append(bytes(chunk))
            have += len(chunk)

        if len(self.recv_buffer) == 1:
            joined = self.recv_buffer[0]
        else:
            joined = b"".join(self.recv_buffer)
        if len(joined) <= bufsize:
            self.recv_buffer = []
            return joined
        self.recv_buffer = [joined[bufsize:]]
        return joined[:bufsize]


class continuous_frame:
    """Reassembles a fragmented message.

    ``cont_data`` is ``[opcode, data]`` of the message being assembled and
    ``recving_frames`` the opcode of the message in progress (None between messages).
    With ``fire_cont_frame`` every fragment is handed out as it comes.
    """

    fire_cont_frame: bool
    skip_utf8_validation: bool
    cont_data: Optional[List[Any]]
    recving_frames: Optional[int]

    def __init__(self, fire_cont_frame: bool, skip_utf8_validation: bool) -> None:
        self.fire_cont_frame = fire_cont_frame
        self.skip_utf8_validation = skip_utf8_validation
        self.cont_data = None
        self.recving_frames = None

    def validate(self, frame: ABNF) -> None:
        """A CONT frame needs a message in progress; TEXT/BINARY must not interrupt one."""
        in_progress = bool(self.recving_frames)
        if frame.opcode == ABNF.OPCODE_CONT and not in_progress:
            raise WebSocketProtocolException("Illegal frame")
        if in_progress and frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
            raise WebSocketProtocolException("Illegal frame")

    def add(self, frame: ABNF) -> None:
        if self.cont_data:
            so_far = self.cont_data[1]
            if isinstance(so_far, (bytes, bytearray)) and isinstance(
                frame.data, (bytes, bytearray)
            ):
                # Grow in place: repeated bytes concatenation is quadratic.
                if not isinstance(so_far, bytearray):
                    so_far = bytearray(so_far)
                so_far += frame.data
                self.cont_data[1] = so_far
            else:
                self.cont_data[1] = so_far + frame.data
        else:
            if frame.opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                self.recving_frames = frame.opcode
            self.cont_data = [frame.opcode, frame.data]
        if frame.fin:
            self.recving_frames = None

    def is_fire(self, frame: ABNF) -> Union[bool, int]:
        return frame.fin or self.fire_cont_frame

    def extract(self, frame: ABNF) -> Tuple[int, ABNF]:
        """Move the assembled data into ``frame`` and return ``(first opcode, frame)``.

        A whole TEXT message (not fired fragment by fragment) must be valid UTF-8 unless
        ``skip_utf8_validation``: :class:`WebSocketPayloadException` otherwise.
        """
        pending = self.cont_data
        if pending is None:
            raise WebSocketProtocolException("No continuation data available")
        self.cont_data = None
        opcode, data = pending
        if isinstance(data, bytearray):
            data = bytes(data)
        frame.data = data
        if (
            opcode == ABNF.OPCODE_TEXT
            and not self.fire_cont_frame
            and not self.skip_utf8_validation
            and not validate_utf8(data)
        ):
            raise WebSocketPayloadException(f"cannot decode: {data!r}")
        return opcode, frame
