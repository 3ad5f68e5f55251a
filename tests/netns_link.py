"""Two network namespaces joined by a veth pair, with random packet loss, for the packet-loss
test in test_network_faults.py. Linux only, as root, with ``ip`` (iproute2) and ``nft``
(nftables); the kernel needs network namespaces, veth, nf_tables and its ``numgen``
expression (this kernel has no ``tc netem``, so loss is made by netfilter instead).

``LossyLink(loss_percent)`` creates the namespaces ``wsrf<pid>c`` (client) and ``wsrf<pid>s``
(server) with addresses ``CLIENT_ADDR`` and ``SERVER_ADDR`` on the two ends of a veth pair,
and in each namespace an nftables rule ``numgen random mod 100 < loss_percent drop`` on
input: every packet, either way, data and ACKs alike, is dropped with that probability.
Segmentation offload is turned off on the veth (``gso_max_segs 1``) so that a packet is one
wire segment, not a 64 KiB super-packet.
``stats()`` reads the rules' counters; ``argv(side, *cmd)`` prefixes a command with
``ip netns exec``; ``close()`` deletes both namespaces (and so the veth pair).

The addresses are link-local (169.254/16): the link exists only between the two namespaces,
nothing is routed anywhere else, and the host's own network is not touched.

``python netns_link.py client URL N`` (run inside the client namespace): connects, sends N
messages pipelined (all, then receives all), checks that they come back intact and in order,
closes, and prints one JSON line: ``{"ok": ..., "received": ..., "elapsed": ..., "error": ...}``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

CLIENT_ADDR = "169.254.77.1"
SERVER_ADDR = "169.254.77.2"


def missing_requirements() -> str | None:
    """Why a LossyLink cannot be made here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root (ip netns, nft)"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"needs {tool!r} (Debian package {package}: apt-get install -y {package})"
    return None


def _run(*cmd, input=None):
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class LossyLink:
    def __init__(self, loss_percent: int = 5):
        tag = f"wsrf{os.getpid()}"
        self.ns = {"client": f"{tag}c", "server": f"{tag}s"}
        self.loss_percent = loss_percent
        self._made: list[str] = []
        try:
            self._setup(tag)
        except BaseException:
            self.close()
            raise

    def _setup(self, tag):
        c, s = self.ns["client"], self.ns["server"]
        for ns in (c, s):
            _run("ip", "netns", "add", ns)
            self._made.append(ns)
        _run("ip", "link", "add", f"{tag}c", "netns", c,
             "type", "veth", "peer", "name", f"{tag}s", "netns", s)
        for ns, dev, addr in ((c, f"{tag}c", CLIENT_ADDR), (s, f"{tag}s", SERVER_ADDR)):
            _run("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
            # No segmentation offload: TCP hands the veth one packet per wire segment (by
            # default it passes 64 KiB super-packets, and each would be dropped as one).
            _run("ip", "-n", ns, "link", "set", dev, "gso_max_size", "1500", "gso_max_segs", "1")
            rules = (
                "table inet wsrf_loss {\n"
                "  chain input {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f'    iifname "{dev}" counter\n'
                f'    iifname "{dev}" numgen random mod 100 < {int(self.loss_percent)} counter drop\n'
                "  }\n"
                "}\n"
            )
            _run("ip", "netns", "exec", ns, "nft", "-f", "-", input=rules)

    def argv(self, side: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns[side], *cmd]

    def stats(self) -> dict[str, dict[str, int]]:
        """Packets that came in on the veth so far, and how many of them were dropped, per
        side: ``{"client": {"packets": ..., "dropped": ...}, "server": {...}}``."""
        out = {}
        for side, ns in self.ns.items():
            text = _run("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "wsrf_loss")
            counts = [int(n) for n in re.findall(r"counter packets (\d+)", text)]
            if len(counts) != 2:
                raise RuntimeError(f"unexpected nft counters in {ns}: {text!r}")
            out[side] = {"packets": counts[0], "dropped": counts[1]}
        return out

    def close(self):
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._made = []


# -- the client, run inside the client namespace ------------------------------------------

def client_main(url: str, n: int) -> dict:
    import websocket
    from servers import numbered_message as message

    t0 = time.monotonic()
    result = {"ok": False, "received": 0, "error": None}
    try:
        ws = websocket.create_connection(url, timeout=30)
        try:
            for i in range(n):
                m = message(i)
                if isinstance(m, str):
                    ws.send(m)
                else:
                    ws.send_binary(m)
            for i in range(n):
                got = ws.recv()
                if got != message(i):
                    head = got[:22] if isinstance(got, (str, bytes)) else got
                    result["error"] = (f"message {i} is not the one sent: "
                                       f"{type(got).__name__} {head!r}, {len(got)} long")
                    break
                result["received"] = i + 1
            else:
                result["ok"] = True
        finally:
            ws.close()
    except Exception as e:  # noqa: BLE001 - reported to the test
        result["error"] = f"{type(e).__name__}: {e}"
    result["elapsed"] = round(time.monotonic() - t0, 3)
    return result


if __name__ == "__main__":
    if sys.argv[1] == "client":
        print(json.dumps(client_main(sys.argv[2], int(sys.argv[3]))), flush=True)
