"""Data that waits: a server pushes right after the handshake, and the client reads only later.

Production situations: a market-data or notification feed that starts streaming at once while
the client is still busy (loading, subscribing, another thread uploading), and a slow
``on_message`` that cannot keep up. Issue 11: over wss://, a first ``recv()`` half a second
after connecting to such a server raised ``TLS buffer full`` and lost the connection, because
the TLS read path handed rustls more wire bytes than its 16 KiB plaintext buffer takes. Every
other TLS test reads as fast as the server writes, so none saw it.

Each test runs over ws:// and wss:// (one body, parametrized). The server (push_server.py)
runs in another process so the client's memory can be measured alone; it pushes what the URL
asks, and its messages carry sequence numbers, so the client checks every message's bytes and
position, then the server's final count and SHA-256.

The matrix, over ws:// and wss:// each. Sizes 64 KiB, 1 MiB, 16 MiB and 128 MiB (twice the
engine's 64 MiB high-water mark); small messages (100 B to 1 KiB, sizes varying) and large
ones (16 KiB to 1 MiB); whole and fragmented; with and without permessage-deflate:

* ``PUSHES`` (create_connection, 0.6 s before the first recv): 64 KiB as four 16 KiB messages
  (the smallest push that always failed in issue 11); 64 KiB small, in 64-byte fragments,
  deflate; 1 MiB small, deflate; 1 MiB as one message in 16 KiB fragments; 16 MiB small;
  16 MiB as 1 MiB messages in 64 KiB fragments, deflate; 128 MiB as 1 MiB messages.
* ``UPLOAD_PUSHES`` (8 MiB uploaded by another thread meanwhile): 16 MiB small, deflate (so
  the upload is compressed too); 128 MiB as 1 MiB messages.
* ``SLOW_READER_PUSHES`` (WebSocketApp, slow on_message): 128 MiB as 256 KiB to 1 MiB
  messages in 128 KiB fragments.
* the memory test: 128 MiB as 256 KiB to 1 MiB messages, read by recv() or a slow
  on_message.

Every shape meets every size where it is cheap; beyond that, small messages stop at 16 MiB (a
Python server sends them at about 30 000 per second, so 128 MiB of them would take a minute)
and so does deflate (the server's zlib took 5 s per 128 MiB case). The file runs in about 30 s.

websocket-client 1.9.2 (the reference) runs them too, except the deflate cases: it has no
permessage-deflate. It has no flow control either, but needs none here (it reads nothing
until asked, so the data waits in the kernel and the server); the memory test then measures
kernel buffering only, and passes. It runs with ``skip_utf8_validation=True``: its pure
Python UTF-8 check would take 20 s per 128 MiB test.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import pytest

import websocket

import push_server
from servers import stop_child

pytestmark = pytest.mark.timeout(120)

STRICT = hasattr(websocket, "_native")
HERE = os.path.dirname(os.path.abspath(__file__))

KiB, MiB = 1 << 10, 1 << 20
# How long the client leaves the pushed data unread after connecting.
WAIT_BEFORE_FIRST_READ = 0.6
UPLOAD = 8 * MiB
UPLOAD_MESSAGE = 128 * KiB


@dataclass(frozen=True)
class Push:
    total: int
    lo: int
    hi: int
    frag: int = 0
    deflate: bool = False

    def query(self, upload: int = 0) -> str:
        return f"/?total={self.total}&lo={self.lo}&hi={self.hi}&frag={self.frag}&upload={upload}"


def case(name, push):
    marks = []
    if push.deflate:
        marks.append(pytest.mark.skipif(not STRICT, reason="websocket-client 1.9.2 has no permessage-deflate"))
    return pytest.param(push, id=name, marks=marks)


SMALL = dict(lo=100, hi=1 * KiB)
LARGE = dict(lo=1 * MiB, hi=1 * MiB)

PUSHES = [
    # Four 16 KiB messages (four full TLS records): the smallest push that failed in issue 11
    # every time. The old code survived one 64 KiB message (read straight into the message
    # buffer), and small messages up to about 64 KiB most of the time.
    case("64KiB-16KiB-messages", Push(64 * KiB, lo=16 * KiB, hi=16 * KiB)),
    case("64KiB-small-fragmented-deflate", Push(64 * KiB, **SMALL, frag=64, deflate=True)),
    case("1MiB-small-deflate", Push(1 * MiB, **SMALL, deflate=True)),
    case("1MiB-large-fragmented", Push(1 * MiB, **LARGE, frag=16 * KiB)),
    case("16MiB-small", Push(16 * MiB, **SMALL)),
    case("16MiB-large-fragmented-deflate", Push(16 * MiB, **LARGE, frag=64 * KiB, deflate=True)),
    # Twice the high-water mark: the engine must stop reading, then resume as recv drains.
    case("128MiB-large", Push(128 * MiB, **LARGE)),
]

# The variants run a shorter list: one case below the high-water mark, one beyond it.
UPLOAD_PUSHES = [
    case("16MiB-small-deflate", Push(16 * MiB, **SMALL, deflate=True)),
    case("128MiB-large", Push(128 * MiB, **LARGE)),
]
SLOW_READER_PUSHES = [
    case("128MiB-large-fragmented", Push(128 * MiB, lo=256 * KiB, hi=1 * MiB, frag=128 * KiB)),
]
MEMORY_PUSH = case("128MiB-large", Push(128 * MiB, lo=256 * KiB, hi=1 * MiB))


@pytest.fixture(scope="module")
def push_srv(tls_ca, tmp_path_factory):
    """push_server.py in a child process, serving ws:// and wss:// (trustme certificate)."""
    pem = tmp_path_factory.mktemp("push") / "server.pem"
    tls_ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "push_server.py"), str(pem), str(pem)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ws_port, wss_port = map(int, proc.stdout.readline().split())
        yield {"ws": ws_port, "wss": wss_port}
    finally:
        stop_child(proc)


@pytest.fixture(params=["ws", "wss"])
def scheme(request):
    return request.param


@pytest.fixture
def target(push_srv, scheme, ca_file):
    """``target(push, upload=0)``: (url, connect options) for this scheme."""

    def make(push: Push, upload: int = 0):
        url = f"{scheme}://127.0.0.1:{push_srv[scheme]}{push.query(upload)}"
        opts = {}
        if scheme == "wss":
            opts["sslopt"] = {"ca_certs": ca_file}
        if push.deflate:
            opts["compression"] = True
        if not STRICT:
            # The reference validates UTF-8 in pure Python (without wsaccel) at about 7 MB/s,
            # 20 s per 128 MiB test; validation is not what these tests are about.
            opts["skip_utf8_validation"] = True
        return url, opts

    return make


def check_report(report: dict, push: Push, upload: bytes = b""):
    assert report["received"] == report["count"]
    assert report["bytes"] >= push.total
    if STRICT:  # the test must really run compressed when it says so
        assert report["deflate"] == push.deflate
    assert report["upload_bytes"] == len(upload)
    assert report["upload_sha256"] == hashlib.sha256(upload).hexdigest()


@pytest.mark.parametrize("push", PUSHES)
def test_feed_pushed_before_the_first_recv_is_read_whole_and_in_order(target, push):
    """A feed that streams from the handshake on, read only after the client finished
    something else: nothing is lost, reordered or fails, however much waits."""
    url, opts = target(push)
    ws = websocket.create_connection(url, timeout=30, **opts)
    try:
        time.sleep(WAIT_BEFORE_FIRST_READ)
        report = push_server.read_all(ws.recv, push.lo, push.hi)
    finally:
        ws.close()
    check_report(report, push)


def _upload_data() -> bytes:
    return hashlib.sha256(b"upload").digest() * (UPLOAD // 32)


@pytest.mark.parametrize("push", UPLOAD_PUSHES)
def test_feed_pushed_while_another_thread_uploads(target, push):
    """A client that uploads (a file, a batch of orders) from one thread while the server's
    feed piles up unread, then reads it: both directions arrive intact."""
    url, opts = target(push, upload=UPLOAD)
    data = _upload_data()
    errors = []

    def uploader():
        try:
            for k in range(0, len(data), UPLOAD_MESSAGE):
                ws.send_binary(data[k : k + UPLOAD_MESSAGE])
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    ws = websocket.create_connection(url, timeout=30, **opts)
    try:
        t = threading.Thread(target=uploader, daemon=True)
        t.start()
        time.sleep(WAIT_BEFORE_FIRST_READ)
        report = push_server.read_all(ws.recv, push.lo, push.hi)
        t.join(30)
        assert not t.is_alive(), "the upload did not finish"
    finally:
        ws.close()
    assert not errors, errors
    check_report(report, push, data)


def slow_app(url, opts, push, on_open_wait):
    """A WebSocketApp whose on_open calls ``on_open_wait()`` and whose on_message checks each
    message (push_server.Expect), then sleeps 8 ms: with messages of 640 KiB on average that
    is at most 80 MB/s, slower than the server pushes. Returns (report, errors)."""
    expect = push_server.Expect(push.lo, push.hi, text_as_bytes=not STRICT)
    state = {"report": None, "errors": []}

    def on_message(app, m):
        try:
            state["report"] = expect(m)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            state["errors"].append(e)
        if state["report"] is not None or state["errors"]:
            app.close()
        else:
            time.sleep(0.008)

    def on_error(app, e):
        state["errors"].append(e)

    app = websocket.WebSocketApp(url, on_open=lambda app: on_open_wait(), on_message=on_message, on_error=on_error)
    t = threading.Thread(target=app.run_forever, kwargs=opts, daemon=True)
    t.start()
    t.join(90)
    if t.is_alive():
        app.close()
        t.join(5)
        state["errors"].append(f"run_forever still running after 90 s, {expect.i} messages handled")
    if state["report"] is None and not state["errors"]:
        state["errors"].append(f"no END report, {expect.i} messages handled")
    return state["report"], state["errors"]


@pytest.mark.parametrize("push", SLOW_READER_PUSHES)
def test_slow_on_message_callback_gets_every_pushed_message_in_order(target, push):
    """A WebSocketApp whose on_open takes a second and whose on_message is slower than the
    feed: the backlog grows past the engine's high-water mark (reading pauses), then drains
    below the low-water mark (reading resumes), and again; every message arrives, in order."""
    url, opts = target(push)
    report, errors = slow_app(url, opts, push, lambda: time.sleep(1.0))
    assert not errors, errors
    check_report(report, push)


# ---- memory ------------------------------------------------------------------------------

RSS_CLIENT = r"""
import json, sys, time
import websocket, push_server
from test_data_waiting import Push, slow_app  # this file: the child's PYTHONPATH has tests/

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)

reader, url, opts, lo, hi = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
base = status("VmRSS")
m = {}

def wait_unread():
    # Leave the push unread until the client's memory stops growing (the engine paused at
    # its high-water mark or, without read-ahead, the kernel's buffers are full).
    unread, last_change, t0 = status("VmRSS"), time.monotonic(), time.monotonic()
    while time.monotonic() - last_change < 1.0 and time.monotonic() - t0 < 15:
        time.sleep(0.05)
        now = status("VmRSS")
        if now > unread + (1 << 20):
            last_change = time.monotonic()
        unread = max(unread, now)
    m.update(unread=unread, waited=time.monotonic() - t0)

if reader == "recv":
    ws = websocket.create_connection(url, timeout=60, **opts)
    wait_unread()
    report = push_server.read_all(ws.recv, lo, hi)
    ws.close()
else:
    report, errors = slow_app(url, opts, Push(0, lo, hi), wait_unread)
    assert not errors, errors
print(json.dumps(dict(m, base=base, peak=status("VmHWM"), report=report)))
"""


@pytest.mark.parametrize(
    "reader",
    [
        "recv",
        # WebSocketApp's batches are bounded in bytes (Receiver::take_batch): the engine's
        # queue does not empty into Python while it refills (3x the high-water mark before).
        "slow-on_message",
    ],
)
@pytest.mark.parametrize("push", [MEMORY_PUSH])
def test_client_memory_stays_bounded_while_128MiB_wait_unread(target, push, reader, child_env):
    """A client that does not read while a server pushes twice the high-water mark, then
    reads with recv(), or through a slow on_message: its memory grows to about the mark and
    no further (the engine stops reading the socket), and everything is delivered. Measured
    in a fresh client process: VmRSS while the data waits, VmHWM for the peak of the run."""
    url, opts = target(push)
    out = subprocess.run(
        [sys.executable, "-c", RSS_CLIENT, reader, url, json.dumps(opts), str(push.lo), str(push.hi)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.splitlines()[-1])
    check_report(r["report"], push)
    unread, peak = (r["unread"] - r["base"]) / MiB, (r["peak"] - r["base"]) / MiB
    print(
        f"\nRSS over a base of {r['base'] / MiB:.0f} MiB ({reader}): +{unread:.0f} MiB with the push unread "
        f"(after {r['waited']:.1f} s), peak +{peak:.0f} MiB"
    )
    # 64 MiB high-water mark + 64 MiB for what Python and the allocator hold.
    assert peak < 128, f"peak RSS grew by {peak:.0f} MiB (unread: +{unread:.0f} MiB)"
