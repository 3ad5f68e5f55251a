"""A server that pushes data the moment the handshake is done, for test_data_waiting.py.

Run as ``python push_server.py [CERTFILE KEYFILE]``: it serves ws:// (and wss:// when given a
certificate chain and key) on 127.0.0.1, prints ``<ws port> <wss port or 0>`` on stdout and
runs until its stdin is closed. It is a separate process so that the client's memory can be
measured alone, and so that the client's Python threads never compete with the server's.

Each connection says what to push in its query string:

* ``total``: bytes of payload to push (the messages' sizes add up to at least this much);
* ``lo``, ``hi``: message sizes, varying deterministically between the two (``size(i)``);
* ``frag``: 0 to send each message in one frame, else the fragment size in bytes;
* ``upload``: bytes the client uploads meanwhile (binary messages of any size); the server
  reads them while it pushes and reports their SHA-256.

Message ``i`` is ``message(i, lo, hi)``: odd ones are text, even ones binary; each starts with
its sequence number, so a lost, repeated or reordered message is named in the failure. When
everything is pushed (and the upload read), a final text message ``END {json}`` reports
``count``, ``bytes`` and ``sha256`` of what was pushed, ``upload_bytes``/``upload_sha256``,
and ``deflate`` (whether permessage-deflate was negotiated; the server accepts it when the
client offers it). Then the server waits for the client's close.

``message`` and ``size`` are imported by the tests to know what to expect.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import ssl
import sys
from urllib.parse import parse_qs, urlsplit

HEADER = 10  # the sequence number, as 10 ASCII digits


def _block() -> bytes:
    # ASCII (valid UTF-8 for the text messages), compressible about 2.5x like a JSON feed,
    # and random, so no two parts of it are alike: a misplaced chunk cannot compare equal.
    alphabet = b"eeeeeeeetttttaaaaoooiiinnnsshhrrdlcumwfgypbvk:,{}[]\" 0123456789"
    table = bytes(alphabet[b % len(alphabet)] for b in range(256))
    return random.Random(1234).randbytes(2 << 20).translate(table)


BLOCK = _block()
BLOCK_SPAN = len(BLOCK) - (1 << 20)  # where a message's body may start (bodies are <= 1 MiB)


def size(i: int, lo: int, hi: int) -> int:
    """The size of message ``i`` (at least HEADER, at most 1 MiB)."""
    return lo + (i * 7919) % (hi - lo + 1)


def message(i: int, lo: int, hi: int):
    """Message ``i``: str when ``i`` is odd, bytes when even."""
    n = size(i, lo, hi)
    off = (i * 104729) % BLOCK_SPAN
    data = b"%010d" % i + BLOCK[off : off + n - HEADER]
    return data.decode("ascii") if i % 2 else data


class Expect:
    """The client's side: ``expect(m)`` checks that the ``i``-th message received is exactly
    ``message(i, lo, hi)`` (AssertionError naming it otherwise); returns None, or at the
    ``END`` message the server's report plus ``received`` (how many messages came before).
    ``text_as_bytes``: accept text messages as bytes (websocket-client 1.9.2's WebSocketApp
    passes them so under ``skip_utf8_validation``)."""

    def __init__(self, lo: int, hi: int, text_as_bytes: bool = False):
        self.lo, self.hi, self.text_as_bytes = lo, hi, text_as_bytes
        self.i = 0

    def __call__(self, m):
        if self.text_as_bytes and isinstance(m, bytes) and (self.i % 2 or m.startswith(b"END ")):
            m = m.decode()
        if isinstance(m, str) and m.startswith("END "):
            return dict(json.loads(m[4:]), received=self.i)
        want = message(self.i, self.lo, self.hi)
        if m != want:
            head = m[:HEADER] if isinstance(m, (str, bytes)) else m
            raise AssertionError(
                f"message #{self.i}: got {type(m).__name__} of {len(m)} bytes starting {head!r}, "
                f"expected {type(want).__name__} of {len(want)} bytes starting {want[:HEADER]!r}"
            )
        self.i += 1
        return None


def read_all(recv, lo: int, hi: int) -> dict:
    """Calls ``recv()`` until the ``END`` report, checking every message (``Expect``)."""
    expect = Expect(lo, hi)
    while True:
        report = expect(recv())
        if report is not None:
            return report


def fragments(data, frag: int):
    return [data[k : k + frag] for k in range(0, len(data), frag)]


async def _handler(ws):
    url = urlsplit(ws.request.path)
    q = {k: int(v[-1]) for k, v in parse_qs(url.query).items()}
    total, lo, hi = q["total"], q["lo"], q["hi"]
    frag, upload = q.get("frag", 0), q.get("upload", 0)
    assert HEADER <= lo <= hi <= 1 << 20

    async def push():
        h = hashlib.sha256()
        i = sent = 0
        while sent < total:
            m = message(i, lo, hi)
            await ws.send(fragments(m, frag) if frag else m)
            h.update(m.encode("ascii") if isinstance(m, str) else m)
            sent += len(m)
            i += 1
        return {"count": i, "bytes": sent, "sha256": h.hexdigest()}

    pusher = asyncio.ensure_future(push())
    h = hashlib.sha256()
    got = 0
    while got < upload:
        m = await ws.recv()
        m = m.encode() if isinstance(m, str) else m
        h.update(m)
        got += len(m)
    report = await pusher
    report.update(upload_bytes=got, upload_sha256=h.hexdigest())
    report["deflate"] = any(e.name == "permessage-deflate" for e in ws.protocol.extensions)
    await ws.send("END " + json.dumps(report))
    await ws.wait_closed()


async def _main(certfile, keyfile):
    from websockets.asyncio.server import serve

    opts = dict(max_size=None, max_queue=None, ping_interval=None, close_timeout=2, compression="deflate")
    async with serve(_handler, "127.0.0.1", 0, **opts) as plain:
        wss_port = 0
        tls = None
        if certfile:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(certfile, keyfile)
            tls = await serve(_handler, "127.0.0.1", 0, ssl=ctx, **opts).__aenter__()
            wss_port = tls.sockets[0].getsockname()[1]
        print(plain.sockets[0].getsockname()[1], wss_port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
        if tls is not None:
            tls.close()


if __name__ == "__main__":
    asyncio.run(_main(*(sys.argv[1:3] if len(sys.argv) >= 3 else (None, None))))
    os._exit(0)
