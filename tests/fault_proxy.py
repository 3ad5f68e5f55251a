"""A loopback TCP proxy that injects network faults, for tests/test_network_faults.py.

``FaultProxy(target_host, target_port)`` listens on 127.0.0.1 (a free port, ``.port``) and
forwards every accepted connection to the target. How each direction behaves can be changed
at any time, for the connections already open and for new ones alike; ``C2S`` is client to
server (what the client sends), ``S2C`` the other way, ``BOTH`` both:

* ``forward(direction, delay=...)``: bytes pass. With a ``delay`` (``latency(0.2)``), each
  chunk read is written ``delay`` seconds after it arrived, in order; chunks are not held
  back by one another, so the throughput is not throttled (a 1 MiB burst arrives ``delay``
  later, not one chunk per ``delay``). An EOF or a reset is passed on in order too.
* ``stall(direction)``: nothing is written any more, but the proxy keeps reading and
  buffering (without limit); ``forward`` delivers the backlog.
* ``blackhole(direction)``: nothing is written and nothing is read, and no FIN or RST is
  ever sent: the peers see silence, as when a cable is pulled (the kernel still ACKs what
  fits in the proxy's socket buffers, so the sender's TCP does not notice either, until
  those buffers are full). A new connection accepted while blackholed is connected to the
  target but gets the same silence.
* ``restore()``: ``forward`` both ways without delay. Everything still open carries on where
  it stopped (what was buffered or left unread is delivered), and new connections are
  forwarded, so a client that gave up and reconnects reaches the server.

The proxy adds no delay of its own (TCP_NODELAY on both legs; a chunk is written as soon as
it is due). One thread runs a selector loop over non-blocking sockets; mode changes take
effect atomically with respect to it (no read or write of a blackholed direction happens
after ``blackhole()`` returns). ``stop()`` closes every socket and joins the thread; the
proxy leaks no thread and no file descriptor.

``counts()`` gives the bytes read from and written to each direction, ``connections`` the
number of connections accepted.
"""

from __future__ import annotations

import collections
import errno
import selectors
import socket
import struct
import threading
import time

C2S = "c2s"
S2C = "s2c"
BOTH = "both"

FORWARD = "forward"
STALL = "stall"
BLACKHOLE = "blackhole"

_CHUNK = 65536
# Above this many queued bytes, a forwarding direction stops reading its source until the
# destination takes them (so a slow reader pushes back on the writer, as TCP would).
_HIGH_WATER = 4 << 20
_EOF = object()
_RESET = object()


def _directions(direction):
    if direction == BOTH:
        return (C2S, S2C)
    if direction in (C2S, S2C):
        return (direction,)
    raise ValueError(f"direction must be {C2S!r}, {S2C!r} or {BOTH!r}, not {direction!r}")


class _Pipe:
    """One direction of one proxied connection: ``src`` -> queue -> ``dst``."""

    __slots__ = ("direction", "src", "dst", "queue", "queued", "src_done", "dst_done", "blocked")

    def __init__(self, direction, src, dst):
        self.direction = direction
        self.src = src
        self.dst = dst
        self.queue = collections.deque()  # [due, bytes | _EOF | _RESET]
        self.queued = 0  # bytes in queue
        self.src_done = False  # EOF or reset read from src
        self.dst_done = False  # EOF passed on to dst
        self.blocked = False  # dst's send buffer was full at the last write


class _Conn:
    __slots__ = ("client", "upstream", "pipes", "closed")

    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.pipes = {C2S: _Pipe(C2S, client, upstream), S2C: _Pipe(S2C, upstream, client)}
        self.closed = False


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.host = host
        self.connections = 0
        self._modes = {C2S: FORWARD, S2C: FORWARD}
        self._delays = {C2S: 0.0, S2C: 0.0}
        self._counts = {C2S: [0, 0], S2C: [0, 0]}  # [bytes read, bytes written]
        self._lock = threading.Lock()  # held by the loop while it does I/O, and by setters
        self._conns: list[_Conn] = []
        self._stopping = False
        self._errors: list[BaseException] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(64)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._interest: dict[socket.socket, int] = {}
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"fault-proxy-{self.port}")
        self._thread.start()

    def url(self, scheme: str = "ws", path: str = "/") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"

    # -- control (any thread) --------------------------------------------------------------
    def _set(self, direction, mode, delay=None):
        with self._lock:
            for d in _directions(direction):
                self._modes[d] = mode
                if delay is not None:
                    self._delays[d] = float(delay)
        self._wake()

    def forward(self, direction: str = BOTH, delay: float | None = None) -> None:
        """Pass bytes on; ``delay`` (seconds, kept if not given) is added to each chunk."""
        self._set(direction, FORWARD, delay)

    def latency(self, delay: float, direction: str = BOTH) -> None:
        self._set(direction, FORWARD, delay)

    def stall(self, direction: str = BOTH) -> None:
        self._set(direction, STALL)

    def blackhole(self, direction: str = BOTH) -> None:
        self._set(direction, BLACKHOLE)

    def restore(self) -> None:
        self._set(BOTH, FORWARD, 0.0)

    def mode(self, direction: str) -> tuple[str, float]:
        with self._lock:
            return self._modes[direction], self._delays[direction]

    def counts(self) -> dict[str, dict[str, int]]:
        """Bytes ``read`` from the source and ``written`` to the destination, per direction."""
        with self._lock:
            return {d: {"read": c[0], "written": c[1]} for d, c in self._counts.items()}

    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns if not c.closed)

    def stop(self) -> None:
        """Closes every socket (blackholed ones too) and joins the thread. Raises if the
        loop failed."""
        self._stopping = True
        self._wake()
        self._thread.join(10)
        if self._thread.is_alive():
            raise RuntimeError("fault proxy thread did not stop")
        if self._errors:
            raise RuntimeError(f"fault proxy loop failed: {self._errors[0]!r}") from self._errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake, or stopped

    # -- the loop (proxy thread) -----------------------------------------------------------
    def _run(self):
        try:
            while not self._stopping:
                timeout = self._plan()
                events = self._sel.select(timeout)
                with self._lock:
                    for key, mask in events:
                        sock = key.fileobj
                        if sock is self._wake_r:
                            self._drain_wake()
                        elif sock is self._listener:
                            self._accept()
                        else:
                            conn = key.data
                            if conn.closed:
                                continue
                            if mask & selectors.EVENT_READ:
                                for p in conn.pipes.values():
                                    if p.src is sock:
                                        self._read(conn, p)
                            if mask & selectors.EVENT_WRITE:
                                for p in conn.pipes.values():
                                    if p.dst is sock:
                                        p.blocked = False
                    self._flush_all()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self._errors.append(e)
        finally:
            self._shutdown()

    def _drain_wake(self):
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _accept(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                    return
                raise
            self.connections += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                # The target is down: the client sees its connection reset, as it would see
                # a refused connect without the proxy.
                _abort(client)
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(_Conn(client, upstream))

    def _read(self, conn, p):
        mode = self._modes[p.direction]
        if p.src_done or mode == BLACKHOLE:
            return
        now = time.monotonic()
        due = now + self._delays[p.direction]
        try:
            data = p.src.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = _RESET
        if data == b"":
            data = _EOF
        if isinstance(data, bytes):
            p.queued += len(data)
            self._counts[p.direction][0] += len(data)
        else:
            p.src_done = True
        p.queue.append([due, data])

    def _flush_all(self):
        now = time.monotonic()
        for conn in self._conns:
            if conn.closed:
                continue
            for p in conn.pipes.values():
                if conn.closed:
                    break
                if self._modes[p.direction] == FORWARD and not p.blocked:
                    self._flush(conn, p, now)
            if not conn.closed and all(p.dst_done for p in conn.pipes.values()):
                self._close(conn)
        self._conns = [c for c in self._conns if not c.closed]

    def _flush(self, conn, p, now):
        q = p.queue
        while q and q[0][0] <= now and not p.dst_done:
            item = q[0][1]
            if item is _EOF:
                q.popleft()
                p.dst_done = True
                try:
                    p.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            if item is _RESET:
                q.popleft()
                self._close(conn, reset=True)
                return
            try:
                n = p.dst.send(item)
            except (BlockingIOError, InterruptedError):
                p.blocked = True
                return
            except OSError:
                # The destination is gone (reset): pass the reset on to the source.
                self._close(conn, reset=True)
                return
            p.queued -= n
            self._counts[p.direction][1] += n
            if n < len(item):
                q[0][1] = item[n:]
                p.blocked = True
                return
            q.popleft()

    def _close(self, conn, reset=False):
        conn.closed = True
        for s in (conn.client, conn.upstream):
            self._unwatch(s)
            if reset:
                _abort(s)
            else:
                s.close()

    def _plan(self):
        """Sets what the selector watches; returns how long it may sleep."""
        with self._lock:
            next_due = None
            want: dict[socket.socket, tuple[int, _Conn]] = {}
            for conn in self._conns:
                if conn.closed:
                    continue
                for p in conn.pipes.values():
                    mode = self._modes[p.direction]
                    if mode == BLACKHOLE:
                        continue
                    if not p.src_done and (mode == STALL or p.queued < _HIGH_WATER):
                        ev, _ = want.get(p.src, (0, conn))
                        want[p.src] = (ev | selectors.EVENT_READ, conn)
                    if mode == FORWARD and p.queue and not p.dst_done:
                        if p.blocked:
                            ev, _ = want.get(p.dst, (0, conn))
                            want[p.dst] = (ev | selectors.EVENT_WRITE, conn)
                        else:
                            due = p.queue[0][0]
                            next_due = due if next_due is None else min(next_due, due)
            for sock in list(self._interest):
                if sock not in want:
                    self._unwatch(sock)
            for sock, (ev, conn) in want.items():
                old = self._interest.get(sock)
                if old is None:
                    self._sel.register(sock, ev, conn)
                elif old != ev:
                    self._sel.modify(sock, ev, conn)
                self._interest[sock] = ev
        if next_due is None:
            return None
        return max(0.0, next_due - time.monotonic())

    def _unwatch(self, sock):
        if self._interest.pop(sock, None) is not None:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass

    def _shutdown(self):
        with self._lock:
            for conn in self._conns:
                if not conn.closed:
                    self._close(conn)
            self._conns = []
            for s in list(self._interest):
                self._unwatch(s)
            self._sel.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()


def _abort(sock):
    """Closes ``sock`` with an RST (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
