"""websocket-rust: websocket-client's API (``import websocket``) on a Rust engine.

The names exported here are websocket-client 1.9.2's, so existing code runs unchanged.
"""

from ._abnf import *  # noqa: F401,F403
from ._app import WebSocketApp as WebSocketApp, set_reconnect as set_reconnect  # noqa: F401
from ._core import *  # noqa: F401,F403
from ._driver import getdefaultdriver as getdefaultdriver, setdefaultdriver as setdefaultdriver  # noqa: F401
from ._exceptions import *  # noqa: F401,F403
from ._logging import *  # noqa: F401,F403
from ._socket import *  # noqa: F401,F403
from . import _native

__version__: str = _native.ENGINE_VERSION  # the one version: Cargo.toml's
