"""Request limits for the chat's public API: per visitor token and per client address, counted in one-minute
windows in this process's memory.

Litestar's rate limiter keeps every request's time per key and reads and writes that list as JSON on each request;
at a few hundred polls a second from behind one address that bookkeeping costs more than the poll itself. A
counter per key and window is enough here. With several web workers each counts its own share (README); a shared
store such as Redis makes the limits exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from litestar.types import ASGIApp, Receive, Scope, Send

PREFIX = "/chat/api/"
WINDOW = 60.0


class Window:
    """How many requests each key made in the current minute."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.started = clock()
        self.counts: dict[str, int] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        if now - self.started >= WINDOW:
            self.started, self.counts = now, {}
        count = self.counts.get(key, 0) + 1
        self.counts[key] = count
        return count <= self.limit

    def retry_after(self) -> int:
        return max(1, int(WINDOW - (self.clock() - self.started)) + 1)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def limit_chat_requests(per_visitor: int, per_address: int) -> Callable[[ASGIApp], ASGIApp]:
    """An ASGI middleware answering 429 (JSON, with Retry-After) once a visitor token or an address has made more
    chat API requests this minute than allowed."""

    def middleware(app: ASGIApp) -> ASGIApp:
        visitors, addresses = Window(per_visitor), Window(per_address)

        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
                await app(scope, receive, send)
                return
            client = scope.get("client")
            address = client[0] if client else ""
            token = _header(scope, b"x-visitor-token")[:64]
            if not addresses.allow(address):
                await _refuse(send, addresses.retry_after())
            elif token and not visitors.allow(token):
                await _refuse(send, visitors.retry_after())
            else:
                await app(scope, receive, send)

        return limited

    return middleware


async def _refuse(send: Send, retry_after: int) -> None:
    body = json.dumps({"error": "too many requests"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
