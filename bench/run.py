#!/usr/bin/env python3
"""The speed benchmark: this package against its peers, side by side, as ratios.

    python bench/run.py            # full run (a few minutes), markdown report on stdout
    python bench/run.py --quick    # smoke run: one round, a tenth of the counts

Sets up everything it needs under bench/.work/ (kept between runs, so later runs are quick):
  - venv-self:  this package, built from the checkout with maturin (--profile dist: fat LTO);
  - venv-peers: websocket-client 1.9.2, wsaccel, websockets 17, picows 2.3;
  - rust-target: bench/rust (the echo/push server, the tungstenite and raw TCP clients).
The server runs pinned to CPU 0, every client process to CPU 1. Each (scenario, round, client)
is a fresh process; the clients' order rotates from round to round. Ratios are computed
pairwise within a round, then the median over the rounds is reported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"

PEER_REQUIREMENTS = ["websocket-client==1.9.2", "wsaccel==0.6.7", "websockets==17.*", "picows==2.3.*"]
MATURIN = "maturin>=1.5,<2"

# name, runner, description
CLIENTS = [
    ("wsr", "self", "this package (websocket-rust)"),
    ("wsc", "peers", "websocket-client 1.9.2, pure Python"),
    ("wsc-accel", "peers", "websocket-client 1.9.2 + wsaccel"),
    ("websockets", "peers", "websockets 17, sync client"),
    ("picows", "peers", "picows 2.3, asyncio (callbacks)"),
    ("tungstenite", "rust", "plain Rust tungstenite client (ceiling)"),
    ("tcp", "rust", "raw TCP ping-pong of the same bytes, Rust (floor)"),
    ("tcp-py", "peers", "raw TCP ping-pong of the same bytes, Python socket"),
]
PY_PEERS = ["wsc", "wsc-accel", "websockets", "picows"]

# name: (count, quick count, warm-up, unit, description)
SCENARIOS: Dict[str, Dict[str, Any]] = {
    "rt64": dict(n=20000, quick=2000, warmup=500, unit="msg/s", desc="64-byte text message sent and echoed, in sequence"),
    "echo16k": dict(n=5000, quick=500, warmup=100, unit="msg/s", desc="16 KiB binary echo"),
    "echo1m": dict(n=200, quick=20, warmup=5, unit="MB/s", desc="1 MiB binary echo (MB/s = 10^6 payload bytes/s, one way)"),
    "push100": dict(n=200000, quick=20000, warmup=0, unit="msg/s", desc="server pushes 100-byte text messages; recv() loop"),
    "push100app": dict(n=200000, quick=20000, warmup=0, unit="msg/s", desc="the same through WebSocketApp.on_message"),
    "handshake": dict(n=500, quick=50, warmup=10, unit="conn/s", desc="sequential connect + handshake + close"),
    "idle200": dict(n=200, quick=200, warmup=0, unit="KiB/conn", desc="RSS added per idle open connection, threads included"),
}
ECHO_ONLY = {"tcp", "tcp-py"}
SIZES = {"echo1m": 1024 * 1024}

# The targets, checked on the median pairwise ratios.
# (scenario, kind, value): kind "peers" = ahead of every Python peer; "wsc" = at least value x
# websocket-client; "tung" = within value x of tungstenite; "kib" = at most value KiB/conn.
TARGETS = [
    ("rt64", "peers", 1.0), ("echo16k", "peers", 1.0), ("echo1m", "peers", 1.0),
    ("push100", "peers", 1.0), ("push100app", "peers", 1.0), ("handshake", "peers", 1.0),
    ("rt64", "wsc", 2.0), ("echo16k", "wsc", 2.0), ("echo1m", "wsc", 6.0),
    ("push100", "wsc", 30.0), ("push100app", "wsc", 10.0),
    ("rt64", "tung", 1.3), ("echo1m", "tung", 1.3),
    ("idle200", "kib", 4.0),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: List[str], **kw: Any) -> None:
    log("+ " + " ".join(str(c) for c in cmd))
    subprocess.run(cmd, check=True, **kw)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def ensure_venv(venv: Path, requirements: List[str]) -> Path:
    """A venv with exactly `requirements` installed (re-created when they change)."""
    marker = venv / ".bench-requirements"
    want = "\n".join(requirements)
    if marker.exists() and marker.read_text() == want and venv_python(venv).exists():
        return venv_python(venv)
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements])
    marker.write_text(want)
    return venv_python(venv)


def build_self(profile: str) -> Path:
    """This package, built from the checkout into its own venv (incremental: own target dir)."""
    py = ensure_venv(WORK / "venv-self", [MATURIN])
    wheels = WORK / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    env = dict(os.environ, CARGO_TARGET_DIR=str(WORK / "self-target"))
    env.pop("VIRTUAL_ENV", None)
    maturin = py.parent / "maturin"
    cmd = [str(maturin), "build", "--profile", profile, "--out", str(wheels), "-i", str(py), "-q"]
    try:
        run(cmd, cwd=ROOT, env=env)
    except subprocess.CalledProcessError:
        if profile == "release":
            raise
        log("dist profile failed to build; falling back to --release")
        run([*cmd[:3], "release", *cmd[4:]], cwd=ROOT, env=env)
    wheel = next(wheels.glob("*.whl"))
    run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", "--force-reinstall", str(wheel)])
    return py


def build_rust() -> Path:
    target = WORK / "rust-target"
    run(["cargo", "build", "--release", "-q", "--manifest-path", str(BENCH / "rust" / "Cargo.toml"), "--target-dir", str(target)])
    return target / "release"


def pinner(cpu: Optional[int]) -> Optional[Callable[[], None]]:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Server:
    def __init__(self, binary: Path, cpu: Optional[int]):
        self.proc = subprocess.Popen([str(binary), "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=pinner(cpu))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            raise SystemExit(f"server did not start: {line!r}")
        self.addr = f"127.0.0.1:{int(line.split()[1])}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def one_run(cmds: Dict[str, List[str]], client: str, scenario: str, addr: str, n: int, warmup: int, cpu: Optional[int]) -> Dict[str, Any]:
    runner = dict((c, r) for c, r, _ in CLIENTS)[client]
    if runner == "rust":
        cmd = [*cmds["rust"], "--client", client, "--scenario", scenario, "--addr", addr, "--n", str(n), "--warmup", str(warmup)]
    else:
        cmd = [*cmds[runner], str(BENCH / "pyclient.py"), client, scenario, addr, str(n), str(warmup)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, preexec_fn=pinner(cpu))
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 180 s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        err = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
        return {"error": err[:300]}
    return dict(json.loads(lines[-1]))


def value(scenario: str, r: Dict[str, Any]) -> Optional[float]:
    """The headline number of one run (higher is better, except idle200's KiB/conn)."""
    if "ops" not in r:
        return None
    if scenario == "idle200":
        return float(r["rss_kib"]) / r["ops"]
    if r["secs"] <= 0:
        return None
    rate = r["ops"] / r["secs"]
    if scenario in SIZES:
        return rate * SIZES[scenario] / 1e6
    return float(rate)


def median(xs: List[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def fmt(v: Optional[float], unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "KiB/conn":
        return f"{v:.1f}"
    if v >= 100000:
        return f"{v / 1000:,.0f}k"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.0f}"
    return f"{v:.2f}"


def cpu_description() -> str:
    """Model, family/model numbers, L3 and hypervisor, from /proc/cpuinfo and lscpu."""
    info: Dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            info.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    desc = info.get("model name", "?")
    if "cpu family" in info:
        desc += f" (family {info['cpu family']} model {info.get('model', '?')})"
    try:
        lscpu = dict(
            (k.strip(), v.strip())
            for k, _, v in (ln.partition(":") for ln in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines())
        )
    except OSError:
        lscpu = {}
    if lscpu.get("L3 cache"):
        desc += f", L3 {lscpu['L3 cache'].split(' (')[0]}"
    if lscpu.get("Hypervisor vendor"):
        desc += f", a {lscpu['Hypervisor vendor']} virtual machine"
    elif "hypervisor" in info.get("flags", "").split():
        desc += ", a virtual machine"
    return desc


def machine_info() -> List[str]:
    model = cpu_description()
    try:
        rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rustc = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "python", "Cargo.toml", "Cargo.lock", "pyproject.toml"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        commit += " (+ uncommitted changes)" if dirty else ""
    except OSError:
        commit = "?"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {model}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, {rustc}; package at commit {commit}",
        f"- load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one round, a tenth of the counts (smoke run)")
    ap.add_argument("--rounds", type=int, help="rounds per scenario (default 5, --quick 1)")
    ap.add_argument("--clients", help="comma-separated subset of: " + ",".join(c for c, _, _ in CLIENTS))
    ap.add_argument("--scenarios", help="comma-separated subset of: " + ",".join(SCENARIOS))
    ap.add_argument("--profile", default="dist", help="cargo profile for this package (dist = fat LTO; release is quicker to build)")
    ap.add_argument("--no-build", action="store_true", help="reuse bench/.work as it is")
    ap.add_argument("--md", help="also write the markdown report to this file")
    ap.add_argument("--json", help="write every raw run to this file")
    args = ap.parse_args()

    t_start = time.monotonic()
    rounds = args.rounds or (1 if args.quick else 5)
    clients = args.clients.split(",") if args.clients else [c for c, _, _ in CLIENTS]
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    for c in clients:
        assert c in dict((x, r) for x, r, _ in CLIENTS), f"unknown client {c}"
    for s in scenarios:
        assert s in SCENARIOS, f"unknown scenario {s}"
    info = machine_info()

    WORK.mkdir(exist_ok=True)
    if args.no_build:
        self_py, peers_py, rust_bin = venv_python(WORK / "venv-self"), venv_python(WORK / "venv-peers"), WORK / "rust-target" / "release"
    else:
        rust_bin = build_rust()
        peers_py = ensure_venv(WORK / "venv-peers", PEER_REQUIREMENTS)
        self_py = build_self(args.profile)
    t_built = time.monotonic()
    cmds = {"self": [str(self_py)], "peers": [str(peers_py)], "rust": [str(rust_bin / "wsbench-client")]}

    ncpu = len(os.sched_getaffinity(0))
    server_cpu, client_cpu = (0, 1) if ncpu >= 2 else (None, None)
    if ncpu >= 2:
        cpus = sorted(os.sched_getaffinity(0))
        server_cpu, client_cpu = cpus[0], cpus[1]
    else:
        log("only one CPU: server and client are not pinned")

    server = Server(rust_bin / "wsbench-server", server_cpu)
    raw: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    try:
        for s in scenarios:
            spec = SCENARIOS[s]
            n = spec["quick"] if args.quick else spec["n"]
            todo = [c for c in clients if not (c in ECHO_ONLY and s not in ("rt64", "echo16k", "echo1m"))]
            todo = [c for c in todo if not (c == "tungstenite" and s == "push100app")]
            raw[s] = {c: [] for c in todo}
            for rnd in range(rounds):
                order = todo[rnd % len(todo):] + todo[: rnd % len(todo)]
                for c in order:
                    if not server.alive():
                        raise SystemExit("the benchmark server died")
                    r = one_run(cmds, c, s, server.addr, n, spec["warmup"], client_cpu)
                    r["round"] = rnd
                    raw[s][c].append(r)
                    v = value(s, r)
                    log(f"{s:10} round {rnd + 1}/{rounds} {c:12} " + (f"{fmt(v, spec['unit'])} {spec['unit']}" if v is not None else str(r.get("skip") or r.get("error"))))
    finally:
        server.stop()
    t_done = time.monotonic()

    report = render(raw, scenarios, clients, rounds, args.quick, info)
    report.append("")
    report.append(f"Wall time: {t_built - t_start:.0f} s setup/build, {t_done - t_built:.0f} s measuring; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    text = "\n".join(report) + "\n"
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))
    return 0


def per_round(raw: Dict[str, List[Dict[str, Any]]], scenario: str, rounds: int) -> List[Dict[str, float]]:
    """For each round, client -> headline value (only clients that produced one)."""
    out: List[Dict[str, float]] = [{} for _ in range(rounds)]
    for c, runs in raw.items():
        for r in runs:
            v = value(scenario, r)
            if v is not None:
                out[r["round"]][c] = v
    return out


def ratio_median(rows: List[Dict[str, float]], num: Callable[[Dict[str, float]], Optional[float]], den: Callable[[Dict[str, float]], Optional[float]]) -> Optional[float]:
    xs = []
    for row in rows:
        a, b = num(row), den(row)
        if a is not None and b:
            xs.append(a / b)
    return median(xs)


def best_peer(row: Dict[str, float], lower_is_better: bool) -> Optional[float]:
    vals = [row[c] for c in PY_PEERS if c in row]
    if not vals:
        return None
    return min(vals) if lower_is_better else max(vals)


def render(raw: Dict[str, Dict[str, List[Dict[str, Any]]]], scenarios: List[str], clients: List[str], rounds: int, quick: bool, info: List[str]) -> List[str]:
    desc = dict((c, d) for c, _, d in CLIENTS)
    out = ["# websocket-rust benchmark" + (" (--quick smoke run: counts / 10, 1 round)" if quick else ""), ""]
    out += info
    out += [
        f"- {rounds} round(s) per scenario; each cell is the median over the rounds; ratios are computed within each round, then the median is taken",
        "- server (bench/rust: Rust, a blocking thread per connection) pinned to one CPU, each client process (all its threads: this package's reactor thread too) to the other",
        "- CPU/op: user+sys time of the client process (all its threads) per operation, getrusage; MB/s counts payload bytes one way (10^6 bytes/s)",
        "",
        "Clients: " + "; ".join(f"`{c}` = {desc[c]}" for c in clients) + ".",
        "",
    ]
    ratios: Dict[str, Dict[str, Optional[float]]] = {}
    for s in scenarios:
        spec = SCENARIOS[s]
        unit = spec["unit"]
        low = s == "idle200"
        rows = per_round(raw[s], s, rounds)
        out.append(f"## {s}: {spec['desc']}, n={raw[s] and next(iter(raw[s].values()))[0].get('ops', '?')}")
        out.append("")
        if low:
            out.append(f"| client | {unit} (median) | min..max | threads added | vs websocket-client |")
            out.append("|---|---:|---:|---:|---:|")
        else:
            out.append(f"| client | {unit} (median) | min..max | CPU µs/op | vs websocket-client | vs best Python peer |")
            out.append("|---|---:|---:|---:|---:|---:|")
        for c, runs in raw[s].items():
            vals = [v for v in (value(s, r) for r in runs) if v is not None]
            note = next((r.get("skip") or r.get("error") for r in runs if "ops" not in r), None)
            if not vals:
                out.append(f"| {c} | {'n/a: ' + str(note) if note else '-'} | | | | |")
                continue
            vs_wsc = ratio_median(rows, lambda row: row.get(c), lambda row: row.get("wsc"))
            if low:
                th = median([float(r["threads"]) for r in runs if "threads" in r])
                out.append(f"| {c} | {fmt(median(vals), unit)} | {fmt(min(vals), unit)}..{fmt(max(vals), unit)} | {fmt(th)} | {fmt(vs_wsc)}x |")
            else:
                cpu = median([r["cpu"] / r["ops"] * 1e6 for r in runs if "ops" in r and r["ops"]])
                vs_best = ratio_median(rows, lambda row: row.get(c), lambda row: best_peer(row, low))
                out.append(f"| {c} | {fmt(median(vals), unit)} | {fmt(min(vals), unit)}..{fmt(max(vals), unit)} | {fmt(cpu)} | {fmt(vs_wsc)}x | {fmt(vs_best)}x |")
            if note:
                out[-1] += f" ({len(runs) - len(vals)} failed: {note})"
        out.append("")
        ratios[s] = {
            "wsc": ratio_median(rows, lambda row: row.get("wsr"), lambda row: row.get("wsc")),
            "peers": ratio_median(rows, lambda row: row.get("wsr"), lambda row: best_peer(row, low)),
            "tung": ratio_median(rows, lambda row: row.get("tungstenite"), lambda row: row.get("wsr")),
            "kib": median([row["wsr"] for row in rows if "wsr" in row]),
        }
    out.append("## Targets (issue 5), on the median pairwise ratios")
    out.append("")
    out.append("| scenario | target | measured | status |")
    out.append("|---|---|---:|---|")
    for s, kind, want in TARGETS:
        if s not in ratios:
            continue
        got = ratios[s][kind]
        if kind == "peers":
            label, ok = "ahead of every Python peer (wsr / best peer > 1)", got is not None and got > want
        elif kind == "wsc":
            label, ok = f">= {want:g}x websocket-client", got is not None and got >= want
        elif kind == "tung":
            label, ok = f"within {want:g}x of tungstenite (tungstenite / wsr <= {want:g})", got is not None and got <= want
        else:
            label, ok = f"<= {want:g} KiB per idle connection", got is not None and got <= want
        if got is None:
            status = "not measured"
        elif ok:
            status = "met"
        else:
            short = want / got if kind in ("peers", "wsc") else got / want
            status = f"MISSED by {(short - 1) * 100:.1f}%" if short < 1.1 else f"MISSED by {short:.2f}x"
        shown = "-" if got is None else (f"{got:.1f} KiB" if kind == "kib" else f"{got:.2f}x")
        out.append(f"| {s} | {label} | {shown} | {status} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
