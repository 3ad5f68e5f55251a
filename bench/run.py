#!/usr/bin/env python3
"""The speed benchmark: this package against its peers, side by side, as ratios.

    python bench/run.py            # full run, markdown report on stdout
    python bench/run.py --quick    # smoke run: one round, a tenth of the counts
    python bench/run.py --scenarios scale1,scale1000 --clients wsr,wsc --rounds 2

Sets up everything it needs under bench/.work/ (kept between runs, so later runs are quick):
  - venv-self:  this package, built from the checkout with maturin (--profile dist: fat LTO),
    plus gevent and rel;
  - venv-peers: websocket-client 1.9.2, wsaccel, websockets 17, picows 2.3, gevent, rel;
  - rust-target: bench/rust (the echo/push server, the tungstenite and raw TCP clients).
The server runs pinned to CPU 0, every client process to CPU 1. Each (scenario, round, client)
is a fresh process; the clients' order rotates from round to round. Ratios are computed
pairwise within a round, then the median over the rounds is reported.

Rows: rt64, echo16k, echo1m, push100, push100app, handshake, idle200 for every client
(wsr-gevent / wsc-gevent: the same websocket-client-API code under gevent's monkey.patch_all(),
this package on its Python-socket driver; their ratio is reported per scenario), and the scale
family for wsr, wsc (and picows in the thread rows): scale1..scale1000 (K connections pushed
to at once, a Python thread per connection in a recv() loop) and scaleapp1..scaleapp1000 (K
WebSocketApps on one shared rel dispatcher). The targets table is issue 15's; issue 5's
follows it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
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

# In both venvs: gevent for the wsr-gevent / wsc-gevent clients (the version tests/test_green.py
# pins) and rel, the shared dispatcher of the scaleapp rows (run_forever(dispatcher=rel)).
GREEN = ["gevent==26.9.0", "rel==0.4.9.27"]
PEER_REQUIREMENTS = ["websocket-client==1.9.2", "wsaccel==0.6.7", "websockets==17.*", "picows==2.3.*", *GREEN]
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
    ("wsr-gevent", "self", "this package under gevent's monkey.patch_all() (its Python-socket driver)"),
    ("wsc-gevent", "peers", "websocket-client 1.9.2, pure Python, under gevent's monkey.patch_all()"),
    ("tcp-py-gevent", "peers", "raw TCP ping-pong of the same bytes, Python socket under gevent (the gevent rows' floor)"),
]
PY_PEERS = ["wsc", "wsc-accel", "websockets", "picows"]
GEVENT_PAIR = ("wsr-gevent", "wsc-gevent")

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
# The scale family: K open connections, the server pushing 100-byte text messages to all of
# them; N messages in all (N/K per connection), N fixed per client across K so that per-message
# figures compare. scaleK: one Python thread per connection in a recv() loop; scaleappK: K
# WebSocketApps on one shared rel dispatcher. websocket-client is far slower (and under rel
# bound by rel's 0.6 ms sleep per loop turn), so it gets fewer messages.
SCALE_KS = (1, 10, 100, 1000)
for _k in SCALE_KS:
    SCENARIOS[f"scale{_k}"] = dict(
        n=1_000_000, quick=100_000, n_by={"wsc": 50_000}, quick_by={"wsc": 5_000}, warmup=0, unit="msg/s",
        desc=f"{_k} connection(s), a thread per connection in a recv() loop", scale=("threads", _k),
    )
for _k in SCALE_KS:
    SCENARIOS[f"scaleapp{_k}"] = dict(
        n=1_000_000, quick=100_000, n_by={"wsc": 4_000}, quick_by={"wsc": 1_000}, warmup=0, unit="msg/s",
        desc=f"{_k} WebSocketApp(s) on one shared rel dispatcher", scale=("app", _k),
    )
ECHO_ONLY = {"tcp", "tcp-py", "tcp-py-gevent"}
# Who runs the scale rows (picows: one asyncio loop; the same code for both variants, so only
# in the thread rows, as its reference).
SCALE_CLIENTS = {"threads": ("wsr", "wsc", "picows"), "app": ("wsr", "wsc")}
SIZES = {"echo1m": 1024 * 1024}

# Issue 15's targets: (scenario, label, measure, comparison, value). measure:
# ("ratio", a, b) = median over the rounds of a / b (pairwise within a round);
# ("value", a) = median of a's headline value; ("scale", variant, "rate" | "cpu") = this
# package's median at K=1000 over its median at K=1 (aggregate msg/s, CPU µs per message).
THROUGHPUT = ("rt64", "echo16k", "echo1m", "push100", "push100app", "handshake")
TARGETS15 = [
    ("rt64", "wsr >= 0.95x tungstenite", ("ratio", "wsr", "tungstenite"), ">=", 0.95),
    ("echo16k", "wsr >= 1.0x tungstenite", ("ratio", "wsr", "tungstenite"), ">=", 1.0),
    ("echo1m", "wsr >= 1.2x tungstenite", ("ratio", "wsr", "tungstenite"), ">=", 1.2),
    ("push100", "wsr >= 3x picows", ("ratio", "wsr", "picows"), ">=", 3.0),
    ("handshake", "wsr >= 0.8x tungstenite", ("ratio", "wsr", "tungstenite"), ">=", 0.8),
    ("idle200", "<= 1.8 KiB per idle connection", ("value", "wsr"), "<=", 1.8),
    ("scale", "threads: K=1000 aggregate msg/s within 1.5x of K=1 (K1000 / K1 >= 0.67)", ("scale", "threads", "rate"), ">=", 1 / 1.5),
    ("scale", "threads: K=1000 CPU/msg within 1.5x of K=1 (K1000 / K1 <= 1.5)", ("scale", "threads", "cpu"), "<=", 1.5),
    ("scaleapp", "shared dispatcher: K=1000 aggregate msg/s within 1.5x of K=1", ("scale", "app", "rate"), ">=", 1 / 1.5),
    ("scaleapp", "shared dispatcher: K=1000 CPU/msg within 1.5x of K=1", ("scale", "app", "cpu"), "<=", 1.5),
] + [(s, "wsr-gevent >= 2x wsc-gevent", ("ratio", "wsr-gevent", "wsc-gevent"), ">=", 2.0) for s in THROUGHPUT]

# Issue 5's targets (met on 2026-11-24), kept as a second table.
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
    py = ensure_venv(WORK / "venv-self", [MATURIN, *GREEN])
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


def raise_nofile() -> None:
    """The soft limit on open files up to the hard one: the scale1000 rows keep 1000
    connections open (on the server: 1000 sockets; the Python clients raise their own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_preexec(cpu: Optional[int]) -> Callable[[], None]:
    pin = pinner(cpu)

    def pre() -> None:
        raise_nofile()
        if pin is not None:
            pin()

    return pre


class Server:
    def __init__(self, binary: Path, cpu: Optional[int]):
        self.proc = subprocess.Popen([str(binary), "--port", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, preexec_fn=server_preexec(cpu))
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


def runs(client: str, scenario: str) -> bool:
    """Whether `client` takes part in `scenario`."""
    spec = SCENARIOS[scenario]
    if "scale" in spec:
        return client in SCALE_CLIENTS[spec["scale"][0]]
    if client in ECHO_ONLY:
        return scenario in ("rt64", "echo16k", "echo1m")
    return not (client == "tungstenite" and scenario == "push100app")


def count(scenario: str, client: str, quick: bool) -> int:
    """N for one run: the scenario's, or the client's own where it has one (scale rows)."""
    spec = SCENARIOS[scenario]
    if quick:
        return int(spec.get("quick_by", {}).get(client, spec["quick"]))
    return int(spec.get("n_by", {}).get(client, spec["n"]))


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
    ap.add_argument(
        "--one-cpu",
        action="store_true",
        help="diagnostic: server and client on the same CPU, so no round trip waits on a wake-up of the other "
        "CPU (slow on some VMs): rates then include the server's CPU time; targets are judged on the default pinning",
    )
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
        if args.one_cpu:
            server_cpu = client_cpu
            global PINNING
            PINNING = (
                "- --one-cpu (a diagnostic run): the server and each client process pinned to the same CPU; "
                "round trips then wait on no wake-up of another CPU, and CPU/op is still the client's alone"
            )
    else:
        log("only one CPU: server and client are not pinned")

    server = Server(rust_bin / "wsbench-server", server_cpu)
    raw: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
    spent: Dict[str, float] = {}
    try:
        for s in scenarios:
            t_scenario = time.monotonic()
            spec = SCENARIOS[s]
            todo = [c for c in clients if runs(c, s)]
            raw[s] = {c: [] for c in todo}
            for rnd in range(rounds):
                order = todo[rnd % len(todo):] + todo[: rnd % len(todo)]
                for c in order:
                    if not server.alive():
                        raise SystemExit("the benchmark server died")
                    r = one_run(cmds, c, s, server.addr, count(s, c, args.quick), spec["warmup"], client_cpu)
                    r["round"] = rnd
                    raw[s][c].append(r)
                    v = value(s, r)
                    log(f"{s:10} round {rnd + 1}/{rounds} {c:12} " + (f"{fmt(v, spec['unit'])} {spec['unit']}" if v is not None else str(r.get("skip") or r.get("error"))))
            spent[s] = time.monotonic() - t_scenario
    finally:
        server.stop()
    t_done = time.monotonic()

    report = render(raw, scenarios, clients, rounds, args.quick, info)
    report.append("")
    report.append(f"Wall time: {t_built - t_start:.0f} s setup/build, {t_done - t_built:.0f} s measuring; load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    report.append("Measuring time per scenario (all rounds): " + ", ".join(f"{s} {secs:.0f} s" for s, secs in spent.items()) + ".")
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


def status(got: Optional[float], cmp: str, want: float) -> str:
    """met / MISSED by how much / not measured."""
    if got is None:
        return "not measured"
    if {">": got > want, ">=": got >= want, "<=": got <= want}[cmp]:
        return "met"
    if got <= 0:
        return "MISSED"
    short = want / got if cmp != "<=" else got / want
    return f"MISSED by {(short - 1) * 100:.1f}%" if short < 1.1 else f"MISSED by {short:.2f}x"


def cpu_us(runs: List[Dict[str, Any]]) -> Optional[float]:
    """Median client CPU µs per operation."""
    return median([r["cpu"] / r["ops"] * 1e6 for r in runs if r.get("ops")])


def render_scale(raw: Dict[str, Dict[str, List[Dict[str, Any]]]], scenarios: List[str], rounds: int) -> "tuple[List[str], Dict[str, Dict[str, Optional[float]]]]":
    """One table for the scale rows; returns it and, per variant, this package's K=1000 / K=1
    ratios (aggregate msg/s, CPU per message; ratios of the medians: the two are different runs)."""
    rows_by_variant: Dict[str, List[str]] = {}
    for s in scenarios:
        if "scale" in SCENARIOS[s]:
            rows_by_variant.setdefault(SCENARIOS[s]["scale"][0], []).append(s)
    if not rows_by_variant:
        return [], {}
    clients: List[str] = []
    for s in (x for xs in rows_by_variant.values() for x in xs):
        clients += [c for c in raw[s] if c not in clients]
    out = [
        "## scale: the server pushes 100-byte text messages to K open connections",
        "",
        "N messages in all per run (N/K per connection, the same N at every K), every connection open before the clock starts; "
        "aggregate msg/s = N / (first \"go\" sent .. last message received); CPU = the client process's user+sys per message. "
        "`threads`: one Python thread per connection in a recv() loop (picows: one asyncio loop). "
        "`rel`: K WebSocketApps on one shared rel dispatcher (`run_forever(dispatcher=rel)`, then `rel.dispatch()`); "
        "rel sleeps 0.6 ms per loop turn, and websocket-client reads one frame per readable callback, so its rel rows are bound by that sleep at small K.",
        "",
    ]
    ns = []
    for c in clients:
        got = sorted({r["ops"] for s in rows_by_variant.get("threads", []) + rows_by_variant.get("app", []) if c in raw[s] for r in raw[s][c] if r.get("ops")})
        if got:
            ns.append(f"{c} {'/'.join(f'{n:,}' for n in got)}")
    out.append("N per run: " + "; ".join(ns) + ".")
    out.append("")
    head = "| consumer | K | " + " | ".join(f"{c} msg/s | {c} CPU µs/msg" for c in clients) + " | wsr / wsc |"
    out.append(head)
    out.append("|---|---:|" + "---:|---:|" * len(clients) + "---:|")
    factors: Dict[str, Dict[str, Optional[float]]] = {}
    for variant, names in rows_by_variant.items():
        label = "threads" if variant == "threads" else "rel"
        stats: Dict[int, Dict[str, "tuple[Optional[float], Optional[float]]"]] = {}
        for s in names:
            k = SCENARIOS[s]["scale"][1]
            cells = []
            stats[k] = {}
            for c in clients:
                runs = raw[s].get(c, [])
                vals = [v for v in (value(s, r) for r in runs) if v is not None]
                if not runs:
                    cells.append("| |")
                    continue
                if not vals:
                    note = next((r.get("skip") or r.get("error") for r in runs if "ops" not in r), None)
                    cells.append(f"n/a: {note} | |")
                    continue
                rate, cpu = median(vals), cpu_us(runs)
                stats[k][c] = (rate, cpu)
                failed = len(runs) - len(vals)
                cells.append(f"{fmt(rate)}{f' ({failed} failed)' if failed else ''} | {fmt(cpu)} |")
            ratio = ratio_median(per_round(raw[s], s, rounds), lambda row: row.get("wsr"), lambda row: row.get("wsc"))
            out.append(f"| {label} | {k} | " + " ".join(cells) + f" {fmt(ratio)}{'x' if ratio is not None else ''} |")
        if 1 in stats and 1000 in stats:
            cells = []
            for c in clients:
                a, b = stats[1].get(c), stats[1000].get(c)
                if a and b and a[0] and b[0] is not None and a[1] and b[1] is not None:
                    cells.append(f"{b[0] / a[0]:.2f}x | {b[1] / a[1]:.2f}x |")
                else:
                    cells.append("- | - |")
            out.append(f"| {label} | K1000 / K1 | " + " ".join(cells) + " |")
            a, b = stats[1].get("wsr"), stats[1000].get("wsr")
            factors[variant] = {
                "rate": b[0] / a[0] if a and b and a[0] and b[0] is not None else None,
                "cpu": b[1] / a[1] if a and b and a[1] and b[1] is not None else None,
            }
    out.append("")
    return out, factors


PINNING = "- server (bench/rust: Rust, a blocking thread per connection) pinned to one CPU, each client process (all its threads: this package's reactor thread too) to the other"


def render(raw: Dict[str, Dict[str, List[Dict[str, Any]]]], scenarios: List[str], clients: List[str], rounds: int, quick: bool, info: List[str]) -> List[str]:
    desc = dict((c, d) for c, _, d in CLIENTS)
    out = ["# websocket-rust benchmark" + (" (--quick smoke run: counts / 10, 1 round)" if quick else ""), ""]
    out += info
    out += [
        f"- {rounds} round(s) per scenario; each cell is the median over the rounds; ratios are computed within each round, then the median is taken",
        PINNING,
        "- CPU/op: user+sys time of the client process (all its threads) per operation, getrusage; MB/s counts payload bytes one way (10^6 bytes/s)",
        "",
        "Clients: " + "; ".join(f"`{c}` = {desc[c]}" for c in clients) + ".",
        "",
    ]
    ratios: Dict[str, Dict[str, Optional[float]]] = {}
    rounds_of: Dict[str, List[Dict[str, float]]] = {}
    for s in scenarios:
        spec = SCENARIOS[s]
        if "scale" in spec:
            continue
        unit = spec["unit"]
        low = s == "idle200"
        rows = per_round(raw[s], s, rounds)
        rounds_of[s] = rows
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
                vs_best = ratio_median(rows, lambda row: row.get(c), lambda row: best_peer(row, low))
                out.append(f"| {c} | {fmt(median(vals), unit)} | {fmt(min(vals), unit)}..{fmt(max(vals), unit)} | {fmt(cpu_us(runs))} | {fmt(vs_wsc)}x | {fmt(vs_best)}x |")
            if note:
                out[-1] += f" ({len(runs) - len(vals)} failed: {note})"
        green = ratio_median(rows, lambda row: row.get(GEVENT_PAIR[0]), lambda row: row.get(GEVENT_PAIR[1]))
        if green is not None:
            out.append("")
            out.append(f"Under gevent: wsr-gevent / wsc-gevent = {green:.2f}x (pairwise per round, median){' (KiB/conn: lower is better)' if low else ''}.")
        out.append("")
        ratios[s] = {
            "wsc": ratio_median(rows, lambda row: row.get("wsr"), lambda row: row.get("wsc")),
            "peers": ratio_median(rows, lambda row: row.get("wsr"), lambda row: best_peer(row, low)),
            "tung": ratio_median(rows, lambda row: row.get("tungstenite"), lambda row: row.get("wsr")),
            "kib": median([row["wsr"] for row in rows if "wsr" in row]),
        }
    scale_out, factors = render_scale(raw, scenarios, rounds)
    out += scale_out

    out.append("## Targets (issue 15)")
    out.append("")
    out.append("Ratios: median over the rounds of the pairwise ratio within each round; scale: ratio of this package's medians at K=1000 and K=1.")
    out.append("")
    out.append("| scenario | target | measured | status |")
    out.append("|---|---|---:|---|")
    for s, label, measure, cmp, want in TARGETS15:
        got: Optional[float]
        if measure[0] == "scale":
            if measure[1] not in factors:
                continue
            got = factors[measure[1]][measure[2]]
            shown = "-" if got is None else f"{got:.2f}x"
        elif s not in rounds_of:
            continue
        elif measure[0] == "ratio":
            a, b = measure[1], measure[2]
            got = ratio_median(rounds_of[s], lambda row: row.get(a), lambda row: row.get(b))
            shown = "-" if got is None else f"{got:.2f}x"
        else:
            got = median([row[measure[1]] for row in rounds_of[s] if measure[1] in row])
            shown = "-" if got is None else f"{got:.1f} KiB"
        out.append(f"| {s} | {label} | {shown} | {status(got, cmp, want)} |")

    out.append("")
    out.append("## Targets of issue 5 (met on 2026-11-24), on the median pairwise ratios")
    out.append("")
    out.append("| scenario | target | measured | status |")
    out.append("|---|---|---:|---|")
    for s, kind, want in TARGETS:
        if s not in ratios:
            continue
        got = ratios[s][kind]
        if kind == "peers":
            label, st = "ahead of every Python peer (wsr / best peer > 1)", status(got, ">", want)
        elif kind == "wsc":
            label, st = f">= {want:g}x websocket-client", status(got, ">=", want)
        elif kind == "tung":
            label, st = f"within {want:g}x of tungstenite (tungstenite / wsr <= {want:g})", status(got, "<=", want)
        else:
            label, st = f"<= {want:g} KiB per idle connection", status(got, "<=", want)
        shown = "-" if got is None else (f"{got:.1f} KiB" if kind == "kib" else f"{got:.2f}x")
        out.append(f"| {s} | {label} | {shown} | {st} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
