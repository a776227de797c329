"""Plain ASGI middleware around the app (so the tracking paths pay next to nothing): the
request timer (and access log), the catch-all that keeps every error in the JSON shape, and
the body limit of the seller API."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request

from functions.errors import unexpected_error
from shared.core import telemetry
from shared.core.scrubbing import route_template

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# The access log: route template, method, status and time at DEBUG (LOG_LEVEL=DEBUG), never
# the path (tracking tokens, ids), the query (recipients' addresses) or the client's address.
access_log = logging.getLogger("functions.access")


class CatchAll:
    """Turns an exception that escaped the app into the JSON error shape, so a seller never
    gets Starlette's plain-text 500. Plain ASGI around the app; the tracking routes answer
    for themselves and never raise."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            response = await unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


class BodyLimit:
    """Refuses a seller request whose body is over the limit: before reading it when its
    Content-Length says so; a body sent without one (chunked) is read here up to the limit
    and then handed on, so it can never grow past it in memory. Plain ASGI, so the tracking
    paths pay nothing for it."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: Callable[[], int]
    ) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        limit = self.limit()
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                return await self._refuse(send, limit)
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await self._refuse(send, limit)
            more = bool(message.get("more_body"))
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = json.dumps({"error": {"field": "body", "message": f"is over {limit} bytes"}})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


class RequestTimer:
    """Times each HTTP request into `engagement.http.duration` by route template, method
    and status class, and logs it at DEBUG the same way. Plain ASGI; with telemetry off and
    the access log quiet it only hands the request on."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (
            telemetry.enabled() or access_log.isEnabledFor(logging.DEBUG)
        ):
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # unless a response starts: the app failed

        async def timed_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            milliseconds = (time.perf_counter() - start) * 1000
            route = route_template(scope)
            telemetry.record_http(route, scope["method"], status, milliseconds)
            access_log.debug("%s %s %s %.1f ms", scope["method"], route, status, milliseconds)
