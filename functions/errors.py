"""Every error answer of the app, in one shape and one place: `{"error": {"field", "message"}}`
for validation, routing and domain errors alike; 503 with Retry-After when storage or
Graph is unavailable; 500 for anything else."""

from __future__ import annotations

import logging
from typing import Any

from azure.core.exceptions import AzureError, HttpResponseError
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shared.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized

logger = logging.getLogger(__name__)


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


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0]
    if first.get("type") == "json_invalid":
        return _error(400, "body", "is not valid JSON")
    details = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in errors]
    return _error(422, _field(tuple(first["loc"])), first["msg"], details=details)


async def domain_error(_: Request, exc: Exception) -> JSONResponse:
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


def _unavailable(exc: BaseException) -> bool:
    """Storage unreachable or failing (connection refused, timeout, 5xx), or Graph
    throttling or failing on a seller request: worth a retry, not the caller's fault."""
    status = getattr(exc, "response_status_code", None)  # Graph (ODataError)
    if isinstance(status, int):
        return status >= 500 or status == 429
    if isinstance(exc, HttpResponseError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, AzureError | TimeoutError)


async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    """Whatever escaped the services still answers the one JSON error shape: 503 with
    Retry-After when a dependency is down, else 500."""
    if _unavailable(exc):
        logger.warning("a dependency is unavailable: %s", type(exc).__name__)
        response = _error(503, "service", "storage or Outlook is unavailable; retry shortly")
        response.headers["Retry-After"] = UNAVAILABLE_RETRY_AFTER
        return response
    logger.error("unexpected error", exc_info=exc)
    return _error(500, "service", "an unexpected error occurred")
