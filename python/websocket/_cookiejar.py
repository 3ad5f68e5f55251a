"""The process-wide cookie store used by the opening handshake.

Only cookies that come with a ``Domain`` attribute are kept, keyed by the domain with a
leading dot, and sent back to that domain and its subdomains. This is the behaviour of
websocket-client 1.9.2's ``SimpleCookieJar``; it is not a full RFC 6265 jar.
"""

from __future__ import annotations

import http.cookies
from http.cookies import SimpleCookie
from typing import Dict, Iterator, Optional

# No ``__all__``, as in websocket-client: ``from websocket._cookiejar import *`` binds every
# public name (``SimpleCookieJar``, and the ``http`` and ``Optional`` imports).


def _domain_key(domain: str) -> str:
    if not domain.startswith("."):
        domain = "." + domain
    return domain.lower()


def _domains_in(cookie: SimpleCookie) -> Iterator[str]:
    for morsel in cookie.values():
        domain = morsel.get("domain")
        if domain:
            yield _domain_key(domain)


class SimpleCookieJar:
    """Cookies from ``Set-Cookie`` headers, grouped by their ``Domain`` attribute.

    Every cookie of a header is filed under each domain named in that header (cookies
    without a ``Domain`` of their own included), as websocket-client does.
    """

    jar: Dict[str, SimpleCookie]

    def __init__(self) -> None:
        self.jar = {}

    def add(self, set_cookie: Optional[str]) -> None:
        """Merge the cookies of a ``Set-Cookie`` value into the jar.

        Difference from websocket-client: domains are matched case-insensitively when
        merging too (websocket-client replaces the stored cookies when the new header
        spells the domain with capitals).
        """
        if not set_cookie:
            return
        parsed = SimpleCookie(set_cookie)
        for key in _domains_in(parsed):
            stored = self.jar.get(key)
            if stored is None:
                stored = SimpleCookie()
            stored.update(parsed)
            self.jar[key] = stored

    def set(self, set_cookie: Optional[str]) -> None:
        """Replace the cookies of each domain named in a ``Set-Cookie`` value."""
        if not set_cookie:
            return
        parsed = SimpleCookie(set_cookie)
        for key in _domains_in(parsed):
            self.jar[key] = parsed

    def _matching(self, host: str) -> Iterator[SimpleCookie]:
        host = host.lower()
        for domain, cookie in self.jar.items():
            if host.endswith(domain) or host == domain[1:]:
                yield cookie

    def get(self, host: Optional[str]) -> str:
        """The ``Cookie`` header value for ``host``: sorted ``name=value`` pairs joined
        with ``"; "`` (empty string when nothing matches)."""
        if not host or not self.jar:
            return ""
        pairs = sorted(
            f"{name}={morsel.value}"
            for cookie in self._matching(host)
            if cookie
            for name, morsel in cookie.items()
        )
        return "; ".join(pair for pair in pairs if pair)


