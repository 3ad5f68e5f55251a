"""``wsdump``: talk to a WebSocket server from the terminal (websocket-client's tool).

Usage: ``wsdump ws://host/path [options]`` (or ``python -m websocket ...``). Every line
typed is sent as a text message and everything that arrives is printed; Ctrl-D or Ctrl-C
leaves, and so does a close from the server. ``-r/--raw`` prints bare messages without a
prompt or colours, for pipes: ``echo hi | wsdump -r --eof-wait 1 ws://...``.

The options are websocket-client 1.9's: ``-p/--proxy``, ``-v/--verbose [N]`` (1: show the
opcode, 2: also trace the connection), ``-n/--nocert``, ``-r/--raw``, ``-s/--subprotocols``,
``-o/--origin``, ``--eof-wait`` (seconds to keep printing after the end of input),
``-t/--text`` (a first message), ``--timings`` and ``--headers "A: b,C: d"``.
"""

from __future__ import annotations

import argparse
import code
import gzip
import os
import signal
import ssl
import sys
import threading
import time
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlparse, urlsplit

import websocket

from . import _logging
from ._abnf import ABNF
from ._core import WebSocket, create_connection
from ._exceptions import WebSocketConnectionClosedException, WebSocketException

try:
    import readline  # noqa: F401  (line editing and history for input(), as in the reference)
except ImportError:  # pragma: no cover - Windows without pyreadline
    pass

# No ``__all__``, as in websocket-client: every public name is star-exported. The names of
# websocket-client's wsdump that this tool does not use itself (``OPCODE_DATA``,
# ``RawInput``, ``InteractiveConsole``, ``NonInteractive``, ``urlparse``, ``code``) are kept
# for code that imports them.

_PROXY_TYPES = ("http", "socks4", "socks4a", "socks5", "socks5h")

OPCODE_DATA = (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY)


class VAction(argparse.Action):
    """``-v`` alone is 1, ``-v 2`` is 2, ``-vv`` is 2 (as in the reference)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        args: argparse.Namespace,
        values: Union[str, Sequence[Any], None],
        option_string: Optional[str] = None,
    ) -> None:
        text = "1" if values is None else str(values)
        try:
            level = int(text)
        except ValueError:
            level = text.count("v") + 1
        setattr(args, self.dest, level)


class RawInput:
    """websocket-client's line reader: ``raw_input`` returns the line typed as UTF-8 bytes."""

    def raw_input(self, prompt: str = "") -> bytes:
        return input(prompt).encode("utf-8")


# RawInput.raw_input returns bytes where code.InteractiveConsole's returns str: the
# reference's class has the same clash, and nothing here calls the base class's version.
class InteractiveConsole(RawInput, code.InteractiveConsole):  # type: ignore[misc]
    """websocket-client's terminal console: ``write`` prints a message in blue on a fresh
    line and a new ``> `` prompt, ``read`` returns the next line typed as bytes. (``wsdump``
    itself uses a console that also redraws what was being typed.)"""

    def write(self, data: str) -> None:
        sys.stdout.write("\033[2K\033[E\033[34m< " + data + "\033[39m\n> ")
        sys.stdout.flush()

    def read(self) -> bytes:
        return self.raw_input("> ")


class NonInteractive(RawInput):
    """websocket-client's console for ``--raw``: bare lines out, lines without a prompt in."""

    def write(self, data: str) -> None:
        sys.stdout.write(data + "\n")
        sys.stdout.flush()

    def read(self) -> bytes:
        return self.raw_input("")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="wsdump",
        description="WebSocket Simple Dump Tool: type a line to send it, see what arrives; "
        "Ctrl-D or Ctrl-C to leave.",
    )
    p.add_argument("url", metavar="ws_url", help="websocket URL, e.g. ws://127.0.0.1:8765/")
    p.add_argument(
        "-p",
        "--proxy",
        help="proxy URL, e.g. http://127.0.0.1:8080 (socks5://... for a SOCKS proxy)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        default=0,
        nargs="?",
        action=VAction,
        help="verbose mode: 1 shows the opcode of each message, 2 also traces the "
        "connection (handshake and frames)",
    )
    p.add_argument("-n", "--nocert", action="store_true", help="ignore an invalid TLS certificate")
    p.add_argument("-r", "--raw", action="store_true", help="raw output: no prompt, no colours")
    p.add_argument("-s", "--subprotocols", nargs="*", help="subprotocols to offer")
    p.add_argument("-o", "--origin", help="Origin header to send")
    p.add_argument(
        "--eof-wait",
        "--eof_wait",
        dest="eof_wait",
        default=0,
        type=float,
        help="seconds to keep printing what arrives after the end of input",
    )
    p.add_argument("-t", "--text", help="text message to send first")
    p.add_argument("--timings", action="store_true", help="prefix each message with the seconds since start")
    p.add_argument("--headers", help="extra request headers, comma-separated: 'A: b,C: d'")
    return p


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line as an ``argparse.Namespace`` (``sys.argv[1:]`` by default)."""
    return _parser().parse_args(argv)


def connect_options(args: argparse.Namespace) -> Dict[str, Any]:
    """``create_connection`` keyword arguments for the parsed command line."""
    options: Dict[str, Any] = {}
    if args.proxy:
        proxy = urlsplit(args.proxy if "://" in args.proxy else "http://" + args.proxy)
        options["http_proxy_host"] = proxy.hostname
        socks = proxy.scheme.startswith("socks")
        options["http_proxy_port"] = proxy.port or (1080 if socks else 80)
        if proxy.scheme in _PROXY_TYPES and proxy.scheme != "http":
            options["proxy_type"] = proxy.scheme
        if proxy.username is not None:
            options["http_proxy_auth"] = (unquote(proxy.username), unquote(proxy.password or ""))
    if args.origin:
        options["origin"] = args.origin
    if args.subprotocols:
        options["subprotocols"] = args.subprotocols
    if args.headers:
        options["header"] = [h.strip() for h in args.headers.split(",") if h.strip()]
    options["sslopt"] = (
        {"cert_reqs": ssl.CERT_NONE, "check_hostname": False} if args.nocert else {}
    )
    return options


def describe(opcode: int, data: Union[str, bytes]) -> str:
    """What is printed for a received message: text as is, compressed binary (gzip or
    raw deflate holding UTF-8) decoded with a ``[gzip]``/``[zlib]`` tag, other bytes as
    their ``repr``."""
    if isinstance(data, str):
        return data
    if opcode == ABNF.OPCODE_TEXT:
        return data.decode("utf-8", "replace")
    if len(data) > 2 and data[:2] == b"\x1f\x8b":
        try:
            return "[gzip] " + gzip.decompress(data).decode("utf-8")
        except (OSError, EOFError, zlib.error, UnicodeDecodeError):
            pass
    else:
        try:
            return "[zlib] " + zlib.decompress(data, -zlib.MAX_WBITS).decode("utf-8")
        except (zlib.error, UnicodeDecodeError):
            pass
    return repr(data)


def _close_text(data: bytes) -> str:
    if len(data) < 2:
        return ""
    code = int.from_bytes(data[:2], "big")
    reason = data[2:].decode("utf-8", "replace")
    return f"{code} {reason}".rstrip()


class _Console:
    """The terminal side: a ``> `` prompt with line editing, arrivals in blue above it."""

    def __init__(self) -> None:
        self._readline: Any = None
        try:
            import readline  # line editing and history for input()

            self._readline = readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            pass
        self._lock = threading.Lock()

    def read(self) -> str:
        return input("> ")

    def write(self, text: str) -> None:
        pending = ""
        if self._readline is not None:
            try:
                pending = self._readline.get_line_buffer()
            except Exception:  # pragma: no cover - odd readline builds
                pending = ""
        with self._lock:
            # Erase the prompt line, print the message, then redraw the prompt with what
            # has been typed so far.
            sys.stdout.write("\r\033[2K\033[34m< " + text + "\033[39m\n> " + pending)
            sys.stdout.flush()


class _RawConsole:
    """Pipes and scripts: bare lines in, bare lines out."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def read(self) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line[:-1] if line.endswith("\n") else line

    def write(self, text: str) -> None:
        with self._lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()


class _Session:
    """One connection: a reader thread prints arrivals while the main thread sends lines."""

    def __init__(self, ws: WebSocket, args: argparse.Namespace, start: float) -> None:
        self.ws = ws
        self.args = args
        self.start = start
        self.console: Union[_Console, _RawConsole] = _RawConsole() if args.raw else _Console()
        self.closed = threading.Event()  # the server closed or the connection dropped
        self.leaving = threading.Event()  # the main thread is shutting down
        self._reading_input = False
        self._input_lock = threading.Lock()

    # -- reader thread --------------------------------------------------------------------

    def _next(self) -> Tuple[int, Union[str, bytes]]:
        try:
            opcode, frame = self.ws.recv_data_frame(True)
        except (WebSocketException, OSError):
            return ABNF.OPCODE_CLOSE, b""
        data = frame.data
        return opcode, bytes(data) if isinstance(data, bytearray) else data

    def show(self, opcode: int, data: Union[str, bytes]) -> None:
        if opcode == ABNF.OPCODE_CLOSE:
            raw = data.encode("utf-8") if isinstance(data, str) else data
            text = _close_text(raw) if self.args.verbose else ""
        else:
            text = describe(opcode, data)
        if self.args.verbose:
            text = f"{ABNF.OPCODE_MAP.get(opcode)}: {text}"
        if self.args.timings:
            text = f"{time.time() - self.start}: {text}"
        self.console.write(text)

    def reader(self) -> None:
        while True:
            opcode, data = self._next()
            if self.leaving.is_set():
                return
            self.show(opcode, data)
            if opcode == ABNF.OPCODE_CLOSE:
                self.closed.set()
                self._wake_main()
                return

    def _wake_main(self) -> None:
        """The server is gone: interrupt the main thread while it waits for a line.

        SIGINT makes ``input()`` raise KeyboardInterrupt. One signal can land just before
        readline starts waiting (it is then only seen after the next key), so it is
        repeated until the main thread has left ``input()``."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._input_lock:
                if not self._reading_input or self.leaving.is_set():
                    return
                if hasattr(signal, "pthread_kill"):
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                else:  # pragma: no cover - Windows
                    os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)

    # -- main thread ----------------------------------------------------------------------

    def _read_line(self) -> str:
        with self._input_lock:
            if self.closed.is_set():
                raise EOFError
            self._reading_input = True
        try:
            return self.console.read()
        finally:
            with self._input_lock:
                self._reading_input = False

    def run(self) -> None:
        thread = threading.Thread(target=self.reader, name="wsdump-reader", daemon=True)
        thread.start()
        try:
            if self.args.text:
                self.ws.send(self.args.text)
            while not self.closed.is_set():
                try:
                    line = self._read_line()
                except EOFError:
                    if not self.closed.is_set() and self.args.eof_wait > 0:
                        self.closed.wait(self.args.eof_wait)
                    break
                if self.closed.is_set():
                    break
                self.ws.send(line)
        except KeyboardInterrupt:
            pass
        except WebSocketConnectionClosedException:
            self.closed.wait(1)
        finally:
            self._leave()

    def _leave(self) -> None:
        with self._input_lock:
            self.leaving.set()  # no more wake-up signals from the reader after this
        in_main = threading.current_thread() is threading.main_thread()
        # A wake-up signal still in flight must not interrupt the close handshake.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
        try:
            if not self.closed.is_set():
                self.ws.close(timeout=1)
            else:
                self.ws.shutdown()
        except (WebSocketException, OSError):
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if not self.args.raw:
            sys.stdout.write("\n")
            sys.stdout.flush()


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the ``wsdump`` console script and of ``python -m websocket``."""
    start = time.time()
    args = parse_args(argv)
    if args.verbose > 1:
        _logging.enableTrace(True)
    try:
        ws = create_connection(args.url, **connect_options(args))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except (WebSocketException, OSError, ValueError) as e:
        print(f"wsdump: cannot connect to {args.url}: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    session = _Session(ws, args, start)
    if not args.raw:
        print("Press Ctrl+C or Ctrl+D to quit")
    try:
        session.run()
    except KeyboardInterrupt:  # a second Ctrl-C while leaving
        pass


if __name__ == "__main__":
    main()
