"""Proxies for the network tests, on 127.0.0.1: HTTP CONNECT, SOCKS4/4a and SOCKS5/5h,
each with optional authentication, written on asyncio (no third-party proxy package).

``ProxyServer(kind, ...)`` runs in a background thread. Every request it gets is appended
to ``.log`` as a dict (``target``: the host as the client sent it, ``port``, ``addr_type``:
``"name"``, ``"ipv4"`` or ``"ipv6"``, ``auth``, and for HTTP the raw request ``head``).
``hosts`` maps names that only the proxy can resolve (``"ws.proxy-only.test"``) to
addresses, so a test can tell remote from local DNS.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import struct
import threading

PROXY_ONLY_NAME = "ws.proxy-only.test"


class ProxyServer:
    """``kind``: ``"http"``, ``"socks4"`` (also answers SOCKS4a) or ``"socks5"``.

    ``auth``: ``(user, password)`` the client must present (HTTP Basic, SOCKS5 RFC 1929;
    for SOCKS4 only the user id is checked). ``status``: what an HTTP proxy answers to
    CONNECT (200 tunnels). ``hosts``: extra name -> address map used for name targets.
    ``silent``: accept connections and never answer (for timeouts). ``delay``: seconds the
    proxy waits before each answer that lets the exchange go on (a slow proxy: HTTP and
    SOCKS4 answer once, SOCKS5 without authentication twice).
    """

    def __init__(self, kind, auth=None, status=200, hosts=None, silent=False, host="127.0.0.1", delay=0.0):
        assert kind in ("http", "socks4", "socks5")
        self.kind = kind
        self.auth = auth
        self.status = status
        self.silent = silent
        self.delay = delay
        self.hosts = {PROXY_ONLY_NAME: "127.0.0.1"}
        self.hosts.update(hosts or {})
        self.log: list[dict] = []
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._tasks: set = set()
        self._bind = host
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        self.host = host
        hostpart = f"[{host}]" if ":" in host else host
        scheme = {"http": "http", "socks4": "socks4", "socks5": "socks5"}[kind]
        self.url = f"{scheme}://{hostpart}:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------
    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, self._bind, 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def stop(self):
        async def shutdown():
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # -- per connection --------------------------------------------------------------------
    async def _client(self, reader, writer):
        self.connections += 1
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            if self.silent:
                await reader.read()
                return
            handler = {"http": self._http, "socks4": self._socks4, "socks5": self._socks5}[self.kind]
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, writer, data):
        """Writes one answer of the proxy, ``delay`` seconds late."""
        if self.delay:
            await asyncio.sleep(self.delay)
        writer.write(data)

    async def _open(self, host, port):
        host = self.hosts.get(host, host)
        return await asyncio.wait_for(asyncio.open_connection(host, port), 5)

    async def _pipe(self, reader, writer, up_reader, up_writer):
        async def copy(src, dst):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                try:
                    dst.close()
                except Exception:  # noqa: BLE001
                    pass

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))

    @staticmethod
    def _addr_type(host):
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return "name"
        return "ipv4" if ip.version == 4 else "ipv6"

    async def _http(self, reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        entry = {"target": host, "port": int(port), "addr_type": self._addr_type(host), "head": head, "auth": None}
        given = headers.get("proxy-authorization")
        if given and given.startswith("Basic "):
            user, _, pw = base64.b64decode(given[6:]).decode().partition(":")
            entry["auth"] = (user, pw)
        self.log.append(entry)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        if self.auth is not None and entry["auth"] != tuple(self.auth):
            writer.write(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
            )
            await writer.drain()
            return
        if self.status != 200:
            writer.write(f"HTTP/1.1 {self.status} Nope\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        try:
            up_reader, up_writer = await self._open(host, int(port))
        except OSError:
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return
        await self._answer(writer, b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n")
        await writer.drain()
        await self._pipe(reader, writer, up_reader, up_writer)

    async def _read_cstring(self, reader):
        return (await reader.readuntil(b"\x00"))[:-1].decode()

    async def _socks4(self, reader, writer):
        vn, cd, port, ip = struct.unpack("!BBH4s", await reader.readexactly(8))
        user = await self._read_cstring(reader)
        if ip[:3] == b"\x00\x00\x00" and ip[3] != 0:
            host = await self._read_cstring(reader)  # SOCKS4a
        else:
            host = socket.inet_ntoa(ip)
        entry = {"target": host, "port": port, "addr_type": self._addr_type(host), "auth": user, "version": vn}
        self.log.append(entry)
        if vn != 4 or cd != 1 or (self.auth is not None and user != self.auth[0]):
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            await writer.drain()
            return
        try:
            up_reader, up_writer = await self._open(host, port)
        except OSError:
            writer.write(b"\x00\x5b" + b"\x00" * 6)
            await writer.drain()
            return
        await self._answer(writer, b"\x00\x5a" + b"\x00" * 6)
        await writer.drain()
        await self._pipe(reader, writer, up_reader, up_writer)

    async def _socks5(self, reader, writer):
        ver, n = await reader.readexactly(2)
        methods = await reader.readexactly(n)
        entry = {"methods": list(methods), "auth": None}
        self.log.append(entry)
        if ver != 5:
            return
        if self.auth is not None:
            if 2 not in methods:
                writer.write(b"\x05\xff")
                await writer.drain()
                return
            writer.write(b"\x05\x02")
            await writer.drain()
            _v, ulen = await reader.readexactly(2)
            user = (await reader.readexactly(ulen)).decode()
            (plen,) = await reader.readexactly(1)
            pw = (await reader.readexactly(plen)).decode()
            entry["auth"] = (user, pw)
            if (user, pw) != tuple(self.auth):
                writer.write(b"\x01\x01")
                await writer.drain()
                return
            writer.write(b"\x01\x00")
        else:
            await self._answer(writer, b"\x05\x00")
        await writer.drain()
        _v, cmd, _rsv, atyp = await reader.readexactly(4)
        if atyp == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        else:
            (ln,) = await reader.readexactly(1)
            host = (await reader.readexactly(ln)).decode()
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        entry.update(target=host, port=port, addr_type=self._addr_type(host))
        try:
            up_reader, up_writer = await self._open(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01" + b"\x00" * 6)
            await writer.drain()
            return
        # Bound address as a domain name, to exercise that reply form.
        await self._answer(writer, b"\x05\x00\x00\x03\x09localhost\x00\x00")
        await writer.drain()
        await self._pipe(reader, writer, up_reader, up_writer)
