"""RFC 6455 / RFC 7692 conformance: the Autobahn test suite's 517 client cases.

For each driver, a child process starts the Autobahn fuzzing server of the ``kosoku``
package (``kosoku -m fuzzingserver``) on 127.0.0.1 and drives every case, one after the
other, with an echo client written only against the public API, compression on: it sends
back every message it receives and leaves pings, close codes and failures to the library.
The drivers run at the same time. Then the test reads each server's report (``index.json``
in its output folder) and fails unless every case is OK or INFORMATIONAL, for the message
exchange and for the closing handshake alike.

Reports go to temporary folders, or to ``$AUTOBAHN_REPORTS/<driver>`` when set
(``reports/`` is git-ignored); ``index.html`` there shows each case. ``python
tests/test_autobahn.py DRIVER OUTDIR`` runs one driver's cases alone. The whole run takes a few minutes, most
of it in the 12.* and 13.* compression cases (1000 messages of up to 128 KiB each).

Only for websocket-rust: websocket-client 1.9.2 has no ``compression`` option (it passes
286 of the 517 cases).
"""

import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import websocket
from websocket import ABNF, WebSocketException

pytestmark = [
    pytest.mark.skipif(
        not hasattr(websocket, "_native"), reason="websocket-rust only (needs the compression option)"
    ),
    pytest.mark.skipif(sys.version_info < (3, 10), reason="kosoku needs Python 3.10 or newer"),
]

CASES = 517
AGENT = "websocket-rust"
#: The offer: client_no_context_takeover too, since Autobahn's 13.2, 13.5 and 13.6 servers
#: only accept offers that allow it (the others accept the default offer as well).
COMPRESSION = {"client_no_context_takeover": True, "client_max_window_bits": True}
PASSING = ("OK", "INFORMATIONAL")


def _kosoku():
    """The ``kosoku`` command installed next to this interpreter (requirements-test.txt)."""
    exe = os.path.join(os.path.dirname(sys.executable), "kosoku")
    found = exe if os.path.exists(exe) else shutil.which("kosoku")
    if not found:
        pytest.fail("kosoku is not installed: pip install -r requirements-test.txt")
    return found


def _start_server(outdir):
    """Starts the fuzzing server on a free port; returns the process and its ws:// URL."""
    proc = subprocess.Popen(
        [_kosoku(), "-m", "fuzzingserver", "-o", outdir, "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    m = re.search(r"listening on (ws://\S+)", line)
    if not m:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"kosoku did not start: {line}{err}{out}")
    return proc, m.group(1)


def _echo_case(url):
    """One case: echo every message until the server closes or the library fails."""
    ws = websocket.create_connection(url, timeout=60, compression=COMPRESSION)
    try:
        while True:
            opcode, data = ws.recv_data()
            if opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                ws.send(data, opcode)
            elif opcode == ABNF.OPCODE_CLOSE:
                # The library has already answered the close; close() only waits for the
                # TCP connection to end.
                ws.close()
                return
    except (WebSocketException, OSError):
        # A protocol failure: the library has sent its close code and dropped the TCP
        # connection. Release the socket without sending anything of our own.
        ws.shutdown()


def run_cases(driver, outdir):
    """Every case with ``driver`` as the default driver, against a fuzzing server of its own
    writing its report to ``outdir``; returns the seconds the cases took."""
    websocket.setdefaultdriver(driver)
    agent = f"{AGENT}-{driver}"
    proc, base = _start_server(outdir)
    try:
        ws = websocket.create_connection(base + "/getCaseCount", timeout=10)
        count = int(ws.recv())
        ws.close()
        assert count == CASES, f"the server has {count} cases, not {CASES}"
        started = time.monotonic()
        for i in range(1, count + 1):
            _echo_case(f"{base}/runCase?case={i}&agent={agent}")
        elapsed = time.monotonic() - started
        ws = websocket.create_connection(f"{base}/updateReports?agent={agent}", timeout=10)
        ws.close()
        proc.communicate(timeout=120)  # it writes the reports, then exits
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return elapsed


def _check_report(driver, outdir, elapsed):
    with open(os.path.join(outdir, "index.json")) as f:
        results = json.load(f)[f"{AGENT}-{driver}"]
    behaviors = collections.Counter(r["behavior"] for r in results.values())
    closes = collections.Counter(r["behaviorClose"] for r in results.values())
    print(f"\nAutobahn, {driver} driver: {len(results)} cases in {elapsed} s; behavior "
          f"{dict(behaviors)}, close {dict(closes)}; reports in {outdir}")
    bad = {
        case: f"{r['behavior']} / {r['behaviorClose']}"
        for case, r in results.items()
        if r["behavior"] not in PASSING or r["behaviorClose"] not in PASSING
    }
    for case, what in sorted(bad.items(), key=lambda kv: [int(p) for p in kv[0].split(".")]):
        print(f"  {case}: {what}")
    assert len(results) == CASES, f"{driver}: {len(results)} cases reported"
    assert not bad, f"{driver}: {len(bad)} Autobahn cases not OK: {', '.join(sorted(bad))}"


# Each driver's cases run in a child process of its own with its own fuzzing server, the
# drivers at the same time: one run after the other took 11.5 of CI's minutes, and a run
# waits on the server and the network as much as it computes.
@pytest.mark.own_driver
@pytest.mark.timeout(1800)
def test_autobahn_client_cases():
    from conftest import DRIVERS

    base = os.environ.get("AUTOBAHN_REPORTS")
    children = {}
    for driver in DRIVERS:
        outdir = os.path.join(base, driver) if base else tempfile.mkdtemp(prefix=f"autobahn-{driver}-")
        os.makedirs(outdir, exist_ok=True)
        children[driver] = (
            outdir,
            subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), driver, outdir],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
    outputs = {}
    try:
        for driver, (outdir, child) in children.items():
            outputs[driver] = child.communicate(timeout=1700)[0]
    finally:
        for _, child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    for driver, (outdir, child) in children.items():
        out = outputs[driver]
        assert child.returncode == 0, f"the {driver} driver's run failed:\n{out}"
        m = re.search(r"cases took (\d+) s", out)
        _check_report(driver, outdir, m.group(1) if m else "?")


if __name__ == "__main__":
    print(f"cases took {run_cases(sys.argv[1], sys.argv[2]):.0f} s")
