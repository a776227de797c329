"""The FastAPI app behind the single anonymous HTTP function. It authenticates seller routes
itself and maps domain errors to HTTP answers in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from functions.routes import admin, alerts, health, messages, records, templates, tracking
from shared.bootstrap import get_services
from shared.core import telemetry
from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from shared.core.services import Services


def _field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _error(status: int, field: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": {"field": field, "message": message, **extra}}, status_code=status
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "json_invalid":
        return _error(400, "body", "is not valid JSON")
    details = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in errors]
    return _error(422, _field(tuple(first["loc"])), first["msg"], details=details)


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, InvalidInput):
        return _error(413 if exc.too_large else 422, exc.field, exc.message)
    if isinstance(exc, NotFound):
        return _error(404, "id", f"no such {exc}")
    if isinstance(exc, Conflict):
        return _error(409, "status", str(exc))
    if isinstance(exc, Forbidden):
        return _error(403, "authorization", str(exc))
    assert isinstance(exc, Unauthorized)
    return JSONResponse(
        {"error": {"field": "authorization", "message": str(exc)}},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


UNAVAILABLE_RETRY_AFTER = "10"  # seconds: storage and Graph outages are usually brief
logger = logging.getLogger(__name__)


def _unavailable(exc: BaseException) -> bool:
    """Storage unreachable or failing (connection refused, timeout, 5xx), or Graph
    throttling or failing on a seller request: worth a retry, not the caller's fault."""
    status = getattr(exc, "response_status_code", None)  # Graph (ODataError)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, AzureError | TimeoutError)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    """Whatever escaped the services still answers the one JSON error shape: 503 with
    Retry-After when a dependency is down, else 500."""
    if _unavailable(exc):
        logger.warning("a dependency is unavailable: %s", type(exc).__name__)
        response = _error(503, "service", "storage or Outlook is unavailable; retry shortly")
        response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
        return response
    logger.error("unexpected error", exc_info=exc)
    return _error(500, "service", "an unexpected error occurred")


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
            response = await _unexpected_error(Request(scope), exc)
            await response(scope, receive, send)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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


def _request_limit(services: Services) -> int:
    s = services.settings
    return s.max_html_bytes + s.max_total_attachment_bytes * 4 // 3 + 256 * 1024


def create_app(services: Callable[[], Services] = get_services) -> FastAPI:
    """The app; `services` gives the worker's clients (tests hand in Azurite-backed ones)."""

    app = FastAPI(title="Email engagement", version="0.1.0")
    app.state.services = services
    app.router.routes.extend(tracking.routes)
    app.include_router(messages.router)
    app.include_router(admin.router)
    app.include_router(records.router)
    app.include_router(alerts.router)
    app.include_router(templates.router)
    app.include_router(health.router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for error in (InvalidInput, NotFound, Conflict, Forbidden, Unauthorized):
        app.add_exception_handler(error, _domain_error)

    app.add_middleware(BodyLimit, limit=lambda: _request_limit(services()))
    app.add_middleware(CatchAll)
    app.add_middleware(telemetry.RequestTimer)  # outermost: times refused requests too
    return app
